#!/usr/bin/env python3
"""Benchmark `cluster.rebuild` against fake tools that sleep per call, and `invoke --list` start-up.

Usage: python benchmarks/rebuild.py [--sleep 0.2] [--jobs 1 4 8] [--repeat 5] [--converge-jobs 8]

The whole reference graph runs through the real runner and executor; every talosctl, helm and
kubectl call goes to a recording fake on PATH that sleeps ``--sleep`` seconds. Steps that would talk
to Infisical or the Kubernetes API directly (secret syncs) and Talos steps with custom actions run
their planned commands instead, so each step costs one or more fake calls and the schedule is what
is measured. Targets: wall ÷ critical path ≤ 1.15 at --jobs 8; `invoke --list` ≤ 1.5 times a bare
`python -c "import invoke"`.

Converge rows: the reference stack on stateful fakes (``tests/stateful.py``: helm lists what it
installed, kubectl returns what was applied, a Talos node the config applied to it; Talos steps
real, secret syncs as reads), rebuilt three times at the same fake latency: a first run, a no-op
re-run, and a re-run after a one-line change of Traefik's values: tool calls, mutating calls (all
of them, then apart: the stack's applies, the record's write, the run lock's own Lease writes:
taken, renewed, released) and wall time as a fraction of the first run's. Target: the no-op
re-run makes 0 mutating calls (no Lease write either: a run takes it before its first change)
in under 10% of the first's wall.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path
from typing import ClassVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "tests"))  # the stateful stack and the Talos fakes' writer

from tasks.engine.components import Component  # noqa: E402
from tasks.engine.execute import execute  # noqa: E402
from tasks.engine.graph import Graph, critical_path  # noqa: E402
from tasks.engine.output import table  # noqa: E402
from tasks.stack import STACK  # noqa: E402


@dataclasses.dataclass(frozen=True, kw_only=True)
class PlannedCommands(Component):
    """Stand-in for a step with in-process work: runs the original's planned commands, or one call."""

    kind: ClassVar[str] = "bench"
    original: Component

    def commands(self, ctx):
        planned = self.original.commands(ctx)
        return planned or [ctx.kubectl("apply", "--server-side", "-f", "-", stdin=b"{}")]

    def tools(self):
        return {"kubectl", *self.original.tools()}


def bench_catalog(inventory):
    steps = []
    for comp in STACK.components(inventory):
        custom_run = type(comp).run is not Component.run or getattr(comp, "action", None)
        if custom_run and comp.kind != "gate":
            comp = PlannedCommands(
                layer=comp.layer, name=comp.name, needs=comp.needs, original=comp
            )
        steps.append(comp)
    return steps


def install_fakes(directory: Path):
    """The recording fakes of tests/conftest.py (imported here: a child run needs no pytest)."""
    from tests.conftest import install_fakes as install

    return install(directory)


def run_rebuild(jobs: int, fakes) -> tuple[int, float, float, float]:
    with redirect_stdout(StringIO()):
        report = execute(STACK.with_components(bench_catalog), jobs=jobs, preflight=False)
    graph = Graph.build(bench_catalog(STACK.load()))
    durations = {r.id: r.duration for r in report.results}
    crit, _ = critical_path(graph.steps([r.id for r in report.results]), durations)
    return len(report.results), sum(durations.values()), crit, report.wall


def converge_rows(sleep: float, jobs: int) -> list[tuple]:
    """First rebuild, no-op re-run, re-run after a one-line Traefik values change (see above).

    Each rebuild is its own process (``--converge-child``), timed whole, as a user's
    ``invoke cluster.rebuild`` is: nothing one run parsed or cached in memory helps the next.
    """
    import pytest
    import stateful
    from test_talos_fixtures import BUNDLE, make_talos_env

    from tasks.engine.inventory import REPO_ROOT

    rows = []
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        base = Path(tmp)
        fakes = install_fakes(base / "fake-tools")
        for var, value in (
            ("PATH", f"{fakes.bin_dir}{os.pathsep}{os.environ['PATH']}"),
            ("FAKE_TOOLS_LOG", str(fakes.log)),
            ("FAKE_TOOLS_CONFIG", str(fakes.config)),
            ("ONECLUSTER_CACHE", str(base / "cache")),
            ("KUBECONFIG", str(base / "kubeconfig")),
            ("TALOSCONFIG", str(base / "talosconfig")),
        ):
            mp.setenv(var, value)
        make_talos_env(base, mp, fakes)
        mp.setenv("TMPDIR", str(base / "tmp"))  # the run's private work directory goes there
        stateful.stateful_nodes(fakes, [str(n.ip) for n in STACK.load().nodes])
        fakes.set_sleep(sleep)
        changed = base / "traefik.yaml"
        text = (REPO_ROOT / "helm-values" / "traefik.yaml").read_text()
        changed.write_text(text.replace("  replicas: 2\n", "  replicas: 3\n", 1))
        first_wall = 0.0
        for label, values, bundle in (
            ("first rebuild", "", ""),  # the store holds no Talos bundle yet: one is made
            ("no-op re-run", "", BUNDLE),  # ...and kept in the store by the first run
            ("one-line values change", str(changed), BUNDLE),
        ):
            before = len(fakes.calls())
            argv = [sys.executable, __file__, "--converge-child", values, "--jobs", str(jobs)]
            t0 = time.perf_counter()
            done = subprocess.run(
                argv, env={**os.environ, CHILD_BUNDLE: bundle}, capture_output=True, check=False
            )
            wall = time.perf_counter() - t0
            if done.returncode != 0:
                raise SystemExit(f"{label} failed:\n{done.stdout.decode()}{done.stderr.decode()}")
            first_wall = first_wall or wall
            calls = fakes.calls()[before:]
            rows.append(
                (
                    label,
                    len(calls),
                    len([c for c in calls if stateful.mutating(c)]),
                    len(stateful.applied(calls)),
                    len([c for c in calls if stateful.record_write(c)]),
                    len([c for c in calls if stateful.lease_call(c) and stateful.mutating(c)]),
                    f"{wall:.2f}s",
                    f"{wall / first_wall:.2f}",
                )
            )
    return rows


CHILD_BUNDLE = "ONECLUSTER_BENCH_BUNDLE"


def converge_child(values: str, jobs: int) -> int:
    """One rebuild of the stack on the stateful fakes the parent set up (its environment); the
    secret store holds the Talos bundle of ``$ONECLUSTER_BENCH_BUNDLE`` (empty: none yet)."""
    import stateful

    from tasks.secrets import infisical
    from tasks.secrets.store import MemoryStore
    from tasks.talos.options import TalosOptions
    from tasks.talos.secretsbundle import SECRET_NAME

    bundle = os.environ.get(CHILD_BUNDLE, "")
    store = MemoryStore({SECRET_NAME: bundle} if bundle else {})
    infisical.open_store = lambda inventory: store
    execute(
        STACK.with_components(stateful.components(values)), jobs=jobs,
        options=(TalosOptions(poll_interval=0),),
    )  # fmt: skip
    return 0


def startup(repeat: int) -> tuple[float, float]:
    # Measure warm start-ups, as a user's second run is: byte-compile the project first (a
    # PYTHONDONTWRITEBYTECODE environment would otherwise recompile every module on every run,
    # while site-packages, and so invoke itself, are already compiled).
    subprocess.run([sys.executable, "-m", "compileall", "-q", "tasks"], cwd=ROOT, check=True)

    def timed(argv: list[str]) -> float:
        samples = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            subprocess.run(argv, cwd=ROOT, capture_output=True, check=True)
            samples.append(time.perf_counter() - t0)
        return statistics.median(samples)

    bare = timed([sys.executable, "-c", "import invoke"])
    listing = timed([sys.executable, "-m", "invoke", "--list"])
    return listing, bare


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sleep", type=float, default=0.2, help="seconds each fake tool call sleeps"
    )
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--repeat", type=int, default=5, help="start-up samples (median)")
    parser.add_argument("--converge-jobs", type=int, default=8, help="--jobs of the converge rows")
    parser.add_argument("--converge-child", metavar="VALUES", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.converge_child is not None:  # one converge row's rebuild, in its own process
        return converge_child(args.converge_child, args.jobs[0])

    path = os.environ["PATH"]
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for jobs in args.jobs:
            # fresh fakes for every row: the fakes keep state, and a second rebuild converges
            fakes = install_fakes(Path(tmp) / f"jobs-{jobs}")
            fakes.set_sleep(args.sleep)
            # a planned apply reads the node's live config first: here every call stands in
            fakes.rule("talosctl", "get", "machineconfig")
            os.environ["PATH"] = f"{fakes.bin_dir}{os.pathsep}{path}"
            os.environ["FAKE_TOOLS_LOG"] = str(fakes.log)
            os.environ["FAKE_TOOLS_CONFIG"] = str(fakes.config)
            os.environ["ONECLUSTER_CACHE"] = str(Path(tmp) / "cache")
            steps, total, crit, wall = run_rebuild(jobs, fakes)
            rows.append(
                (jobs, steps, f"{total:.2f}s", f"{crit:.2f}s", f"{wall:.2f}s", f"{wall / crit:.2f}")
            )
    os.environ["PATH"] = path
    print(f"cluster.rebuild against fake tools sleeping {args.sleep}s per call")
    print(
        table(
            ("jobs", "steps", "sum of step times", "critical path", "wall", "wall/critical"), rows
        )
    )
    print()
    print(
        f"converge: the stack on stateful fakes sleeping {args.sleep}s per call, "
        f"--jobs {args.converge_jobs}"
    )
    print(
        table(
            (
                "run",
                "tool calls",
                "mutating (all)",
                "stack",
                "record",
                "Lease",
                "wall",
                "of first",
            ),
            converge_rows(args.sleep, args.converge_jobs),
        )
    )
    listing, bare = startup(args.repeat)
    print()
    print(f"start-up (median of {args.repeat})")
    print(
        table(
            ("command", "time", "ratio"),
            [
                ('python -c "import invoke"', f"{bare * 1000:.0f}ms", "1.00"),
                ("invoke --list", f"{listing * 1000:.0f}ms", f"{listing / bare:.2f}"),
            ],
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
