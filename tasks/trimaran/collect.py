"""Reading a recording from a cluster: Prometheus through the API server, and two kubectl lists.

What the plugin reads (kubernetes-sigs/scheduler-plugins v0.34.7 with paypal/load-watcher v0.2.4,
``pkg/watcher/internal/metricsprovider/prometheus.go``): for every host, four instant queries of
the form ``METHOD(RULE[15m])`` (``buildPromQuery`` for all hosts), METHOD ``avg_over_time`` and
``stddev_over_time``, RULE ``instance:node_cpu:ratio`` and ``instance:node_memory_utilisation:ratio``;
each value x 100 (percent), keyed by the series' ``instance`` label (``hostMetricKey``). The
15-minute window is the one the library client asks for (``pkg/watcher/api/client.go``
``GetLatestWatcherMetrics(FifteenMinutes)``). TRIMARAN.md says an empty 15m cache falls back to
10m, then 5m; the source (``pkg/watcher/watcher.go`` ``GetLatestWatcherMetrics``) falls back from
15m to 10m only (its 5m case needs a 10m or 5m request), and all three are fetched once before
the scheduler starts, so the 15m answer is what the plugin scores with. Each window is fetched
once a minute; a fetch in which any query failed is dropped whole and the last one kept. A
**range** query of the same expression evaluates it at every step, which is what the provider
would have answered at that instant.

The Pods created in the window come from kube-state-metrics through Prometheus (``kube_pod_created``
for the creation time and, through a subquery, the last time the Pod was seen; ``kube_pod_info``
for its node and owner kind; ``kube_pod_scheduler`` for its scheduler; requests from
``kube_pod_container_resource_requests``, ``kube_pod_init_container_resource_requests`` and
``kube_pod_overhead_*``; kubernetes/kube-state-metrics ``internal/store/pod.go`` and
``docs/metrics/workload/pod-metrics.md`` read at v2.20.0, CPU in cores, memory in bytes;
``kube_pod_scheduler`` exists since v2.13 and is on by default), and from the live Pods list for
the Pods that still exist (their requests are then computed from the spec, exactly as
:func:`~tasks.trimaran.score.pod_request`). Node allocatable comes from the Nodes list.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ..engine.command import Command
from ..engine.kubectl import Kubectl
from ..engine.quantity import QuantityError, milli_value, value
from ..metrics.prometheus import Prometheus, Sample
from .quantity import PodShape
from .recording import SERIES, NodeInfo, PodRecord, Recording, RecordingError
from .score import Allocatable, Metric, pod_request

HOST_LABEL = "instance"  # load-watcher's hostMetricKey
# Prometheus refuses a range query of more than 11,000 points per series
# (web/api/v1/api.go: "exceeded maximum resolution of 11,000 points per timeseries")
MAX_POINTS = 10_000


def pod_queries(since: float, step: float) -> dict[str, str]:
    """The instant queries (at the window's end) that find the Pods of the window."""
    r = f"{int(since)}s"
    s = f"{int(step)}s"
    return {
        "created": f"max by (namespace, pod, uid) (max_over_time(kube_pod_created[{r}]))",
        "last_seen": (
            f"max by (namespace, pod, uid) (max_over_time(timestamp(kube_pod_created)[{r}:{s}]))"
        ),
        "info": (
            "max by (namespace, pod, uid, node, created_by_kind) "
            f'(max_over_time(kube_pod_info{{node!=""}}[{r}]))'
        ),
        "scheduler": f"max by (namespace, pod, uid, name) (max_over_time(kube_pod_scheduler[{r}]))",
        "requests": (
            "max by (uid, container, resource) (max_over_time("
            f'kube_pod_container_resource_requests{{resource=~"cpu|memory"}}[{r}]))'
        ),
        "init_requests": (
            "max by (uid, container, resource) (max_over_time("
            f'kube_pod_init_container_resource_requests{{resource=~"cpu|memory"}}[{r}]))'
        ),
        "overhead_cpu": f"max by (uid) (max_over_time(kube_pod_overhead_cpu_cores[{r}]))",
        "overhead_memory": f"max by (uid) (max_over_time(kube_pod_overhead_memory_bytes[{r}]))",
    }


def nodes_command(kubectl: Kubectl) -> Command:
    return kubectl("get", "nodes", "-o", "json")


def pods_command(kubectl: Kubectl) -> Command:
    return kubectl("get", "pods", "--all-namespaces", "-o", "json")


def window(now: float, since: float, step: float) -> tuple[float, float]:
    """The window's start and end, aligned to the step (so the times are whole steps)."""
    end = math.floor(now / step) * step
    return end - math.floor(since / step) * step, end


def chunks(start: float, end: float, step: float) -> list[tuple[float, float]]:
    """``[start, end]`` cut into range queries of at most :data:`MAX_POINTS` points each."""
    out = []
    at = start
    while at <= end:
        last = min(end, at + (MAX_POINTS - 1) * step)
        out.append((at, last))
        at = last + step
    return out


def _finite(v: float) -> bool:
    return not (math.isnan(v) or math.isinf(v))


def node_series(
    prom: Prometheus, start: float, end: float, step: float
) -> tuple[list[float], dict[str, dict[str, list[float | None]]], int]:
    """The four load-watcher expressions at every step, x100, by ``instance``; NaNs dropped."""
    times = [start + i * step for i in range(round((end - start) / step) + 1)]
    index = {t: i for i, t in enumerate(times)}
    metrics: dict[str, dict[str, list[float | None]]] = {}
    dropped = 0
    for key, _, _, promql in SERIES:
        for a, b in chunks(start, end, step):
            for series in prom.range(promql, a, b, step):
                host = series.labels.get(HOST_LABEL, "")
                values = metrics.setdefault(host, {}).setdefault(key, [None] * len(times))
                for t, v in series.points:
                    i = index.get(t)
                    if i is None:
                        continue
                    if not _finite(v):
                        dropped += 1
                        continue
                    # several series of one instance: the last one answered wins, as in
                    # GetResourceData (load-watcher appends them all; the last AVG is used)
                    values[i] = v * 100
    for series_by_key in metrics.values():
        for key, *_ in SERIES:
            series_by_key.setdefault(key, [None] * len(times))
    return times, metrics, dropped


def instant_metrics(prom: Prometheus) -> tuple[dict[str, list[Metric]], int]:
    """The four load-watcher expressions now, as the provider's metric lists by ``instance``."""
    out: dict[str, list[Metric]] = {}
    dropped = 0
    for _, kind, operator, promql in SERIES:
        for sample in prom.query(promql):
            if not _finite(sample.value):
                dropped += 1
                continue
            host = sample.labels.get(HOST_LABEL, "")
            out.setdefault(host, []).append(Metric(kind, operator, sample.value * 100))
    return out, dropped


def parse_nodes(stdout: str) -> list[NodeInfo]:
    """``kubectl get nodes -o json``: name, allocatable cpu/memory, and schedulable."""
    try:
        items = json.loads(stdout).get("items") or []
    except (ValueError, AttributeError):
        raise RecordingError("kubectl get nodes answered something that is not a List") from None
    nodes = []
    for item in items:
        meta, spec = item.get("metadata") or {}, item.get("spec") or {}
        alloc = (item.get("status") or {}).get("allocatable") or {}
        try:
            allocatable = Allocatable(
                milli_value(alloc.get("cpu", "0")), value(alloc.get("memory", "0"))
            )
        except QuantityError as exc:
            raise RecordingError(f"node {meta.get('name')}: allocatable: {exc}") from None
        blocked = any(
            t.get("effect") in ("NoSchedule", "NoExecute") for t in spec.get("taints") or ()
        )
        nodes.append(
            NodeInfo(
                meta.get("name", ""), allocatable, not spec.get("unschedulable") and not blocked
            )
        )
    return sorted(nodes, key=lambda n: n.name)


def _controller_kind(meta: Mapping[str, Any]) -> str | None:
    for ref in meta.get("ownerReferences") or ():
        if ref.get("controller"):
            return ref.get("kind")
    return None


def _rfc3339(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def parse_pods(stdout: str) -> dict[str, dict[str, Any]]:
    """``kubectl get pods -A -o json``, by uid: only what a recording keeps."""
    try:
        items = json.loads(stdout).get("items") or []
    except (ValueError, AttributeError):
        raise RecordingError("kubectl get pods answered something that is not a List") from None
    pods = {}
    for item in items:
        meta, spec = item.get("metadata") or {}, item.get("spec") or {}
        try:
            requests = pod_request(spec)
        except QuantityError as exc:
            raise RecordingError(f"pod {meta.get('namespace')}/{meta.get('name')}: {exc}") from None
        status = item.get("status") or {}
        finished = [
            _rfc3339(c["state"]["terminated"]["finishedAt"])
            for c in status.get("containerStatuses") or ()
            if ((c.get("state") or {}).get("terminated") or {}).get("finishedAt")
        ]
        pods[meta.get("uid", "")] = {
            "namespace": meta.get("namespace", ""),
            "name": meta.get("name", ""),
            "created": _rfc3339(meta["creationTimestamp"])
            if meta.get("creationTimestamp")
            else None,
            "node": spec.get("nodeName") or None,
            "scheduler": spec.get("schedulerName") or None,
            "owner_kind": _controller_kind(meta),
            "requests": requests,
            # a Pod that ran to completion stays listed; it ended when its last container did
            "ended": max(finished)
            if status.get("phase") in ("Succeeded", "Failed") and finished
            else None,
        }
    return pods


def _by_uid(samples: Iterable[Sample]) -> dict[str, Sample]:
    return {s.labels.get("uid", ""): s for s in samples if s.labels.get("uid")}


def _ksm_requests(
    requests: Sequence[Sample], init: Sequence[Sample], cpu_overhead: Sequence[Sample],
    mem_overhead: Sequence[Sample],
) -> dict[str, PodShape]:  # fmt: skip
    """Each Pod's request from kube-state-metrics, summed as ``GetEffectiveResource`` sums it.

    kube-state-metrics writes CPU as ``MilliValue()/1000`` cores and memory as ``Value()`` bytes,
    so ``round(cores * 1000)`` and the bytes are the scheduler's own whole numbers again.
    """
    cpu: dict[str, int] = {}
    mem: dict[str, int] = {}
    for s in requests:
        uid, res = s.labels.get("uid", ""), s.labels.get("resource")
        if res == "cpu" and _finite(s.value):
            cpu[uid] = cpu.get(uid, 0) + round(s.value * 1000)
        elif res == "memory" and _finite(s.value):
            mem[uid] = mem.get(uid, 0) + round(s.value)
    for s in init:
        uid, res = s.labels.get("uid", ""), s.labels.get("resource")
        if res == "cpu" and _finite(s.value):
            cpu[uid] = max(cpu.get(uid, 0), round(s.value * 1000))
        elif res == "memory" and _finite(s.value):
            mem[uid] = max(mem.get(uid, 0), round(s.value))
    for s in cpu_overhead:
        uid = s.labels.get("uid", "")
        cpu[uid] = cpu.get(uid, 0) + round(s.value * 1000)
    for s in mem_overhead:
        uid = s.labels.get("uid", "")
        mem[uid] = mem.get(uid, 0) + round(s.value)
    return {uid: PodShape(cpu.get(uid, 0), mem.get(uid, 0)) for uid in set(cpu) | set(mem)}


def pod_records(
    answers: Mapping[str, list[Sample]],
    live: Mapping[str, dict[str, Any]],
    start: float,
    end: float,
) -> list[PodRecord]:
    """The Pods created in ``[start, end]``: kube-state-metrics' history, the live list preferred."""
    created = _by_uid(answers["created"])
    last_seen = _by_uid(answers["last_seen"])
    info = _by_uid(answers["info"])
    scheduler = _by_uid(answers["scheduler"])
    ksm = _ksm_requests(
        answers["requests"], answers["init_requests"], answers["overhead_cpu"],
        answers["overhead_memory"],
    )  # fmt: skip
    records = []
    for uid in set(created) | set(live):
        now = live.get(uid)
        made = created[uid].value if uid in created else (now or {}).get("created")
        if made is None or not _finite(made) or not start <= made <= end:
            continue
        labels = (created.get(uid) or info.get(uid) or Sample({}, 0)).labels
        seen = last_seen[uid].value if uid in last_seen else made
        records.append(
            PodRecord(
                namespace=now["namespace"] if now else labels.get("namespace", ""),
                name=now["name"] if now else labels.get("pod", ""),
                uid=uid,
                created=float(made),
                # a Pod that still runs is seen until the end of the window
                last_seen=max(float(made), float(now.get("ended") or end) if now else float(seen)),
                node=(now or {}).get("node")
                or (info[uid].labels.get("node") if uid in info else None),
                scheduler=(now or {}).get("scheduler")
                or (scheduler[uid].labels.get("name") if uid in scheduler else None),
                owner_kind=(now or {}).get("owner_kind")
                or (info[uid].labels.get("created_by_kind") if uid in info else None)
                or None,
                requests=now["requests"] if now else ksm.get(uid, PodShape()),
                requests_from="api" if now else "kube-state-metrics",
            )
        )
    return sorted(records, key=lambda p: (p.created, p.namespace, p.name))


def record(
    prom: Prometheus,
    read: Callable[[Command], str],
    *,
    now: float,
    since: float,
    step: float,
    scheduler: str,
    on_note: Callable[[str], None] = lambda _: None,
) -> Recording:
    """Read everything a recording holds (read-only: Prometheus queries, two kubectl lists).

    ``read`` runs a kubectl read and returns its output (or, in a dry-run, prints it).
    """
    start, end = window(now, since, step)
    times, metrics, dropped = node_series(prom, start, end, step)
    answers = {name: prom.query(q, at=end) for name, q in pod_queries(since, step).items()}
    nodes = parse_nodes(read(nodes_command(prom.kubectl)))
    live = parse_pods(read(pods_command(prom.kubectl)))
    rec = Recording(
        start=start, end=end, step=step, times=times, nodes=nodes, metrics=metrics,
        pods=pod_records(answers, live, start, end), scheduler=scheduler, recorded_at=now,
        dropped_samples=dropped,
    )  # fmt: skip
    for note in coverage_notes(rec):
        on_note(note)
    return rec


def coverage_notes(rec: Recording) -> list[str]:
    """What a reader of the recording should know: nodes without metrics, unmatched instances."""
    notes = []
    names = {n.name for n in rec.nodes}
    missing = sorted(names - set(rec.metrics))
    strangers = sorted(set(rec.metrics) - names)
    if missing:
        notes.append(
            f"no metrics keyed by the node name for {', '.join(missing)}: the plugin scores such a "
            "node 0 (load-watcher keys metrics by the `instance` label; "
            + (f"found instances {', '.join(strangers[:3])}; " if strangers else "")
            + "relabel node-exporter's instance to the node name)"
        )
    if rec.dropped_samples:
        notes.append(f"{rec.dropped_samples} NaN or infinite samples were left out")
    if not rec.pods:
        notes.append("no Pod was created in the window")
    return notes


def from_live(
    metrics: Mapping[str, list[Metric]], nodes: Sequence[NodeInfo], now: float
) -> Recording:
    """A one-instant recording of the metrics the plugin would read now (``--live``)."""
    by_host: dict[str, dict[str, list[float | None]]] = {}
    for host, entries in metrics.items():
        series = {key: [None] for key, *_ in SERIES}
        for key, kind, operator, _ in SERIES:
            for m in entries:
                if m.type == kind and m.operator == operator:
                    series[key] = [m.value]
        by_host[host] = series
    return Recording(
        start=now, end=now, step=30.0, times=[now], nodes=list(nodes), metrics=by_host, pods=[],
        recorded_at=now,
    )  # fmt: skip
