"""Every task, run as a careless user would: bad flag values and bad files (issue 13).

Each case runs the task through Invoke's own ``Program`` (the parser, the task wrapper, the task),
with the recording fakes of the tools on PATH, and asserts what a user must see: exit 1, a line
starting ``error:`` that names the flag or the file, no traceback, and no tool called.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest

import tasks
from tasks.engine import cli, yamlio
from tasks.engine.inventory import DEFAULT_INVENTORY

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = DEFAULT_INVENTORY.read_text()


def _all_tasks(collection, prefix=""):
    for name, task in collection.tasks.items():
        yield f"{prefix}{name}", task
    for name, sub in collection.collections.items():
        yield from _all_tasks(sub, f"{prefix}{name}.")


TASKS = dict(_all_tasks(tasks.namespace))


def _flags(task) -> dict[str, object]:
    """A task's value-taking flags (parameter → default), as Invoke builds its arguments."""
    probe = copy.copy(task)  # Invoke's get_arguments() pops the help it hands out
    probe.help = dict(task.help)
    return {a.attr_name or a.name: a.default for a in probe.get_arguments() if a.takes_value}


# semantically bad values, per flag
BAD_VALUES = {
    "jobs": ["abc", "1.5", "0", "-3", "1000"],
    "format": ["bogus", "JSON"],
    "timeout": ["soon", "-5m", "1.5h", "0s"],
    "profile": ["nope"],
    "name": ["nope"],
    "node": ["nope"],
    "layer": ["nope"],
    "step": ["nope/x"],
    "component": ["nope/x"],
    "from_": ["nope/x"],
    "reference": ["/etc/passwd"],  # a missing one is allowed: no chart data, checks skipped
    "cache": ["/etc/passwd", "/etc/passwd/charts"],
    "out": ["/etc/passwd"],
    "output": ["/etc", "/etc/passwd/config"],
    "cluster": ["/nonexistent/cluster.yaml"],
}
# what a task needs besides the bad flag so that the bad flag is what it trips on
EXTRA = {
    "talos.reset": {"yes": ["--yes"]},
    "cluster.deploy": {"layer": ["--layer", "network"]},
    "apps.status": {"name": ["--name", "mealie"]},
    "apps.remove": {"name": ["--name", "mealie"]},
    "ai.status": {"name": ["--name", "openclaw"]},
    "ai.remove": {"name": ["--name", "openclaw"]},
}


def extra(task: str, tested: str = "") -> list[str]:
    """The other flags ``task`` needs, but not the one under test."""
    return [a for param, args in EXTRA.get(task, {}).items() if param != tested for a in args]


def _cases():
    for path, task in sorted(TASKS.items()):
        for param in _flags(task):
            flag = cli.flag_name(param)
            more = extra(path, param)
            yield pytest.param([path, *more, flag], flag, id=f"{path} {flag} (bare)")
            yield pytest.param([path, *more, f"{flag}="], flag, id=f"{path} {flag}= (empty)")
            for value in BAD_VALUES.get(param, []):
                argv = [path, *more, flag, value]
                yield pytest.param(argv, value, id=f"{path} {flag} {value}")


def run_invoke(argv: list[str], capsys) -> tuple[int, str, str]:
    """``invoke *argv`` in this process: Invoke's parser and program, the fakes on PATH."""
    from invoke import Program

    program = Program(namespace=tasks.namespace, name="onecluster", binary="invoke")
    try:
        program.run(["invoke", *argv])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_refused(fake_tools, capsys, argv: list[str], *names: str) -> str:
    code, out, err = run_invoke(argv, capsys)
    text = out + err
    assert code == 1, f"{argv}: exit {code}\n{text}"
    assert "Traceback" not in text, text
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors, f"{argv}: no line starting 'error:'\n{text}"
    for name in names:
        assert name in err, f"{argv}: the error does not name {name!r}\n{err}"
    assert fake_tools.calls() == [], f"{argv}: tools were called"
    return err


@pytest.fixture(autouse=True)
def _no_secret_store(monkeypatch):
    for var in ("INFISICAL_CLIENT_ID", "INFISICAL_CLIENT_SECRET", "ONECLUSTER_CLUSTER"):
        monkeypatch.delenv(var, raising=False)


def test_the_table_covers_every_task_and_flag():
    cases = list(_cases())
    assert len({c.values[0][0] for c in cases}) == len(TASKS) > 30
    assert len(cases) > 150


@pytest.mark.parametrize(("argv", "named"), list(_cases()))
def test_a_bad_flag_value_is_one_clean_error(fake_tools, capsys, argv, named):
    assert_refused(fake_tools, capsys, argv, named)


def test_a_bare_repeatable_flag_names_the_flag_not_selects_everything(fake_tools, capsys):
    # issue 13: `apps.deploy --name` deployed all five apps
    err = assert_refused(fake_tools, capsys, ["apps.deploy", "--name"], "--name")
    assert "needs a value" in err
    err = assert_refused(fake_tools, capsys, ["cluster.deploy", "--layer", "--dry-run"], "--layer")
    assert "needs a value" in err


def test_a_deploy_with_no_selection_says_so_and_does_nothing(fake_tools, capsys):
    err = assert_refused(fake_tools, capsys, ["cluster.deploy"], "--layer", "--step")
    assert "nothing was" in err
    code, out, err = run_invoke(["cluster.deploy", "--dry-run"], capsys)
    assert code == 1 and "apply-config" not in out and "talos/" not in out


# bad files -----------------------------------------------------------------------------------


def _bomb(levels: int = 9) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)
    ]  # nine levels of nine: 387 million nodes once expanded
    return "\n".join(lines) + "\n"


# (id, file bytes, what the error must say besides the file's name)
BAD_FILES = [
    ("not-utf8", REFERENCE.encode().replace(b"name: homelab", b"name: caf\xe9"), "not UTF-8"),
    (
        "duplicate-key",
        REFERENCE.replace("cluster:\n", "cluster:\n  name: other\n", 1).encode(),
        "duplicate key 'name'",
    ),
    ("alias-bomb", (REFERENCE + _bomb()).encode(), "alias bomb"),
    ("too-large", REFERENCE.encode() + b"#" * yamlio.MAX_BYTES, "KiB"),
    ("empty", b"", "the file is empty"),
    ("not-a-mapping", b"- cluster\n- nodes\n", "expected a mapping"),
    ("not-yaml", b"cluster: [unclosed\n", "not valid YAML"),
]


def _inventory_cases():
    for path, task in sorted(TASKS.items()):
        if "cluster" in _flags(task):
            for case_id, data, words in BAD_FILES:
                yield pytest.param(path, data, words, id=f"{path} {case_id}")


@pytest.mark.parametrize(("task", "data", "words"), list(_inventory_cases()))
def test_a_bad_inventory_file_is_one_clean_error(fake_tools, capsys, tmp_path, task, data, words):
    bad = tmp_path / "cluster.yaml"
    bad.write_bytes(data)
    argv = [task, "--cluster", str(bad), *extra(task)]
    err = assert_refused(fake_tools, capsys, argv, str(bad), words)
    assert "source" not in err  # the inventory's internal key is no key a user may write


def test_a_bad_inventory_error_names_the_line(tmp_path):
    from tasks.engine.errors import InventoryError
    from tasks.engine.inventory import load_inventory

    # the reference's cluster.name (line 9) is where the bad byte, or the second name, is
    line = REFERENCE.count("\n", 0, REFERENCE.index("  name: homelab")) + 1
    expected = {
        "not-utf8": f"line {line}: not UTF-8: byte 0xe9",
        "duplicate-key": f"line {line + 1}: not valid YAML: duplicate key 'name' (first at line "
        f"{line})",
        "not-yaml": "line 2: not valid YAML",
    }
    for case_id, data, _ in BAD_FILES:
        if case_id in expected:
            bad = tmp_path / f"{case_id}.yaml"
            bad.write_bytes(data)
            with pytest.raises(InventoryError) as info:
                load_inventory(bad)
            assert expected[case_id] in str(info.value), str(info.value)


@pytest.fixture
def repo_copy(tmp_path, monkeypatch) -> Path:
    """The values files and manifests copied to a directory the components read instead."""
    from tasks.engine import components
    from tasks.validate import validation

    root = tmp_path / "repo"
    for folder in ("helm-values", "manifests"):
        shutil.copytree(ROOT / folder, root / folder)
    monkeypatch.setattr(components, "REPO_ROOT", root)
    monkeypatch.setattr(validation, "REPO_ROOT", root)
    return root


VALUES = "helm-values/traefik.yaml"
MANIFEST = "manifests/network/default-gateway/gateway.yaml"
# (id, file, how it is broken, what the error must say besides the file's name)
BROKEN = [
    ("values-not-utf8", VALUES, lambda t: t + b"\n\xff\xfe\n", "not UTF-8"),
    ("values-duplicate", VALUES, lambda t: b"deployment:\n  replicas: 1\n" + t, "duplicate key"),
    ("values-alias-bomb", VALUES, lambda t: t + _bomb().encode(), "alias bomb"),
    ("values-too-large", VALUES, lambda t: t + b"#" * yamlio.MAX_BYTES, "KiB"),
    ("manifest-not-utf8", MANIFEST, lambda t: t + b"\xc3\x28", "not UTF-8"),
    (
        "manifest-duplicate",
        MANIFEST,
        lambda t: t.replace(b"kind:", b"kind: Twice\nkind:", 1),
        "duplicate key 'kind'",
    ),
]
# charts.validate reads every chart's data (seconds a run): two of the cases are enough there
VALIDATED = ("values-duplicate", "manifest-not-utf8")


def _file_cases():
    for case_id, rel, breaks, words in BROKEN:
        for task in ("cluster.plan", "network.deploy", "charts.validate"):
            if task != "charts.validate" or case_id in VALIDATED:
                yield pytest.param(task, rel, breaks, words, id=f"{task} {case_id}")


@pytest.mark.parametrize(("task", "rel", "breaks", "words"), list(_file_cases()))
def test_a_bad_values_file_or_manifest_is_one_clean_error(
    fake_tools, capsys, repo_copy, task, rel, breaks, words
):
    target = repo_copy / rel
    assert target.is_file(), f"{rel} is not in the repository any more: update this table"
    target.write_bytes(breaks(target.read_bytes()))
    argv = [task, "--dry-run"] if task == "network.deploy" else [task]
    code, out, err = run_invoke(argv, capsys)
    text = out + err
    assert code == 1, text
    assert "Traceback" not in text, text
    assert words in text and Path(rel).name in text, text
    assert [line for line in text.splitlines() if line.startswith("error:")] or task == (
        "charts.validate"  # the validation report lists problems itself, then exits 1
    ), text
    assert fake_tools.calls() == []


# messages ------------------------------------------------------------------------------------


def test_help_shows_each_repeatable_flags_placeholder(capsys):
    for path, task in TASKS.items():
        if not task.iterable:
            continue
        code, out, _ = run_invoke(["--help", path], capsys)
        assert code == 0
        text = " ".join(out.split())  # Invoke wraps the help column
        for param in task.iterable:
            shown = f"{cli.flag_name(param)} {cli.placeholder(param)}, repeatable:"
            assert shown in text, (path, out)


def test_a_tool_override_naming_no_binary_says_so(monkeypatch, tmp_path):
    from tasks.engine.command import check_tools, resolve_binary
    from tasks.engine.errors import ToolMissingError

    monkeypatch.setenv("HELM", "/nonexistent/helm")
    with pytest.raises(ToolMissingError) as info:
        resolve_binary("helm")
    assert "$HELM is set to '/nonexistent/helm'" in str(info.value)
    assert "not set" not in str(info.value)

    monkeypatch.delenv("HELM")
    monkeypatch.delenv("TALOSCTL", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolMissingError) as info:
        check_tools(["helm", "talosctl"])
    assert "$TOOL" not in str(info.value)
    assert "$HELM" in str(info.value) and "$TALOSCTL" in str(info.value)
