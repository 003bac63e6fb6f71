"""The scheduling layer: Trimaran settings, the injection policy, order, and the margin's effect."""

from __future__ import annotations

import pytest

from tasks.engine.graph import Graph
from tasks.engine.inventory import REPO_ROOT, load_inventory
from tasks.stack import catalog
from tests.kyverno import AUTOGEN_ANNOTATION, admit, computed_rules
from tests.netpol import Peer, admits
from tests.rendered import catalogue_objects, manifest_docs
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
    # spec.failurePolicy is deprecated in Kyverno 1.19 (ClusterPolicy CRD in ../shared/reference)
    (POLICY, "spec.webhookConfiguration.failurePolicy", "Ignore"),
]


test_setting = settings_test(SETTINGS)


def test_policy_skips_pods_owned_by_daemonsets() -> None:
    key = at(parsed(POLICY), f"{RULE}.preconditions.all.0.key")
    assert "ownerReferences[?kind=='DaemonSet']" in key
    assert "length(@)" in key


def test_the_deprecated_failure_policy_field_is_gone() -> None:
    assert "failurePolicy" not in parsed(POLICY)["spec"]


def _template(kind: str, namespace: str = "apps") -> dict:
    """A pod controller as it reaches admission (no scheduler named)."""
    pod_spec = {"containers": [{"name": "app", "image": "example.org/app:1"}]}
    template = {"metadata": {"labels": {"app": "x"}}, "spec": pod_spec}
    spec: dict = {"selector": {"matchLabels": {"app": "x"}}, "template": template}
    if kind == "CronJob":
        spec = {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}}
    api = "batch/v1" if kind in ("Job", "CronJob") else "apps/v1"
    meta = {"name": "x", "namespace": namespace}
    return {"apiVersion": api, "kind": kind, "metadata": meta, "spec": spec}


def _pod(owner: str | None, namespace: str = "apps") -> dict:
    meta: dict = {"name": "x-1", "namespace": namespace}
    if owner:
        meta["ownerReferences"] = [
            {"apiVersion": "apps/v1", "kind": owner, "name": "x", "uid": "u"}
        ]
    spec = {"containers": [{"name": "app", "image": "example.org/app:1"}]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def _scheduler_of(obj: dict) -> str | None:
    spec = obj["spec"]
    if obj["kind"] == "Pod":
        return spec.get("schedulerName")
    if obj["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"].get("schedulerName")


@pytest.mark.parametrize(
    "kind", ["DaemonSet", "Deployment", "StatefulSet", "ReplicaSet", "Job", "CronJob"]
)
def test_kyverno_generates_no_rule_that_rewrites_a_pod_controller(kind: str) -> None:
    """Kyverno's autogen (tests/kyverno.py, pkg/autogen/v1 at v1.19.0) adds nothing to the policy:
    no controller's pod template, a DaemonSet's above all, is given the scheduler."""
    policy = parsed(POLICY)
    assert [r["name"] for r in computed_rules(policy)] == ["set-scheduler-name"]
    assert _scheduler_of(admit(policy, _template(kind))) is None


def test_without_the_annotation_kyverno_would_inject_the_scheduler_into_daemonsets() -> None:
    """The defect the annotation fixes, reproduced: the generated DaemonSet rule's precondition asks
    about the pod template's ownerReferences, which are empty, so it passes."""
    policy = parsed(POLICY)
    del policy["metadata"]["annotations"][AUTOGEN_ANNOTATION]
    names = [r["name"] for r in computed_rules(policy)]
    assert names == ["set-scheduler-name", "autogen-set-scheduler-name",
                     "autogen-cronjob-set-scheduler-name"]  # fmt: skip
    generated = computed_rules(policy)[1]
    assert (
        "request.object.spec.template.metadata.ownerReferences"
        in (generated["preconditions"]["all"][0]["key"])
    )
    assert _scheduler_of(admit(policy, _template("DaemonSet"))) == SCHEDULER


@pytest.mark.parametrize(
    ("owner", "namespace", "expected"),
    [
        ("ReplicaSet", "apps", SCHEDULER),  # a Deployment's Pod
        ("StatefulSet", "apps", SCHEDULER),
        ("Job", "apps", SCHEDULER),
        (None, "apps", SCHEDULER),  # a bare Pod
        ("DaemonSet", "apps", None),
        ("ReplicaSet", "kube-system", None),
        ("ReplicaSet", "scheduler-plugins", None),
        ("ReplicaSet", "kyverno", None),
    ],
)
def test_pods_get_the_scheduler_as_they_are_created(
    owner: str | None, namespace: str, expected: str | None
) -> None:
    assert _scheduler_of(admit(parsed(POLICY), _pod(owner, namespace))) == expected


def test_existing_pods_are_not_mutated_on_update() -> None:
    # schedulerName is immutable: an UPDATE that set it would be rejected by the API server
    assert _scheduler_of(admit(parsed(POLICY), _pod("ReplicaSet"), operation="UPDATE")) is None


def test_the_prometheus_address_is_the_one_kube_prometheus_stack_serves(graph: Graph) -> None:
    kps = graph.components["observability/kube-prometheus-stack"]
    address = at(parsed(SP), f"{LVRB}.metricProvider.address")
    # <release>-prometheus in the release namespace, port 9090
    assert address == f"http://{kps.release}-prometheus.{kps.namespace}.svc:9090"


def lvrb_score(avg: float, std: float, request: float, margin: float, sensitivity: float) -> int:
    """One-resource LVRB score (fractions of a capacity of 1000) by ``tasks/trimaran/score.py``,
    the plugin's computeScore rounded as Go rounds."""
    from tasks.trimaran.score import ResourceStats, compute_score, go_round

    stats = ResourceStats(avg * 1000, std * 1000, request * 1000, 1000)
    return int(go_round(compute_score(stats, margin, sensitivity)))


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


# The scheduler cannot stop the cluster --------------------------------------------------------

GUARD = REPO_ROOT / "manifests" / "scheduling" / "scheduler-guard"

ANTI_AFFINITY = "scheduler.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution"
HA = [
    (SP, "scheduler.replicaCount", 2),
    (SP, "scheduler.leaderElect", True),
    (SP, "scheduler.priorityClassName", "platform-critical"),
    (SP, f"{ANTI_AFFINITY}.0.topologyKey", "kubernetes.io/hostname"),
    # the controller serves Coscheduling/ElasticQuota only, which are off
    (SP, "controller.replicaCount", 0),
]
test_ha_setting = settings_test(HA)


@pytest.mark.parametrize("part", ["scheduler", "controller"])
def test_scheduler_plugins_containers_have_requests_and_limits(part: str) -> None:
    resources = at(parsed(SP), f"{part}.resources")
    for kind in ("requests", "limits"):
        assert set(resources[kind]) == {"cpu", "memory"}, (part, kind)


def test_the_priority_class_outranks_every_app() -> None:
    (pc,) = [d for p, d in manifest_docs(GUARD) if d["kind"] == "PriorityClass"]
    assert pc["metadata"]["name"] == at(parsed(SP), "scheduler.priorityClassName")
    assert pc["globalDefault"] is False
    assert 0 < pc["value"] < 1_000_000_000  # above the apps (0), below system-* classes
    # no workload of the apps or ai layers claims a higher priority
    for _, doc in catalogue_objects(["apps", "ai"]):
        spec = doc.get("spec", {}).get("template", {}).get("spec", {})
        assert spec.get("priorityClassName") in (None, ""), doc["metadata"]["name"]


def test_a_pdb_keeps_one_scheduler_through_drains() -> None:
    (pdb,) = [d for p, d in manifest_docs(GUARD) if d["kind"] == "PodDisruptionBudget"]
    assert pdb["metadata"]["namespace"] == "scheduler-plugins"
    assert pdb["spec"]["minAvailable"] == 1
    # the label the chart gives the scheduler's Pods (templates/deployment.yaml at v0.34.7)
    assert pdb["spec"]["selector"] == {"matchLabels": {"component": "scheduler"}}
    assert at(parsed(SP), "scheduler.replicaCount") > pdb["spec"]["minAvailable"]


def test_priority_class_and_pdb_exist_before_the_scheduler(graph: Graph) -> None:
    assert "scheduling/scheduler-guard" in graph.components["scheduling/scheduler-plugins"].needs


def test_the_scheduler_gate_reports_a_scheduler_that_is_not_serving(graph: Graph) -> None:
    from tasks.engine.context import run_context

    gate = graph.components["scheduling/scheduler-plugins-ready"]
    with run_context(load_inventory(), dry_run=True, fetch_kubeconfig=False) as ctx:
        argvs = [c.argv for c in gate.commands(ctx)]
        probes = [p.what for p in gate.probes(ctx)]
    joined = [" ".join(a) for a in argvs]
    assert any("rollout status deployment/scheduler-plugins-scheduler" in j for j in joined)
    assert any("--for=condition=Available" in j and SCHEDULER in j for j in joined)
    assert len(probes) == 2  # what a status check asks a live cluster, read-only


def test_nothing_may_connect_to_the_scheduler() -> None:
    policies = [d for _, d in manifest_docs(GUARD)]
    scheduler = Peer("scheduler-plugins", {"component": "scheduler"}, {})
    for source in (Peer("mealie", {}), Peer("scheduler-plugins", {}), Peer("kube-system", {})):
        for port in (10259, 443):
            assert not admits(policies, source, scheduler, port)
