"""The one path every task takes to run steps: load, select, check, then plan or run.

Plan → check → apply → report: the inventory is validated and the graph resolved before anything
runs; the selected steps' values files and manifests are checked (the catalogue's ``prechecks``);
missing binaries stop the run before the first step, and preflight problems (e.g. secrets absent
from Infisical) before any step that changes anything (:mod:`tasks.engine.preflight`); then the
runner applies the steps and prints a summary table.

A run (not a dry-run, not a plan) changes the cluster, so it holds the cluster's lock
(:mod:`tasks.engine.lock`) from before its work directory exists until after it is removed, and
SIGINT/SIGTERM are routed to its stop state (:mod:`tasks.engine.signals`): an interrupted run
prints "interrupted", the summary, the steps not run and the command that continues it, and
exits 130 (SIGINT) or 143 (SIGTERM). The work directory is removed in every case.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .catalog import Catalog
from .command import Executor, check_tools
from .components import Component
from .context import RunContext, run_context, user_kubeconfig
from .diff import diff_steps, has_changes
from .diff import render as render_diff
from .errors import FlagError, InputError, OneclusterError
from .graph import Graph
from .inventory import Inventory
from .lock import RunLock
from .output import echo
from .plan import render_plan
from .preflight import Preflight
from .record import Converge
from .runner import NOT_RUN, OK, STOPPED, UNCHANGED, Report, RunFailed, Runner, resume_command
from .signals import Stop, handle_signals


class RunInterrupted(OneclusterError):
    """A run stopped by SIGINT or SIGTERM; ``exit_code`` is 128 + the signal's number."""

    def __init__(self, report: Report, exit_code: int) -> None:
        self.report = report
        self.exit_code = exit_code
        super().__init__(f"interrupted by {report.interrupted}")


@dataclass(frozen=True)
class Selection:
    """Which steps of the graph a task picked (see :meth:`Graph.select`)."""

    layers: Sequence[str] = ()
    targets: Sequence[str] = ()
    with_needs: bool = True
    from_step: str | None = None


def select(
    catalog: Catalog, cluster: str | None, selection: Selection
) -> tuple[Inventory, Graph, list[Component]]:
    """Load and validate the inventory, build the graph, and pick the selected steps."""
    inventory = catalog.load(cluster)
    graph = catalog.graph(inventory)
    ids = graph.select(
        layers=selection.layers,
        targets=selection.targets,
        with_needs=selection.with_needs,
        from_step=selection.from_step,
    )
    return inventory, graph, graph.steps(ids)


def execute(
    catalog: Catalog,
    *,
    cluster: str | None = None,
    layers: Sequence[str] = (),
    targets: Sequence[str] = (),
    from_step: str | None = None,
    dry_run: bool = False,
    jobs: int = 4,
    options: Sequence[object] = (),
    preflight: bool = True,
    with_needs: bool = True,
    break_lock: bool = False,
    yes: bool = False,
    lock: bool = True,
    force: bool = False,
    force_steps: Sequence[str] = (),
) -> Report:
    """Select steps and run them (or print them); raise :class:`RunFailed` if any step failed,
    :class:`RunInterrupted` after SIGINT/SIGTERM.

    ``with_needs=False`` runs exactly ``targets`` (callers that already dropped the needs found in
    place, e.g. ``apps.deploy``, pass the steps still missing). ``options`` are the areas' typed
    options objects (``ctx.option(kind)`` reads them). ``break_lock`` with ``yes`` takes the
    cluster's lock from another run. ``lock=False``: the steps only read (``talos.health``), so
    the run takes no lock (and writes no record).

    A run converges (:mod:`tasks.engine.record`): a step whose fingerprint the cluster's record
    holds and whose live state confirms it is ``unchanged`` and skipped; ``force`` re-applies
    every step, ``force_steps`` those steps. So a failed or interrupted run resumes by running
    the same command again.
    """
    inventory, graph, steps = select(
        catalog, cluster, Selection(layers, targets, with_needs, from_step)
    )
    unknown = sorted(set(force_steps) - {s.id for s in steps})
    if unknown:
        raise FlagError(
            f"--force-step {', '.join(unknown)}: not a selected step (`invoke cluster.plan` "
            "lists the step ids)"
        )
    run_lock = RunLock(inventory.name, break_lock=break_lock, yes=yes)  # --break-lock needs --yes
    if not dry_run:
        check_tools(sorted({t for s in steps for t in s.tools()}))
    stop = Stop()
    converge: Converge | None = None
    with (
        handle_signals(stop),
        _locked(run_lock, dry_run or not lock),
        run_context(
            inventory,
            dry_run=dry_run,
            fetch_kubeconfig=any(s.fetches_configs for s in steps),
            options=options,
            executor=Executor(dry_run=dry_run, stop=stop),
            open_store=catalog.open_store,
        ) as ctx,
    ):
        asked: Preflight | None = None
        try:
            precheck(catalog, ctx, steps)
            if preflight and not stop.requested.is_set():
                asked = Preflight(ctx, steps)
                if not dry_run and any(s.before_preflight for s in steps):
                    asked.start()  # beside the steps that may start before its answer
                else:  # first (a dry-run prints it in order)
                    asked.ask()
            if dry_run and lock:
                run_lock.print_dry_run(ctx.kubeconfig)
            elif lock:  # the cluster-side lock, once its kubeconfig exists and it answers
                run_lock.attach(ctx.kubeconfig)
                ctx.on_kubeconfig.append(run_lock.peek)
            if dry_run:
                echo(
                    f"# dry-run for cluster {inventory.name}: {len(steps)} steps, "
                    "nothing is executed"
                )
            if dry_run and lock:
                _say_dry_converge(ctx)
            after = run_lock.after_step if lock and not dry_run else None
            release = version()
            if lock:  # a dry-run reads the record too, to say which steps a run would skip
                converge = Converge(ctx, force=force, force_steps=force_steps, version=release)
            runner = Runner(
                graph, ctx, jobs=jobs, after_step=after, converge=converge, version=release,
                may_change=run_lock.may_change if lock and not dry_run else None,
                preflight=asked.state if asked is not None else None,
            )  # fmt: skip
            report = runner.run([s.id for s in steps])
            if asked is not None and not stop.requested.is_set():
                asked.check()  # a failed preflight is the run's error, whatever else happened
        finally:
            if converge is not None:
                converge.flush()  # what succeeded, while the lock is held
            run_lock.release_lease()  # while the run's kubeconfig is still there
            # a read still running in the background (one no step came to wait for, e.g. after
            # a failure) ends with the run, before its workdir goes
            stop.children.kill_all()
    echo("")
    if dry_run:
        echo(f"# dry-run: {len(report.results)} steps printed, nothing was executed")
    else:
        echo(report.summary())
    if report.interrupted:
        _report_interrupt(report)
        raise RunInterrupted(report, stop.exit_code)
    if not report.ok:
        raise RunFailed(report)
    return report


def _say_dry_converge(ctx: RunContext) -> None:
    """How a dry-run tells the steps a run would skip: the cluster's record and live state,
    read by read-only probes (printed as such), or why it cannot read them."""
    if Path(ctx.kubeconfig).is_file():
        echo(
            "# converge: the cluster's record and live state are read (read-only probes, shown "
            "with `# read-only probe:`); a step found unchanged is shown as skipped"
        )
    else:
        echo(
            f"# converge: no kubeconfig at {ctx.kubeconfig} yet (a run fetches it first), so "
            "the cluster's record cannot be read: every step is shown; a run skips the steps "
            "it finds unchanged"
        )


def _locked(lock: RunLock, skip: bool) -> Any:
    """The cluster's lock for a run that changes it; nothing for a dry-run or a read-only run."""
    return nullcontext() if skip else lock.held()


def version() -> str:
    """onecluster's own version (pyproject.toml), written to the record beside each step."""
    import tomllib

    from .inventory import REPO_ROOT

    try:
        return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
    except (OSError, KeyError, ValueError):
        return "unknown"


def _report_interrupt(report: Report) -> None:
    """What an interrupted run did, did not do, and the command that continues it."""
    done = [r.id for r in report.results if r.status in (OK, UNCHANGED)]
    stopped = [r.id for r in report.results if r.status == STOPPED]
    not_run = [r.id for r in report.results if r.status == NOT_RUN]
    echo(
        f"interrupted by {report.interrupted}: {len(done)} step(s) done, {len(stopped)} "
        f"stopped, {len(not_run)} not run"
    )
    if stopped:
        echo("stopped: " + ", ".join(stopped))
    if not_run:
        echo("not run: " + ", ".join(not_run))
    if not report.not_done:
        echo("every step had finished: there is nothing to continue")
        return
    # a re-run skips every step that succeeded (unchanged) and runs the rest
    echo(f"continue with: {resume_command()}")


def precheck(catalog: Catalog, ctx: RunContext, steps: Sequence[Component]) -> None:
    """Check the selected steps' values files and manifests; raise with every problem found.

    It runs before the first tool call, ``--dry-run`` included.
    """
    if catalog.prechecks is None:
        return
    problems = catalog.prechecks(ctx, steps)
    if problems:
        raise InputError(
            problems, "the selected steps' values files and manifests; nothing was run"
        )


def plan(
    catalog: Catalog,
    *,
    cluster: str | None = None,
    layers: Sequence[str] = (),
    targets: Sequence[str] = (),
    from_step: str | None = None,
    fmt: str = "table",
) -> str:
    """Render the plan of the selected steps."""
    inventory, _, steps = select(catalog, cluster, Selection(layers, targets, from_step=from_step))
    fetches = any(s.fetches_configs for s in steps)
    with run_context(inventory, dry_run=True, fetch_kubeconfig=fetches) as ctx:
        return render_plan(ctx, steps, fmt)


def diff(
    catalog: Catalog,
    *,
    cluster: str | None = None,
    layers: Sequence[str] = (),
    targets: Sequence[str] = (),
    live: bool = False,
    fmt: str = "table",
) -> tuple[str, bool]:
    """What a run of the selected steps would change, read-only; the rendering and whether any
    step would change (see :mod:`tasks.engine.diff`). The cluster is the user's kubeconfig's.

    It changes nothing: every command it runs reads, or renders locally (a Talos node's config,
    from the stored bundle, into the run's private work directory, removed at the end).
    """
    inventory, _, steps = select(catalog, cluster, Selection(layers, targets))
    if not Path(user_kubeconfig()).is_file():
        raise OneclusterError(
            f"cluster.diff compares with the running cluster, and there is no kubeconfig at "
            f"{user_kubeconfig()} (fix: `invoke talos.kubeconfig`, or point $KUBECONFIG at it)"
        )
    check_tools(sorted({"kubectl", "helm", "talosctl"} & {t for s in steps for t in s.tools()}))
    with run_context(
        inventory, dry_run=False, fetch_kubeconfig=False, open_store=catalog.open_store
    ) as ctx:
        precheck(catalog, ctx, steps)
        found = diff_steps(ctx, steps, live=live)
    return render_diff(found, fmt), has_changes(found)
