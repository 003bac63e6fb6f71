"""The Kubernetes and Longhorn objects a backup or a restore creates, as pure builders.

Longhorn v1.11 (longhorn/website ``content/docs/1.11.3/snapshots-and-backups/``, longhorn-manager
v1.11.3 ``k8s/pkg/apis/longhorn/v1beta2/``):

- an on-demand backup is a ``Snapshot`` (``spec.volume``, ``spec.createSnapshot: true``;
  setup-a-snapshot.md) and then a ``Backup`` whose ``spec.snapshotName`` names it
  (backup-and-restore/create-a-backup.md). The ``backup-volume`` label says whose backup it is
  (the admission webhook would otherwise look it up through the snapshot:
  webhook/resources/backup/mutator.go), and ``spec.labels`` carries the claim as the
  ``KubernetesStatus`` label, as the API's backups do (api/snapshot.go), so a rebuilt cluster
  can tell which claim a backup belongs to;
- a restore is the "Restore via Custom Resource" path (backup-and-restore/
  restore-from-a-backup.md): a ``Volume`` with ``spec.fromBackup`` the backup's URL and
  ``spec.size`` its exact byte count as a string, then, once restored, a PersistentVolume on the
  ``driver.longhorn.io`` CSI driver whose ``volumeHandle`` is the Volume's name and the claim
  the app's manifests expect, bound to it by ``volumeName`` (restore-statefulset.md for the
  claim of a StatefulSet's template, and the CSI ``volumeAttributes``).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..engine.kubectl import namespace_manifest
from ..verify.longhorn import KUBERNETES_STATUS_LABEL
from ..verify.longhorn import NAMESPACE as LONGHORN_NAMESPACE
from .volumes import DATA_LOCALITY, PART_OF, REPLICAS, STALE_REPLICA_TIMEOUT, DeclaredVolume

LONGHORN_API = "longhorn.io/v1beta2"
CSI_DRIVER = "driver.longhorn.io"
# Longhorn names (util.ValidateName: ^[a-z0-9][a-z0-9_.-]+$) that also fit a label value (63)
MAX_NAME = 63
# the label a restore puts on what it creates (its value: ``<namespace>-<claim>``, a valid label)
RESTORED_FOR = "onecluster.io/restored-for"


def volume_name(volume: DeclaredVolume) -> str:
    """The restored Longhorn volume's (and PersistentVolume's) name: ``<namespace>-<claim>``."""
    name = f"{volume.namespace}-{volume.pvc}".lower()
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: MAX_NAME - 9].rstrip('-.')}-{digest}"


def snapshot(name: str, longhorn_volume: str) -> dict[str, Any]:
    """A Longhorn ``Snapshot`` taken now of ``longhorn_volume``."""
    return {
        "apiVersion": LONGHORN_API,
        "kind": "Snapshot",
        "metadata": {"name": name, "namespace": LONGHORN_NAMESPACE},
        "spec": {"volume": longhorn_volume, "createSnapshot": True, "labels": {}},
    }


def backup(name: str, snapshot_name: str, longhorn_volume: str, claim: DeclaredVolume) -> dict:
    """A Longhorn ``Backup`` of the snapshot ``snapshot_name`` into the backup target."""
    status = {"namespace": claim.namespace, "pvcName": claim.pvc}
    return {
        "apiVersion": LONGHORN_API,
        "kind": "Backup",
        "metadata": {
            "name": name,
            "namespace": LONGHORN_NAMESPACE,
            "labels": {"backup-volume": longhorn_volume},
        },
        "spec": {
            "snapshotName": snapshot_name,
            "backupMode": "incremental",
            "labels": {
                KUBERNETES_STATUS_LABEL: json.dumps(status, separators=(",", ":")),
                "onecluster.io/taken-by": "storage.backup",
            },
        },
    }


def restored_volume(claim: DeclaredVolume, backup_url: str, size_bytes: str) -> dict[str, Any]:
    """The Longhorn ``Volume`` restored from ``backup_url``, replicated like its StorageClass."""
    return {
        "apiVersion": LONGHORN_API,
        "kind": "Volume",
        "metadata": {
            "name": volume_name(claim),
            "namespace": LONGHORN_NAMESPACE,
            "labels": {RESTORED_FOR: volume_name(claim)},
        },
        "spec": {
            "size": str(size_bytes),  # the exact byte count, a string (the webhook insists)
            "fromBackup": backup_url,
            "numberOfReplicas": REPLICAS,
            "staleReplicaTimeout": STALE_REPLICA_TIMEOUT,
            "dataLocality": DATA_LOCALITY,
            "accessMode": "rwx" if claim.rwx else "rwo",
            "frontend": "blockdev",
            "dataEngine": "v1",
        },
    }


def persistent_volume(claim: DeclaredVolume, size_bytes: str) -> dict[str, Any]:
    """The PersistentVolume on the Longhorn CSI driver for the restored volume, kept for the
    claim (``claimRef``) so no other claim can bind it."""
    name = volume_name(claim)
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "labels": {RESTORED_FOR: name}},
        "spec": {
            "capacity": {"storage": str(size_bytes)},
            "volumeMode": "Filesystem",
            "accessModes": list(claim.access_modes),
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": claim.storage_class,
            "claimRef": {"namespace": claim.namespace, "name": claim.pvc},
            "csi": {
                "driver": CSI_DRIVER,
                "fsType": "ext4",
                "volumeHandle": name,
                "volumeAttributes": {
                    "numberOfReplicas": str(REPLICAS),
                    "staleReplicaTimeout": str(STALE_REPLICA_TIMEOUT),
                },
            },
        },
    }


def persistent_volume_claim(claim: DeclaredVolume) -> dict[str, Any]:
    """The claim exactly as the app's manifests declare it, bound to the restored volume.

    Its spec equals the manifests' (a claim's spec is immutable once made), so the app's own
    apply later finds nothing to change; ``volumeName`` is the restore's alone.
    """
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": claim.pvc,
            "namespace": claim.namespace,
            "labels": dict(claim.labels),
        },
        "spec": {
            "accessModes": list(claim.access_modes),
            "storageClassName": claim.storage_class,
            "resources": {"requests": {"storage": claim.size}},
            "volumeName": volume_name(claim),
        },
    }


def claim_stream(claim: DeclaredVolume, size_bytes: str) -> list[dict[str, Any]]:
    """What binds the restored volume: the app's namespace, the PersistentVolume, the claim."""
    return [
        namespace_manifest(claim.namespace, {PART_OF: claim.app}),
        persistent_volume(claim, size_bytes),
        persistent_volume_claim(claim),
    ]
