"""Trimaran LoadVariationRiskBalancing's node score, in pure Python, rule for rule as upstream.

Read from kubernetes-sigs/scheduler-plugins **v0.34.7** (the chart's and the image's version):

- ``pkg/trimaran/loadvariationriskbalancing/analysis.go`` ``computeScore`` → :func:`compute_score`;
- ``pkg/trimaran/loadvariationriskbalancing/loadvariationriskbalancing.go`` ``Score`` →
  :func:`node_score`;
- ``pkg/trimaran/resourcestats.go`` ``GetResourceData``, ``CreateResourceStats``, ``GetMuSigma``,
  ``GetEffectiveResource`` → :func:`resource_data`, :func:`resource_stats`, :func:`mu_sigma`,
  :func:`pod_request`;
- ``pkg/trimaran/collector.go`` ``GetNodeMetrics`` (a node absent from the map has no metrics);
- ``apis/config/v1/defaults.go`` ``SetDefaults_LoadVariationRiskBalancingArgs`` →
  :func:`default_args`;

and the metric entries from paypal/load-watcher **v0.2.4** (the version scheduler-plugins' go.mod
pins): ``pkg/watcher/watcher.go`` (types ``CPU``/``Memory``, operators ``AVG``/``STD``/``Latest``)
and ``pkg/watcher/internal/metricsprovider/prometheus.go`` (each value is Prometheus' * 100).

``../shared/reference/scheduler-plugins/TRIMARAN.md`` describes the same maths; where it and the
source could be read two ways the source decides, and the docstrings below say where:

- Go's builtin ``min``/``max`` (Go 1.21+) return NaN when either argument is NaN; Python's do not,
  so :func:`_min`/:func:`_max` mirror Go's. TRIMARAN.md does not cover NaN.
- A sensitivity of negative zero passes the upstream ``sensitivity >= 0`` test (and the defaulting's
  ``< 0``), so the exponent is ``1/-0 = -Inf``: sigma^-Inf is +Inf for sigma < 1, then clamped to 1 by
  the margin step (or NaN when the margin is 0). TRIMARAN.md's "k ≥ 0" reads as if -0 were
  negative.
- "Only one resource valid: that resource's score": the source takes ``max(memoryScore,
  cpuScore)`` with the invalid one at 0; the same, as a resource score is never below 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..engine.quantity import milli_value, value
from .quantity import PodShape

MIN_NODE_SCORE = 0  # k8s.io/kube-scheduler framework.MinNodeScore
MAX_NODE_SCORE = 100  # framework.MaxNodeScore

# apis/config/v1/defaults.go (v0.34.7): DefaultSafeVarianceMargin, DefaultSafeVarianceSensitivity
DEFAULT_MARGIN = 1.0
DEFAULT_SENSITIVITY = 1.0

# resourcestats.go MegaFactor: memory is scored in MiB
MEGA_FACTOR = 1.0 / 1024.0 / 1024.0

# load-watcher v0.2.4 pkg/watcher/watcher.go
CPU = "CPU"
MEMORY = "Memory"
AVERAGE = "AVG"
STD = "STD"
LATEST = "Latest"


class InvalidScore(ValueError):
    """A score upstream would turn into an out-of-range integer (a NaN from NaN inputs).

    ``int64(math.Round(NaN))`` is implementation-defined in Go (MinInt64 on amd64, 0 on arm64);
    on amd64 the framework then rejects the plugin's score as outside [0, 100] and that
    scheduling attempt of the Pod fails (k8s.io/kubernetes pkg/scheduler/framework/runtime
    ``RunScorePlugins``).
    """


@dataclass(frozen=True)
class Metric:
    """One entry of a node's metric list (load-watcher ``watcher.Metric``), value in percent."""

    type: str
    operator: str
    value: float


@dataclass(frozen=True)
class Allocatable:
    """A node's allocatable CPU (``MilliValue()``) and memory (``Value()``), as the plugin reads them."""

    cpu_millicores: int
    memory_bytes: int


@dataclass
class ResourceStats:
    """``trimaran.ResourceStats``: absolute mean and deviation used, the Pod's request, capacity."""

    used_avg: float
    used_stdev: float
    req: float
    capacity: float


def _min(a: float, b: float) -> float:
    """Go's builtin ``min`` for floats: NaN if either is NaN."""
    return math.nan if math.isnan(a) or math.isnan(b) else (a if a <= b else b)


def _max(a: float, b: float) -> float:
    """Go's builtin ``max`` for floats: NaN if either is NaN."""
    return math.nan if math.isnan(a) or math.isnan(b) else (a if a >= b else b)


def go_round(x: float) -> float:
    """Go's ``math.Round``: half away from zero (72.5 → 73, 2.5 → 3; Python's ``round`` gives 2).

    Exact for every float: ``x - trunc(x)`` is computed without rounding, so 0.49999999999999994
    stays 0 (``floor(x + 0.5)`` would give 1).
    """
    if math.isnan(x) or math.isinf(x):
        return x
    t = float(math.trunc(x))
    if abs(x - t) >= 0.5:
        t += math.copysign(1.0, x)
    return t


def default_args(margin: float | None, sensitivity: float | None) -> tuple[float, float]:
    """The args the plugin runs with: a missing or negative value becomes 1.0 (defaults.go).

    ``-0.0 < 0`` is false in Go as in Python, so a negative zero is kept.
    """
    m = DEFAULT_MARGIN if margin is None or margin < 0 else float(margin)
    k = DEFAULT_SENSITIVITY if sensitivity is None or sensitivity < 0 else float(sensitivity)
    return m, k


def mu_sigma(rs: ResourceStats) -> tuple[float, float]:
    """``GetMuSigma``: (mean + request) and deviation as fractions of capacity, each in [0, 1]."""
    if rs.capacity <= 0:
        return 0.0, 0.0
    mu = _max(_min((rs.used_avg + rs.req) / rs.capacity, 1.0), 0.0)
    sigma = _max(_min(rs.used_stdev / rs.capacity, 1.0), 0.0)
    return mu, sigma


def compute_score(rs: ResourceStats, margin: float, sensitivity: float) -> float:
    """``computeScore`` (analysis.go): one resource's score, a float in [0, 100].

    Capacity ≤ 0 scores 0. The request is clamped at 0, the mean and deviation to [0, capacity];
    sigma is raised to ``1/sensitivity`` only when ``sensitivity >= 0`` (so ``0`` gives sigma^+Inf: 0 for
    sigma < 1, 1 for sigma = 1; a negative one leaves sigma as is), multiplied by the margin and clamped to
    [0, 1] (a negative margin gives 0); risk = (μ + sigma) / 2; score = (1 - risk) · 100.
    """
    if rs.capacity <= 0:
        return 0.0
    rs.req = _max(rs.req, 0.0)
    rs.used_avg = _max(_min(rs.used_avg, rs.capacity), 0.0)
    rs.used_stdev = _max(_min(rs.used_stdev, rs.capacity), 0.0)
    mu, sigma = mu_sigma(rs)
    if sensitivity >= 0:
        # Go's float division: 1/0 = +Inf, 1/-0 = -Inf (Python would raise)
        exponent = 1.0 / sensitivity if sensitivity != 0 else math.copysign(math.inf, sensitivity)
        sigma = math.pow(sigma, exponent)
    sigma *= margin
    sigma = _max(_min(sigma, 1.0), 0.0)
    risk = (mu + sigma) / 2
    return (1.0 - risk) * MAX_NODE_SCORE


def resource_data(metrics: Sequence[Metric], resource_type: str) -> tuple[float, float, bool]:
    """``GetResourceData``: (avg %, std %, valid) of one type from a node's metric list.

    The last ``AVG`` wins; before any ``AVG``, the last ``Latest`` or operator-less entry stands
    in; the last ``STD`` is the deviation; any entry of the type, whatever its operator, makes
    the resource valid. Missing values are 0.
    """
    avg = std = 0.0
    avg_found = valid = False
    for metric in metrics:
        if metric.type != resource_type:
            continue
        if metric.operator == AVERAGE:
            avg, avg_found = metric.value, True
        elif metric.operator == STD:
            std = metric.value
        elif metric.operator in ("", LATEST) and not avg_found:
            avg = metric.value
        valid = True
    return avg, std, valid


def resource_stats(
    metrics: Sequence[Metric], allocatable: Allocatable, request: PodShape, resource_type: str
) -> ResourceStats | None:
    """``CreateResourceStats``: absolute statistics of one resource, or None without data.

    CPU in millicores; memory in MiB (bytes * ``MegaFactor``), the node's and the Pod's alike.
    """
    avg, std, valid = resource_data(metrics, resource_type)
    if not valid:
        return None
    if resource_type == CPU:
        capacity = float(allocatable.cpu_millicores)
        req = float(request.cpu_millicores)
    else:
        capacity = float(allocatable.memory_bytes) * MEGA_FACTOR
        req = float(request.memory_bytes) * MEGA_FACTOR
    return ResourceStats(avg * capacity / 100, std * capacity / 100, req, capacity)


def node_total(
    metrics: Sequence[Metric] | None,
    allocatable: Allocatable,
    request: PodShape,
    margin: float,
    sensitivity: float,
) -> float:
    """``Score`` before rounding: the worse resource when both are valid, else the valid one.

    ``metrics`` None: the collector has no data, or none for this node (``GetNodeMetrics``):
    ``MinNodeScore``. Neither resource valid: 0.
    """
    if metrics is None:
        return float(MIN_NODE_SCORE)
    scores = {}
    for kind in (CPU, MEMORY):
        stats = resource_stats(metrics, allocatable, request, kind)
        scores[kind] = compute_score(stats, margin, sensitivity) if stats is not None else None
    cpu, mem = scores[CPU], scores[MEMORY]
    if cpu is not None and mem is not None:
        return _min(mem, cpu)
    return _max(mem or 0.0, cpu or 0.0)


def node_score(
    metrics: Sequence[Metric] | None,
    allocatable: Allocatable,
    request: PodShape,
    margin: float,
    sensitivity: float,
) -> int:
    """The plugin's final score of one node for one Pod: ``int64(math.Round(total))``, 0..100."""
    total = go_round(node_total(metrics, allocatable, request, margin, sensitivity))
    if math.isnan(total):
        raise InvalidScore(
            "the score is NaN (a NaN metric, or margin 0 with sensitivity -0): upstream turns it "
            "into an out-of-range integer and the framework rejects it"
        )
    return int(total)


def _requests(container: Mapping[str, Any]) -> Mapping[str, Any]:
    return ((container.get("resources") or {}).get("requests")) or {}


def pod_request(spec: Mapping[str, Any]) -> PodShape:
    """``GetResourceRequested`` (resourcestats.go ``GetEffectiveResource``) of a Pod spec.

    The containers' requests summed (CPU ``MilliValue()``, memory ``Value()``: each rounded up
    before the sum, as ``framework.Resource.Add`` does); each init container's request taken if
    larger (sidecar init containers included: v0.34.7 does not tell them apart); then the Pod's
    ``overhead`` added. Limits are not read; a Pod-level ``spec.resources`` is not read either.
    """
    cpu = mem = 0
    for container in spec.get("containers") or ():
        requests = _requests(container)
        cpu += milli_value(requests["cpu"]) if "cpu" in requests else 0
        mem += value(requests["memory"]) if "memory" in requests else 0
    for container in spec.get("initContainers") or ():
        requests = _requests(container)
        if "cpu" in requests:
            cpu = max(cpu, milli_value(requests["cpu"]))
        if "memory" in requests:
            mem = max(mem, value(requests["memory"]))
    overhead = spec.get("overhead") or {}
    cpu += milli_value(overhead["cpu"]) if "cpu" in overhead else 0
    mem += value(overhead["memory"]) if "memory" in overhead else 0
    return PodShape(cpu, mem)
