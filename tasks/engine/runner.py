"""Run selected steps concurrently, each as soon as its own needs succeeded.

Bounded by ``jobs``. On the first failure nothing new starts, running steps finish, and the report
names the failed step (with its command and redacted stderr) and every step skipped because of it.
A dry-run goes one step at a time in graph order, so the printed commands read in order.

Interrupts (see :mod:`tasks.engine.signals`): once the run's stop is requested nothing new
starts and the running steps get the grace period; when it expires, or on a second signal, their
tools are ended. Steps that never started are reported "not run", steps whose tools were ended
"stopped", and the report says where to continue.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from .components import Component
from .context import RunContext
from .errors import FlagError, OneclusterError
from .graph import Graph
from .invocation import command_line
from .output import echo, redact, table
from .record import Converge
from .signals import Interrupted, Stop

OK, FAILED, SKIPPED = "ok", "failed", "skipped"
# a step whose fingerprint matches the cluster's record and whose live state confirms it (a
# step that found nothing to do by its own read-compare says so too): it succeeded by reading
UNCHANGED = "unchanged"
SUCCEEDED = (OK, UNCHANGED)
# an interrupted run: steps whose tools were ended, and steps it never started
STOPPED, NOT_RUN = "stopped", "not run"
# how often the runner's loop looks at the stop state while steps run
TICK_SECONDS = 0.1
# after the tools were ended, how long steps get to return before the run reports without them
STEP_EXIT_SECONDS = 10.0


@dataclass
class StepResult:
    """How one step ended."""

    id: str
    status: str
    duration: float = 0.0
    error: str = ""
    # the fingerprint of what the step applied (written to the cluster's record on success)
    fingerprint: str | None = None


@dataclass
class Report:
    """The outcome of one run."""

    results: list[StepResult] = field(default_factory=list)
    wall: float = 0.0
    # the signal that interrupted the run ("SIGINT", "SIGTERM"), if one did
    interrupted: str = ""
    # why the run stopped starting steps other than a failed step (e.g. the cluster's lock lost)
    aborted: str = ""

    @property
    def ok(self) -> bool:
        return (
            not self.interrupted
            and not self.aborted
            and all(r.status in SUCCEEDED for r in self.results)
        )

    @property
    def not_done(self) -> list[StepResult]:
        """Steps that did not finish, in graph order: what a re-run runs (with what changed)."""
        return [r for r in self.results if r.status not in SUCCEEDED]

    @property
    def unchanged(self) -> list[StepResult]:
        return [r for r in self.results if r.status == UNCHANGED]

    @property
    def failed(self) -> list[StepResult]:
        return [r for r in self.results if r.status == FAILED]

    @property
    def skipped(self) -> list[StepResult]:
        return [r for r in self.results if r.status == SKIPPED]

    def summary(self) -> str:
        rows = [(r.id, r.status, f"{r.duration:.1f}s") for r in self.results]
        return table(("step", "result", "duration"), rows)


class RunFailed(OneclusterError):
    """A run ended with failed steps; the message is the report's failure section."""

    def __init__(self, report: Report) -> None:
        self.report = report
        lines = [report.aborted] if report.aborted else []
        for r in report.failed:
            lines.append(f"step {r.id} failed:\n{r.error}")
        if report.skipped:
            lines.append("skipped: " + ", ".join(r.id for r in report.skipped))
        if report.not_done:
            lines.append(f"resume with: {resume_command()}")
        super().__init__(redact("\n".join(lines)))


def resume_command() -> str:
    """The command that resumes a run: the same command again (a re-run skips what succeeded)."""
    return command_line()


def _priorities(steps: Sequence[Component]) -> dict[str, int]:
    """Length of the longest chain of dependants below each step: longest chains start first."""
    ids = {s.id for s in steps}
    below: dict[str, int] = {s.id: 0 for s in steps}
    for s in reversed(steps):
        for n in s.needs:
            if n in ids:
                below[n] = max(below[n], below[s.id] + 1)
    return below


class Runner:
    """Executes the steps of a graph with bounded concurrency and fail-fast.

    ``after_step`` is called in the runner's thread after each step that succeeded; an error it
    raises stops the run like a failed step (a run whose cluster Lease another run took stops so).
    The run's stop state is the executor's (``ctx.executor.stop``).
    """

    def __init__(
        self,
        graph: Graph,
        ctx: RunContext,
        *,
        jobs: int = 4,
        clock: Callable[[], float] = time.monotonic,
        after_step: Callable[[StepResult], None] | None = None,
        converge: Converge | None = None,
        version: str = "",
    ) -> None:
        if jobs < 1:
            raise FlagError(f"--jobs must be at least 1, got {jobs}")
        self.graph = graph
        self.ctx = ctx
        self.jobs = 1 if ctx.dry_run else jobs
        self.clock = clock
        self.after_step = after_step
        self.converge = None if ctx.dry_run else converge
        self.version = version
        self.stop: Stop = ctx.executor.stop

    def run(self, ids: Sequence[str]) -> Report:
        steps = self.graph.steps(ids)
        selected = {s.id for s in steps}
        pending = {s.id: {n for n in s.needs if n in selected} for s in steps}
        priority = _priorities(steps)
        order = {s.id: i for i, s in enumerate(steps)}
        results: dict[str, StepResult] = {}
        running: dict[Future[StepResult], str] = {}
        failed = False
        aborted = ""
        stop = self.stop
        grace_ends: float | None = None
        gave_up_at: float | None = None
        started = self.clock()

        def ready() -> list[str]:
            found = [i for i, deps in pending.items() if not deps]
            if self.ctx.dry_run:  # printed commands read in plan order
                return sorted(found, key=order.__getitem__)
            return sorted(found, key=lambda i: (-priority[i], order[i]))

        pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="step")
        try:
            while pending or running:
                if not failed and not stop.requested.is_set():
                    for cid in ready():
                        if len(running) >= self.jobs:
                            break
                        del pending[cid]
                        running[pool.submit(self._run_one, self.graph[cid])] = cid
                if not running:
                    break
                done, _ = wait(running, timeout=TICK_SECONDS, return_when=FIRST_COMPLETED)
                for fut in done:
                    cid = running.pop(fut)
                    result = fut.result()
                    results[cid] = result
                    if result.status in SUCCEEDED:
                        for deps in pending.values():
                            deps.discard(cid)
                        if result.fingerprint and self.converge is not None:
                            self.converge.succeeded(cid, result.fingerprint, self.version)
                        aborted = aborted or self._after(result)
                        failed = failed or bool(aborted)
                    else:
                        failed = True
                if stop.requested.is_set() and running:
                    now = self.clock()
                    if grace_ends is None:
                        grace_ends = now + stop.grace
                        echo(
                            f"==> interrupted ({stop.signal_name}): starting nothing new; "
                            f"{len(running)} running step(s) get {stop.grace:g}s to finish "
                            "(signal again to stop them now)",
                            err=True,
                        )
                    if gave_up_at is None and (stop.killing.is_set() or now >= grace_ends):
                        why = "second signal" if stop.killing.is_set() else "grace period over"
                        echo(f"==> {why}: stopping {len(running)} running step(s)", err=True)
                        stop.kill()
                        gave_up_at = self.clock()
                    if gave_up_at is not None and self.clock() - gave_up_at > STEP_EXIT_SECONDS:
                        for fut, cid in running.items():  # stuck outside any tool: leave it
                            results[cid] = StepResult(cid, STOPPED, error="did not return")
                            fut.cancel()
                        running.clear()
        finally:
            pool.shutdown(wait=gave_up_at is None, cancel_futures=True)
        left = NOT_RUN if stop.requested.is_set() else SKIPPED
        for cid in pending:
            results[cid] = StepResult(cid, left)
        report = Report([results[s.id] for s in steps], self.clock() - started)
        if stop.requested.is_set():
            report.interrupted = stop.signal_name
        report.aborted = aborted
        return report

    def _after(self, result: StepResult) -> str:
        """Run the after-step hook; its error (why the run must stop) or ""."""
        if self.after_step is None:
            return ""
        try:
            self.after_step(result)
        except OneclusterError as exc:
            echo(f"==> stopping: {exc}", err=True)
            return redact(str(exc))
        return ""

    def _run_one(self, step: Component) -> StepResult:
        dry = self.ctx.dry_run
        echo(f"# {step.id} ({step.kind})" if dry else f"==> start  {step.id} ({step.kind})")
        t0 = self.clock()
        fingerprint = None
        try:
            if self.converge is not None:
                fingerprint = step.fingerprint(self.ctx)
                if self.converge.unchanged(step, fingerprint):
                    took = self.clock() - t0
                    echo(f"==> unchanged {step.id} (fingerprint recorded, live state confirms)")
                    return StepResult(step.id, UNCHANGED, took)
            status = step.run(self.ctx)
        except Interrupted as exc:
            took = self.clock() - t0
            echo(f"==> STOPPED {step.id} after {took:.1f}s", err=True)
            return StepResult(step.id, STOPPED, took, redact(str(exc)))
        except OneclusterError as exc:
            took = self.clock() - t0
            echo(f"==> FAILED {step.id} after {took:.1f}s", err=True)
            return StepResult(step.id, FAILED, took, redact(str(exc)))
        except Exception as exc:  # a bug in a step must still stop the run cleanly
            took = self.clock() - t0
            echo(f"==> FAILED {step.id} after {took:.1f}s (internal error)", err=True)
            return StepResult(step.id, FAILED, took, redact(f"{type(exc).__name__}: {exc}"))
        took = self.clock() - t0
        if status == UNCHANGED:
            echo(f"==> unchanged {step.id} in {took:.1f}s")
            return StepResult(step.id, UNCHANGED, took)
        if not dry:
            echo(f"==> done   {step.id} in {took:.1f}s")
        return StepResult(step.id, OK, took, fingerprint=fingerprint)
