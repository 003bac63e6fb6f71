"""talos-backup: etcd snapshots through the Talos API, age-encrypted, to the B2 bucket.

Read at siderolabs/talos-backup v0.1.0-beta.3: the settings are environment variables
(``pkg/config/service.go``), the talosconfig is found where Talos mounts a Talos ServiceAccount's
Secret (siderolabs/talos v1.12.4 ``pkg/machinery/constants``: ``ServiceAccountMountPath``), and
Talos grants a ServiceAccount only the roles and namespaces ``kubernetesTalosAPIAccess`` allows
(``internal/app/machined/pkg/controllers/kubeaccess/serviceaccount/crd_controller.go``).
"""

from __future__ import annotations

import pytest

from tasks import storage
from tasks.backup.volumes import render_context
from tasks.engine import yamlio
from tasks.stack import STACK
from tasks.talos import machineconfig as mc
from tasks.validate import kubeschema

INV = STACK.load()
STEP = next(c for c in STACK.components(INV) if c.id == "storage/talos-backup")
DOCS = {d["kind"]: d for d in yamlio.load_all(STEP.applied(render_context(INV)))}
CRONJOB = DOCS["CronJob"]
POD = CRONJOB["spec"]["jobTemplate"]["spec"]["template"]["spec"]
(CONTAINER,) = POD["containers"]
# every variable pkg/config/service.go reads at v0.1.0-beta.3, and the AWS SDK's key pair
SERVICE_ENV = {
    "CUSTOM_S3_ENDPOINT", "BUCKET", "AWS_REGION", "S3_PREFIX", "CLUSTER_NAME", "USE_PATH_STYLE",
    "DISABLE_ENCRYPTION", "AGE_X25519_PUBLIC_KEY",
}  # fmt: skip
SDK_ENV = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}


def access(node) -> dict:
    docs = mc.node_patch_stack(INV, node)
    v1 = next(d for d in docs if "machine" in d)
    return ((v1.get("machine") or {}).get("features") or {}).get("kubernetesTalosAPIAccess") or {}


def test_the_image_is_pinned_to_a_release():
    assert CONTAINER["image"] == "ghcr.io/siderolabs/talos-backup:v0.1.0-beta.3"


def test_every_variable_is_one_talos_backup_reads_and_secrets_come_from_infisical():
    env = {e["name"]: e for e in CONTAINER["env"]}
    assert set(env) <= SERVICE_ENV | SDK_ENV
    assert {"BUCKET", "AWS_REGION", "AGE_X25519_PUBLIC_KEY", *SDK_ENV} <= set(env)
    # USE_PATH_STYLE="false" would turn path style on at this tag: it is not set
    assert "USE_PATH_STYLE" not in env and "DISABLE_ENCRYPTION" not in env
    assert env["BUCKET"]["value"] == INV.backups.b2.bucket
    assert env["AWS_REGION"]["value"] == INV.backups.b2.region
    refs = {n: e["valueFrom"]["secretKeyRef"] for n, e in env.items() if "valueFrom" in e}
    assert set(refs) == set(storage.TALOS_BACKUP_S3.keys)
    assert {r["name"] for r in refs.values()} == {storage.TALOS_BACKUP_S3.name}
    assert all(r["key"] == n for n, r in refs.items())
    assert storage.TALOS_BACKUP_S3.namespace == CRONJOB["metadata"]["namespace"]
    assert storage.TALOS_BACKUP_S3 in STEP.secrets


def test_the_talosconfig_is_mounted_where_the_talos_client_looks():
    sa = DOCS["ServiceAccount"]
    assert sa["apiVersion"] == "talos.dev/v1alpha1"
    mounts = {m["name"]: m["mountPath"] for m in CONTAINER["volumeMounts"]}
    secret = next(v for v in POD["volumes"] if "secret" in v)
    assert secret["secret"]["secretName"] == sa["metadata"]["name"]
    assert mounts[secret["name"]] == "/var/run/secrets/talos.dev"
    assert "Secret" not in DOCS  # Talos makes it; one of ours would make Talos refuse the account


def test_the_job_runs_restricted_and_bounded():
    assert POD["securityContext"]["runAsNonRoot"] is True
    assert POD["automountServiceAccountToken"] is False
    sc = CONTAINER["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"]
    assert sc["readOnlyRootFilesystem"] is True
    assert CONTAINER["resources"]["limits"] and CONTAINER["resources"]["requests"]
    assert CRONJOB["spec"]["concurrencyPolicy"] == "Forbid"
    ns = DOCS["Namespace"]["metadata"]["labels"]
    assert ns["pod-security.kubernetes.io/enforce"] == "restricted"
    assert DOCS["NetworkPolicy"]["spec"]["policyTypes"] == ["Ingress"]


@pytest.mark.parametrize("node", INV.nodes, ids=lambda n: n.name)
def test_talos_grants_the_etcd_backup_role_to_that_namespace_on_control_planes_only(node):
    feature = access(node)
    if node.role != "controlplane":
        assert feature == {}  # Talos refuses it on a worker (tests/test_talos_rules.py)
        return
    sa = DOCS["ServiceAccount"]
    assert feature["enabled"] is True
    assert feature["allowedRoles"] == sa["spec"]["roles"] == ["os:etcd:backup"]
    assert feature["allowedKubernetesNamespaces"] == [sa["metadata"]["namespace"]]


def test_the_talos_service_account_is_validated_against_its_platform_crd():
    version = kubeschema.kubernetes_schema_version(INV)
    crds = kubeschema.crd_index(None)
    sa = DOCS["ServiceAccount"]
    assert kubeschema.validate_object(sa, "sa.yaml", version, crds) == ([], "")
    bad = {**sa, "spec": {"roles": "os:etcd:backup", "namespaces": ["x"]}}
    errors, _ = kubeschema.validate_object(bad, "sa.yaml", version, crds)
    assert {e.field for e in errors} == {
        "ServiceAccount/talos-backup spec",
        "ServiceAccount/talos-backup spec.roles",
    }


def test_the_default_plan_deploys_it_after_its_secrets():
    assert STEP.needs == ("talos/health", "secrets/talos-backup")
