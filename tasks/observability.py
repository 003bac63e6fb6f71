"""Observability: kube-prometheus-stack, Loki (single binary + MinIO) and Alloy on every node."""

from __future__ import annotations

from .engine.components import Component, CrdBundle, HelmRelease, ManifestBundle, SecretSpec
from .engine.gates import crds_established, gate_after, resource_exists, rolled_out
from .engine.inventory import Inventory

LAYER = "observability"
NAMESPACE = "monitoring"
GRAFANA_REPO = "https://grafana.github.io/helm-charts"
# prometheus-operator v0.93.1 is the operator kube-prometheus-stack 88.5.3 ships
OPERATOR_CRDS = "https://raw.githubusercontent.com/prometheus-operator/prometheus-operator/v0.93.1/example/prometheus-operator-crd"
# Other layers ship ServiceMonitors/PodMonitors/rules, so these are applied early; the rest are
# only needed by kube-prometheus-stack. All of them come from this one step, because the chart's
# own CRD install is off (helm-values/kube-prometheus-stack.yaml says why).
MONITORING_CRDS = ("servicemonitors", "podmonitors", "prometheusrules")
STACK_CRDS = (
    "alertmanagerconfigs",
    "alertmanagers",
    "probes",
    "prometheusagents",
    "prometheuses",
    "scrapeconfigs",
    "thanosrulers",
)
GRAFANA_ADMIN = SecretSpec(
    NAMESPACE,
    "grafana-admin",
    {"admin-user": "GRAFANA_ADMIN_USER", "admin-password": "GRAFANA_ADMIN_PASSWORD"},
)
# the StatefulSet the operator creates for the Prometheus of release kube-prometheus-stack
PROMETHEUS_STATEFULSET = "prometheus-kube-prometheus-stack-prometheus"


def components(inv: Inventory) -> list[Component]:
    """Monitoring CRDs first (others ship ServiceMonitors), then the stack, Loki and Alloy."""
    crds = CrdBundle(
        layer=LAYER, name="prometheus-crds", needs=("talos/health",),
        sources=tuple(
            f"{OPERATOR_CRDS}/monitoring.coreos.com_{name}.yaml"
            for name in (*MONITORING_CRDS, *STACK_CRDS)
        ),
    )  # fmt: skip
    stack = HelmRelease(
        layer=LAYER, name="kube-prometheus-stack",
        needs=(
            "observability/namespace",
            "storage/longhorn-ready",
            "observability/prometheus-crds-established",
            # Grafana's HTTPRoute (charts.validate's needs check)
            "network/gateway-api-established",
        ),
        repo="https://prometheus-community.github.io/helm-charts", version="88.5.3",
        namespace=NAMESPACE, timeout="15m", secrets=(GRAFANA_ADMIN,),
    )  # fmt: skip
    loki = HelmRelease(
        layer=LAYER, name="loki", needs=("observability/namespace", "storage/longhorn-ready"),
        repo=GRAFANA_REPO, version="6.55.0", namespace=NAMESPACE, timeout="15m",
    )  # fmt: skip
    alloy = HelmRelease(
        layer=LAYER, name="alloy", needs=("observability/loki-ready",),
        repo=GRAFANA_REPO, version="1.11.1", namespace=NAMESPACE,
    )  # fmt: skip
    monitoring_crds = [f"{n}.monitoring.coreos.com" for n in (*MONITORING_CRDS, *STACK_CRDS)]
    return [
        crds,
        gate_after(crds, crds_established(monitoring_crds), name="prometheus-crds-established"),
        # node-exporter needs a privileged namespace (Talos enforces Pod Security `baseline`)
        ManifestBundle(layer=LAYER, name="namespace", needs=("talos/health",)),
        stack,
        # scheduler-plugins reads Prometheus from its first scheduling cycle: wait for the
        # operator and for the Prometheus StatefulSet it creates (helm --wait does not see it)
        gate_after(
            stack,
            rolled_out("deployment", "kube-prometheus-stack-operator", NAMESPACE),
            resource_exists("statefulset", PROMETHEUS_STATEFULSET, NAMESPACE),
            rolled_out("statefulset", PROMETHEUS_STATEFULSET, NAMESPACE, timeout="600s"),
            name="prometheus-ready",
        ),
        loki,
        gate_after(
            loki,
            rolled_out("statefulset", "loki", NAMESPACE, timeout="600s"),
            rolled_out("deployment", "loki-gateway", NAMESPACE),
        ),
        alloy,
        gate_after(alloy, rolled_out("daemonset", "alloy", NAMESPACE)),
    ]
