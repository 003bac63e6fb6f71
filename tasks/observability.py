"""Observability: kube-prometheus-stack, Loki (single binary + MinIO) and Alloy on every node."""

from __future__ import annotations

from .engine.components import (
    Component,
    CrdBundle,
    Gate,
    HelmRelease,
    crds_established,
    rolled_out,
)
from .engine.deploy import layer_collection
from .engine.inventory import Inventory

GRAFANA_REPO = "https://grafana.github.io/helm-charts"
# prometheus-operator v0.93.1 is the operator kube-prometheus-stack 88.5.3 ships
OPERATOR_CRDS = "https://raw.githubusercontent.com/prometheus-operator/prometheus-operator/v0.93.1/example/prometheus-operator-crd"
MONITORING_CRDS = ("servicemonitors", "podmonitors", "prometheusrules")


def components(inv: Inventory) -> list[Component]:
    """Monitoring CRDs first (others ship ServiceMonitors), then the stack, Loki and Alloy."""
    return [
        CrdBundle(
            layer="observability",
            name="prometheus-crds",
            needs=("talos/health",),
            sources=tuple(
                f"{OPERATOR_CRDS}/monitoring.coreos.com_{name}.yaml" for name in MONITORING_CRDS
            ),
        ),
        Gate(
            layer="observability",
            name="prometheus-crds-established",
            needs=("observability/prometheus-crds",),
            checks=(crds_established([f"{n}.monitoring.coreos.com" for n in MONITORING_CRDS]),),
        ),
        HelmRelease(
            layer="observability",
            name="kube-prometheus-stack",
            needs=("storage/longhorn-ready", "observability/prometheus-crds-established"),
            release="kube-prometheus-stack",
            chart="kube-prometheus-stack",
            repo="https://prometheus-community.github.io/helm-charts",
            version="88.5.3",
            namespace="monitoring",
            timeout="15m",
        ),
        Gate(
            layer="observability",
            name="prometheus-ready",
            needs=("observability/kube-prometheus-stack",),
            checks=(rolled_out("deployment", "kube-prometheus-stack-operator", "monitoring"),),
        ),
        HelmRelease(
            layer="observability",
            name="loki",
            needs=("storage/longhorn-ready",),
            release="loki",
            chart="loki",
            repo=GRAFANA_REPO,
            version="6.55.0",
            namespace="monitoring",
            timeout="15m",
        ),
        HelmRelease(
            layer="observability",
            name="alloy",
            needs=("observability/loki",),
            release="alloy",
            chart="alloy",
            repo=GRAFANA_REPO,
            version="1.11.1",
            namespace="monitoring",
        ),
    ]


ns = layer_collection("observability", __doc__)
