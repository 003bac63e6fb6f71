"""Storage: Longhorn with RWO and RWX classes, recurring backups and etcd snapshots to Backblaze B2."""

from __future__ import annotations

from .backup.volumes import STORAGE_CLASSES
from .engine.components import Component, HelmRelease, ManifestBundle, SecretSpec
from .engine.gates import crds_established, gate_after, resource_exists, rolled_out
from .engine.inventory import Inventory
from .verify import longhorn

NAMESPACE = longhorn.NAMESPACE
# The CRDs the next steps create objects of (RecurringJob) or Longhorn needs to provision a volume
LONGHORN_CRDS = tuple(
    f"{plural}.longhorn.io"
    for plural in ("volumes", "engines", "replicas", "settings", "recurringjobs", "backuptargets")
)

# Backblaze B2 through its S3 API. Longhorn reads all three keys from one Secret, so the endpoint
# (https://s3.<region>.backblazeb2.com, not secret) is stored in Infisical beside the key pair.
B2_CREDENTIALS = SecretSpec(
    NAMESPACE,
    "longhorn-b2-credentials",
    {
        "AWS_ACCESS_KEY_ID": "B2_APPLICATION_KEY_ID",
        "AWS_SECRET_ACCESS_KEY": "B2_APPLICATION_KEY",
        "AWS_ENDPOINTS": "B2_S3_ENDPOINT",
    },
)

# etcd snapshots off the cluster (manifests/storage/talos-backup): the same B2 key pair and
# endpoint, and the age public key the snapshots are encrypted to (its private key is kept off
# the cluster, see the README's disaster recovery)
TALOS_BACKUP_S3 = SecretSpec(
    "talos-backup",
    "talos-backup-s3",
    {
        "AWS_ACCESS_KEY_ID": "B2_APPLICATION_KEY_ID",
        "AWS_SECRET_ACCESS_KEY": "B2_APPLICATION_KEY",
        "CUSTOM_S3_ENDPOINT": "B2_S3_ENDPOINT",
        "AGE_X25519_PUBLIC_KEY": "TALOS_BACKUP_AGE_PUBLIC_KEY",
    },
)


def components(inv: Inventory) -> list[Component]:
    """Longhorn's privileged namespace, the release, its classes and jobs, then the ready gate."""
    longhorn = HelmRelease(
        layer="storage", name="longhorn",
        needs=(
            "storage/namespace",
            "observability/prometheus-crds",
            "observability/prometheus-crds-established",
        ),
        repo="https://charts.longhorn.io", version="1.11.3", namespace=NAMESPACE, timeout="15m",
        secrets=(B2_CREDENTIALS,),
    )  # fmt: skip
    extras = ManifestBundle(
        layer="storage", name="longhorn-extras", needs=("storage/longhorn-manager-ready",),
        summary="apply the RWX StorageClass and the recurring backup/trim jobs "
        "(manifests/storage/longhorn-extras)",
    )  # fmt: skip
    return [
        ManifestBundle(layer="storage", name="namespace", needs=("talos/health",)),
        longhorn,
        gate_after(
            longhorn,
            crds_established(LONGHORN_CRDS),
            # the manager also serves the admission webhook every Longhorn object passes
            rolled_out("daemonset", "longhorn-manager", NAMESPACE),
            name="longhorn-manager-ready",
        ),
        extras,
        gate_after(
            extras,
            # the driver deployer creates the CSI plugin; a PVC binds only once both run
            rolled_out("deployment", "longhorn-driver-deployer", NAMESPACE),
            resource_exists("daemonset", "longhorn-csi-plugin", NAMESPACE, timeout="300s"),
            rolled_out("daemonset", "longhorn-csi-plugin", NAMESPACE),
            *(resource_exists("storageclass", name) for name in STORAGE_CLASSES),
            name="longhorn-ready",
        ),
        ManifestBundle(
            layer="storage",
            name="talos-backup",
            needs=("talos/health",),
            secrets=(TALOS_BACKUP_S3,),
            summary="apply talos-backup (etcd snapshots through the Talos API, age-encrypted, "
            "to B2; manifests/storage/talos-backup)",
        ),
    ]
