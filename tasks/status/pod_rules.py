"""The rules about what happened to Pods within the window, from Events and Pod history: repeated
evictions (and who evicted), probes failing after a database restart, crash loops, Pods stuck
Pending and why. Each a pure function of the facts.

Events are kept by the API server for ``--event-ttl`` only (1h by default): these findings reach
back that far at most, whatever ``--since`` says; Pod history (restarts) as far as it goes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta

from . import objects
from .assess import pod_workload
from .declared import Ref
from .findings import ERROR, WARNING, Facts, Finding, age, ref_name, units_of, when

EVICTIONS_WARNING = 2  # evicted this often within the window: repeatedly
EVICTIONS_ERROR = 3  # a storm
PROBE_WINDOW = timedelta(minutes=10)  # probes failing this soon after a database restart
PENDING_GRACE = timedelta(minutes=5)  # a Pod Pending longer than this is stuck
RESTARTS_WARNING = 3
DEFAULT_SCHEDULER = "default-scheduler"
# the core/v1 reasons of an eviction: the kubelet's under node pressure ("Evicted"), the taint
# eviction controller's ("TaintManagerEviction"), the scheduler's preemption ("Preempted"); the
# descheduler's events carry action "Descheduled" and its strategy as the reason
# (kubernetes-sigs/descheduler pkg/descheduler/evictions/evictions.go, v0.36.0)
EVICTION_REASONS = ("Evicted", "TaintManagerEviction", "Preempted")
DESCHEDULED = "Descheduled"
_FROM_NODE = re.compile(r"from (\S+) node")


def _is_eviction(e: objects.Event) -> bool:
    if e.kind != "Pod" or e.reason == "EvictionFailed":
        return False
    return e.action == DESCHEDULED or e.reason in EVICTION_REASONS


def _evicting_node(e: objects.Event, f: Facts) -> str:
    m = _FROM_NODE.search(e.message)
    if m:
        return m.group(1)
    if e.host:
        return e.host
    live = next(
        (p for p in f.snapshot.pods if p.namespace == e.namespace and p.name == e.name), None
    )
    return live.node if live and live.node else "?"


def evictions_by_workload(f: Facts) -> dict[tuple[Ref | None, str, str], list[objects.Event]]:
    """The window's eviction events, per (workload, namespace/pod when no workload, component)."""
    grouped: dict[tuple[Ref | None, str, str], list[objects.Event]] = {}
    for e in f.snapshot.events:
        if _is_eviction(e) and f.in_window(e.last):
            ref = pod_workload(f.snapshot, e.namespace, e.name)
            key = (ref, "" if ref else f"{e.namespace}/{e.name}", e.component or "unknown")
            grouped.setdefault(key, []).append(e)
    return grouped


def _unhealthy_after(f: Facts, refs: Iterable[Ref], start: datetime) -> list[objects.Event]:
    """The dependents' failed probes (kubelet ``Unhealthy``) from ``start`` to PROBE_WINDOW on."""
    wanted = set(refs)
    return [
        e for e in f.snapshot.events
        if e.kind == "Pod" and e.reason == "Unhealthy" and e.first and e.last
        and e.last >= start and e.first <= start + PROBE_WINDOW
        and pod_workload(f.snapshot, e.namespace, e.name) in wanted
    ]  # fmt: skip


def _suggest_eviction(component: str, node: str) -> str:
    if "descheduler" in component:
        return (
            "keep the descheduler off this workload (exclude its namespace or labels in the "
            "descheduler's policy, or a PodDisruptionBudget), or fix the policy's thresholds"
        )
    if component == "kubelet":
        return f"node {node} is under resource pressure: `kubectl describe node {node}`"
    return (
        f"find why {component} evicts it: `kubectl get events -A --field-selector reason=Evicted`"
    )


def evictions(f: Facts) -> list[Finding]:
    found = []
    for (ref, pod, component), events in evictions_by_workload(f).items():
        count = sum(e.count for e in events)
        if count < EVICTIONS_WARNING:
            continue
        times = sorted(e.last for e in events if e.last)
        nodes = sorted({_evicting_node(e, f) for e in events})
        unit = f.owner(ref)
        hit = [ref_name(ref, pod)]
        dependents: list[Ref] = []
        for s in f.states:
            if ref is not None and ref in [(d.kind, d.name, d.namespace) for d in s.databases]:
                dependents = [(w.kind, w.name, w.namespace) for w in s.workloads]
        failing = list(
            {id(e): e for t in times for e in _unhealthy_after(f, dependents, t)}.values()
        )
        hit_units = [unit]
        for e in failing:
            dep = pod_workload(f.snapshot, e.namespace, e.name)
            if dep and ref_name(dep, "") not in hit:
                hit.append(ref_name(dep, ""))
                hit_units.append(f.owner(dep))
        name = ref_name(ref, pod)
        where = ref[2] if ref else pod.split("/")[0]
        evidence = [
            f"{when(e.last)}: {e.namespace}/{e.name} evicted from {_evicting_node(e, f)} by "
            f"{e.component or 'unknown'} (reason {e.reason}{', ' + str(e.count) + ' times' if e.count > 1 else ''})"
            for e in sorted(events, key=lambda e: e.last or f.since)
        ]
        if failing:
            evidence.append(
                f"within {age(PROBE_WINDOW)} of an eviction, {sum(e.count for e in failing)} failed "
                "probes on " + ", ".join(sorted({f"{e.namespace}/{e.name}" for e in failing}))
            )
        found.append(Finding(
            ERROR if count >= EVICTIONS_ERROR else WARNING, "evictions", unit or where,
            f"{name} in {where} evicted {count} times since {when(f.since)} by {component} from "
            f"{', '.join(nodes)}; workloads hit: {', '.join(hit)}",
            tuple(evidence), _suggest_eviction(component, nodes[0]), units_of(*hit_units),
        ))  # fmt: skip
    return found


def _database_restarts(f: Facts, ref: Ref) -> list[tuple[datetime, str]]:
    """When a database's Pod went away within the window: evicted (an Event), or a container
    of it restarted (its ``lastState.terminated.finishedAt``)."""
    found: list[tuple[datetime, str]] = []
    for e in f.snapshot.events:
        mine = pod_workload(f.snapshot, e.namespace, e.name) == ref
        if _is_eviction(e) and e.last is not None and f.in_window(e.last) and mine:
            found.append((e.last, f"{e.namespace}/{e.name} evicted by {e.component or 'unknown'}"))
    for p in f.snapshot.pods:
        if not p.owner[0] or (p.owner[0].lower(), p.owner[1], p.namespace) != ref:
            continue
        for c in p.containers:
            if c.last_finished is not None and f.in_window(c.last_finished):
                what = f"{p.namespace}/{p.name} container {c.name} restarted"
                found.append((c.last_finished, f"{what} ({c.last_reason or 'ended'})"))
    return sorted(found)


def probes_after_database_restart(f: Facts) -> list[Finding]:
    found = []
    for s in f.states:
        dependents = [(w.kind, w.name, w.namespace) for w in s.workloads]
        for db in s.databases:
            ref = (db.kind, db.name, db.namespace)
            restarts = _database_restarts(f, ref)
            failing: dict[tuple[str, str], objects.Event] = {}
            for at, _ in restarts:
                for e in _unhealthy_after(f, dependents, at):
                    failing[(e.namespace, e.name + e.message)] = e
            if not failing:
                continue
            evidence = [f"{when(at)}: {what}" for at, what in restarts]
            evidence += [
                f"{when(e.first)} to {when(e.last)}: {e.namespace}/{e.name} {e.count} times: {e.message}"
                for e in sorted(failing.values(), key=lambda e: e.first or f.since)
            ]
            apps = sorted({ref_name(pod_workload(f.snapshot, e.namespace, e.name), e.name)
                           for e in failing.values()})  # fmt: skip
            found.append(Finding(
                ERROR, "probes-after-database-restart", s.unit.id,
                f"{s.unit.id}: {', '.join(apps)} failed probes after its database "
                f"{db.name} restarted ({len(restarts)} times since {when(f.since)})",
                tuple(evidence),
                "stop the database's restarts first (see the eviction finding); the app's probes "
                "should ride out a short database outage (a startupProbe, a longer failureThreshold)",
                (s.unit.id,),
            ))  # fmt: skip
    return found


def crash_loops(f: Facts) -> list[Finding]:
    found = []
    for p in f.snapshot.pods:
        ref = (p.owner[0].lower(), p.owner[1], p.namespace) if p.owner[0] else None
        unit = f.owner(ref)
        for c in p.containers:
            last = f"last ended {when(c.last_finished)} ({c.last_reason or '?'})"
            if c.waiting == "CrashLoopBackOff":
                found.append(Finding(
                    ERROR, "crash-loop", unit or p.namespace,
                    f"{p.namespace}/{p.name} container {c.name} is crash-looping "
                    f"({c.restarts} restarts)",
                    (f"{p.namespace}/{p.name} on {p.node or '?'}: {c.name} waiting "
                     f"CrashLoopBackOff, {c.restarts} restarts, {last}",),
                    f"`kubectl -n {p.namespace} logs {p.name} -c {c.name} --previous`",
                    units_of(unit),
                ))  # fmt: skip
            elif c.restarts >= RESTARTS_WARNING and f.in_window(c.last_finished):
                found.append(Finding(
                    WARNING, "restarts", unit or p.namespace,
                    f"{p.namespace}/{p.name} container {c.name} restarted {c.restarts} times",
                    (f"{p.namespace}/{p.name} on {p.node or '?'}: {c.name} {c.restarts} restarts, "
                     f"{last}",),
                    f"`kubectl -n {p.namespace} logs {p.name} -c {c.name} --previous`",
                    units_of(unit),
                ))  # fmt: skip
    return found


_INSUFFICIENT = re.compile(r"(\d+) Insufficient (\S+?)[,.]")


def pending_cause(f: Facts, p: objects.Pod) -> tuple[str, str]:
    """Why a Pod is Pending, as (cause, detail)."""
    if p.scheduler != DEFAULT_SCHEDULER:
        serving = [
            w for w in f.snapshot.workloads if w.kind == "Deployment" and w.name == p.scheduler
        ]
        if not any(w.ready > 0 for w in serving):
            seen = (f"Deployment {serving[0].namespace}/{p.scheduler} has {serving[0].ready}/"
                    f"{serving[0].desired} ready" if serving else f"no Deployment {p.scheduler}")  # fmt: skip
            return "no scheduler serving", f"spec.schedulerName {p.scheduler}: {seen}"
    claims = {(c.namespace, c.name): c for c in f.snapshot.claims}
    unbound = [n for n in p.claims if claims.get((p.namespace, n)) is None
               or claims[(p.namespace, n)].phase != "Bound"]  # fmt: skip
    message = p.scheduled.get("message", "")
    if not message:
        failed = [e for e in f.snapshot.events if e.kind == "Pod" and e.namespace == p.namespace
                  and e.name == p.name and e.reason == "FailedScheduling"]  # fmt: skip
        message = max(failed, key=lambda e: e.last or f.since).message if failed else ""
    if unbound or "unbound" in message:
        names = ", ".join(unbound) or "a claim"
        return "unbound PVC", f"{names} not Bound" + (f"; scheduler: {message}" if message else "")
    short = _INSUFFICIENT.findall(message + ",")
    if short:
        return "insufficient resources", ", ".join(f"{n} nodes short of {r}" for n, r in short)
    if p.scheduled.get("status") == "True":
        waiting = sorted({c.waiting for c in p.containers if c.waiting}) or ["starting"]
        return "scheduled, not started", f"on {p.node}: {', '.join(waiting)}"
    return "unschedulable", message or "no PodScheduled condition yet"


def pending(f: Facts) -> list[Finding]:
    grouped: dict[tuple[str, str], list[objects.Pod]] = {}
    for p in f.snapshot.pods:
        if p.phase == "Pending" and p.created and f.now - p.created > PENDING_GRACE:
            grouped.setdefault(pending_cause(f, p), []).append(p)
    found = []
    for (cause, detail), pods in grouped.items():
        units = units_of(*(f.owner((p.owner[0].lower(), p.owner[1], p.namespace)) for p in pods))
        suggestion = {
            "no scheduler serving": "bring the scheduler back (`kubectl -n scheduler-plugins get "
            "pods`), or delete the Pods so they are recreated for a serving scheduler",
            "unbound PVC": "`kubectl describe pvc` and Longhorn's UI: can a volume be provisioned?",
            "insufficient resources": "lower requests, remove load, or add a node",
        }.get(cause, "`kubectl describe pod` says what it waits for")
        found.append(Finding(
            ERROR, "pending", units[0] if len(units) == 1 else "cluster",
            f"{len(pods)} pod(s) Pending: {cause}",
            (detail, *(f"{p.namespace}/{p.name} Pending since {when(p.created)}" for p in pods[:10])),
            suggestion, units,
        ))  # fmt: skip
    return found
