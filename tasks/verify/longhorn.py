"""Longhorn volumes and replicas as kubectl reports them, and the rules for which are healthy.

``kubectl get volumes.longhorn.io -o json`` is read by two checks: the gate between the nodes of a
rolling Talos upgrade (``tasks/talos/upgrade.py``: never take down a node while a volume is not
healthy) and the post-deploy storage check (:func:`.verification.longhorn_volume_problems`, which
also wants the configured replica count). Both parse it here and judge health by
:attr:`Volume.healthy`, so the two cannot drift apart.

``kubectl get replicas.longhorn.io -o json`` says where each copy lives (``spec.volumeName``,
``spec.nodeID``; a failed replica has ``spec.failedAt`` set). With the chart's soft anti-affinity
(``replicaSoftAntiAffinity``) Longhorn may schedule two replicas of a volume on one node and the
volume still reports ``healthy``: losing that node loses both. :func:`colocated` finds them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..engine.command import Command
from ..engine.kubectl import Kubectl

# the reason of a volume's ``Restore`` condition when every replica failed to restore
# (longhorn-manager v1.11.3 k8s/pkg/apis/longhorn/v1beta2/volume.go)
RESTORE_FAILURE = "RestoreFailure"
# the backup label that carries the backed-up volume's claim as JSON (``namespace``,
# ``pvcName``): the API's snapshot backup, which recurring jobs use, sets it
# (longhorn-manager v1.11.3 api/snapshot.go SnapshotBackup, types/types.go KubernetesStatusLabel)
KUBERNETES_STATUS_LABEL = "KubernetesStatus"


# the namespace Longhorn runs in and keeps its objects in (the storage layer installs it there)
NAMESPACE = "longhorn-system"


def list_command(kubectl: Kubectl, plural: str) -> Command:
    """``kubectl get <plural>.longhorn.io -n longhorn-system -o json``: every object of a kind."""
    return kubectl("get", f"{plural}.longhorn.io", "-n", NAMESPACE, "-o", "json")


def timestamp(text: object) -> datetime | None:
    """An RFC 3339 time as Kubernetes and Longhorn write it (``2026-12-01T03:00:00Z``), or None."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass(frozen=True)
class Volume:
    """One Longhorn volume: its name, where it stands, and how many replicas it should have."""

    name: str
    state: str  # attached, detached, attaching, ...; "" when Longhorn has not said yet
    robustness: str  # healthy, degraded, faulted, or unknown (what a detached volume reports)
    replicas: int | None  # spec.numberOfReplicas
    # status.kubernetesStatus: the claim bound to it ("" when none); status.lastBackupAt
    pvc_namespace: str = ""
    pvc_name: str = ""
    last_backup: str = ""
    last_backup_at: datetime | None = None
    # a volume restored from a backup (spec.fromBackup): status.restoreInitiated, then
    # status.restoreRequired until the restore finished; restore_error is the message of a
    # ``Restore`` condition with reason ``RestoreFailure`` (longhorn-manager v1.11.3
    # controller/volume_controller.go: checkAndInitVolumeRestore, closeVolumeDependentResources)
    from_backup: str = ""
    restore_initiated: bool = False
    restore_required: bool = False
    restore_error: str = ""

    @property
    def healthy(self) -> bool:
        """Attached volumes must be ``healthy``; detached ones are fine; ``faulted`` never is."""
        if self.robustness == "faulted":
            return False
        return self.state == "detached" or self.robustness == "healthy"


def volumes(listing: Mapping[str, Any]) -> list[Volume]:
    """The volumes of a parsed ``kubectl get volumes.longhorn.io -o json`` listing."""
    found = []
    for item in listing.get("items") or []:
        status = item.get("status") or {}
        claim = status.get("kubernetesStatus") or {}
        failure = next(
            (
                c
                for c in status.get("conditions") or []
                if isinstance(c, Mapping)
                and c.get("type") == "Restore"
                and c.get("reason") == RESTORE_FAILURE
            ),
            None,
        )
        found.append(
            Volume(
                name=(item.get("metadata") or {}).get("name", "?"),
                state=status.get("state") or "",
                robustness=status.get("robustness") or "",
                replicas=(item.get("spec") or {}).get("numberOfReplicas"),
                pvc_namespace=claim.get("namespace") or "",
                pvc_name=claim.get("pvcName") or "",
                last_backup=status.get("lastBackup") or "",
                last_backup_at=timestamp(status.get("lastBackupAt")),
                from_backup=(item.get("spec") or {}).get("fromBackup") or "",
                restore_initiated=bool(status.get("restoreInitiated")),
                restore_required=bool(status.get("restoreRequired")),
                restore_error=(
                    (failure.get("message") or RESTORE_FAILURE) if failure is not None else ""
                ),
            )
        )
    return found


def _listing(payload: str) -> Mapping[str, Any]:
    """kubectl's JSON List (no output: empty); ``ValueError`` if it is not one."""
    listing = json.loads(payload or "{}")  # json.JSONDecodeError is a ValueError
    if not isinstance(listing, Mapping):
        raise ValueError(f"expected a kubectl List, got {type(listing).__name__}")
    return listing


def read_volumes(payload: str) -> list[Volume]:
    """The volumes in kubectl's JSON output (no output: none); ``ValueError`` if it is no list."""
    return volumes(_listing(payload))


@dataclass(frozen=True)
class Replica:
    """One Longhorn replica: which volume it copies and which node holds it."""

    name: str
    volume: str
    node: str  # "" while unscheduled
    failed: bool  # spec.failedAt is set: Longhorn no longer counts it


def replicas(listing: Mapping[str, Any]) -> list[Replica]:
    """The replicas of a parsed ``kubectl get replicas.longhorn.io -o json`` listing."""
    found = []
    for item in listing.get("items") or []:
        spec = item.get("spec") or {}
        found.append(
            Replica(
                name=(item.get("metadata") or {}).get("name", "?"),
                volume=spec.get("volumeName") or "",
                node=spec.get("nodeID") or "",
                failed=bool(spec.get("failedAt")),
            )
        )
    return found


def read_replicas(payload: str) -> list[Replica]:
    """The replicas in kubectl's JSON output (no output: none); ``ValueError`` if it is no list."""
    return replicas(_listing(payload))


def colocated(found: list[Replica]) -> dict[str, list[str]]:
    """Volumes with two or more working replicas on one node: volume → the nodes holding several."""
    per_volume: dict[str, dict[str, int]] = {}
    for r in found:
        if r.failed or not r.node or not r.volume:
            continue
        nodes = per_volume.setdefault(r.volume, {})
        nodes[r.node] = nodes.get(r.node, 0) + 1
    shared = {
        volume: sorted(node for node, count in nodes.items() if count > 1)
        for volume, nodes in per_volume.items()
    }
    return {volume: nodes for volume, nodes in sorted(shared.items()) if nodes}


@dataclass(frozen=True)
class Backup:
    """One Longhorn backup (``backups.longhorn.io``, v1beta2): of which volume, how far, when.

    ``state`` is Longhorn's ``BackupState``: ``New``, ``Pending``, ``InProgress``, ``Completed``,
    ``Error`` or ``Unknown`` (longhorn-manager ``k8s/pkg/apis/longhorn/v1beta2/backup.go``).
    """

    name: str
    volume: str  # status.volumeName, else the backup-volume label
    state: str
    created_at: datetime | None  # status.backupCreatedAt
    progress: int  # 0..100
    url: str  # status.url: where in the backup target it lives
    error: str
    size: str  # status.size, bytes as a string
    # status.volumeSize: the backed-up volume's size in bytes (what a restored volume's
    # spec.size must be); the claim it belonged to, from the KubernetesStatus label ("" unknown)
    volume_size: str = ""
    pvc_namespace: str = ""
    pvc_name: str = ""

    @property
    def completed(self) -> bool:
        """Finished and stored in the backup target."""
        return self.state == "Completed"


def backups(listing: Mapping[str, Any]) -> list[Backup]:
    """The backups of a parsed ``kubectl get backups.longhorn.io -o json`` listing."""
    found = []
    for item in listing.get("items") or []:
        meta = item.get("metadata") or {}
        status = item.get("status") or {}
        found.append(
            Backup(
                name=meta.get("name", "?"),
                volume=status.get("volumeName")
                or (meta.get("labels") or {}).get("backup-volume", ""),
                state=status.get("state") or "",
                created_at=timestamp(status.get("backupCreatedAt")),
                progress=int(status.get("progress") or 0),
                url=status.get("url") or "",
                error=status.get("error") or "",
                size=str(status.get("size") or ""),
                volume_size=str(status.get("volumeSize") or ""),
                **_claim_of(status.get("labels") or {}),
            )
        )
    return found


def _claim_of(labels: Mapping[str, Any]) -> dict[str, str]:
    """``pvc_namespace``/``pvc_name`` from a backup's KubernetesStatus label (JSON), or none."""
    try:
        claim = json.loads(labels.get(KUBERNETES_STATUS_LABEL) or "{}")
    except ValueError:
        return {}
    if not isinstance(claim, Mapping):
        return {}
    return {
        "pvc_namespace": str(claim.get("namespace") or ""),
        "pvc_name": str(claim.get("pvcName") or ""),
    }


def read_backups(payload: str) -> list[Backup]:
    """The backups in kubectl's JSON output (no output: none); ``ValueError`` if it is no list."""
    return backups(_listing(payload))


def latest_completed(found: Iterable[Backup]) -> dict[str, Backup]:
    """Each volume's newest completed backup (by ``backupCreatedAt``): volume → backup."""
    latest: dict[str, Backup] = {}
    for b in found:
        if not b.completed or not b.volume or b.created_at is None:
            continue
        held = latest.get(b.volume)
        if held is None or (held.created_at is not None and b.created_at > held.created_at):
            latest[b.volume] = b
    return dict(sorted(latest.items()))


@dataclass(frozen=True)
class BackupStore:
    """How far the cluster has read its backup target (``backuptargets``, ``backupvolumes``).

    A new cluster learns what the target holds in two passes: the BackupTarget syncs
    (``status.available``, ``status.lastSyncedAt``) and makes a BackupVolume per volume found;
    each BackupVolume syncs (``status.lastSyncedAt``) and makes a Backup per backup, whose status
    the backup controller then fills (longhorn-manager v1.11.3
    k8s/pkg/apis/longhorn/v1beta2/{backuptarget,backupvolume}.go, controller/
    backup_volume_controller.go). Only when every pass is done is "no backup" an answer.
    """

    available: bool
    # backup volumes not read yet: not synced, or their last backup not listed with a state
    pending: tuple[str, ...]
    backups: tuple[Backup, ...]

    @property
    def synced(self) -> bool:
        return self.available and not self.pending


def backup_store(listing: Mapping[str, Any]) -> BackupStore:
    """A parsed ``kubectl get backuptargets,backupvolumes,backups -o json`` listing, judged."""
    items = [i for i in listing.get("items") or [] if isinstance(i, Mapping)]
    of_kind = {
        kind: [i for i in items if i.get("kind") == kind]
        for kind in ("BackupTarget", "BackupVolume", "Backup")
    }
    found = backups({"items": of_kind["Backup"]})
    stated = {b.name for b in found if b.state}
    available = any(
        (t.get("status") or {}).get("available") and (t.get("status") or {}).get("lastSyncedAt")
        for t in of_kind["BackupTarget"]
    )
    pending = []
    for bv in of_kind["BackupVolume"]:
        status = bv.get("status") or {}
        last = status.get("lastBackupName") or ""
        if not status.get("lastSyncedAt") or (last and last not in stated):
            pending.append((bv.get("metadata") or {}).get("name", "?"))
    return BackupStore(
        available=bool(available), pending=tuple(sorted(pending)), backups=tuple(found)
    )


def read_backup_store(payload: str) -> BackupStore:
    """The backup store in kubectl's JSON output; ``ValueError`` if it is no list."""
    return backup_store(_listing(payload))


def latest_for_claim(
    found: Iterable[Backup], namespace: str, pvc: str, volumes: Iterable[str] = ()
) -> Backup | None:
    """The newest completed backup of the claim ``namespace/pvc``, or None: a backup is the
    claim's by its KubernetesStatus label, or by being of one of ``volumes`` (the Longhorn
    volumes bound to the claim now)."""
    names = set(volumes)
    done = [
        b
        for b in found
        if b.completed
        and b.created_at is not None
        and ((b.pvc_namespace, b.pvc_name) == (namespace, pvc) or (b.volume and b.volume in names))
    ]
    return max(done, key=lambda b: b.created_at) if done else None  # type: ignore[arg-type,return-value]
