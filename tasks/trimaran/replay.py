"""Replaying a recording through LVRB's score under other settings: where each Pod would have gone.

The model, in full (the README's "Simulating the variance margin" says the same for users):

- **What the plugin saw.** At a Pod's creation time the plugin holds the metrics of the last
  recorded step at or before it (the recording's step, 5 minutes by default, stands in for the
  plugin's 30-second refresh of a once-a-minute 15-minute query).
- **Which Pods.** Those the recording says were scheduled by the Trimaran scheduler and landed on
  a node; when a Pod's scheduler is unknown, every Pod not owned by a DaemonSet (a DaemonSet's Pod
  has its node chosen for it).
- **Which nodes.** The nodes the Nodes list showed schedulable (not cordoned, no ``NoSchedule``
  or ``NoExecute`` taint), plus the node the Pod actually landed on (it passed the filters there).
  Other filters (fit, affinity, topology spread) are not replayed.
- **The choice.** Every candidate is scored with :func:`~tasks.trimaran.score.node_score`; the
  highest score wins. On a tie the framework picks at random among the best (reservoir
  sampling, k8s.io/kubernetes ``pkg/scheduler/schedule_one.go`` ``selectHost``); here the Pod's actual
  node wins the tie if it is among them, else the first by name, and a choice "differs" only
  when the actual node was not among the best.
- **The load a choice moves.** A Pod placed elsewhere than it actually went takes its request
  with it: from the next step after its creation until the last step it was seen, its request
  (as a percentage of the node's allocatable, the base the plugin multiplies the percentages by)
  is added to the chosen node's mean and taken off the actual node's. Its variation is not moved
  (the plugin, too, counts a Pod's request as load without variance). Placements add up: each
  later Pod is scored on the load the earlier placements left.
- **Overload.** For every placed Pod, the steps from the one after its creation to the last one
  it was seen at which its chosen node's (simulated) 15-minute mean CPU or memory was above
  :data:`OVERLOAD` percent. The overload risk is the share of all placed Pods' steps spent so
  (a long-lived Pod weighs more); the table also shows the share of Pods that met it at all.
- **Spread.** At every step, across the nodes with data: max - min and the standard deviation
  (population) of the simulated mean CPU and memory utilisation; the table shows their averages
  over the window.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from .quantity import PodShape
from .recording import NodeInfo, PodRecord, Recording
from .score import AVERAGE, CPU, MEMORY, STD, Metric, node_score

OVERLOAD = 80.0  # percent


@dataclass(frozen=True)
class Setting:
    """One pair of LVRB args (as the plugin runs them, after its defaulting)."""

    margin: float
    sensitivity: float

    @property
    def label(self) -> str:
        return f"m={self.margin:g} k={self.sensitivity:g}"


@dataclass(frozen=True)
class Placement:
    pod: PodRecord
    chosen: str
    best: tuple[str, ...]
    score: int
    differs: bool
    overloaded: bool = False  # its node went above OVERLOAD at some step of its life
    steps: int = 0  # steps of its life after its creation
    over_steps: int = 0  # ... of which its node was above OVERLOAD


@dataclass
class Outcome:
    """One setting's replay: its placements, and the node utilisation they leave, over time."""

    setting: Setting | None  # None: what actually happened
    placements: list[Placement]
    cpu: dict[str, list[float | None]]
    memory: dict[str, list[float | None]]
    spread: dict[str, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.setting.label if self.setting else "recorded"

    @property
    def differs(self) -> int:
        return sum(p.differs for p in self.placements)

    @property
    def overloaded(self) -> int:
        return sum(p.overloaded for p in self.placements)

    def rate(self, count: int) -> float:
        return 100.0 * count / len(self.placements) if self.placements else 0.0

    @property
    def overload_time(self) -> float:
        """The share of the placed Pods' lifetimes (in steps) spent on a node above OVERLOAD."""
        steps = sum(p.steps for p in self.placements)
        return 100.0 * sum(p.over_steps for p in self.placements) / steps if steps else 0.0

    @property
    def balance(self) -> float:
        """The mean std-dev across nodes, CPU and memory averaged (lower is better balanced)."""
        return (self.spread["cpu_std"] + self.spread["memory_std"]) / 2


def replayed_pods(rec: Recording) -> list[PodRecord]:
    """The Pods the replay places: the Trimaran scheduler's (see the module docstring)."""
    return [
        p
        for p in rec.pods
        if p.node
        and (
            p.scheduler == rec.scheduler if p.scheduler is not None else p.owner_kind != "DaemonSet"
        )
    ]


class Timeline:
    """The recorded per-node series on the recording's time axis, looked up by node name."""

    def __init__(self, rec: Recording) -> None:
        self.rec = rec
        self.times = rec.times
        self.nodes: dict[str, NodeInfo] = {n.name: n for n in rec.nodes}
        empty: list[float | None] = [None] * len(rec.times)
        self.series = {
            n.name: {k: (rec.metrics.get(n.name) or {}).get(k) or empty for k in _KEYS}
            for n in rec.nodes
        }
        self.has_metrics = {n.name: n.name in rec.metrics for n in rec.nodes}

    def index_at(self, t: float) -> int:
        """The last step at or before ``t`` (0 before the first)."""
        return max(0, bisect.bisect_right(self.times, t) - 1)

    def metrics(self, node: str, i: int, cpu_shift: float, mem_shift: float) -> list[Metric] | None:
        """The node's metric list at step ``i``, its means shifted; None when it has no metrics."""
        if not self.has_metrics.get(node):
            return None
        s = self.series[node]
        out = []
        for key, kind, op in _ENTRIES:
            v = s[key][i]
            if v is not None:
                if op == AVERAGE:
                    v += cpu_shift if kind == CPU else mem_shift
                out.append(Metric(kind, op, v))
        return out


_ENTRIES = (
    ("cpu_avg", CPU, AVERAGE),
    ("memory_avg", MEMORY, AVERAGE),
    ("cpu_std", CPU, STD),
    ("memory_std", MEMORY, STD),
)
_KEYS = tuple(k for k, *_ in _ENTRIES)


def _pct(shape: PodShape, node: NodeInfo) -> tuple[float, float]:
    a = node.allocatable
    cpu = 100.0 * shape.cpu_millicores / a.cpu_millicores if a.cpu_millicores > 0 else 0.0
    mem = 100.0 * shape.memory_bytes / a.memory_bytes if a.memory_bytes > 0 else 0.0
    return cpu, mem


@dataclass(frozen=True)
class _Move:
    src: str
    dst: str
    first: int
    last: int
    src_pct: tuple[float, float]
    dst_pct: tuple[float, float]


def score_nodes(
    timeline: Timeline,
    i: int,
    shape: PodShape,
    setting: Setting,
    candidates: Sequence[str],
    moves: Sequence[_Move] = (),
) -> dict[str, int]:
    """Each candidate's score at step ``i`` for a Pod of ``shape``, with earlier moves applied."""
    shifts = {n: [0.0, 0.0] for n in candidates}
    for mv in moves:
        if mv.first <= i <= mv.last:
            if mv.src in shifts:
                shifts[mv.src][0] -= mv.src_pct[0]
                shifts[mv.src][1] -= mv.src_pct[1]
            if mv.dst in shifts:
                shifts[mv.dst][0] += mv.dst_pct[0]
                shifts[mv.dst][1] += mv.dst_pct[1]
    return {
        n: node_score(
            timeline.metrics(n, i, *shifts[n]),
            timeline.nodes[n].allocatable,
            shape,
            setting.margin,
            setting.sensitivity,
        )
        for n in candidates
    }


def pick(scores: dict[str, int], prefer: str | None = None) -> tuple[str, tuple[str, ...]]:
    """The chosen node and every node tied at the top (``prefer`` wins a tie it is part of)."""
    top = max(scores.values())
    best = tuple(sorted(n for n, s in scores.items() if s == top))
    return (prefer if prefer in best else best[0]), best


def replay(rec: Recording, setting: Setting | None, timeline: Timeline | None = None) -> Outcome:
    """Place every replayed Pod under ``setting`` (None: as they actually went), in order."""
    tl = timeline or Timeline(rec)
    schedulable = [n.name for n in rec.nodes if n.schedulable]
    moves: list[_Move] = []
    placements = []
    last_index = len(tl.times) - 1
    for pod in replayed_pods(rec):
        if pod.node not in tl.nodes:
            continue  # landed on a node the Nodes list no longer shows: nothing to compare
        i = tl.index_at(pod.created)
        first, last = i + 1, max(i + 1, tl.index_at(pod.last_seen))
        if setting is None:
            placements.append(Placement(pod, pod.node, (pod.node,), 0, False))
            continue
        candidates = sorted(set(schedulable) | {pod.node})
        scores = score_nodes(tl, i, pod.requests, setting, candidates, moves)
        chosen, best = pick(scores, prefer=pod.node)
        if chosen != pod.node and first <= last_index:
            moves.append(
                _Move(
                    pod.node, chosen, first, min(last, last_index),
                    _pct(pod.requests, tl.nodes[pod.node]), _pct(pod.requests, tl.nodes[chosen]),
                )
            )  # fmt: skip
        placements.append(Placement(pod, chosen, best, scores[chosen], pod.node not in best))
    cpu, memory = _simulated(tl, moves)
    placements = [_with_overload(p, tl, cpu, memory) for p in placements]
    out = Outcome(setting, placements, cpu, memory)
    out.spread = spread(tl, cpu, memory)
    return out


def _simulated(
    tl: Timeline, moves: Sequence[_Move]
) -> tuple[dict[str, list[float | None]], dict[str, list[float | None]]]:
    """The recorded means with every move's request added and taken off (difference arrays)."""
    n = len(tl.times)
    delta = {node: ([0.0] * (n + 1), [0.0] * (n + 1)) for node in tl.nodes}
    for mv in moves:
        for node, pct, sign in ((mv.src, mv.src_pct, -1.0), (mv.dst, mv.dst_pct, 1.0)):
            for r in (0, 1):
                delta[node][r][mv.first] += sign * pct[r]
                delta[node][r][mv.last + 1] -= sign * pct[r]
    cpu: dict[str, list[float | None]] = {}
    memory: dict[str, list[float | None]] = {}
    for node in tl.nodes:
        for r, key, out in ((0, "cpu_avg", cpu), (1, "memory_avg", memory)):
            acc = 0.0
            values: list[float | None] = []
            recorded = tl.series[node][key]
            d = delta[node][r]
            for i in range(n):
                acc += d[i]
                v = recorded[i]
                values.append(None if v is None else v + acc)
            out[node] = values
    return cpu, memory


def _with_overload(
    p: Placement,
    tl: Timeline,
    cpu: dict[str, list[float | None]],
    memory: dict[str, list[float | None]],
) -> Placement:
    i = tl.index_at(p.pod.created)
    first, last = i + 1, max(i + 1, tl.index_at(p.pod.last_seen))
    c, m = cpu[p.chosen], memory[p.chosen]
    steps = range(first, min(last, len(tl.times) - 1) + 1)
    over = sum(
        1
        for j in steps
        if (c[j] is not None and c[j] > OVERLOAD) or (m[j] is not None and m[j] > OVERLOAD)
    )
    return replace(p, overloaded=over > 0, steps=len(steps), over_steps=over)


def _pstdev(values: Sequence[float]) -> float:
    """The population standard deviation (``statistics.pstdev``, without its exact fractions)."""
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def spread(
    tl: Timeline, cpu: dict[str, list[float | None]], memory: dict[str, list[float | None]]
) -> dict[str, float]:
    """Averages over time of max - min and of the std-dev across nodes, per resource."""
    out = {}
    for name, series in (("cpu", cpu), ("memory", memory)):
        ranges, stds = [], []
        for i in range(len(tl.times)):
            values = [v[i] for v in series.values() if v[i] is not None]
            if len(values) >= 2:
                ranges.append(max(values) - min(values))
                stds.append(_pstdev(values))
        out[f"{name}_range"] = statistics.fmean(ranges) if ranges else 0.0
        out[f"{name}_std"] = statistics.fmean(stds) if stds else 0.0
    return out


def score_now(
    rec: Recording, shape: PodShape, settings: Sequence[Setting]
) -> tuple[list[str], dict[Setting, dict[str, int]]]:
    """For one Pod shape at the recording's last step: every node's score under each setting."""
    tl = Timeline(rec)
    nodes = [n.name for n in rec.nodes]
    i = len(tl.times) - 1
    return nodes, {s: score_nodes(tl, i, shape, s, nodes) for s in settings}
