"""The argv onecluster builds, parsed by the real helm and kubectl where they are installed.

The recording fakes accept any argv; the real binaries do not. Each distinct command shape the
reference stack emits (every release's helm upgrade and status, kubectl apply/wait/rollout/get/
delete) is run by the real tool against a kubeconfig whose API server is 127.0.0.1:1, where nothing listens. A tool
that accepted the flags fails only there, at the connection; a flag or subcommand it does not
know fails before it with ``unknown flag`` / ``unknown command`` — which this test rejects.

Why global flags may come first: Helm registers ``--kubeconfig`` as a persistent flag of its root
command (helm ``pkg/cli/environment.go``, ``EnvSettings.AddFlags``, bound to the root's
``PersistentFlags`` in ``pkg/cmd/root.go``), and kubectl does the same with its ``genericclioptions``
config flags; cobra then accepts them before the subcommand.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tasks.engine import record
from tasks.engine.command import Command, resolve_binary
from tasks.engine.components import (
    CrdBundle,
    HelmRelease,
    ManifestBundle,
    diff_command,
    existing_objects_command,
)
from tasks.engine.context import run_context
from tasks.engine.gates import Gate, targets_command
from tasks.stack import STACK, WORKLOAD_LAYERS
from tasks.workloads.workload import removal_commands

UNREACHABLE = """\
apiVersion: v1
kind: Config
clusters: [{name: nowhere, cluster: {server: "https://127.0.0.1:1"}}]
contexts: [{name: nowhere, context: {cluster: nowhere, user: nobody}}]
current-context: nowhere
users: [{name: nobody, user: {token: not-a-secret}}]
"""
REFUSED = ("127.0.0.1:1", "connection refused")
PARSE_ERRORS = ("unknown flag", "unknown command", "unknown shorthand", "flags cannot be placed")


def unreachable_kubeconfig(tmp_path: Path) -> Path:
    """A kubeconfig whose API server is 127.0.0.1:1, where nothing listens."""
    path = tmp_path / "kubeconfig"
    path.write_text(UNREACHABLE)
    return path


def run_real(command: Command, tmp_path: Path, *extra: str) -> tuple[int, str]:
    """Run ``command`` with the real binary (HOME in ``tmp_path``): its exit code and stderr."""
    done = subprocess.run(
        [resolve_binary(command.tool), *command.args, *extra],
        input=command.stdin,
        env={**os.environ, **command.env, "HOME": str(tmp_path)},
        capture_output=True,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stderr.decode("utf-8", "replace")


def assert_refused_only(command: Command, tmp_path: Path, *extra: str) -> None:
    """The real tool parsed ``command`` and failed only at the connection to 127.0.0.1:1."""
    code, err = run_real(command, tmp_path, *extra)
    assert not any(p in err for p in PARSE_ERRORS), f"{command.display()}\n{err}"
    assert code != 0 and any(r in err for r in REFUSED), f"{command.display()}\n{err}"


def _shape(command: Command) -> tuple[str, ...]:
    """The tool, its subcommand and first operand, past the global flags (one command each)."""
    words = [a for a in command.args if not a.startswith("-")]
    flags_with_values = {"--kubeconfig", "--context"}
    args = list(command.args)
    for flag in flags_with_values:
        if flag in args:
            words.remove(args[args.index(flag) + 1])
    return (command.tool, *words[:2])


def stack_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Command]:
    """One command of each shape the reference stack deploys, gates, probes and removes with."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(UNREACHABLE)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setenv("ONECLUSTER_CACHE", str(tmp_path / "cache"))
    inv = STACK.load()
    graph = STACK.graph(inv)
    found: dict[tuple[str, ...], Command] = {}
    with run_context(inv, dry_run=True, fetch_kubeconfig=False) as ctx:
        for step in graph.steps():
            if step.layer in ("talos", "secrets") or isinstance(step, CrdBundle):
                continue  # talosctl is not here; CRD bundles download from the network
            commands = [*step.commands(ctx), *(p.command for p in step.probes(ctx))]
            for command in commands:
                found.setdefault(_shape(command), command)
        mealie = next(w for w in WORKLOAD_LAYERS["apps"](inv) if w.name == "mealie")
        for command in removal_commands(mealie, graph, ctx, purge=True):
            found.setdefault(_shape(command), command)
        # a converging run's own reads and write, and cluster.diff's: not steps, so listed here
        bundle = next(s for s in graph.steps() if isinstance(s, ManifestBundle))
        release = next(s for s in graph.steps() if isinstance(s, HelmRelease) and s.repo)
        # installed (as the run's one helm list would say): the template renders an upgrade
        ctx.state[record.HELM_LIST] = {(release.namespace, release.release): {}}
        converge = [
            record.read_command(ctx),
            record.write_command(ctx, {record.key("network/traefik"): "{}"}),
            record.helm_list_command(ctx),
            existing_objects_command(ctx, bundle.applied(ctx)),
            # every gate's objects, as stubs (CRDs, workloads, a Certificate, a Gateway)
            targets_command(ctx, [s for s in graph.steps() if isinstance(s, Gate)]),
            diff_command(ctx, bundle.applied(ctx)),
            release.template_command(ctx),
        ]
        assert "--is-upgrade" in converge[-1].args
        # helm template locates the chart before it asks the cluster, and there is no network
        # here: the same argv with a local chart (made by the real `helm create`) instead of
        # the repository's, so the call reaches the cluster's address
        converge.append(_with_local_chart(converge[-1], release, tmp_path))
    return [*found.values(), *converge]


def _with_local_chart(command: Command, release: HelmRelease, tmp_path: Path) -> Command:
    """``command`` (a ``helm template``) with a local chart instead of the repository's."""
    args = list(command.args)
    at = args.index("template") + 2  # template RELEASE CHART
    assert args[at : at + 2] == [release.chart, "--repo"]
    del args[at : at + 3]  # CHART --repo URL
    chart = tmp_path / "chart"
    if shutil.which("helm") is not None and not chart.exists():
        subprocess.run(
            [resolve_binary("helm"), "create", str(chart)], capture_output=True, check=True,
            env={**os.environ, **command.env, "HOME": str(tmp_path)},
        )  # fmt: skip
    args.insert(at, str(chart))
    return Command(command.tool, tuple(args), stdin=command.stdin, env=command.env)


def _unreachable_repository(command: Command, err: str) -> bool:
    """helm template of a repository's chart: past flag parsing, the repository cannot be
    reached (no network here); its local-chart twin shows the cluster is asked next."""
    return "template" in command.args and "--repo" in command.args and "cannot be reached" in err


@pytest.mark.parametrize("tool", ["helm", "kubectl"])
def test_the_real_tool_accepts_every_command_shape(tool, tmp_path, monkeypatch):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")
    commands = [c for c in stack_commands(tmp_path, monkeypatch) if c.tool == tool]
    assert len(commands) >= 3, "the stack emits several shapes of this tool's commands"
    for command in commands:
        code, err = run_real(command, tmp_path)
        shown = command.display()
        assert not any(p in err for p in PARSE_ERRORS), f"{shown}\n{err}"
        reached = any(r in err for r in REFUSED) or _unreachable_repository(command, err)
        assert code != 0 and reached, f"{shown}\n{err}"
