"""The findings: each rule a pure function of the facts (snapshot, declared units as found, the
window), returning what it found with its evidence and a one-line suggestion.

Severities: ``error`` (something the stack promises does not hold now: cluster.status exits 1),
``warning`` (it holds, but is at risk or cannot be checked), ``info``. Events are kept by the API
server for ``--event-ttl`` only (1h by default): findings from Events reach back that far at most,
whatever ``--since`` says; Pod history (restarts, creation times) and Longhorn's and
cert-manager's objects reach back as far as they go.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from . import objects
from .assess import UnitState, pod_workload
from .declared import Ref
from .reads import CERTIFICATES, CPU, ETCD, HELM, LONGHORN, MEMORY, Snapshot

ERROR, WARNING, INFO = "error", "warning", "info"
SEVERITIES = (ERROR, WARNING, INFO)

EVICTIONS_WARNING = 2  # evicted this often within the window: repeatedly
EVICTIONS_ERROR = 3  # a storm
PROBE_WINDOW = timedelta(minutes=10)  # probes failing this soon after a database restart
PENDING_GRACE = timedelta(minutes=5)  # a Pod Pending longer than this is stuck
BACKUP_MAX_AGE = timedelta(days=2)
CERTIFICATE_MIN_LEFT = timedelta(days=14)  # cert-manager renews 30 days early (renewBefore 720h)
RESTARTS_WARNING = 3
# where Sidero's talos-backup runs as a CronJob (the backups layer deploys it)
TALOS_BACKUP_NAMESPACE = "talos-backup"
DEFAULT_SCHEDULER = "default-scheduler"
# the core/v1 reasons of an eviction: the kubelet's under node pressure ("Evicted"), the taint
# eviction controller's ("TaintManagerEviction"), the scheduler's preemption ("Preempted"); the
# descheduler's events carry action "Descheduled" and its strategy as the reason
# (kubernetes-sigs/descheduler pkg/descheduler/evictions/evictions.go, v0.36.0)
EVICTION_REASONS = ("Evicted", "TaintManagerEviction", "Preempted")
DESCHEDULED = "Descheduled"
_FROM_NODE = re.compile(r"from (\S+) node")


@dataclass(frozen=True)
class Finding:
    """One thing found: how bad, which rule, about what, the evidence, and what to do."""

    severity: str
    rule: str
    subject: str  # a unit id (layer/name), a node, or "cluster"
    summary: str
    evidence: tuple[str, ...] = ()
    suggestion: str = ""
    units: tuple[str, ...] = ()  # the declared units it concerns (--layer/--name keep these)


@dataclass
class Facts:
    """What the rules read."""

    snapshot: Snapshot
    states: list[UnitState]
    since: datetime
    talos_version: str = ""
    kubernetes_version: str = ""
    control_planes: int = 0
    _owners: dict[Ref, str] = field(default_factory=dict)

    @property
    def now(self) -> datetime:
        return self.snapshot.now

    def owner(self, ref: Ref | None) -> str:
        """The id of the unit a workload belongs to ("" when none)."""
        if not self._owners:
            for s in self.states:
                for w in (*s.workloads, *s.databases):
                    self._owners[(w.kind, w.name, w.namespace)] = s.unit.id
        return self._owners.get(ref, "") if ref else ""

    def in_window(self, at: datetime | None) -> bool:
        return at is not None and at >= self.since


def when(at: datetime | None) -> str:
    """A time in evidence: ``2026-12-01 03:15Z``."""
    return at.strftime("%Y-%m-%d %H:%M") + "Z" if at else "?"


def age(delta: timedelta) -> str:
    """``3d 4h``, ``5h 2m``, ``12m``."""
    minutes = int(delta.total_seconds() // 60)
    days, hours, mins = minutes // 1440, minutes % 1440 // 60, minutes % 60
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {mins}m" if hours else f"{mins}m"


def _units(*ids: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(i for i in ids if i))


def _ref_name(ref: Ref | None, fallback: str) -> str:
    return f"{ref[0]}/{ref[1]}" if ref else f"pod/{fallback}"


# --- the cluster --------------------------------------------------------------------------------


def nodes_not_ready(f: Facts) -> list[Finding]:
    return [
        Finding(ERROR, "node-not-ready", n.name, f"node {n.name} is not Ready",
                (f"Node {n.name}: condition Ready is not True",),
                f"`talosctl -n <ip> health` / `kubectl describe node {n.name}`: is it up?")
        for n in f.snapshot.nodes if not n.ready
    ]  # fmt: skip


def versions(f: Facts) -> list[Finding]:
    found = []
    for n in f.snapshot.nodes:
        if f.talos_version and f"({f.talos_version})" not in n.os_image:
            found.append(Finding(
                WARNING, "talos-version", n.name,
                f"node {n.name} runs {n.os_image or 'an unknown OS'}, not Talos {f.talos_version}",
                (f"Node {n.name}: status.nodeInfo.osImage {n.os_image!r}",),
                f"`invoke talos.upgrade --node {n.name}` brings it to the inventory's talosVersion",
            ))  # fmt: skip
        if f.kubernetes_version and n.kubelet != f.kubernetes_version:
            found.append(Finding(
                WARNING, "kubernetes-version", n.name,
                f"node {n.name}'s kubelet is {n.kubelet}, not {f.kubernetes_version}",
                (f"Node {n.name}: status.nodeInfo.kubeletVersion {n.kubelet!r}",),
                "`invoke talos.upgrade-k8s` brings every node to the inventory's kubernetesVersion",
            ))  # fmt: skip
    return found


def etcd(f: Facts) -> list[Finding]:
    problem = f.snapshot.problems.get(ETCD)
    if problem is not None:
        return [Finding(
            WARNING, "etcd-unknown", "etcd", "etcd's health is unknown: talosctl did not answer",
            (f"talosctl etcd status: {problem}",),
            "check the talosconfig ($TALOSCONFIG or ~/.talos/config; `invoke talos.config`) and "
            "that the control planes answer",
        )]  # fmt: skip
    members = f.snapshot.etcd
    found = []
    evidence = tuple(
        f"{m.node}: member {m.member}, leader {m.leader}"
        + (", learner" if m.learner else "") + (f", errors: {m.errors}" if m.errors else "")
        for m in members
    )  # fmt: skip
    if len(members) < f.control_planes:
        found.append(Finding(
            ERROR, "etcd-members", "etcd",
            f"{len(members)} of {f.control_planes} etcd members answered",
            evidence, "`talosctl -n <ip> service etcd` on the silent control plane",
        ))  # fmt: skip
    bad = [m for m in members if m.errors or m.learner]
    leaders = {m.leader for m in members}
    if bad or len(leaders) > 1 or leaders & {"", "0000000000000000"}:
        found.append(Finding(
            ERROR, "etcd-unhealthy", "etcd",
            "etcd is not healthy: "
            + ("members report errors" if any(m.errors for m in members) else
               "a member is still a learner" if any(m.learner for m in members) else
               "the members do not agree on one leader"),
            evidence, "`talosctl -n <ip> etcd status` and `talosctl -n <ip> logs etcd`",
        ))  # fmt: skip
    return found


def etcd_snapshots(f: Facts) -> list[Finding]:
    jobs = [c for c in f.snapshot.cronjobs if c.namespace == TALOS_BACKUP_NAMESPACE]
    if not jobs:
        return [Finding(
            WARNING, "etcd-snapshots", "etcd", "no etcd snapshots configured",
            (f"no CronJob in namespace {TALOS_BACKUP_NAMESPACE}",),
            "deploy talos-backup (etcd snapshots to the backup bucket) to recover etcd itself",
        )]  # fmt: skip
    found = []
    for job in jobs:
        last = job.last_success
        if last is None or f.now - last > BACKUP_MAX_AGE:
            seen = f"last success {when(last)}" if last else "no successful run yet"
            found.append(Finding(
                WARNING, "etcd-snapshots", "etcd",
                f"no etcd snapshot within {age(BACKUP_MAX_AGE)} ({seen})",
                (f"CronJob {job.namespace}/{job.name}: status.lastSuccessfulTime {when(last)}, "
                 f"lastScheduleTime {when(job.last_schedule)}",),
                f"`kubectl -n {job.namespace} get jobs` and the last Job's logs",
            ))  # fmt: skip
    return found


def reads_failed(f: Facts) -> list[Finding]:
    what = {
        LONGHORN: ("Longhorn's volumes, replicas and backups", "is Longhorn deployed?"),
        CERTIFICATES: ("cert-manager's Certificates", "is cert-manager deployed?"),
        HELM: ("the Helm releases", "does `helm list -A` answer?"),
    }
    found = [
        Finding(WARNING, "read-failed", "cluster", f"could not read {what[name][0]}",
                (f"{name}: {f.snapshot.problems[name]}",), what[name][1])
        for name in what if name in f.snapshot.problems
    ]  # fmt: skip
    metrics = [n for n in (CPU, MEMORY) if n in f.snapshot.problems]
    if metrics:
        found.append(Finding(
            WARNING, "prometheus-unreachable", "cluster",
            "Prometheus did not answer through the API server: use shown is Pods' requests",
            tuple(f"{n}: {f.snapshot.problems[n]}" for n in metrics),
            "is kube-prometheus-stack deployed and its Prometheus ready? "
            "(`kubectl -n monitoring get pods`)",
        ))  # fmt: skip
    return found


# --- what the stack declares --------------------------------------------------------------------


def releases(f: Facts) -> list[Finding]:
    if HELM in f.snapshot.problems:
        return []  # said by read-failed; no release is known missing
    found = []
    for s in f.states:
        u = s.unit
        if u.release is None:
            continue
        ns, name = u.release
        if s.release_status == "missing":
            found.append(Finding(
                ERROR, "release", u.id, f"{u.id}: Helm release {ns}/{name} is not installed",
                (f"helm list -A: no release {name} in {ns}",),
                f"`invoke cluster.deploy --step {u.id}`", (u.id,),
            ))  # fmt: skip
        elif s.release_status != "deployed":
            found.append(Finding(
                ERROR, "release", u.id, f"{u.id}: Helm release {ns}/{name} is {s.release_status}",
                (f"helm list -A: {name} in {ns}: status {s.release_status}, chart {s.release_chart}",),
                f"`helm -n {ns} history {name}`, then `invoke cluster.deploy --step {u.id}`",
                (u.id,),
            ))  # fmt: skip
        elif s.release_chart != u.chart:
            found.append(Finding(
                WARNING, "release-drift", u.id,
                f"{u.id}: runs chart {s.release_chart}, the stack pins {u.chart}",
                (f"helm list -A: {name} in {ns}: chart {s.release_chart}",),
                f"`invoke cluster.deploy --step {u.id}` applies the pinned chart", (u.id,),
            ))  # fmt: skip
    return found


def workloads(f: Facts) -> list[Finding]:
    found = []
    for s in f.states:
        u = s.unit
        for role, rows in (("workload", s.workloads), ("database", s.databases)):
            for w in rows:
                if w.ok:
                    continue
                what = f"{w.kind}/{w.name} in {w.namespace}"
                if not w.found:
                    summary, evidence = f"{u.id}: {role} {what} is absent", (f"{what}: not found",)
                else:
                    summary = f"{u.id}: {role} {what} has {w.ready}/{w.desired} ready"
                    evidence = (f"{what}: {w.ready} ready of {w.desired}",)
                found.append(Finding(
                    ERROR, "database" if role == "database" else "workload", u.id, summary,
                    evidence, f"`kubectl -n {w.namespace} describe {w.kind} {w.name}`; "
                    "see the findings on its pods", (u.id,),
                ))  # fmt: skip
    return found


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
        hit = [_ref_name(ref, pod)]
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
            if dep and _ref_name(dep, "") not in hit:
                hit.append(_ref_name(dep, ""))
                hit_units.append(f.owner(dep))
        name = _ref_name(ref, pod)
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
            tuple(evidence), _suggest_eviction(component, nodes[0]), _units(*hit_units),
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
            apps = sorted({_ref_name(pod_workload(f.snapshot, e.namespace, e.name), e.name)
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
                    _units(unit),
                ))  # fmt: skip
            elif c.restarts >= RESTARTS_WARNING and f.in_window(c.last_finished):
                found.append(Finding(
                    WARNING, "restarts", unit or p.namespace,
                    f"{p.namespace}/{p.name} container {c.name} restarted {c.restarts} times",
                    (f"{p.namespace}/{p.name} on {p.node or '?'}: {c.name} {c.restarts} restarts, "
                     f"{last}",),
                    f"`kubectl -n {p.namespace} logs {p.name} -c {c.name} --previous`",
                    _units(unit),
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
        units = _units(*(f.owner((p.owner[0].lower(), p.owner[1], p.namespace)) for p in pods))
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


def _volume_owner(f: Facts) -> dict[str, str]:
    return {v.volume: s.unit.id for s in f.states for v in s.volumes if v.volume}


def volumes(f: Facts) -> list[Finding]:
    owners = _volume_owner(f)
    shared = dict(_colocated(f))
    found = []
    for v in f.snapshot.volumes:
        unit = owners.get(v.name, "")
        claim = f"{v.pvc_namespace}/{v.pvc_name}" if v.pvc_name else "no claim"
        if not v.healthy:
            found.append(Finding(
                ERROR if v.robustness == "faulted" else WARNING, "volume", unit or v.name,
                f"Longhorn volume {v.name} ({claim}) is {v.robustness or 'unknown'}",
                (f"volumes.longhorn.io {v.name}: state {v.state}, robustness {v.robustness}, "
                 f"{v.replicas} replicas wanted",),
                "Longhorn's UI or `kubectl -n longhorn-system get replicas.longhorn.io` shows "
                "which replica is missing and why", _units(unit),
            ))  # fmt: skip
        if v.name in shared:
            found.append(Finding(
                WARNING, "volume-replicas", unit or v.name,
                f"Longhorn volume {v.name} ({claim}) keeps two replicas on one node",
                (f"replicas of {v.name} share {', '.join(shared[v.name])}",),
                "losing that node loses both copies: add disk space elsewhere, then let Longhorn "
                "rebuild the replica on another node", _units(unit),
            ))  # fmt: skip
    return found


def _colocated(f: Facts) -> Iterable[tuple[str, list[str]]]:
    from ..verify.longhorn import colocated

    return colocated(f.snapshot.replicas).items()


def backups(f: Facts) -> list[Finding]:
    from .assess import last_backups

    owners = _volume_owner(f)
    latest = last_backups(f.snapshot)
    claims = {(c.namespace, c.name): c for c in f.snapshot.claims}
    found = []
    for v in f.snapshot.volumes:
        if not v.pvc_name:
            continue
        unit = owners.get(v.name, "")
        last = latest.get(v.name)
        claim = claims.get((v.pvc_namespace, v.pvc_name))
        created = claim.created if claim else None
        if last is not None and f.now - last <= BACKUP_MAX_AGE:
            continue
        if last is None and created is not None and f.now - created <= BACKUP_MAX_AGE:
            found.append(Finding(
                INFO, "backup", unit or v.name,
                f"{v.pvc_namespace}/{v.pvc_name} has no backup yet (created {when(created)})",
                (f"volume {v.name}: no completed backup",),
                "the daily backup job (03:00) takes its first one", _units(unit),
            ))  # fmt: skip
            continue
        seen = f"last {when(last)}, {age(f.now - last)} ago" if last else "none at all"
        found.append(Finding(
            ERROR, "backup", unit or v.name,
            f"{v.pvc_namespace}/{v.pvc_name}: no backup within {age(BACKUP_MAX_AGE)} ({seen})",
            (f"volume {v.name}: newest completed backup {when(last)}",),
            "check the backup target and the backup-daily RecurringJob in Longhorn's UI",
            _units(unit),
        ))  # fmt: skip
    return found


def certificates(f: Facts) -> list[Finding]:
    owners = {(c.namespace, c.name): s.unit.id for s in f.states for c in s.certificates}
    found = []
    if CERTIFICATES not in f.snapshot.problems:
        found += [
            Finding(ERROR, "certificate", s.unit.id,
                    f"{s.unit.id}: certificate {c.namespace}/{c.name} is absent",
                    (f"certificates.cert-manager.io: no {c.name} in {c.namespace}",),
                    f"`invoke cluster.deploy --step {s.unit.id}`", (s.unit.id,))
            for s in f.states for c in s.certificates if not c.found
        ]  # fmt: skip
    for c in f.snapshot.certificates:
        unit = owners.get((c.namespace, c.name), "")
        left = c.not_after - f.now if c.not_after else None
        if left is not None and left <= CERTIFICATE_MIN_LEFT:
            state = "expired" if left.total_seconds() <= 0 else f"expires in {age(left)}"
            found.append(Finding(
                ERROR, "certificate", unit or f"{c.namespace}/{c.name}",
                f"certificate {c.namespace}/{c.name} {state} ({when(c.not_after)})",
                (f"Certificate {c.namespace}/{c.name}: status.notAfter {when(c.not_after)}, "
                 f"Ready {c.ready}{': ' + c.message if c.message else ''}",),
                f"renewal is failing: `kubectl -n {c.namespace} describe certificate {c.name}` "
                "and its CertificateRequest", _units(unit),
            ))  # fmt: skip
        elif not c.ready:
            found.append(Finding(
                ERROR, "certificate", unit or f"{c.namespace}/{c.name}",
                f"certificate {c.namespace}/{c.name} is not Ready",
                (f"Certificate {c.namespace}/{c.name}: {c.message or 'Ready is not True'}",),
                f"`kubectl -n {c.namespace} describe certificate {c.name}`", _units(unit),
            ))  # fmt: skip
    return found


Rule = Callable[[Facts], list[Finding]]
RULES: Sequence[Rule] = (
    nodes_not_ready,
    versions,
    etcd,
    etcd_snapshots,
    reads_failed,
    releases,
    workloads,
    evictions,
    probes_after_database_restart,
    crash_loops,
    pending,
    volumes,
    backups,
    certificates,
)


def findings(f: Facts, rules: Sequence[Rule] = RULES) -> list[Finding]:
    """Every rule's findings, errors first."""
    found = [x for rule in rules for x in rule(f)]
    return sorted(found, key=lambda x: SEVERITIES.index(x.severity))
