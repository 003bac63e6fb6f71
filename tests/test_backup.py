"""Backups and restores of the declared volumes, against recording fakes of kubectl.

The fakes answer with the shapes of Longhorn v1.11.3's objects (longhorn-manager
``k8s/pkg/apis/longhorn/v1beta2/{backuptarget,backupvolume,backup,volume,snapshot}.go``): a
Backup's ``status.url``, ``status.volumeSize`` (bytes, a string), ``status.labels.KubernetesStatus``
(the claim as JSON, api/snapshot.go), a Volume's ``status.restoreInitiated``/``restoreRequired``
and a ``Restore`` condition with reason ``RestoreFailure`` (controller/volume_controller.go).
"""

from __future__ import annotations

import hashlib
import json

import pytest
import yaml
from conftest import ROOT, call_task
from invoke.exceptions import Exit

from tasks.backup import objects, take
from tasks.backup.restore import RestoreRequest, RestoreVolume, only_restores, with_restore
from tasks.backup.volumes import (
    REPLICAS,
    STALE_REPLICA_TIMEOUT,
    STORAGE_CLASSES,
    declared_volumes,
    render_context,
)
from tasks.engine import yamlio
from tasks.engine.errors import OneclusterError
from tasks.engine.execute import execute
from tasks.stack import STACK

INV = STACK.load()
VOLUMES = declared_volumes(STACK.components(INV), INV)
BY_CLAIM = {(v.namespace, v.pvc): v for v in VOLUMES}
MEALIE_DATA = BY_CLAIM[("mealie", "mealie-data")]
MEALIE_DB = BY_CLAIM[("mealie", "data-mealie-postgres-0")]
FAST = dict(interval=0.02, sync_timeout="5s", timeout="5s")
GI = 2**30


# -- the declared volumes --------------------------------------------------------------------


def test_every_declared_claim_is_found_in_the_manifests():
    found = {(v.namespace, v.pvc): (v.app, v.step) for v in VOLUMES}
    assert found == {
        ("nanobot", "nanobot-memory"): ("nanobot", "ai/nanobot"),
        ("openclaw", "openclaw-home"): ("openclaw", "ai/openclaw"),
        ("mealie", "data-mealie-postgres-0"): ("mealie", "apps/mealie-postgres"),
        ("mealie", "mealie-data"): ("mealie", "apps/mealie"),
        ("wordpress", "data-wordpress-mysql-0"): ("wordpress", "apps/wordpress-mysql"),
        ("wordpress", "wordpress-html"): ("wordpress", "apps/wordpress"),
        ("dispatcharr", "data-dispatcharr-postgres-0"): (
            "dispatcharr",
            "apps/dispatcharr-postgres",
        ),
        ("dispatcharr", "data-dispatcharr-redis-0"): ("dispatcharr", "apps/dispatcharr-redis"),
        ("dispatcharr", "dispatcharr-data"): ("dispatcharr", "apps/dispatcharr"),
        ("sterlingpdf", "sterlingpdf-configs"): ("sterlingpdf", "apps/sterlingpdf"),
    }
    assert MEALIE_DATA.rwx and MEALIE_DATA.storage_class == "longhorn-rwx"
    assert MEALIE_DB.size == "10Gi" and not MEALIE_DB.rwx


def test_restored_volumes_are_replicated_like_the_storage_classes():
    """REPLICAS and STALE_REPLICA_TIMEOUT are what both Longhorn classes give a volume."""
    rwx = yaml.safe_load(
        (ROOT / "manifests/storage/longhorn-extras/storageclass-rwx.yaml").read_text()
    )
    assert rwx["metadata"]["name"] in STORAGE_CLASSES
    assert rwx["parameters"]["numberOfReplicas"] == str(REPLICAS)
    assert rwx["parameters"]["staleReplicaTimeout"] == str(STALE_REPLICA_TIMEOUT)
    values = yaml.safe_load((ROOT / "helm-values/longhorn.yaml").read_text())
    assert values["persistence"]["defaultClassReplicaCount"] == REPLICAS


def test_restore_objects_follow_the_longhorn_doc():
    """restore-from-a-backup.md (1.11.3): size the exact bytes as a string, fromBackup the URL;
    the PV's volumeHandle is the Volume's name on driver.longhorn.io; the claim binds by name."""
    url = "s3://bucket@us-west-004/?backup=backup-1&volume=pvc-1"
    vol = objects.restored_volume(MEALIE_DATA, url, str(5 * GI))
    assert vol["spec"]["size"] == str(5 * GI) and vol["spec"]["fromBackup"] == url
    assert vol["spec"]["numberOfReplicas"] == 2 and vol["spec"]["accessMode"] == "rwx"
    ns, pv, pvc = objects.claim_stream(MEALIE_DATA, str(5 * GI))
    assert ns["kind"] == "Namespace" and ns["metadata"]["name"] == "mealie"
    assert pv["spec"]["csi"]["driver"] == "driver.longhorn.io"
    assert pv["spec"]["csi"]["volumeHandle"] == vol["metadata"]["name"] == pv["metadata"]["name"]
    assert pv["spec"]["claimRef"] == {"namespace": "mealie", "name": "mealie-data"}
    assert pvc["spec"]["volumeName"] == pv["metadata"]["name"]
    # the claim's spec equals the manifests' (immutable once made): the app's apply changes nothing
    manifest = yaml.safe_load((ROOT / "manifests/apps/mealie/data.yaml").read_text())
    assert {k: v for k, v in pvc["spec"].items() if k != "volumeName"} == manifest["spec"]


def test_a_long_claim_gets_a_volume_name_longhorn_accepts():
    import dataclasses
    import re

    long = dataclasses.replace(MEALIE_DATA, pvc="x" * 80)
    name = objects.volume_name(long)
    assert len(name) <= 63 and re.match(r"^[a-z0-9][a-z0-9_.-]+$", name)
    made = [objects.restored_volume(long, "s3://b@r/", "1"), *objects.claim_stream(long, "1")]
    for label in (v for doc in made for v in doc["metadata"].get("labels", {}).values()):
        assert re.match(r"^([a-z0-9A-Z]([-a-zA-Z0-9_.]{0,61}[a-zA-Z0-9])?)?$", label), label


# -- the plan: a restore step before each volume's consumer -----------------------------------


def plan_json(**flags) -> list[dict]:
    from tasks.engine.execute import plan

    catalog = with_restore(STACK, RestoreRequest(**flags)) if flags.get("restore", True) else STACK
    return json.loads(plan(catalog, fmt="json"))["steps"]


def test_the_restore_plan_puts_a_restore_step_before_each_app_volume():
    steps = plan_json()
    at = {s["id"]: i for i, s in enumerate(steps)}
    needs = {s["id"]: s["needs"] for s in steps}
    for v in VOLUMES:
        rid = f"storage/restore-{v.app}-{v.pvc}"
        assert needs[rid] == ["storage/longhorn-ready"]
        assert rid in needs[v.step], f"{v.step} does not wait for {rid}"
        assert at["storage/longhorn-ready"] < at[rid] < at[v.step]


def test_the_default_plan_has_no_restore_step():
    ids = [
        s["id"]
        for s in json.loads(
            __import__("tasks.engine.execute", fromlist=["plan"]).plan(STACK, fmt="json")
        )["steps"]
    ]
    assert not [i for i in ids if "/restore-" in i]


def test_rebuild_restore_dry_run_shows_the_restore_steps(fake_tools, capsys):
    call_task("cluster.rebuild", restore=True, dry_run=True)
    out = capsys.readouterr().out
    for v in VOLUMES:
        assert out.index(f"# storage/restore-{v.app}-{v.pvc} (restore)") < out.index(
            f"# {v.step} ("
        )
    assert "--field-manager=onecluster-restore" in out
    assert fake_tools.calls("kubectl") == []  # a dry-run runs nothing, not even the reads


def test_allow_empty_without_restore_is_a_flag_error(fake_tools):
    with pytest.raises(Exit) as exc:
        call_task("cluster.rebuild", allow_empty=True, dry_run=True)
    assert "--allow-empty only means something with --restore" in str(exc.value)


# -- a restore on fakes ------------------------------------------------------------------------


def backup_item(name: str, claim, created: str, size: int = 10 * GI, state="Completed") -> dict:
    status = json.dumps({"namespace": claim.namespace, "pvcName": claim.pvc, "pvName": "pvc-old"})
    return {
        "apiVersion": "longhorn.io/v1beta2", "kind": "Backup",
        "metadata": {"name": name, "namespace": "longhorn-system",
                     "labels": {"backup-volume": f"pvc-old-{claim.pvc}", "backup-target": "default"}},
        "status": {
            "state": state, "progress": 100, "volumeName": f"pvc-old-{claim.pvc}",
            "backupCreatedAt": created, "volumeSize": str(size), "size": "123",
            "url": f"s3://homelab@us-west-004/?backup={name}&volume=pvc-old-{claim.pvc}",
            "labels": {"KubernetesStatus": status},
        },
    }  # fmt: skip


def store(*backups: dict, synced: bool = True) -> str:
    stamp = "2026-12-03T20:00:00Z" if synced else None
    volumes = sorted({b["status"]["volumeName"] for b in backups})
    items = [
        {"apiVersion": "longhorn.io/v1beta2", "kind": "BackupTarget",
         "metadata": {"name": "default", "namespace": "longhorn-system"},
         "status": {"available": synced, "lastSyncedAt": stamp}},
        *({"apiVersion": "longhorn.io/v1beta2", "kind": "BackupVolume",
           "metadata": {"name": v, "namespace": "longhorn-system"},
           "status": {"lastSyncedAt": stamp}} for v in volumes),
        *backups,
    ]  # fmt: skip
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})


def volume_item(name: str, *, required: bool, robustness="unknown", failed=False) -> str:
    conditions = [{"type": "Restore", "status": "False", "reason": "RestoreFailure",
                   "message": "All replica restore failed and the volume became Faulted"}] if failed else []  # fmt: skip
    return json.dumps({
        "apiVersion": "longhorn.io/v1beta2", "kind": "Volume",
        "metadata": {"name": name, "namespace": "longhorn-system"},
        "spec": {"fromBackup": "s3://homelab@us-west-004/?backup=backup-new&volume=pvc-old",
                 "numberOfReplicas": 2, "size": str(5 * GI)},
        "status": {"state": "detached" if not required else "attached", "robustness": robustness,
                   "restoreInitiated": True, "restoreRequired": required, "conditions": conditions},
    })  # fmt: skip


TWO_BACKUPS = (
    backup_item("backup-old", MEALIE_DATA, "2026-12-01T03:00:00Z", size=5 * GI),
    backup_item("backup-new", MEALIE_DATA, "2026-12-03T03:00:00Z", size=5 * GI),
    backup_item("backup-db", MEALIE_DB, "2026-12-03T03:01:00Z"),
)
MEALIE_STEPS = {"apps/mealie-postgres", "apps/mealie-postgres-ready", "apps/mealie"}


def mealie_catalog(**request):
    restoring = with_restore(STACK, RestoreRequest(apps=("mealie",), **{**FAST, **request}))
    return restoring.only(
        lambda inv: [
            c
            for c in restoring.components(inv)
            if c.id in MEALIE_STEPS or isinstance(c, RestoreVolume)
        ]
    )


def serve_restore(fake_tools, backups=TWO_BACKUPS, *, fail=False, existing=False):
    """The fakes of a healthy Longhorn restoring mealie's two volumes (or failing one);
    ``existing``: an earlier run created the Longhorn volumes already."""
    fake_tools.rule("kubectl", "get", "backuptargets.longhorn.io,", stdout=store(*backups))
    for claim in (MEALIE_DATA, MEALIE_DB):
        name = objects.volume_name(claim)
        fake_tools.rule("kubectl", "get", "persistentvolumeclaim", claim.pvc, "jsonpath={.spec.volumeName}",
                        when={f"bound:{claim.pvc}": True}, stdout=name)  # fmt: skip
        fake_tools.rule("kubectl", "get", "persistentvolumeclaim", claim.pvc, "--ignore-not-found",
                        when={f"bound:{claim.pvc}": True},
                        stdout=json.dumps({"kind": "PersistentVolumeClaim",
                                           "spec": {"volumeName": name}}))  # fmt: skip
        if not existing:  # absent until the restore creates it
            fake_tools.rule("kubectl", "get", "volumes.longhorn.io", name, times=1, stdout="")
        fake_tools.rule("kubectl", "get", "volumes.longhorn.io", name, times=2,
                        stdout=volume_item(name, required=True, robustness="healthy"))  # fmt: skip
        broken = fail and claim is MEALIE_DATA
        fake_tools.rule("kubectl", "get", "volumes.longhorn.io", name,
                        stdout=volume_item(name, required=broken, robustness="faulted" if broken else "unknown",
                                           failed=broken))  # fmt: skip
        fake_tools.rule("kubectl", "wait", "--for=jsonpath={.status.phase}=Bound",
                        f"persistentvolumeclaim/{claim.pvc}", sleep=0.3,
                        sets={f"bound:{claim.pvc}": True})  # fmt: skip


def applied_hash(step_id: str) -> str:
    step = next(c for c in STACK.components(INV) if c.id == step_id)
    return hashlib.sha256(step.applied(render_context(INV)).encode()).hexdigest()


def span_of(fake_tools, *needle: str) -> tuple[float, float]:
    (call,) = [c for c in fake_tools.calls("kubectl") if all(n in c["argv"] for n in needle)]
    return call["start"], call["end"]


def test_the_app_starts_only_after_its_volumes_are_restored_and_bound(fake_tools, capsys):
    serve_restore(fake_tools)
    execute(mealie_catalog())
    calls = fake_tools.calls("kubectl")
    # each volume: one Longhorn Volume from its latest backup, then the PV and claim, then Bound
    restores = [c for c in calls if "--field-manager=onecluster-restore" in c["argv"]]
    assert len(restores) == 4
    objs = json.loads((fake_tools.log.parent / "objects.json").read_text())
    vol = objs[f"volume/longhorn-system/{objects.volume_name(MEALIE_DATA)}"]
    assert vol["spec"]["fromBackup"].endswith("backup=backup-new&volume=pvc-old-mealie-data")
    assert vol["spec"]["size"] == str(5 * GI)
    pv = objs[f"persistentvolume//{objects.volume_name(MEALIE_DATA)}"]
    assert pv["spec"]["csi"]["volumeHandle"] == objects.volume_name(MEALIE_DATA)
    # exactly the PV and the claim bound to it (the fake keeps the app's later apply of the claim)
    bound = yamlio.dump_all(objects.claim_stream(MEALIE_DATA, str(5 * GI))).encode()
    assert hashlib.sha256(bound).hexdigest() in [c["stdin_sha256"] for c in restores]
    db = objs[f"volume/longhorn-system/{objects.volume_name(MEALIE_DB)}"]
    assert "backup=backup-db" in db["spec"]["fromBackup"]
    # the app and its database start only after their own volume is bound
    for claim in (MEALIE_DATA, MEALIE_DB):
        _, bound = span_of(fake_tools, "wait", f"persistentvolumeclaim/{claim.pvc}")
        mine = [c for c in calls if c["stdin_sha256"] == applied_hash(claim.step)]
        assert len(mine) == 1, claim.step
        assert mine[0]["start"] >= bound, f"{claim.step} started before {claim.pvc} was Bound"
    out = capsys.readouterr().out
    assert "restoring mealie/mealie-data from backup backup-new" in out


def test_a_rerun_finds_the_restored_claims_in_place(fake_tools, capsys):
    serve_restore(fake_tools)
    execute(mealie_catalog())
    first = len(fake_tools.calls("kubectl"))
    capsys.readouterr()
    execute(mealie_catalog())
    again = fake_tools.calls("kubectl")[first:]
    assert not [c for c in again if "--field-manager=onecluster-restore" in c["argv"]]
    out = capsys.readouterr().out
    # the record holds each restore's fingerprint, and the claim's read confirms it
    assert "==> unchanged storage/restore-mealie-mealie-data (fingerprint recorded" in out
    assert "==> unchanged storage/restore-mealie-data-mealie-postgres-0 (fingerprint" in out


def test_without_the_record_a_bound_claim_is_found_in_place_by_the_step(fake_tools, capsys):
    serve_restore(fake_tools)
    execute(mealie_catalog(), lock=False)  # no converge: every step runs
    capsys.readouterr()
    execute(mealie_catalog(), lock=False)
    out = capsys.readouterr().out
    assert "claim mealie/mealie-data is bound to the restored volume already" in out
    assert "==> unchanged storage/restore-mealie-mealie-data in" in out


def test_a_rerun_after_an_interrupted_restore_finishes_it_and_binds(fake_tools, capsys):
    serve_restore(fake_tools, existing=True)
    execute(mealie_catalog())
    restores = [
        c for c in fake_tools.calls("kubectl") if "--field-manager=onecluster-restore" in c["argv"]
    ]
    assert len(restores) == 2  # the PV and claim of each volume: no second Longhorn Volume
    bound = yamlio.dump_all(objects.claim_stream(MEALIE_DATA, str(5 * GI))).encode()
    assert hashlib.sha256(bound).hexdigest() in [c["stdin_sha256"] for c in restores]
    out = capsys.readouterr().out
    assert f"volume {objects.volume_name(MEALIE_DATA)} exists, restoring from backup-new" in out


def test_a_backup_that_fails_to_restore_stops_the_run_and_the_app_is_not_deployed(fake_tools):
    serve_restore(fake_tools, fail=True)
    with pytest.raises(OneclusterError) as exc:
        execute(mealie_catalog())
    text = str(exc.value)
    name = objects.volume_name(MEALIE_DATA)
    assert "restoring volume mealie/mealie-data from backup backup-new failed" in text
    assert f"Longhorn volume {name} is faulted" in text
    assert "All replica restore failed" in text
    assert "--backup NAME of an older backup" in text  # the fix
    assert "apps/mealie" in text.split("skipped:")[1]
    assert not [
        c for c in fake_tools.calls("kubectl") if c["stdin_sha256"] == applied_hash("apps/mealie")
    ]


def test_a_volume_with_no_backup_stops_the_run_naming_it(fake_tools):
    serve_restore(fake_tools, backups=TWO_BACKUPS[2:])  # only the database has a backup
    with pytest.raises(OneclusterError) as exc:
        execute(mealie_catalog())
    text = str(exc.value)
    assert "no completed backup of volume mealie/mealie-data (app mealie)" in text
    assert "--allow-empty" in text
    assert not [
        c for c in fake_tools.calls("kubectl") if c["stdin_sha256"] == applied_hash("apps/mealie")
    ]


def test_allow_empty_lets_the_app_create_a_volume_with_no_backup(fake_tools, capsys):
    serve_restore(fake_tools, backups=TWO_BACKUPS[2:])
    execute(mealie_catalog(allow_empty=True))
    calls = fake_tools.calls("kubectl")
    restores = [c for c in calls if "--field-manager=onecluster-restore" in c["argv"]]
    assert len(restores) == 2  # the database's volume and claim only
    assert [c for c in calls if c["stdin_sha256"] == applied_hash("apps/mealie")]
    assert "no backup of mealie/mealie-data in the backup target: apps/mealie creates it empty" in (
        capsys.readouterr().out
    )


def test_a_backup_target_still_syncing_is_waited_for(fake_tools):
    fake_tools.rule("kubectl", "get", "backuptargets.longhorn.io,", times=2,
                    stdout=store(synced=False))  # fmt: skip
    serve_restore(fake_tools)
    execute(mealie_catalog())
    reads = [
        c
        for c in fake_tools.calls("kubectl")
        if "backuptargets.longhorn.io,backupvolumes.longhorn.io,backups.longhorn.io" in c["argv"]
    ]
    assert len(reads) >= 3  # two answers of a target not read yet, then the backups


def test_a_named_backup_restores_its_volume(fake_tools):
    serve_restore(fake_tools)
    execute(mealie_catalog(backups={("mealie", "mealie-data"): "backup-old"}))
    objs = json.loads((fake_tools.log.parent / "objects.json").read_text())
    vol = objs[f"volume/longhorn-system/{objects.volume_name(MEALIE_DATA)}"]
    assert "backup=backup-old" in vol["spec"]["fromBackup"]


def serve_reads(fake_tools, backups=TWO_BACKUPS, claims=(), volumes=()):
    fake_tools.rule("kubectl", "get", "persistentvolumeclaims", "--all-namespaces",
                    stdout=json.dumps({"kind": "List", "items": list(claims)}))  # fmt: skip
    fake_tools.rule("kubectl", "get", "volumes.longhorn.io", "-o", "json",
                    stdout=json.dumps({"kind": "List", "items": list(volumes)}))  # fmt: skip
    fake_tools.rule("kubectl", "get", "backups.longhorn.io", "-n", "longhorn-system", "-o", "json",
                    stdout=json.dumps({"kind": "List", "items": list(backups)}))  # fmt: skip


def test_storage_restore_refuses_a_backup_that_does_not_exist(fake_tools):
    serve_reads(fake_tools)
    with pytest.raises(Exit) as exc:
        call_task("storage.restore", name=["mealie"], backup=["backup-nope"])
    assert "--backup backup-nope: no such backup in the backup target" in str(exc.value)
    assert not [c for c in fake_tools.calls("kubectl") if "apply" in c["argv"]]


def test_storage_restore_refuses_a_backup_of_another_app(fake_tools):
    other = backup_item(
        "backup-wp", BY_CLAIM[("wordpress", "wordpress-html")], "2026-12-03T03:00:00Z"
    )
    serve_reads(fake_tools, backups=(*TWO_BACKUPS, other))
    with pytest.raises(Exit) as exc:
        call_task("storage.restore", name=["mealie"], backup=["backup-wp"])
    assert "it is a backup of wordpress/wordpress-html, none of the volumes being restored" in str(
        exc.value
    )


def test_storage_restore_dry_run_selects_only_the_apps_restores(fake_tools, capsys):
    call_task("storage.restore", name=["mealie"], dry_run=True)
    out = capsys.readouterr().out
    assert "dry-run for cluster homelab: 2 steps" in out
    assert "# storage/restore-mealie-mealie-data (restore)" in out
    assert "# apps/mealie " not in out


def test_storage_restore_unknown_app_names_the_apps_with_volumes(fake_tools):
    with pytest.raises(Exit) as exc:
        call_task("storage.restore", name=["headlamp"], dry_run=True)
    assert "--name headlamp: no declared volume belongs to it" in str(exc.value)
    assert "mealie" in str(exc.value)


def test_only_restores_takes_the_needs_as_in_place():
    restoring = only_restores(with_restore(STACK, RestoreRequest(apps=("mealie",))))
    steps = restoring.components(INV)
    assert {s.id for s in steps} == {
        "storage/restore-mealie-mealie-data",
        "storage/restore-mealie-data-mealie-postgres-0",
    }
    assert all(s.needs == () for s in steps)


# -- storage.backups and storage.backup ----------------------------------------------------------


def live_volume(name: str, claim) -> dict:
    return {"metadata": {"name": name}, "spec": {"numberOfReplicas": 2},
            "status": {"state": "attached", "robustness": "healthy",
                       "kubernetesStatus": {"namespace": claim.namespace, "pvcName": claim.pvc}}}  # fmt: skip


def live_claim(claim, volume: str) -> dict:
    return {"metadata": {"namespace": claim.namespace, "name": claim.pvc},
            "spec": {"volumeName": volume}, "status": {"phase": "Bound"}}  # fmt: skip


def test_storage_backups_lists_every_volume_with_three_reads(fake_tools, capsys):
    serve_reads(
        fake_tools,
        claims=[live_claim(MEALIE_DATA, "pvc-old-mealie-data")],
        volumes=[live_volume("pvc-old-mealie-data", MEALIE_DATA)],
    )
    call_task("storage.backups")
    out = capsys.readouterr().out
    assert len(fake_tools.calls("kubectl")) == 3
    line = next(row for row in out.splitlines() if " mealie-data " in row)
    assert "backup-new" in line and "pvc-old-mealie-data" in line and "Bound" in line
    # the database's backup is found by its KubernetesStatus label, with no live volume
    assert "backup-db" in next(row for row in out.splitlines() if "data-mealie-postgres-0" in row)
    tail = out.split("no backup:")[1]
    assert "wordpress/wordpress-html (wordpress)" in tail and "mealie/mealie-data" not in tail


def test_storage_backups_json(fake_tools, capsys):
    serve_reads(fake_tools)
    call_task("storage.backups", name=["mealie"], format="json")
    data = json.loads(capsys.readouterr().out)
    assert [v["pvc"] for v in data["volumes"]] == ["data-mealie-postgres-0", "mealie-data"]
    assert data["volumes"][1]["latest"]["name"] == "backup-new"
    assert data["withoutBackup"] == []


def test_storage_backup_takes_a_snapshot_then_a_backup_and_waits(fake_tools, capsys, monkeypatch):
    monkeypatch.setattr(take, "POLL_SECONDS", 0.02)
    progress = lambda state, pct: json.dumps({"kind": "Backup", "metadata": {"name": "$ARGV[2]"}, "status": {  # noqa: E731
        "state": state, "progress": pct, "volumeName": "pvc-old-mealie-data",
        "backupCreatedAt": "2026-12-03T21:00:00Z" if state == "Completed" else ""}})  # fmt: skip
    fake_tools.rule("kubectl", "get", "backups.longhorn.io", "onecluster-", times=1,
                    stdout=progress("InProgress", 40))  # fmt: skip
    fake_tools.rule("kubectl", "get", "backups.longhorn.io", "onecluster-",
                    stdout=progress("Completed", 100))  # fmt: skip
    # the backup's name is made at run time: the fake answers for any one (its name from argv)
    serve_reads(
        fake_tools,
        claims=[live_claim(MEALIE_DATA, "pvc-old-mealie-data")],
        volumes=[live_volume("pvc-old-mealie-data", MEALIE_DATA)],
    )
    call_task("storage.backup", name=["mealie"], timeout="20s")
    out = capsys.readouterr().out
    assert (
        "skipped mealie/data-mealie-postgres-0 (mealie): no Longhorn volume bound to it yet" in out
    )
    argvs = [c["argv"] for c in fake_tools.calls("kubectl")]
    applies = [i for i, a in enumerate(argvs) if "apply" in a]
    (waits,) = [i for i, a in enumerate(argvs) if "wait" in a]
    assert "--for=jsonpath={.status.readyToUse}=true" in argvs[waits]
    assert len(applies) == 2 and applies[0] < waits < applies[1]  # snapshots, ready, backups
    assert "InProgress 40%" in out and "1 backup(s) completed" in out


def test_the_real_kubectl_accepts_every_backup_and_restore_command(tmp_path, monkeypatch):
    """Each argv of the restore steps, the listing and storage.backup, parsed by kubectl v1.36:
    it fails only at the connection to 127.0.0.1:1 (tests/test_real_tools.py's check)."""
    import shutil

    from test_real_tools import assert_refused_only, unreachable_kubeconfig

    from tasks.backup import listing
    from tasks.engine.context import run_context

    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    monkeypatch.setenv("KUBECONFIG", str(unreachable_kubeconfig(tmp_path)))
    step = next(
        s
        for s in with_restore(STACK, RestoreRequest()).components(INV)
        if isinstance(s, RestoreVolume)
    )
    with run_context(INV, dry_run=True, fetch_kubeconfig=False) as ctx:
        plans = take.plans([(MEALIE_DATA, "pvc-old-mealie-data")])
        commands = [
            *step.commands(ctx),
            *(p.command for p in step.probes(ctx)),
            *listing.reads(ctx),
            *take.commands(ctx, plans, "30s"),
        ]
    for command in commands:
        assert_refused_only(command, tmp_path)


def test_storage_backup_dry_run_prints_the_objects_and_creates_none(fake_tools, capsys):
    serve_reads(
        fake_tools,
        claims=[live_claim(MEALIE_DATA, "pvc-old-mealie-data")],
        volumes=[live_volume("pvc-old-mealie-data", MEALIE_DATA)],
    )
    call_task("storage.backup", name=["mealie"], dry_run=True)
    out = capsys.readouterr().out
    docs = [d for d in yaml.safe_load_all(out.split("# the objects it would create:")[1]) if d]
    snap, back = docs
    assert snap["kind"] == "Snapshot" and snap["spec"] == {
        "volume": "pvc-old-mealie-data", "createSnapshot": True, "labels": {},
    }  # fmt: skip
    assert back["kind"] == "Backup" and back["spec"]["snapshotName"] == snap["metadata"]["name"]
    assert back["metadata"]["labels"] == {"backup-volume": "pvc-old-mealie-data"}
    claim = json.loads(back["spec"]["labels"]["KubernetesStatus"])
    assert claim == {"namespace": "mealie", "pvcName": "mealie-data"}
    assert "# read-only, run in a dry-run too:" in out
    assert not [c for c in fake_tools.calls("kubectl") if "apply" in c["argv"]]
    assert len(fake_tools.calls("kubectl")) == 3  # the three reads, nothing else


def test_storage_backups_dry_run_runs_nothing(fake_tools, capsys):
    call_task("storage.backups", dry_run=True)
    assert fake_tools.calls() == []
    assert "3 reads printed, none run" in capsys.readouterr().out


# an app's own claim (RWX) and a database's StatefulSet claim template
@pytest.mark.parametrize("claim", [MEALIE_DATA, MEALIE_DB], ids=lambda v: f"{v.namespace}/{v.pvc}")
def test_every_object_a_backup_or_restore_creates_meets_its_schema(claim):
    """The Snapshot, Backup and restored Volume against Longhorn v1.11.3's CRDs (the reference
    `longhorn-crds-v1.11.3.yaml`, strict: an unknown field is an error, as the API server prunes
    or refuses it), the PV and PVC against Kubernetes' own schemas at the inventory's version."""
    from tasks.validate import kubeschema
    from tasks.validate.chartdata import REFERENCE

    volume = claim
    version = kubeschema.kubernetes_schema_version(INV)
    crds = kubeschema.crd_index(REFERENCE if REFERENCE.is_dir() else None)
    built = [
        objects.snapshot("snap-1", "pvc-1234"),
        objects.backup("backup-1", "snap-1", "pvc-1234", volume),
        objects.restored_volume(volume, "s3://bucket@us-west-004/?backup=b&volume=v", "5368709120"),
        *objects.claim_stream(volume, "5368709120"),
    ]
    kinds = [doc["kind"] for doc in built]
    assert {"Snapshot", "Backup", "Volume", "PersistentVolume", "PersistentVolumeClaim"} <= set(
        kinds
    )
    notes: list[str] = []
    assert kubeschema.validate_objects(built, "restore", version, crds, notes) == []
    assert notes == [], "every kind had a schema to check it against"
