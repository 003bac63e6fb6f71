"""Scheduling: scheduler-plugins with Trimaran, and Kyverno injecting it into every new Pod."""

from __future__ import annotations

from .engine.components import Component, HelmRelease, ManifestBundle
from .engine.gates import crds_established, gate_after, rolled_out
from .engine.inventory import Inventory

SCHEDULER_NAME = "scheduler-plugins-scheduler"


def components(inv: Inventory) -> list[Component]:
    """The second scheduler (reading Prometheus), Kyverno, then the injection policy."""
    scheduler = HelmRelease(
        layer="scheduling", name="scheduler-plugins",
        # Trimaran scores from Prometheus' node recording rules from its first cycle
        needs=("observability/prometheus-ready",),
        repo="https://scheduler-plugins.sigs.k8s.io", version="0.34.7",
        namespace="scheduler-plugins",
    )  # fmt: skip
    kyverno = HelmRelease(
        layer="scheduling", name="kyverno",
        # its values turn on four ServiceMonitors (charts.validate's needs check)
        needs=("talos/health", "observability/prometheus-crds-established"),
        repo="https://kyverno.github.io/kyverno/", version="3.9.0", namespace="kyverno",
    )  # fmt: skip
    return [
        scheduler,
        gate_after(scheduler, rolled_out("deployment", SCHEDULER_NAME, "scheduler-plugins")),
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
