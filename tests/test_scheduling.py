"""The scheduling layer: Trimaran settings, the injection policy, order, and the margin's effect."""

from __future__ import annotations

import math

import pytest

from tasks.engine.graph import Graph
from tasks.engine.inventory import REPO_ROOT, load_inventory
from tasks.stack import catalog
from tests.settings import at, parsed, settings_test

SCHEDULER = "scheduler-plugins-scheduler"
POLICY = "manifests/scheduling/trimaran-policy/inject-trimaran-scheduler.yaml"


SP = "helm-values/scheduler-plugins.yaml"
LVRB = "pluginConfig.0.args"
KYVERNO = "helm-values/kyverno.yaml"
RULE = "spec.rules.0"

SETTINGS = [
    (SP, "scheduler.name", SCHEDULER),
    (SP, "plugins.enabled", ["LoadVariationRiskBalancing"]),
    # no Coscheduling, so the in-tree queue sort must stay on
    (SP, "plugins.disabled", []),
    (SP, "pluginConfig.0.name", "LoadVariationRiskBalancing"),
    (SP, f"{LVRB}.metricProvider.type", "Prometheus"),
    (
        SP,
        f"{LVRB}.metricProvider.address",
        "http://kube-prometheus-stack-prometheus.monitoring.svc:9090",
    ),
    (SP, f"{LVRB}.safeVarianceMargin", 2),
    (SP, f"{LVRB}.safeVarianceSensitivity", 2),
    (KYVERNO, "admissionController.replicas", 3),
    (POLICY, "kind", "ClusterPolicy"),
    (POLICY, "metadata.name", "inject-trimaran-scheduler"),
    (POLICY, f"{RULE}.match.any.0.resources.kinds", ["Pod"]),
    (POLICY, f"{RULE}.match.any.0.resources.operations", ["CREATE"]),
    (
        POLICY,
        f"{RULE}.exclude.any.0.resources.namespaces",
        ["kube-system", "scheduler-plugins", "kyverno"],
    ),
    (POLICY, f"{RULE}.mutate.patchStrategicMerge.spec.schedulerName", SCHEDULER),
    (POLICY, f"{RULE}.preconditions.all.0.operator", "Equals"),
    (POLICY, f"{RULE}.preconditions.all.0.value", 0),
    (POLICY, "spec.failurePolicy", "Ignore"),
]


test_setting = settings_test(SETTINGS)


def test_policy_skips_pods_owned_by_daemonsets() -> None:
    key = at(parsed(POLICY), f"{RULE}.preconditions.all.0.key")
    assert "ownerReferences[?kind=='DaemonSet']" in key
    assert "length(@)" in key


def test_the_prometheus_address_is_the_one_kube_prometheus_stack_serves(graph: Graph) -> None:
    kps = graph.components["observability/kube-prometheus-stack"]
    address = at(parsed(SP), f"{LVRB}.metricProvider.address")
    # <release>-prometheus in the release namespace, port 9090
    assert address == f"http://{kps.release}-prometheus.{kps.namespace}.svc:9090"


def lvrb_score(avg: float, std: float, request: float, margin: float, sensitivity: float) -> int:
    """One-resource LVRB score as ../shared/reference/scheduler-plugins/TRIMARAN.md describes it."""
    mu = min(max(avg + request, 0.0), 1.0)
    sigma = min(max(std, 0.0), 1.0)
    if sensitivity >= 0:
        sigma = sigma ** (1 / sensitivity)
    sigma = min(max(margin * sigma, 0.0), 1.0)
    return math.floor(100 * (1 - (mu + sigma) / 2) + 0.5)


@pytest.mark.parametrize(
    ("std", "upstream", "ours"),
    [(0.0, 70, 70), (0.04, 68, 50), (0.10, 65, 38), (0.20, 60, 25)],
    ids=["flat", "4%", "10%", "20%"],
)
def test_margin_penalises_variation_harder_than_upstream(
    std: float, upstream: int, ours: int
) -> None:
    """The comment in helm-values/scheduler-plugins.yaml: a ±10% node loses ~32 points, not 5."""
    args = at(parsed(SP), LVRB)
    assert lvrb_score(0.5, std, 0.1, 1, 1) == upstream  # upstream defaults m = 1, k = 1
    assert (
        lvrb_score(0.5, std, 0.1, args["safeVarianceMargin"], args["safeVarianceSensitivity"])
        == ours
    )


@pytest.fixture(scope="module")
def graph() -> Graph:
    return Graph.build(catalog(load_inventory()))


def test_no_descheduler_anywhere(graph: Graph) -> None:
    assert not [c for c in graph.components if "descheduler" in c]
    assert not list((REPO_ROOT / "helm-values").glob("*descheduler*"))


def test_kyverno_gate_waits_for_the_policy_crd(graph: Graph) -> None:
    from tasks.engine.context import run_context

    gate = graph.components["scheduling/kyverno-ready"]
    with run_context(load_inventory(), dry_run=True, fetch_kubeconfig=False) as ctx:
        argvs = [c.argv for c in gate.commands(ctx)]
    assert any("crd/clusterpolicies.kyverno.io" in a for a in argvs)
    assert all(any(x.startswith("--timeout=") for x in a) for a in argvs)
