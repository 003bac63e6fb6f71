"""Scheduling: scheduler-plugins with Trimaran, and Kyverno injecting it into every new Pod."""

from __future__ import annotations

from .engine.components import Component, HelmRelease, ManifestBundle
from .engine.gates import condition, crds_established, gate_after, rolled_out
from .engine.inventory import Inventory

SCHEDULER_NAME = "scheduler-plugins-scheduler"
SCHEDULER_NAMESPACE = "scheduler-plugins"
PRIORITY_CLASS = "platform-critical"


def components(inv: Inventory) -> list[Component]:
    """The second scheduler (reading Prometheus), Kyverno, then the injection policy."""
    # its PriorityClass must exist before a Pod names it, and its PDB before the first drain
    guard = ManifestBundle(layer="scheduling", name="scheduler-guard", needs=("talos/health",))
    scheduler = HelmRelease(
        layer="scheduling", name="scheduler-plugins",
        # Trimaran scores from Prometheus' node recording rules from its first cycle
        needs=("observability/prometheus-ready", guard.id),
        repo="https://scheduler-plugins.sigs.k8s.io", version="0.34.7",
        namespace=SCHEDULER_NAMESPACE,
    )  # fmt: skip
    kyverno = HelmRelease(
        layer="scheduling", name="kyverno",
        # its values turn on four ServiceMonitors (charts.validate's needs check)
        needs=("talos/health", "observability/prometheus-crds-established"),
        repo="https://kyverno.github.io/kyverno/", version="3.9.0", namespace="kyverno",
    )  # fmt: skip
    return [
        guard,
        scheduler,
        # serving: every replica rolled out, and the Deployment Available (its ready replicas meet
        # the rollout's minimum), which is what a status probe of this gate asks a live cluster
        gate_after(
            scheduler,
            rolled_out("deployment", SCHEDULER_NAME, SCHEDULER_NAMESPACE),
            condition("deployment", SCHEDULER_NAME, SCHEDULER_NAMESPACE, "Available"),
        ),
        kyverno,
        gate_after(
            kyverno,
            crds_established(["clusterpolicies.kyverno.io"]),
            rolled_out("deployment", "kyverno-admission-controller", "kyverno"),
        ),
        # Only once the scheduler runs may Pods be sent to it: a Pod naming a scheduler that does
        # not exist stays Pending forever.
        ManifestBundle(
            layer="scheduling",
            name="trimaran-policy",
            needs=("scheduling/kyverno-ready", "scheduling/scheduler-plugins-ready"),
        ),
    ]
