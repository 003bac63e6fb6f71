"""Trimaran LVRB's score against hand-worked numbers, one test per upstream rule and edge case.

Upstream: kubernetes-sigs/scheduler-plugins v0.34.7, ``pkg/trimaran/loadvariationriskbalancing/
analysis.go`` (computeScore), ``loadvariationriskbalancing.go`` (Score), ``pkg/trimaran/
resourcestats.go`` (GetResourceData, CreateResourceStats, GetMuSigma, GetEffectiveResource),
``pkg/trimaran/collector.go`` (GetNodeMetrics), ``apis/config/v1/defaults.go``; load-watcher v0.2.4
``pkg/watcher/watcher.go``. The arithmetic of every case is written beside it; none is copied
from upstream's own tests.
"""

from __future__ import annotations

import math

import pytest

from tasks.engine.errors import FlagError
from tasks.engine.quantity import QuantityError, milli_value, parse_quantity, value
from tasks.trimaran.quantity import PodShape, parse_pod_shape
from tasks.trimaran.score import (
    AVERAGE,
    CPU,
    LATEST,
    MEMORY,
    STD,
    Allocatable,
    InvalidScore,
    Metric,
    ResourceStats,
    compute_score,
    default_args,
    go_round,
    node_score,
    pod_request,
    resource_data,
)

MiB = 2**20
GiB = 2**30


def rs(avg: float, std: float, req: float, cap: float = 1000) -> ResourceStats:
    return ResourceStats(used_avg=avg, used_stdev=std, req=req, capacity=cap)


# --- computeScore: one resource -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("stats", "margin", "sensitivity", "expected"),
    [
        # typical, upstream defaults: U=400 R=100 S=100 of C=1000 → μ=(400+100)/1000=0.5,
        # sigma=100/1000=0.1, sigma^(1/1)=0.1, *1=0.1; risk=(0.5+0.1)/2=0.3; score=(1-0.3)·100=70
        pytest.param(rs(400, 100, 100), 1, 1, 70.0, id="defaults"),
        # the cluster's setting m=2 k=2: sigma=√0.1=0.316228, *2=0.632456;
        # risk=(0.5+0.632456)/2=0.566228; score=43.3772
        pytest.param(rs(400, 100, 100), 2, 2, 43.377223398316204, id="margin-2-sensitivity-2"),
        # zero capacity: 0 whatever the rest
        pytest.param(rs(400, 100, 100, cap=0), 1, 1, 0.0, id="zero-capacity"),
        pytest.param(rs(400, 100, 100, cap=-5), 1, 1, 0.0, id="negative-capacity"),
        # negative mean: U=-200 → 0; μ=(0+100)/1000=0.1, sigma=0.1; risk=0.1; score=90
        pytest.param(rs(-200, 100, 100), 1, 1, 90.0, id="negative-mean"),
        # mean above capacity: U=1500 → 1000; μ=(1000+100)/1000=1.1 → 1; sigma=0.1;
        # risk=(1+0.1)/2=0.55; score=45
        pytest.param(rs(1500, 100, 100), 1, 1, 45.0, id="mean-above-capacity"),
        # negative deviation: S → 0; μ=0.5, sigma=0; risk=0.25; score=75
        pytest.param(rs(400, -100, 100), 1, 1, 75.0, id="negative-deviation"),
        # deviation above capacity: S=2000 → 1000; sigma=1; risk=(0.5+1)/2=0.75; score=25
        pytest.param(rs(400, 2000, 100), 1, 1, 25.0, id="deviation-above-capacity"),
        # negative request: R → 0; μ=400/1000=0.4, sigma=0.1; risk=0.25; score=75
        pytest.param(rs(400, 100, -100), 1, 1, 75.0, id="negative-request"),
        # negative margin (computeScore itself; the args defaulting replaces it first, below):
        # sigma=0.1*(-1)=-0.1 → clamped 0; risk=(0.5+0)/2=0.25; score=75
        pytest.param(rs(400, 100, 100), -1, 1, 75.0, id="negative-margin"),
        # negative sensitivity: no root taken, sigma=0.1; *1; risk=0.3; score=70
        pytest.param(rs(400, 100, 100), 1, -1, 70.0, id="negative-sensitivity"),
        # ... and with m=2 k=-2: sigma=0.1*2=0.2; risk=(0.5+0.2)/2=0.35; score=65
        pytest.param(rs(400, 100, 100), 2, -2, 65.0, id="negative-sensitivity-margin-2"),
        # sensitivity 0: exponent 1/0=+Inf, 0.1^+Inf=0; risk=0.25; score=75
        pytest.param(rs(400, 100, 100), 1, 0, 75.0, id="sensitivity-0"),
        # sensitivity 0 with sigma=1 (S=C): 1^+Inf=1; risk=(0.5+1)/2=0.75; score=25
        pytest.param(rs(400, 1000, 100), 1, 0, 25.0, id="sensitivity-0-full-deviation"),
        # sensitivity 0 with sigma=0: 0^+Inf=0; risk=0.25; score=75
        pytest.param(rs(400, 0, 100), 1, 0, 75.0, id="sensitivity-0-no-deviation"),
        # sensitivity -0 passes `>= 0`: exponent 1/-0=-Inf, 0.1^-Inf=+Inf, *1 → clamped 1;
        # risk=0.75; score=25 (TRIMARAN.md reads -0 as negative; the Go source does not)
        pytest.param(rs(400, 100, 100), 1, -0.0, 25.0, id="sensitivity-negative-zero"),
        # margin above 1/sigma saturates: sigma=0.1*20=2 → 1; risk=0.75; score=25
        pytest.param(rs(400, 100, 100), 20, 1, 25.0, id="margin-saturates"),
        # margin 0: variation ignored; risk=0.25; score=75
        pytest.param(rs(400, 100, 100), 0, 1, 75.0, id="margin-0"),
    ],
)
def test_compute_score(stats, margin, sensitivity, expected):
    assert compute_score(stats, margin, sensitivity) == pytest.approx(expected, abs=1e-9)


def test_margin_0_with_sensitivity_negative_zero_is_nan_as_in_go():
    # sigma=0.1^-Inf=+Inf; +Inf*0=NaN; Go's min/max keep NaN, so the score is NaN
    assert math.isnan(compute_score(rs(400, 100, 100), 0, -0.0))


# --- the args' defaulting -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "effective"),
    [
        ((None, None), (1.0, 1.0)),  # missing: the defaults
        ((-1, -2), (1.0, 1.0)),  # negative: the defaults too
        ((2, 2), (2.0, 2.0)),
        ((0, 0), (0.0, 0.0)),  # zero is kept
        ((1.5, -0.0), (1.5, -0.0)),  # -0 < 0 is false: kept
    ],
)
def test_default_args(given, effective):
    got = default_args(*given)
    assert got == effective and math.copysign(1, got[1]) == math.copysign(1, effective[1])


# --- rounding: Go's math.Round ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "rounded"),
    [(72.5, 73.0), (2.5, 3.0), (62.5, 63.0), (-2.5, -3.0), (43.377, 43.0), (0.49999999999999994, 0.0),
     (99.5, 100.0), (0.0, 0.0)],
)  # fmt: skip
def test_go_round_is_half_away_from_zero(x, rounded):
    assert go_round(x) == rounded


# --- GetResourceData: which entry is the mean ---------------------------------------------------


@pytest.mark.parametrize(
    ("metrics", "expected"),
    [
        ([Metric(CPU, AVERAGE, 40), Metric(CPU, STD, 10)], (40, 10, True)),
        # a Latest before the AVG is overridden; after it, ignored
        ([Metric(CPU, LATEST, 90), Metric(CPU, AVERAGE, 40)], (40, 0, True)),
        ([Metric(CPU, AVERAGE, 40), Metric(CPU, LATEST, 90)], (40, 0, True)),
        ([Metric(CPU, AVERAGE, 40), Metric(CPU, AVERAGE, 45)], (45, 0, True)),  # the last AVG
        ([Metric(CPU, "", 30), Metric(CPU, LATEST, 35)], (35, 0, True)),  # the last Latest/""
        ([Metric(CPU, STD, 10)], (0, 10, True)),  # a STD alone: valid, mean 0
        ([Metric(CPU, "Unknown", 10)], (0, 0, True)),  # any operator makes it valid
        ([Metric(MEMORY, AVERAGE, 40)], (0, 0, False)),  # another type: no data
        ([], (0, 0, False)),
    ],
)
def test_resource_data(metrics, expected):
    assert resource_data(metrics, CPU) == expected


# --- Score: the node ----------------------------------------------------------------------------

NODE = Allocatable(cpu_millicores=1000, memory_bytes=8 * GiB)
POD = PodShape(cpu_millicores=100, memory_bytes=512 * MiB)
# CPU: 40% ± 10% of 1000m, pod 100m → 70 (as "defaults" above)
CPU_METRICS = [Metric(CPU, AVERAGE, 40), Metric(CPU, STD, 10)]
# memory: 8Gi = 8192 MiB; U=25%·8192=2048, S=5%·8192=409.6, R=512 MiB;
# μ=(2048+512)/8192=0.3125, sigma=0.05; risk=(0.3125+0.05)/2=0.18125; score=81.875
MEM_METRICS = [Metric(MEMORY, AVERAGE, 25), Metric(MEMORY, STD, 5)]


def test_the_node_takes_the_worse_resource():
    # min(cpu 70, memory 81.875) = 70
    assert node_score(CPU_METRICS + MEM_METRICS, NODE, POD, 1, 1) == 70


def test_only_memory_valid_scores_memory_rounded_half_away():
    # max(memory 81.875, cpu 0) = 81.875 → 82
    assert node_score(MEM_METRICS, NODE, POD, 1, 1) == 82


def test_only_cpu_valid_scores_cpu():
    assert node_score(CPU_METRICS, NODE, POD, 1, 1) == 70


@pytest.mark.parametrize(
    "metrics",
    [
        pytest.param(None, id="node-missing-from-the-metrics"),
        pytest.param([], id="node-with-no-entries"),
        pytest.param([Metric("Storage", AVERAGE, 10)], id="neither-resource-has-data"),
    ],
)
def test_no_data_scores_the_minimum(metrics):
    assert node_score(metrics, NODE, POD, 2, 2) == 0


def test_zero_allocatable_cpu_scores_0_for_cpu_so_the_node_scores_0():
    # cpu capacity 0 → cpu score 0; memory 81.875; both valid → min = 0
    node = Allocatable(cpu_millicores=0, memory_bytes=8 * GiB)
    assert node_score(CPU_METRICS + MEM_METRICS, node, POD, 1, 1) == 0


def test_half_rounds_up_where_python_would_round_down():
    # C=1024m, mean 0, no deviation, pod 768m: μ=768/1024=0.75, sigma=0;
    # risk=0.375; score=62.5 exactly → Go 63 (Python's round(62.5) is 62)
    node = Allocatable(cpu_millicores=1024, memory_bytes=GiB)
    metrics = [Metric(CPU, AVERAGE, 0), Metric(CPU, STD, 0)]
    assert node_score(metrics, node, PodShape(768, 0), 1, 1) == 63


def test_negative_metrics_are_clamped():
    # cpu -20% → U=-200 → 0: μ=0.1, sigma=0.1; risk 0.1; cpu 90. Memory -5% → 0:
    # μ=512/8192=0.0625, sigma=0.05; risk=0.05625; 94.375 → min 90
    metrics = [Metric(CPU, AVERAGE, -20), Metric(CPU, STD, 10)]
    metrics += [Metric(MEMORY, AVERAGE, -5), Metric(MEMORY, STD, 5)]
    assert node_score(metrics, NODE, POD, 1, 1) == 90


def test_a_nan_metric_is_an_invalid_score():
    with pytest.raises(InvalidScore):
        node_score([Metric(CPU, AVERAGE, math.nan)], NODE, POD, 1, 1)


def test_the_cluster_setting_scores_a_bursty_node_far_below_a_steady_one():
    # steady: 40% ± 0 → μ=0.5, sigma=0 → 75 under m=2 k=2.
    # bursty: 40% ± 10% → 43.38 → 43 (see "margin-2-sensitivity-2")
    steady = [Metric(CPU, AVERAGE, 40), Metric(CPU, STD, 0)]
    assert node_score(steady, NODE, PodShape(100, 0), 2, 2) == 75
    assert node_score(CPU_METRICS, NODE, PodShape(100, 0), 2, 2) == 43


# --- GetResourceRequested -----------------------------------------------------------------------


def test_pod_request_sums_containers_takes_larger_init_and_adds_overhead():
    spec = {
        "containers": [
            {"resources": {"requests": {"cpu": "250m", "memory": "256Mi"}}},
            {"resources": {"requests": {"cpu": "0.25", "memory": "256Mi"}, "limits": {"cpu": "4"}}},
            {"name": "no-requests"},
        ],
        "initContainers": [
            {"resources": {"requests": {"cpu": "1", "memory": "128Mi"}}},  # cpu larger, mem not
        ],
        "overhead": {"cpu": "100m", "memory": "64Mi"},
    }
    # cpu: 250+250=500, max(500, 1000)=1000, +100 = 1100m
    # memory: 256+256=512Mi, max(512, 128)=512Mi, +64 = 576Mi
    assert pod_request(spec) == PodShape(1100, 576 * MiB)


def test_each_container_is_rounded_up_before_the_sum():
    # "0.5m" → MilliValue 1 each; 1 + 1 = 2 (not ceil(0.5 + 0.5) = 1)
    spec = {"containers": [{"resources": {"requests": {"cpu": "0.5m"}}}] * 2}
    assert pod_request(spec) == PodShape(2, 0)


# --- quantities ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "milli", "whole"),
    [("500m", 500, 1), ("2", 2000, 2), ("0.5", 500, 1), (".5", 500, 1), ("1.", 1000, 1),
     ("512Mi", 512 * MiB * 1000, 512 * MiB), ("1Gi", GiB * 1000, GiB), ("1e3", 10**6, 1000),
     ("1E-3", 1, 1), ("100k", 10**8, 10**5), ("1M", 10**9, 10**6), ("250u", 1, 1),
     ("+1", 1000, 1), ("0.1m", 1, 1)],
)  # fmt: skip
def test_quantities(text, milli, whole):
    assert milli_value(text) == milli and value(text) == whole


@pytest.mark.parametrize(
    "text", ["500x", "", "1.2.3", "Mi", " 1", "1 Mi", "--1", "0x10", "1e", "1MiB", "1mi"]
)
def test_not_a_quantity(text):
    with pytest.raises(QuantityError, match="not a Kubernetes quantity"):
        parse_quantity(text)


def test_pod_shape():
    assert parse_pod_shape("cpu=500m,memory=512Mi") == PodShape(500, 512 * MiB)
    assert parse_pod_shape("memory=1Gi") == PodShape(0, GiB)
    assert parse_pod_shape("cpu=2") == PodShape(2000, 0)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("cpu=500x", "--pod cpu=500x: cpu='500x' is not a Kubernetes quantity"),
        ("cpu", "'cpu' is not RESOURCE=QUANTITY"),
        ("gpu=1", "unknown resource 'gpu'"),
        ("cpu=1,cpu=2", "cpu is given twice"),
        ("cpu=-1", "cpu=-1 is negative"),
        ("cpu=500m,,memory=1Gi", "'' is not RESOURCE=QUANTITY"),
    ],
)
def test_pod_shape_errors_name_the_flag_and_the_fix(text, words):
    with pytest.raises(FlagError) as err:
        parse_pod_shape(text)
    assert words in str(err.value) and "e.g. --pod cpu=500m,memory=512Mi" in str(err.value)
