"""Run selected steps concurrently, each as soon as its own needs succeeded.

Bounded by ``jobs``. A run that converges (:mod:`tasks.engine.record`) checks a step early: its
converge check (fingerprint against the record, confirmed by the live state; reads only) starts
once every step it depends on that may change something has finished, without waiting for gates
and unchanged steps, which only read. A step found unchanged is done; a gate of it runs as soon
as its needs are done. A step that must change something (an apply, a step without a fingerprint)
starts only when everything it depends on, directly or through its needs, has succeeded, gates
passed included. So a chain of unchanged steps and their gates checks at once instead of gate by
gate, and nothing is applied before what it depends on is in place. A gate whose steps were all
unchanged (or only read) asks the run's one read of every gate's objects first
(:meth:`Component.settled`) and waits on the cluster only for what it does not show holding.
On the first failure nothing new starts, running steps finish, and the report
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
from pathlib import Path

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


def _why_unchanged(fingerprint: str | None) -> str:
    if fingerprint is None:
        return "its read-compare finds nothing to do"
    return "fingerprint recorded, live state confirms"


def _settled(step: Component, ctx: RunContext) -> bool:
    """``step.settled``; a read that cannot tell (or a bug in it) says no: the step runs."""
    try:
        return step.settled(ctx)
    except Exception:
        return False


class Runner:
    """Executes the steps of a graph with bounded concurrency and fail-fast.

    ``after_step`` is called in the runner's thread after each step that succeeded; an error it
    raises stops the run like a failed step (a run whose cluster Lease another run took stops so).
    ``may_change`` says whether a step that may change the cluster can start now (reads, gates
    and early converge checks, go on regardless). ``preflight`` is the run's preflight answer:
    until it passed only ``before_preflight`` steps start; once it failed nothing more does.
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
        may_change: Callable[[], bool] | None = None,
        preflight: Callable[[], bool | None] | None = None,
    ) -> None:
        if jobs < 1:
            raise FlagError(f"--jobs must be at least 1, got {jobs}")
        self.graph = graph
        self.ctx = ctx
        self.jobs = 1 if ctx.dry_run else jobs
        self.clock = clock
        self.after_step = after_step
        # False holds back every step that may change the cluster (the run's lock is being
        # taken); an error it raises stops the run like after_step's
        self.may_change = may_change
        # the run's preflight answer (True passed, None not yet, False failed: the run stops);
        # until it passed only ``before_preflight`` steps start
        self.preflight = preflight
        # a dry-run reads the record too (read-only probes) to say which steps it would skip,
        # once the cluster's kubeconfig exists; it checks in plan order, never early
        self.converge = converge
        self.early = converge is not None and not ctx.dry_run
        self.version = version
        self.stop: Stop = ctx.executor.stop

    def run(self, ids: Sequence[str]) -> Report:
        steps = self.graph.steps(ids)
        selected = {s.id for s in steps}
        needs = {s.id: {n for n in s.needs if n in selected} for s in steps}
        reads_only = {s.id for s in steps if s.reads_only}
        waiting = set(needs)  # not started (an early check may have been made)
        checked: set[str] = set()  # early check made (or under way)
        checking: set[str] = set()  # early check under way
        priority = _priorities(steps)
        order = {s.id: i for i, s in enumerate(steps)}
        results: dict[str, StepResult] = {}
        running: dict[Future[StepResult | None], tuple[str, bool]] = {}
        failed = False
        aborted = ""
        stop = self.stop
        grace_ends: float | None = None
        gave_up_at: float | None = None
        started = self.clock()
        converge = self.converge
        if converge is not None:
            converge.select(steps)

        def succeeded(i: str) -> bool:
            return i in results and results[i].status in SUCCEEDED

        settled_memo: dict[str, bool] = {}
        clear_memo: dict[str, bool] = {}

        def settled(i: str) -> bool:
            """Succeeded, and so did everything it depends on."""
            if i not in settled_memo:
                settled_memo[i] = succeeded(i) and all(settled(n) for n in needs[i])
            return settled_memo[i]

        def untouched(i: str) -> bool:
            """Nothing was applied through ``i`` in this run: it was unchanged, or it only read
            and so was everything it depends on."""
            found = results.get(i)
            if found is None or found.status not in SUCCEEDED:
                return False
            return found.status == UNCHANGED or (
                i in reads_only and all(untouched(n) for n in needs[i])
            )

        def clear(i: str) -> bool:
            """Nothing more will change through ``i``: it succeeded, or it only reads (a gate)
            and nothing it depends on will change anything either."""
            if i not in clear_memo:
                clear_memo[i] = succeeded(i) or (
                    i in reads_only and i not in results and all(clear(n) for n in needs[i])
                )
            return clear_memo[i]

        def ready() -> list[tuple[str, bool]]:
            """(step, early check?) that may start now, in the order they should."""
            settled_memo.clear()
            clear_memo.clear()
            found: list[tuple[str, bool]] = []
            for i in waiting - checking:
                if i in reads_only:
                    if all(succeeded(n) for n in needs[i]):
                        found.append((i, False))
                elif self.early and i not in checked and all(clear(n) for n in needs[i]):
                    # checked first, even once its needs are done: a step found unchanged
                    # never asks for the cluster's Lease
                    found.append((i, True))
                elif all(settled(n) for n in needs[i]):
                    found.append((i, False))
            if self.ctx.dry_run:  # printed commands read in plan order
                return sorted(found, key=lambda f: order[f[0]])
            return sorted(found, key=lambda f: (-priority[f[0]], order[f[0]]))

        pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="step")
        try:
            while waiting or running:
                held_back = False
                answered = True if self.preflight is None else self.preflight()
                if answered is False and not failed:
                    aborted, failed = aborted or "preflight failed", True
                if not failed and not stop.requested.is_set():
                    for cid, early in ready():
                        if len(running) >= self.jobs:
                            break
                        if answered is None and not self.graph[cid].before_preflight:
                            held_back = True  # until the preflight answers
                            continue
                        changes = cid not in reads_only and self.graph[cid].changes_cluster
                        if not early and changes:
                            allowed, why = self._may_change()
                            if why:
                                aborted = aborted or why
                                failed = True
                                break
                            if not allowed:
                                held_back = True
                                continue
                        if early:
                            checked.add(cid)
                            checking.add(cid)
                            fut = pool.submit(self._check_early, self.graph[cid])
                        else:
                            waiting.discard(cid)
                            # a gate of steps left unchanged first asks the run's one read
                            by_read = (
                                self.early and cid in reads_only and bool(needs[cid])
                                and all(untouched(n) for n in needs[cid])
                            )  # fmt: skip
                            fut = pool.submit(self._run_one, self.graph[cid], by_read)
                        running[fut] = (cid, early)
                if not running:
                    if held_back and not failed:  # waiting for the lock's or preflight's answer
                        time.sleep(TICK_SECONDS)
                        continue
                    break
                done, _ = wait(running, timeout=TICK_SECONDS, return_when=FIRST_COMPLETED)
                for fut in done:
                    cid, early = running.pop(fut)
                    checking.discard(cid)
                    result = fut.result()
                    if result is None:  # an early check that decided nothing: it runs later
                        continue
                    if early:
                        waiting.discard(cid)
                    results[cid] = result
                    if result.status in SUCCEEDED:
                        if result.fingerprint and converge is not None:
                            converge.succeeded(cid, result.fingerprint, self.version)
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
                        for fut, (cid, _) in running.items():  # stuck outside any tool: leave it
                            results[cid] = StepResult(cid, STOPPED, error="did not return")
                            waiting.discard(cid)
                            fut.cancel()
                        running.clear()
        finally:
            pool.shutdown(wait=gave_up_at is None, cancel_futures=True)
        left = NOT_RUN if stop.requested.is_set() else SKIPPED
        for cid in waiting:
            if cid not in results:
                results[cid] = StepResult(cid, left)
        report = Report([results[s.id] for s in steps], self.clock() - started)
        if stop.requested.is_set():
            report.interrupted = stop.signal_name
        report.aborted = aborted
        return report

    def _may_change(self) -> tuple[bool, str]:
        """(may a changing step start now, why the run must stop or "")."""
        if self.may_change is None:
            return True, ""
        try:
            return self.may_change(), ""
        except OneclusterError as exc:
            echo(f"==> stopping: {exc}", err=True)
            return False, redact(str(exc))

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

    def _check_early(self, step: Component) -> StepResult | None:
        """A step's converge check before its needs are done: ``unchanged``, or None (it runs
        once they are, and is checked again then). Reads only; an error decides nothing."""
        converge = self.converge
        assert converge is not None
        t0 = self.clock()
        try:
            fingerprint = converge.fingerprint(step)
            if not converge.unchanged(step, fingerprint):
                return None
        except Exception:  # checked again, and reported, when it runs
            return None
        echo(f"==> unchanged {step.id} ({_why_unchanged(fingerprint)})")
        return StepResult(step.id, UNCHANGED, self.clock() - t0)

    def _run_one(self, step: Component, by_read: bool = False) -> StepResult:
        dry = self.ctx.dry_run
        t0 = self.clock()
        if by_read and _settled(step, self.ctx):
            echo(f"==> ok     {step.id} (its steps unchanged; the run's one read shows it holds)")
            return StepResult(step.id, OK, self.clock() - t0)
        echo(f"# {step.id} ({step.kind})" if dry else f"==> start  {step.id} ({step.kind})")
        fingerprint = None
        try:
            if self.converge is not None and (not dry or Path(self.ctx.kubeconfig).is_file()):
                fingerprint = self.converge.fingerprint(step)
                if self.converge.unchanged(step, fingerprint):
                    took = self.clock() - t0
                    if dry:
                        echo(f"# {step.id}: unchanged ({_why_unchanged(fingerprint)}): a run "
                             "skips it")  # fmt: skip
                    else:
                        echo(f"==> unchanged {step.id} ({_why_unchanged(fingerprint)})")
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
        # a dry-run applied nothing: nothing of it is recorded
        return StepResult(step.id, OK, took, fingerprint=None if dry else fingerprint)
