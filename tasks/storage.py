"""Storage: Longhorn with RWO and RWX classes and recurring backups to Backblaze B2."""

from __future__ import annotations

from .engine.components import (
    Component,
    Gate,
    HelmRelease,
    ManifestBundle,
    SecretSpec,
    resource_exists,
    rolled_out,
)
from .engine.deploy import layer_collection
from .engine.inventory import Inventory


def components(inv: Inventory) -> list[Component]:
    """Longhorn, its readiness gate, then its StorageClasses and backup jobs."""
    return [
        HelmRelease(
            layer="storage",
            name="longhorn",
            needs=("talos/health", "observability/prometheus-crds"),
            release="longhorn",
            chart="longhorn",
            repo="https://charts.longhorn.io",
            version="1.11.3",
            namespace="longhorn-system",
            timeout="15m",
            secrets=(
                SecretSpec(
                    "longhorn-system",
                    "longhorn-b2-credentials",
                    {
                        "AWS_ACCESS_KEY_ID": "B2_APPLICATION_KEY_ID",
                        "AWS_SECRET_ACCESS_KEY": "B2_APPLICATION_KEY",
                    },
                ),
            ),
        ),
        Gate(
            layer="storage",
            name="longhorn-ready",
            needs=("storage/longhorn",),
            checks=(
                rolled_out("daemonset", "longhorn-manager", "longhorn-system"),
                resource_exists("storageclass", "longhorn"),
            ),
        ),
        ManifestBundle(layer="storage", name="longhorn-extras", needs=("storage/longhorn-ready",)),
    ]


ns = layer_collection("storage", __doc__)
