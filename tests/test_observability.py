"""The observability layer: each seed setting where it lives, the order of steps and the gates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tasks.engine.components import HelmRelease
from tasks.engine.errors import GateError
from tasks.engine.gates import Gate
from tasks.engine.graph import Graph
from tasks.engine.inventory import load_inventory
from tasks.stack import catalog
from tests.settings import at, parsed, settings_test

KPS = "helm-values/kube-prometheus-stack.yaml"
LOKI = "helm-values/loki.yaml"
ALLOY = "helm-values/alloy.yaml"
SPEC = "prometheus.prometheusSpec"
PVC = f"{SPEC}.storageSpec.volumeClaimTemplate.spec"
AM_PVC = "alertmanager.alertmanagerSpec.storage.volumeClaimTemplate.spec"
NODE_RELABEL = "prometheus-node-exporter.prometheus.monitor.relabelings.0"

SETTINGS = [
    # kube-prometheus-stack: 30d on a 100Gi Longhorn volume
    (KPS, f"{SPEC}.retention", "30d"),
    (KPS, f"{PVC}.storageClassName", "longhorn"),
    (KPS, f"{PVC}.resources.requests.storage", "100Gi"),
    (KPS, f"{PVC}.accessModes", ["ReadWriteOnce"]),
    # monitors and rules from every namespace
    (KPS, f"{SPEC}.serviceMonitorSelectorNilUsesHelmValues", False),
    (KPS, f"{SPEC}.podMonitorSelectorNilUsesHelmValues", False),
    (KPS, f"{SPEC}.ruleSelectorNilUsesHelmValues", False),
    # the chart does not install CRDs: observability/prometheus-crds owns them
    (KPS, "crds.enabled", False),
    # Grafana: persistent, login from a synced Secret
    (KPS, "grafana.persistence.enabled", True),
    (KPS, "grafana.persistence.storageClassName", "longhorn"),
    (KPS, "grafana.admin.existingSecret", "grafana-admin"),
    (KPS, "grafana.route.main.hostnames", ["grafana.thedougie.com"]),
    (KPS, ("grafana", "grafana.ini", "server", "root_url"), "https://grafana.thedougie.com"),
    # Alertmanager with storage
    (KPS, "alertmanager.enabled", True),
    (KPS, f"{AM_PVC}.storageClassName", "longhorn"),
    # node-exporter instance = node name (Trimaran looks nodes up by name)
    (KPS, f"{NODE_RELABEL}.sourceLabels", ["__meta_kubernetes_pod_node_name"]),
    (KPS, f"{NODE_RELABEL}.targetLabel", "instance"),
    (KPS, f"{NODE_RELABEL}.action", "replace"),
    (KPS, "defaultRules.rules.kubePrometheusNodeRecording", True),
    (KPS, "defaultRules.rules.nodeExporterRecording", True),
    # Loki: single binary, MinIO on Longhorn, raised limits, no tenant header needed
    (LOKI, "deploymentMode", "SingleBinary"),
    (LOKI, "singleBinary.replicas", 1),
    (LOKI, "write.replicas", 0),
    (LOKI, "read.replicas", 0),
    (LOKI, "backend.replicas", 0),
    (LOKI, "loki.commonConfig.replication_factor", 1),
    (LOKI, "loki.auth_enabled", False),
    (LOKI, "loki.schemaConfig.configs.0.store", "tsdb"),
    (LOKI, "loki.schemaConfig.configs.0.object_store", "s3"),
    (LOKI, "minio.enabled", True),
    (LOKI, "minio.persistence.storageClass", "longhorn"),
    (LOKI, "singleBinary.persistence.storageClass", "longhorn"),
    (LOKI, "loki.limits_config.ingestion_rate_mb", 16),
    (LOKI, "loki.limits_config.ingestion_burst_size_mb", 32),
    (LOKI, "loki.limits_config.per_stream_rate_limit", "8MB"),
    (LOKI, "gateway.enabled", True),
    (LOKI, "chunksCache.enabled", False),
    (LOKI, "resultsCache.enabled", False),
    (LOKI, "lokiCanary.enabled", False),
    (LOKI, "test.enabled", False),
    # Alloy: a DaemonSet that also runs on control planes
    (ALLOY, "controller.type", "daemonset"),
    (ALLOY, "controller.tolerations.0.key", "node-role.kubernetes.io/control-plane"),
    (ALLOY, "controller.tolerations.0.operator", "Exists"),
    (ALLOY, "controller.tolerations.0.effect", "NoSchedule"),
]


test_setting = settings_test(SETTINGS)


def test_loki_limits_are_raised_above_lokis_defaults() -> None:
    limits = at(parsed(LOKI), "loki.limits_config")
    # Loki 3.6 defaults: 4 MB/s rate, 6 MB burst
    assert limits["ingestion_rate_mb"] > 4
    assert limits["ingestion_burst_size_mb"] > 6


def test_alloy_ships_this_nodes_pod_logs_to_the_loki_gateway() -> None:
    content = at(parsed(ALLOY), "alloy.configMap.content")
    assert 'url = "http://loki-gateway.monitoring.svc.cluster.local/loki/api/v1/push"' in content
    assert 'regex         = sys.env("HOSTNAME")' in content
    assert "loki.source.kubernetes" in content
    assert 'cluster = "homelab"' in content  # ((cluster.name)) rendered
    assert "{{" not in content  # the chart passes the content through tpl


def test_monitoring_namespace_allows_node_exporter() -> None:
    namespace = parsed("manifests/observability/namespace/namespace.yaml")
    assert namespace["metadata"]["name"] == "monitoring"
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"


@pytest.fixture(scope="module")
def graph() -> Graph:
    return Graph.build(catalog(load_inventory()))


def test_prometheus_crds_cover_everything_the_stack_needs(graph: Graph) -> None:
    crds = graph.components["observability/prometheus-crds"]
    names = {s.rsplit("_", 1)[-1].removesuffix(".yaml") for s in crds.sources}
    assert {"servicemonitors", "podmonitors", "prometheusrules", "prometheuses"} <= names
    assert all("/v0.93.1/" in s for s in crds.sources)  # the operator kps 88.5.3 ships


def test_grafana_admin_comes_from_infisical(graph: Graph) -> None:
    kps = graph.components["observability/kube-prometheus-stack"]
    assert isinstance(kps, HelmRelease)
    (spec,) = kps.secrets
    assert (spec.namespace, spec.name) == ("monitoring", "grafana-admin")
    assert set(spec.keys) == {"admin-user", "admin-password"}


def test_prometheus_gate_waits_for_the_statefulset_and_reports_what_it_saw(
    fake_tools: Any, graph: Graph
) -> None:
    from tasks.engine.context import run_context

    gate = graph.components["observability/prometheus-ready"]
    assert isinstance(gate, Gate)
    fake_tools.rule("kubectl", "rollout", "statefulset/prometheus", exit=1, stderr="timed out")
    fake_tools.rule("kubectl", "get", "statefulset", stdout="READY 0/1")
    with (
        run_context(load_inventory(), dry_run=False, fetch_kubeconfig=False) as ctx,
        pytest.raises(GateError) as caught,
    ):
        gate.run(ctx)
    message = str(caught.value)
    assert "waited for statefulset/prometheus-kube-prometheus-stack-prometheus" in message
    assert "READY 0/1" in message
    waits = [a for a in fake_tools.argvs("kubectl") if "rollout" in a or "wait" in a]
    assert any("--timeout=600s" in a for a in waits)


def test_values_files_exist_for_every_release_of_the_layer(graph: Graph) -> None:
    for comp in graph.components.values():
        if comp.layer == "observability" and isinstance(comp, HelmRelease):
            assert Path(comp.values_path).is_file(), comp.values_path


# Every chart container sized, and probed where the chart has no probe of its own ---------------

SIZED = [
    (KPS, "prometheus.prometheusSpec.resources"),  # the Prometheus object
    (KPS, "alertmanager.alertmanagerSpec.resources"),  # the Alertmanager object
    (KPS, "prometheusOperator.resources"),
    (KPS, "prometheusOperator.prometheusConfigReloader.resources"),
    (KPS, "kube-state-metrics.resources"),
    (KPS, "prometheus-node-exporter.resources"),
    (KPS, "grafana.resources"),
    (KPS, "grafana.sidecar.resources"),
    (KPS, "grafana.initChownData.resources"),
    (LOKI, "singleBinary.resources"),
    (LOKI, "gateway.resources"),
    (LOKI, "sidecar.resources"),
    (LOKI, "minio.resources"),
    (ALLOY, "alloy.resources"),
    (ALLOY, "configReloader.resources"),
]


@pytest.mark.parametrize(("relative", "key"), SIZED, ids=[f"{f}:{k}" for f, k in SIZED])
def test_chart_container_has_requests_and_limits(relative: str, key: str) -> None:
    resources = at(parsed(relative), key)
    for kind in ("requests", "limits"):
        assert set(resources[kind]) == {"cpu", "memory"}, kind


# (file, key) of a probe the chart leaves empty ({}), set here
PROBED = [
    (LOKI, "loki.livenessProbe"),
    (LOKI, "gateway.livenessProbe"),
    (ALLOY, "alloy.livenessProbe"),
]


@pytest.mark.parametrize(("relative", "key"), PROBED, ids=[f"{f}:{k}" for f, k in PROBED])
def test_probe_the_chart_leaves_empty_is_set(relative: str, key: str) -> None:
    probe = at(parsed(relative), key)
    assert {"httpGet", "tcpSocket", "exec"} & set(probe)
    assert probe["failureThreshold"] >= 3


def test_the_config_reloaders_of_prometheus_and_alertmanager_are_probed() -> None:
    assert at(parsed(KPS), "prometheusOperator.prometheusConfigReloader.enableProbe") is True


def test_grafana_lets_go_of_its_rwo_volume_before_the_new_pod_starts() -> None:
    grafana = at(parsed(KPS), "grafana")
    assert grafana["persistence"]["accessModes"] == ["ReadWriteOnce"]
    assert grafana["deploymentStrategy"] == {"type": "Recreate"}
