"""Observability: kube-prometheus-stack, Loki (single binary + MinIO) and Alloy on every node."""

from __future__ import annotations

from .engine.components import Component, CrdBundle, HelmRelease, ManifestBundle, SecretSpec
from .engine.gates import Gate, crds_established, resource_exists, rolled_out
from .engine.inventory import Inventory

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
# the StatefulSet the operator creates for the Prometheus of release kube-prometheus-stack
PROMETHEUS_STATEFULSET = "prometheus-kube-prometheus-stack-prometheus"


def components(inv: Inventory) -> list[Component]:
    """Monitoring CRDs first (others ship ServiceMonitors), then the stack, Loki and Alloy."""
    return [
        CrdBundle(
            layer="observability",
            name="prometheus-crds",
            needs=("talos/health",),
            sources=tuple(
                f"{OPERATOR_CRDS}/monitoring.coreos.com_{name}.yaml"
                for name in (*MONITORING_CRDS, *STACK_CRDS)
            ),
        ),
        Gate(
            layer="observability",
            name="prometheus-crds-established",
            needs=("observability/prometheus-crds",),
            checks=(
                crds_established(
                    [f"{n}.monitoring.coreos.com" for n in (*MONITORING_CRDS, *STACK_CRDS)]
                ),
            ),
        ),
        # node-exporter needs a privileged namespace (Talos enforces Pod Security `baseline`)
        ManifestBundle(layer="observability", name="namespace", needs=("talos/health",)),
        HelmRelease(
            layer="observability",
            name="kube-prometheus-stack",
            needs=(
                "observability/namespace",
                "storage/longhorn-ready",
                "observability/prometheus-crds-established",
            ),
            release="kube-prometheus-stack",
            chart="kube-prometheus-stack",
            repo="https://prometheus-community.github.io/helm-charts",
            version="88.5.3",
            namespace=NAMESPACE,
            timeout="15m",
            secrets=(
                SecretSpec(
                    NAMESPACE,
                    "grafana-admin",
                    {
                        "admin-user": "GRAFANA_ADMIN_USER",
                        "admin-password": "GRAFANA_ADMIN_PASSWORD",
                    },
                ),
            ),
        ),
        # scheduler-plugins reads Prometheus from its first scheduling cycle: wait for the
        # operator and for the Prometheus StatefulSet it creates (helm --wait does not see it)
        Gate(
            layer="observability",
            name="prometheus-ready",
            needs=("observability/kube-prometheus-stack",),
            checks=(
                rolled_out("deployment", "kube-prometheus-stack-operator", NAMESPACE),
                resource_exists("statefulset", PROMETHEUS_STATEFULSET, NAMESPACE),
                rolled_out("statefulset", PROMETHEUS_STATEFULSET, NAMESPACE, timeout="600s"),
            ),
        ),
        HelmRelease(
            layer="observability",
            name="loki",
            needs=("observability/namespace", "storage/longhorn-ready"),
            release="loki",
            chart="loki",
            repo=GRAFANA_REPO,
            version="6.55.0",
            namespace=NAMESPACE,
            timeout="15m",
        ),
        Gate(
            layer="observability",
            name="loki-ready",
            needs=("observability/loki",),
            checks=(
                rolled_out("statefulset", "loki", NAMESPACE, timeout="600s"),
                rolled_out("deployment", "loki-gateway", NAMESPACE),
            ),
        ),
        HelmRelease(
            layer="observability",
            name="alloy",
            needs=("observability/loki-ready",),
            release="alloy",
            chart="alloy",
            repo=GRAFANA_REPO,
            version="1.11.1",
            namespace=NAMESPACE,
        ),
        Gate(
            layer="observability",
            name="alloy-ready",
            needs=("observability/alloy",),
            checks=(rolled_out("daemonset", "alloy", NAMESPACE),),
        ),
    ]
