"""The runner: needs before dependants, independent steps overlap, bounded jobs, fail-fast, resume."""

from __future__ import annotations

import itertools
import signal
import time
from dataclasses import dataclass
from typing import ClassVar

import pytest

from tasks.engine.command import Command, Executor
from tasks.engine.components import Component
from tasks.engine.context import run_context
from tasks.engine.errors import OneclusterError
from tasks.engine.graph import Graph
from tasks.engine.inventory import load_inventory
from tasks.engine.output import register_secret
from tasks.engine.record import Converge
from tasks.engine.runner import (
    FAILED,
    NOT_RUN,
    OK,
    SKIPPED,
    STOPPED,
    UNCHANGED,
    RunFailed,
    Runner,
    resume_command,
)
from tasks.engine.signals import Stop


@dataclass(frozen=True, kw_only=True)
class FakeRelease(Component):
    """A step that runs one `helm upgrade <name>` through the real executor."""

    kind: ClassVar[str] = "helm"

    def commands(self, ctx):
        return [Command("helm", ("upgrade", "--install", self.name))]

    def tools(self):
        return {"helm"}


def release(cid: str, *needs: str) -> FakeRelease:
    layer, name = cid.split("/")
    return FakeRelease(layer=layer, name=name, needs=needs)


# a -> (b, c, d) -> e ; f independent of everything
GRAPH = [
    release("network/a"),
    release("network/b", "network/a"),
    release("network/c", "network/a"),
    release("network/d", "network/a"),
    release("network/e", "network/b", "network/c", "network/d"),
    release("storage/f"),
]


def run(ids=None, jobs=4, dry_run=False, graph=GRAPH):
    g = Graph.build(graph)
    with run_context(load_inventory(), dry_run=dry_run, fetch_kubeconfig=False) as ctx:
        return Runner(g, ctx, jobs=jobs).run(ids or list(g.order))


def spans(fake_tools):
    return {c["argv"][-1]: (c["start"], c["end"]) for c in fake_tools.calls("helm")}


def test_no_step_starts_before_its_needs_finished(fake_tools):
    fake_tools.set_sleep(0.2)
    report = run()
    assert report.ok
    s = spans(fake_tools)
    for comp in GRAPH:
        for need in comp.needs:
            assert s[need.split("/")[1]][1] <= s[comp.name][0], (
                f"{comp.id} started before {need} ended"
            )


def test_independent_steps_overlap(fake_tools):
    fake_tools.set_sleep(0.3)
    run(jobs=4)
    s = spans(fake_tools)
    # b, c and d only need a: they must run at the same time, not one after another
    latest_start = max(s[n][0] for n in "bcd")
    earliest_end = min(s[n][1] for n in "bcd")
    assert latest_start < earliest_end
    # f needs nothing: it overlaps a
    assert s["f"][0] < s["a"][1]


def test_concurrency_is_bounded_by_jobs(fake_tools):
    fake_tools.set_sleep(0.2)
    run(jobs=2)
    s = spans(fake_tools)
    events = sorted([(t0, 1) for t0, _ in s.values()] + [(t1, -1) for _, t1 in s.values()])
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    assert peak == 2


def test_jobs_one_runs_in_a_valid_serial_order(fake_tools):
    run(jobs=1)
    s = spans(fake_tools)
    ordered = sorted(s, key=lambda n: s[n][0])
    for a, b in itertools.pairwise(ordered):
        assert s[a][1] <= s[b][0]


def test_fail_fast_starts_nothing_new_and_lets_running_steps_finish(fake_tools):
    fake_tools.set_sleep(0.2)
    fake_tools.rule(
        "helm", "upgrade --install b", exit=1, stderr="Error: chart b is broken", sleep=0.05
    )
    report = run(jobs=4)
    status = {r.id: r.status for r in report.results}
    assert status["network/a"] == OK
    assert status["network/b"] == FAILED
    # c and d were already running when b failed: they finish
    assert status["network/c"] == OK and status["network/d"] == OK
    assert status["network/e"] == SKIPPED
    called = {c["argv"][-1] for c in fake_tools.calls("helm")}
    assert "e" not in called
    failure = report.failed[0].error
    assert "helm exited 1: helm upgrade --install b" in failure
    assert "chart b is broken" in failure


def test_run_failed_reports_failed_skipped_and_how_to_resume(fake_tools):
    fake_tools.rule("helm", "upgrade --install a", exit=2, stderr="boom")
    report = run(jobs=1, graph=GRAPH[:5])
    err = RunFailed(report)
    text = str(err)
    assert "step network/a failed" in text
    assert "skipped: network/b, network/c, network/d, network/e" in text
    # resuming is running the same command again: what succeeded is skipped as unchanged
    assert f"resume with: {resume_command()}" in text and "--from" not in text


def test_resume_from_a_step_runs_it_and_what_follows(fake_tools):
    fake_tools.rule("helm", "upgrade --install c", exit=1, times=1)
    first = run(jobs=1, graph=GRAPH[:5])
    assert not first.ok
    g = Graph.build(GRAPH[:5])
    ids = g.select(from_step="network/c")
    assert ids == ["network/c", "network/d", "network/e"]
    second = run(ids=ids, jobs=2, graph=GRAPH[:5])
    assert second.ok
    second_calls = [c["argv"][-1] for c in fake_tools.calls("helm")][-3:]
    assert sorted(second_calls) == ["c", "d", "e"]


def test_failure_output_is_redacted(fake_tools, capsys):
    token = "tok-" + "9f8e7d6c5b4a"
    register_secret(token)
    fake_tools.rule("helm", "upgrade --install a", exit=1, stderr=f"auth failed for {token}")
    report = run(jobs=1, graph=GRAPH[:1])
    text = str(RunFailed(report))
    assert token not in text and "***" in text
    out = capsys.readouterr()
    assert token not in out.out + out.err


def test_dry_run_prints_commands_in_plan_order_and_runs_none(fake_tools, capsys):
    report = run(dry_run=True)
    assert report.ok
    assert fake_tools.calls() == []
    lines = [line for line in capsys.readouterr().out.splitlines() if "$ helm" in line]
    assert [line.split()[-1] for line in lines] == ["a", "b", "c", "d", "e", "f"]


def test_an_internal_error_in_a_step_fails_the_run_cleanly(fake_tools):
    @dataclass(frozen=True, kw_only=True)
    class Broken(Component):
        def run(self, ctx):
            raise KeyError("oops")

    report = run(graph=[Broken(layer="apps", name="x")], jobs=1)
    assert report.failed[0].error == "KeyError: 'oops'"


def test_jobs_must_be_positive():
    g = Graph.build(GRAPH)
    with (
        run_context(load_inventory(), dry_run=True, fetch_kubeconfig=False) as ctx,
        pytest.raises(OneclusterError, match="--jobs must be at least 1"),
    ):
        Runner(g, ctx, jobs=0)


# interrupts (the real signals on a real process are in tests/test_interrupts.py) -------------


def run_with(graph, stop: Stop, *, jobs=4, after_step=None):
    g = Graph.build(graph)
    with run_context(
        load_inventory(), dry_run=False, fetch_kubeconfig=False, executor=Executor(stop=stop)
    ) as ctx:
        return Runner(g, ctx, jobs=jobs, after_step=after_step).run(list(g.order))


@dataclass(frozen=True, kw_only=True)
class Interrupting(Component):
    """A step that receives the first SIGINT while it runs (as the handler would record it)."""

    stop: Stop

    def run(self, ctx):
        self.stop.request(signal.SIGINT)


def test_a_requested_stop_starts_nothing_new_and_lets_running_steps_finish(fake_tools):
    stop = Stop(grace=60)
    graph = [Interrupting(layer="network", name="a", stop=stop), *GRAPH[1:]]
    report = run_with(graph, stop)
    status = {r.id: r.status for r in report.results}
    # a requested the stop; f was already running beside it and finished
    assert status == {
        "network/a": OK, "network/b": NOT_RUN, "network/c": NOT_RUN, "network/d": NOT_RUN,
        "network/e": NOT_RUN, "storage/f": OK,
    }  # fmt: skip
    assert report.interrupted == "SIGINT" and not report.ok
    assert report.not_done[0].id == "network/b"
    assert {c["argv"][-1] for c in fake_tools.calls("helm")} == {"f"}


def test_a_stop_before_the_first_step_runs_nothing(fake_tools):
    stop = Stop()
    stop.request(signal.SIGTERM)
    report = run_with(GRAPH, stop)
    assert {r.status for r in report.results} == {NOT_RUN}
    assert report.interrupted == "SIGTERM" and stop.exit_code == 143
    assert fake_tools.calls() == []


def test_grace_over_ends_running_tools_and_reports_them_stopped(fake_tools):
    fake_tools.rule("helm", "upgrade --install f", sleep=600)
    stop = Stop(grace=0)
    graph = [Interrupting(layer="network", name="a", stop=stop), GRAPH[5]]
    report = run_with(graph, stop)
    assert {r.id: r.status for r in report.results} == {"network/a": OK, "storage/f": STOPPED}
    assert fake_tools.calls("helm") == []  # ended, so it never recorded its end
    assert stop.children.pgids() == []


def test_an_after_step_error_stops_the_run_like_a_failure(fake_tools):
    def lost(result):
        if result.id == "network/a":
            raise OneclusterError("the cluster's Lease was taken by another run")

    report = run_with(GRAPH[:5], Stop(), jobs=1, after_step=lost)
    assert report.aborted == "the cluster's Lease was taken by another run"
    assert [r.status for r in report.results] == [OK, SKIPPED, SKIPPED, SKIPPED, SKIPPED]
    text = str(RunFailed(report))
    assert text.startswith("the cluster's Lease was taken by another run")
    assert f"resume with: {resume_command()}" in text and "--from" not in text


# Converging: checks see through gates and unchanged steps; an apply waits for all it needs ------


@dataclass(frozen=True, kw_only=True)
class SlowGate(Component):
    """A gate (reads only) that takes a while: one slow `kubectl wait <name>`."""

    kind: ClassVar[str] = "gate"
    reads_only: ClassVar[bool] = True

    def commands(self, ctx):
        return [Command("kubectl", ("wait", self.name))]

    def tools(self):
        return {"kubectl"}


class Recorded(Converge):
    """A run's converge decisions from a fixed set of unchanged steps (no cluster to read)."""

    def __init__(self, ctx, unchanged_ids):
        super().__init__(ctx)
        self.ids = set(unchanged_ids)
        self.checked_at: dict[str, float] = {}

    def fingerprint(self, step):
        return "sha256:" + step.id

    def unchanged(self, step, fingerprint):
        self.checked_at.setdefault(step.id, time.time())
        return step.id in self.ids


def test_an_unchanged_chain_checks_at_once_and_an_apply_waits_for_every_gate_it_needs(fake_tools):
    # u1 -> g1 -> u2 -> g2 -> x: u1 and u2 unchanged, x changed (it applies)
    fake_tools.rule("kubectl", "wait", sleep=0.6)
    graph = Graph.build([
        release("network/u1"),
        SlowGate(layer="network", name="g1", needs=("network/u1",)),
        release("network/u2", "network/g1"),
        SlowGate(layer="network", name="g2", needs=("network/u2",)),
        release("network/x", "network/g2"),
    ])  # fmt: skip
    with run_context(load_inventory(), dry_run=False, fetch_kubeconfig=False) as ctx:
        converge = Recorded(ctx, {"network/u1", "network/u2"})
        report = Runner(graph, ctx, jobs=4, converge=converge).run(list(graph.order))
    status = {r.id: r.status for r in report.results}
    assert status == {"network/u1": UNCHANGED, "network/g1": OK, "network/u2": UNCHANGED,
                      "network/g2": OK, "network/x": OK}  # fmt: skip
    waits = {c["argv"][-1]: (c["start"], c["end"]) for c in fake_tools.calls("kubectl")}
    (apply,) = [c for c in fake_tools.calls("helm")]
    assert apply["argv"][-1] == "x"
    # u2 was checked while g1 still waited, and g2 ran beside g1: not gate by gate
    assert converge.checked_at["network/u2"] < waits["g1"][1]
    assert waits["g2"][0] < waits["g1"][1]
    # x applied only once both gates before it had passed
    assert apply["start"] > max(waits["g1"][1], waits["g2"][1])


def test_a_step_that_must_apply_waits_for_the_lock_while_reads_go_on(fake_tools):
    fake_tools.rule("kubectl", "wait", sleep=0.3)
    graph = Graph.build([SlowGate(layer="network", name="g"), release("network/x")])
    answered = []

    def may_change():  # the lock's answer comes after 0.5 s
        answered.append(time.time())
        return answered[-1] - answered[0] > 0.5

    with run_context(load_inventory(), dry_run=False, fetch_kubeconfig=False) as ctx:
        report = Runner(graph, ctx, jobs=2, may_change=may_change).run(list(graph.order))
    assert report.ok
    (gate,) = fake_tools.calls("kubectl")
    (apply,) = fake_tools.calls("helm")
    assert gate["start"] < answered[0] + 0.5  # the gate read at once
    assert apply["start"] >= answered[0] + 0.5  # the apply waited for the lock


@dataclass(frozen=True, kw_only=True)
class Early(FakeRelease):
    """A step that may start before the run's preflight answered (as talos/genconfig)."""

    before_preflight: bool = True


def test_only_steps_marked_before_preflight_start_before_its_answer(fake_tools):
    graph = Graph.build(
        [
            Early(layer="talos", name="early"),
            SlowGate(layer="network", name="g"),
            release("network/x"),
            release("network/after", "talos/early"),
        ]
    )
    asked = []

    def preflight():  # the answer comes after 1.5 s
        asked.append(time.time())
        return True if asked[-1] - asked[0] > 1.5 else None

    with run_context(load_inventory(), dry_run=False, fetch_kubeconfig=False) as ctx:
        report = Runner(graph, ctx, jobs=4, preflight=preflight).run(list(graph.order))
    assert report.ok
    started = {c["argv"][-1]: c["start"] for c in fake_tools.calls()}
    assert started["early"] < asked[0] + 1.5  # at once
    # everything else, a gate (a read) included, only once it answered
    assert min(started["g"], started["x"], started["after"]) >= asked[0] + 1.5


def test_a_failed_preflight_starts_nothing_more(fake_tools):
    fake_tools.rule("helm", "early", sleep=0.6)
    graph = Graph.build(
        [
            Early(layer="talos", name="early"),
            release("network/x"),
            release("network/y", "talos/early"),
        ]
    )
    asked = []

    def preflight():  # fails after 0.3 s, while the early step runs
        asked.append(time.time())
        return False if asked[-1] - asked[0] > 0.3 else None

    with run_context(load_inventory(), dry_run=False, fetch_kubeconfig=False) as ctx:
        report = Runner(graph, ctx, jobs=4, preflight=preflight).run(list(graph.order))
    assert not report.ok and report.aborted == "preflight failed"
    assert [c["argv"][-1] for c in fake_tools.calls()] == ["early"]  # it finished; no other began
    status = {r.id: r.status for r in report.results}
    assert status == {"talos/early": OK, "network/x": SKIPPED, "network/y": SKIPPED}
