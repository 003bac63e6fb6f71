"""Run selected steps concurrently, each as soon as its own needs succeeded.

Bounded by ``jobs``. On the first failure nothing new starts, running steps finish, and the report
names the failed step (with its command and redacted stderr) and every step skipped because of it.
A dry-run goes one step at a time in graph order, so the printed commands read in order.
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
from .output import echo, redact, table

OK, FAILED, SKIPPED = "ok", "failed", "skipped"


@dataclass
class StepResult:
    """How one step ended."""

    id: str
    status: str
    duration: float = 0.0
    error: str = ""


@dataclass
class Report:
    """The outcome of one run."""

    results: list[StepResult] = field(default_factory=list)
    wall: float = 0.0

    @property
    def ok(self) -> bool:
        return all(r.status == OK for r in self.results)

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
        lines = []
        for r in report.failed:
            lines.append(f"step {r.id} failed:\n{r.error}")
        if report.skipped:
            lines.append("skipped: " + ", ".join(r.id for r in report.skipped))
        if report.failed:
            lines.append(f"resume with: --from {report.failed[0].id}")
        super().__init__(redact("\n".join(lines)))


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
    """Executes the steps of a graph with bounded concurrency and fail-fast."""

    def __init__(
        self,
        graph: Graph,
        ctx: RunContext,
        *,
        jobs: int = 4,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if jobs < 1:
            raise FlagError(f"--jobs must be at least 1, got {jobs}")
        self.graph = graph
        self.ctx = ctx
        self.jobs = 1 if ctx.dry_run else jobs
        self.clock = clock

    def run(self, ids: Sequence[str]) -> Report:
        steps = self.graph.steps(ids)
        selected = {s.id for s in steps}
        pending = {s.id: {n for n in s.needs if n in selected} for s in steps}
        priority = _priorities(steps)
        order = {s.id: i for i, s in enumerate(steps)}
        results: dict[str, StepResult] = {}
        running: dict[Future[StepResult], str] = {}
        failed = False
        started = self.clock()

        def ready() -> list[str]:
            found = [i for i, deps in pending.items() if not deps]
            if self.ctx.dry_run:  # printed commands read in plan order
                return sorted(found, key=order.__getitem__)
            return sorted(found, key=lambda i: (-priority[i], order[i]))

        with ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="step") as pool:
            while pending or running:
                if not failed:
                    for cid in ready():
                        if len(running) >= self.jobs:
                            break
                        del pending[cid]
                        running[pool.submit(self._run_one, self.graph[cid])] = cid
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    cid = running.pop(fut)
                    result = fut.result()
                    results[cid] = result
                    if result.status == OK:
                        for deps in pending.values():
                            deps.discard(cid)
                    else:
                        failed = True
        for cid in pending:
            results[cid] = StepResult(cid, SKIPPED)
        report = Report([results[s.id] for s in steps], self.clock() - started)
        return report

    def _run_one(self, step: Component) -> StepResult:
        dry = self.ctx.dry_run
        echo(f"# {step.id} ({step.kind})" if dry else f"==> start  {step.id} ({step.kind})")
        t0 = self.clock()
        try:
            step.run(self.ctx)
        except OneclusterError as exc:
            took = self.clock() - t0
            echo(f"==> FAILED {step.id} after {took:.1f}s", err=True)
            return StepResult(step.id, FAILED, took, redact(str(exc)))
        except Exception as exc:  # a bug in a step must still stop the run cleanly
            took = self.clock() - t0
            echo(f"==> FAILED {step.id} after {took:.1f}s (internal error)", err=True)
            return StepResult(step.id, FAILED, took, redact(f"{type(exc).__name__}: {exc}"))
        took = self.clock() - t0
        if not dry:
            echo(f"==> done   {step.id} in {took:.1f}s")
        return StepResult(step.id, OK, took)
