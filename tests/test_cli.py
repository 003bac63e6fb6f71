"""The command line as a user meets it: a clean clone, `invoke --list`, the README's dry-run."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INVOKE = [sys.executable, "-m", "invoke"]


@pytest.fixture(scope="module")
def clean_clone(tmp_path_factory) -> Path:
    """The committed tree, cloned: what a new user gets (no caches, no build output)."""
    if not (ROOT / ".git").exists() or not shutil.which("git"):
        pytest.skip("not a git checkout: no clean clone to make")
    dest = tmp_path_factory.mktemp("clone") / "onecluster"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(dest)], check=True)
    # the clone has the committed tree; tests run against the working tree, so copy it over
    for rel in subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split():
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def invoke(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*INVOKE, *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=120
    )


def test_invoke_list_from_a_clean_clone(clean_clone):
    result = invoke(clean_clone, "--list")
    assert result.returncode == 0, result.stderr
    from tasks.stack import LAYERS

    for collection in (*LAYERS, "cluster"):
        assert f"{collection}.deploy" in result.stdout
    assert "cluster.rebuild" in result.stdout and "cluster.plan" in result.stdout


def test_every_task_has_a_one_line_summary(clean_clone):
    listing = invoke(clean_clone, "--list").stdout.splitlines()
    tasks = [
        line.split()[0] for line in listing if line.startswith("  ") and "." in line.split()[0]
    ]
    assert tasks
    for name in tasks:
        line = next(x for x in listing if x.strip().startswith(name))
        assert len(line.split()) > 1, f"{name} has no summary"


def test_readme_dry_run_from_a_clean_clone(clean_clone):
    result = invoke(clean_clone, "cluster.rebuild", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "dry-run for cluster homelab" in result.stdout
    assert "talosctl" in result.stdout and re.search(
        r"helm --kubeconfig \S+ upgrade --install", result.stdout
    )
    assert not list(clean_clone.glob("**/onecluster-*"))


def test_bad_inventory_is_a_clean_error_not_a_traceback(clean_clone, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (ROOT / "talos" / "cluster.yaml").read_text().replace("192.168.50.16", "10.1.1.1")
    )
    result = invoke(clean_clone, "cluster.plan", "--cluster", str(bad))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "nodes[2].ip: expected an address inside network.subnet" in result.stderr


def test_unknown_from_step_is_a_clean_error(clean_clone):
    # only the plan takes --from (a run resumes by running the same command again)
    result = invoke(clean_clone, "cluster.plan", "--from", "network/trafik")
    assert result.returncode == 1
    assert "unknown step 'network/trafik'" in result.stderr and "network/traefik" in result.stderr


def _all_tasks(collection, prefix=""):
    for name, task in collection.tasks.items():
        yield f"{prefix}{name}", task
    for name, sub in collection.collections.items():
        yield from _all_tasks(sub, f"{prefix}{name}.")


def test_every_task_takes_dry_run_with_help():
    import tasks

    found = dict(_all_tasks(tasks.namespace))
    assert len(found) > 30
    for name, task in found.items():
        assert "dry_run" in task.argspec(task.body).parameters, f"{name} has no --dry-run"
        assert "dry_run" in task.help, f"{name}: --dry-run has no help"


@pytest.mark.parametrize(
    "argv",
    [
        ["apps.status", "--name", "mealie", "--dry-run"],
        ["apps.list", "--dry-run"],
        ["ai.list", "--dry-run"],
        ["secrets.check", "--dry-run"],
        ["charts.validate", "--dry-run"],
        ["cluster.plan", "--dry-run"],
        ["secrets.list", "--dry-run"],
    ],
    ids=lambda argv: argv[0],
)
def test_read_only_tasks_dry_run_contacts_nothing(fake_tools, argv):
    result = invoke(ROOT, *argv)
    assert result.returncode == 0, result.stderr
    assert fake_tools.calls() == []


# Invoke's own conventions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["--dry", "charts.pull"],
        ["-R", "cluster.rebuild"],
        ["--dry", "apps.deploy", "--name", "mealie"],
        ["--dry", "talos.reset"],
    ],
    ids=lambda argv: " ".join(argv),
)
def test_invokes_global_dry_runs_nothing(fake_tools, argv):
    # Invoke's --dry is honoured as the task's --dry-run: commands are printed, none is run
    # (apps.deploy still asks the cluster what is in place: read-only probes, named as such)
    result = invoke(ROOT, *argv)
    assert result.returncode == 0, result.stderr
    mutating = {"apply", "upgrade", "install", "delete", "uninstall", "pull", "reset", "bootstrap"}
    assert [c["argv"] for c in fake_tools.calls() if mutating & set(c["argv"])] == []
    assert "dry-run" in result.stdout or "$ helm" in result.stdout


def test_no_task_has_an_automatic_short_flag():
    # -d is Invoke's --debug before a task name; it must not also mean --dry-run after one
    import tasks

    for name, task in _all_tasks(tasks.namespace):
        probe = copy.copy(task)  # Invoke's get_arguments() pops the help it hands out
        probe.help = dict(task.help)
        shorts = [a for arg in probe.get_arguments() for a in arg.names if len(a) == 1]
        assert not shorts, f"{name} has short flags {shorts}"


def test_help_says_how_to_dry_run():
    result = invoke(ROOT, "--help", "cluster.rebuild")
    assert result.returncode == 0, result.stderr
    assert "--dry-run" in result.stdout and "-d," not in result.stdout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["cluster.plan", "--format", "yaml"], "--format yaml: unknown format; use one of"),
        (["secrets.list", "--format", "yaml"], "--format yaml: unknown format; use one of"),
        (["cluster.plan", "--profile", "nope"], "--profile nope: unknown profile; use one of"),
        (["talos.upgrade", "--timeout", "soon"], "--timeout expected a duration"),
    ],
    ids=lambda v: v[0] if isinstance(v, list) else "",
)
def test_a_bad_choice_is_one_clean_error(fake_tools, argv, message):
    result = invoke(ROOT, *argv)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ") and message in result.stderr, result.stderr
    assert fake_tools.calls() == []


def test_invoke_converts_flag_types(fake_tools):
    # --jobs is an int because its default is: no task converts it by hand
    result = invoke(ROOT, "cluster.rebuild", "--dry-run", "--jobs", "8")
    assert result.returncode == 0, result.stderr
