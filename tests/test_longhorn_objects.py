"""Longhorn's objects as kubectl lists them: volumes with their claims, and backups.

Shapes from the Longhorn v1.11 CRDs (``backups.longhorn.io`` and ``volumes.longhorn.io`` v1beta2:
``status.volumeName``, ``status.state``, ``status.backupCreatedAt``; ``status.kubernetesStatus``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tasks.verify.longhorn import latest_completed, read_backups, read_volumes, timestamp


def backup(name, volume, state, created, **status):
    return {
        "apiVersion": "longhorn.io/v1beta2", "kind": "Backup",
        "metadata": {"name": name, "namespace": "longhorn-system",
                     "labels": {"backup-volume": volume}},
        "status": {"volumeName": volume, "state": state, "backupCreatedAt": created, **status},
    }  # fmt: skip


def test_the_newest_completed_backup_of_each_volume():
    listing = {"items": [
        backup("b1", "pvc-a", "Completed", "2026-12-01T03:00:00Z", progress=100, url="s3://x/b1"),
        backup("b2", "pvc-a", "Completed", "2026-12-02T03:00:00Z", progress=100),
        backup("b3", "pvc-a", "Error", "2026-12-03T03:00:00Z", error="target unreachable"),
        backup("b4", "pvc-a", "InProgress", "", progress=40),
        backup("b5", "pvc-b", "Completed", "2026-11-20T03:00:00Z"),
    ]}  # fmt: skip
    found = read_backups(json.dumps(listing))
    assert [b.state for b in found] == [
        "Completed",
        "Completed",
        "Error",
        "InProgress",
        "Completed",
    ]
    assert found[2].error == "target unreachable" and found[3].progress == 40
    latest = latest_completed(found)
    assert {v: b.name for v, b in latest.items()} == {"pvc-a": "b2", "pvc-b": "b5"}
    assert latest["pvc-a"].created_at == datetime(2026, 12, 2, 3, tzinfo=UTC)


def test_a_backup_without_status_volume_falls_back_to_its_label():
    item = backup("b1", "pvc-a", "Completed", "2026-12-01T03:00:00Z")
    del item["status"]["volumeName"]
    assert read_backups(json.dumps({"items": [item]}))[0].volume == "pvc-a"


def test_a_volume_names_its_claim_and_last_backup():
    listing = {"items": [{
        "metadata": {"name": "pvc-1234"},
        "spec": {"numberOfReplicas": 2},
        "status": {"state": "attached", "robustness": "healthy", "lastBackup": "backup-9",
                   "lastBackupAt": "2026-12-03T01:00:00Z",
                   "kubernetesStatus": {"namespace": "mealie", "pvcName": "mealie-data"}},
    }]}  # fmt: skip
    (volume,) = read_volumes(json.dumps(listing))
    assert (volume.pvc_namespace, volume.pvc_name) == ("mealie", "mealie-data")
    assert volume.last_backup == "backup-9"
    assert volume.last_backup_at == datetime(2026, 12, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize("text", ["", None, "yesterday", 5])
def test_a_time_that_is_not_rfc3339_is_none(text):
    assert timestamp(text) is None
