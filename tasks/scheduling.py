"""Scheduling: scheduler-plugins with Trimaran, and Kyverno injecting it into every new Pod."""

from __future__ import annotations

from .engine.components import Component, HelmRelease, ManifestBundle
from .engine.gates import Gate, crds_established, rolled_out
from .engine.inventory import Inventory

SCHEDULER_NAME = "scheduler-plugins-scheduler"


def components(inv: Inventory) -> list[Component]:
    """The second scheduler (reading Prometheus), Kyverno, then the injection policy."""
    return [
        HelmRelease(
            layer="scheduling",
            name="scheduler-plugins",
            # Trimaran scores from Prometheus' node recording rules from its first cycle
            needs=("observability/prometheus-ready",),
            release="scheduler-plugins",
            chart="scheduler-plugins",
            repo="https://scheduler-plugins.sigs.k8s.io",
            version="0.34.7",
            namespace="scheduler-plugins",
        ),
        Gate(
            layer="scheduling",
            name="scheduler-plugins-ready",
            needs=("scheduling/scheduler-plugins",),
            checks=(rolled_out("deployment", SCHEDULER_NAME, "scheduler-plugins"),),
        ),
        HelmRelease(
            layer="scheduling",
            name="kyverno",
            needs=("talos/health",),
            release="kyverno",
            chart="kyverno",
            repo="https://kyverno.github.io/kyverno/",
            version="3.9.0",
            namespace="kyverno",
        ),
        Gate(
            layer="scheduling",
            name="kyverno-ready",
            needs=("scheduling/kyverno",),
            checks=(
                crds_established(["clusterpolicies.kyverno.io"]),
                rolled_out("deployment", "kyverno-admission-controller", "kyverno"),
            ),
        ),
        # Only once the scheduler runs may Pods be sent to it: a Pod naming a scheduler that does
        # not exist stays Pending forever.
        ManifestBundle(
            layer="scheduling",
            name="trimaran-policy",
            needs=("scheduling/kyverno-ready", "scheduling/scheduler-plugins-ready"),
        ),
    ]
