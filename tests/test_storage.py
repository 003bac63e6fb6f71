"""Storage: every Longhorn setting the issue lists, where it lives; schemas, secrets and gates."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tasks import storage
from tasks.engine.components import HelmRelease
from tasks.engine.execute import execute, plan
from tasks.engine.inventory import REPO_ROOT, load_inventory
from tasks.stack import STACK
from tasks.validate.chartdata import crd_docs
from tasks.validate.valuescheck import check_values
from tests.rendered import (
    chart_of,
    check_all,
    check_manifest,
    find_object,
    full_chart,
    helm_template,
    lookup,
    manifest_cases,
    manifest_docs,
    rendered,
    rendered_values,
    unknown_keys,
)
from tests.settings import manifest_settings_test

INV = load_inventory(None)
MANIFESTS = REPO_ROOT / "manifests" / "storage"
COMPONENTS = {c.name: c for c in storage.components(INV)}
LONGHORN = COMPONENTS["longhorn"]
B2 = INV.backups.b2
DEFAULT_GROUP = '[{"name":"default","isGroup":true}]'

# (key path in helm-values/longhorn.yaml, expected value)
VALUES_SETTINGS = [
    ("persistence.defaultClass", True),
    ("persistence.defaultClassReplicaCount", 2),
    ("defaultSettings.defaultReplicaCount", '{"v1":"2","v2":"2"}'),
    ("persistence.defaultDataLocality", "best-effort"),
    ("defaultSettings.defaultDataLocality", "best-effort"),
    ("defaultSettings.defaultDataPath", "/var/mnt/longhorn"),
    ("defaultBackupStore.backupTarget", f"s3://{B2.bucket}@{B2.region}/"),
    ("defaultBackupStore.backupTargetCredentialSecret", storage.B2_CREDENTIALS.name),
    ("persistence.recurringJobSelector.enable", True),
    ("persistence.recurringJobSelector.jobList", DEFAULT_GROUP),
    ("metrics.serviceMonitor.enabled", True),
]

# (bundle, kind, name, key path, expected)
MANIFEST_SETTINGS = [
    (
        "namespace",
        "Namespace",
        "longhorn-system",
        "metadata.labels.[pod-security.kubernetes.io/enforce]",
        "privileged",
    ),
    ("longhorn-extras", "StorageClass", "longhorn-rwx", "provisioner", "driver.longhorn.io"),
    ("longhorn-extras", "StorageClass", "longhorn-rwx", "parameters.numberOfReplicas", "2"),
    ("longhorn-extras", "StorageClass", "longhorn-rwx", "parameters.dataLocality", "best-effort"),
    (
        "longhorn-extras",
        "StorageClass",
        "longhorn-rwx",
        "metadata.annotations.[storageclass.kubernetes.io/is-default-class]",
        "false",
    ),
    (
        "longhorn-extras",
        "StorageClass",
        "longhorn-rwx",
        "parameters.recurringJobSelector",
        DEFAULT_GROUP,
    ),
    ("longhorn-extras", "RecurringJob", "backup-daily", "metadata.namespace", "longhorn-system"),
    ("longhorn-extras", "RecurringJob", "backup-daily", "spec.task", "backup"),
    ("longhorn-extras", "RecurringJob", "backup-daily", "spec.groups", ["default"]),
    ("longhorn-extras", "RecurringJob", "backup-daily", "spec.retain", 14),
]


@pytest.mark.parametrize(("key", "expected"), VALUES_SETTINGS, ids=[k for k, _ in VALUES_SETTINGS])
def test_longhorn_values_setting(key: str, expected: Any) -> None:
    assert lookup(rendered_values("longhorn"), key) == expected


test_manifest_setting = manifest_settings_test(MANIFESTS, MANIFEST_SETTINGS)


def test_default_replica_count_setting_is_two_for_every_data_engine() -> None:
    per_engine = json.loads(rendered_values("longhorn")["defaultSettings"]["defaultReplicaCount"])
    assert per_engine == {"v1": "2", "v2": "2"}


def test_rwx_class_matches_the_default_class() -> None:
    """Same replica count and locality whichever access mode a claim asks for."""
    values = rendered_values("longhorn")["persistence"]
    rwx = find_object(MANIFESTS / "longhorn-extras", "StorageClass", "longhorn-rwx")["parameters"]
    assert int(rwx["numberOfReplicas"]) == values["defaultClassReplicaCount"]
    assert rwx["dataLocality"] == values["defaultDataLocality"]


def test_namespace_is_the_release_namespace() -> None:
    ns = find_object(MANIFESTS / "namespace", "Namespace", storage.NAMESPACE)
    assert ns["metadata"]["name"] == LONGHORN.namespace


def test_backup_credentials_secret_has_the_keys_longhorn_reads() -> None:
    spec = storage.B2_CREDENTIALS
    assert spec in LONGHORN.secrets and spec.namespace == LONGHORN.namespace
    assert set(spec.keys) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINTS"}


def test_no_credentials_are_written_in_a_storage_file() -> None:
    for path in [*MANIFESTS.rglob("*.yaml"), LONGHORN.values_path]:
        text = path.read_text()
        assert "AWS_SECRET_ACCESS_KEY:" not in text and "AWS_ACCESS_KEY_ID:" not in text, path


def test_values_keys_exist_in_the_chart(reference: Path) -> None:
    chart = chart_of(LONGHORN, reference)
    result = check_values(rendered_values("longhorn"), chart, "helm-values/longhorn.yaml")
    assert not result.errors, "\n".join(str(e) for e in result.errors)


def test_unknown_keys_catches_a_typo(reference: Path) -> None:
    chart = chart_of(LONGHORN, reference)
    typo = {"defaultSettings": {"defaultDataPth": "/x"}, "persistence": {"defaultClass": True}}
    assert unknown_keys(check_values(typo, chart, "typo.yaml")) == [
        "defaultSettings.defaultDataPth"
    ]


def test_recurring_jobs_cover_every_volume() -> None:
    """Group `default` is applied to every volume without jobs of its own."""
    jobs = [
        d for _, d in manifest_docs(MANIFESTS / "longhorn-extras") if d["kind"] == "RecurringJob"
    ]
    backups = [j for j in jobs if j["spec"]["task"] == "backup"]
    assert backups and all("default" in j["spec"]["groups"] for j in backups)
    assert all(j["spec"]["name"] == j["metadata"]["name"] for j in jobs)


# --- manifests against Kubernetes and CRD schemas ----------------------------------------------


@pytest.mark.parametrize(("path", "doc"), manifest_cases(MANIFESTS))
def test_manifest_validates(path: Path, doc: dict) -> None:
    check_manifest(path, doc)


def test_gate_waits_for_crds_longhorn_really_has(reference: Path) -> None:
    files = (reference / "crds" / "longhorn").glob("*.yaml")
    names = {doc["metadata"]["name"] for doc in crd_docs(p.read_bytes() for p in files)}
    assert set(storage.LONGHORN_CRDS) <= names


# --- gates ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plan_steps() -> dict[str, dict]:
    data = json.loads(plan(STACK, layers=["storage"], fmt="json"))
    return {s["id"]: s for s in data["steps"]}


GATE_WAITS = [
    ("longhorn-manager-ready", ["--for=condition=Established", "crd/recurringjobs.longhorn.io"]),
    (
        "longhorn-manager-ready",
        ["rollout", "status", "daemonset/longhorn-manager", "-n", "longhorn-system"],
    ),
    ("longhorn-ready", ["rollout", "status", "deployment/longhorn-driver-deployer"]),
    ("longhorn-ready", ["--for=create", "daemonset/longhorn-csi-plugin"]),
    ("longhorn-ready", ["rollout", "status", "daemonset/longhorn-csi-plugin"]),
    ("longhorn-ready", ["--for=create", "storageclass/longhorn"]),
    ("longhorn-ready", ["--for=create", "storageclass/longhorn-rwx"]),
]


@pytest.mark.parametrize(("gate", "words"), GATE_WAITS, ids=[f"{g}:{w[-1]}" for g, w in GATE_WAITS])
def test_gate_waits_for(plan_steps: dict, gate: str, words: list[str]) -> None:
    commands = plan_steps[f"storage/{gate}"]["commands"]
    assert any(all(w in argv for w in words) for argv in commands), commands


def test_longhorn_release_waits_long_enough() -> None:
    """Image pulls for manager, engine and instance managers on six nodes take minutes."""
    assert isinstance(LONGHORN, HelmRelease) and LONGHORN.wait and LONGHORN.timeout == "15m"


# --- helm template with the full chart, when one is at hand ------------------------------------


def test_chart_renders_and_objects_validate() -> None:
    folder = full_chart("longhorn", LONGHORN.version)
    objects = helm_template(LONGHORN, folder, ["monitoring.coreos.com/v1"])
    check_all(objects, "helm template longhorn")
    configmaps = {d["metadata"]["name"]: d for d in objects if d["kind"] == "ConfigMap"}
    storageclass = yaml.safe_load(configmaps["longhorn-storageclass"]["data"]["storageclass.yaml"])
    assert storageclass["parameters"]["numberOfReplicas"] == "2"
    assert storageclass["parameters"]["dataLocality"] == "best-effort"
    settings = yaml.safe_load(
        configmaps["longhorn-default-setting"]["data"]["default-setting.yaml"]
    )
    assert settings["default-data-path"] == "/var/mnt/longhorn"
    assert json.loads(settings["default-replica-count"]) == {"v1": "2", "v2": "2"}
    resources = yaml.safe_load(
        configmaps["longhorn-default-resource"]["data"]["default-resource.yaml"]
    )
    assert resources["backup-target"] == f"s3://{B2.bucket}@{B2.region}/"
    assert resources["backup-target-credential-secret"] == storage.B2_CREDENTIALS.name
    assert any(d["kind"] == "ServiceMonitor" for d in objects)


def test_namespace_is_applied_before_the_release_runs(fake_tools) -> None:
    execute(STACK, layers=["storage"], jobs=4, preflight=False)
    calls = fake_tools.calls()
    order = [" ".join(c["argv"]) for c in calls]

    def first(*words: str) -> int:
        return next(i for i, line in enumerate(order) if all(w in line for w in words))

    namespace = hashlib.sha256(rendered(MANIFESTS / "namespace" / "longhorn-system.yaml").encode())
    applied = [i for i, c in enumerate(calls) if c["stdin_sha256"] == namespace.hexdigest()]
    assert applied and "apply" in calls[applied[0]]["argv"]
    assert applied[0] < first("upgrade", "--install", "longhorn") < first("longhorn-csi-plugin")


def test_longhorn_manager_has_requests_and_limits() -> None:
    """The one Longhorn container the chart sizes by values (the README lists the others)."""
    resources = yaml.safe_load(rendered(REPO_ROOT / "helm-values" / "longhorn.yaml"))[
        "longhornManager"
    ]["resources"]
    for kind in ("requests", "limits"):
        assert set(resources[kind]) == {"cpu", "memory"}, kind
