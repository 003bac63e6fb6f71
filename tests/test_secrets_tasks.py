"""The secrets.* tasks: list (the JSON contract), check, sync (and --dry-run), end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes.infisical_server import FakeInfisical
from fakes.kube_apiserver import FakeKubeAPI

import tasks
from tasks.engine.components import Component, HelmRelease, SecretSpec
from tasks.engine.errors import SecretsError
from tasks.engine.inventory import load_inventory
from tasks.secrets import requirements as secrets_tasks
from tasks.secrets.steps import SecretSync
from tasks.secrets.store import MemoryStore
from tasks.stack import STACK, catalog

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "talos" / "cluster.yaml"
PROJECT = "11111111-2222-4333-8444-555555555555"


def invoke(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``invoke ARGS`` from the repository, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        env=env if env is not None else clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFISICAL_")}
    env.update(extra)
    return env


def declared() -> dict[str, list[str]]:
    """Component id → Infisical names, straight from the catalogue."""
    comps = [c for c in catalog(load_inventory(CLUSTER)) if c.secrets and c.layer != "secrets"]
    return {c.id: sorted({n for s in c.secrets for n in s.keys.values()}) for c in comps}


@pytest.fixture
def fakes(tmp_path: Path) -> Iterator[tuple[FakeInfisical, FakeKubeAPI, dict[str, str]]]:
    """Fake Infisical holding every declared name but one, a fake API server, and their env."""
    infisical = FakeInfisical("tasks-client", "tasks-client-secret-1")
    infisical.add_project(PROJECT, {"prod": ["/"]})
    kube = FakeKubeAPI()
    kube.start()
    env = clean_env(
        INFISICAL_CLIENT_ID="tasks-client",
        INFISICAL_CLIENT_SECRET="tasks-client-secret-1",
        INFISICAL_SITE_URL=infisical.start(),
        INFISICAL_PROJECT_ID=PROJECT,
        INFISICAL_TIMEOUT="2",
        KUBECONFIG=str(kube.kubeconfig(tmp_path / "kubeconfig")),
    )
    yield infisical, kube, env
    infisical.stop()
    kube.stop()


def fill(infisical: FakeInfisical, *, skip: tuple[str, ...] = ()) -> None:
    for names in declared().values():
        for name in names:
            if name not in skip:
                infisical.put(PROJECT, "prod", "/", name, f"value-of-{name.lower()}", "homelab")


def test_list_json_is_the_contract_per_component():
    result = invoke("secrets.list", "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["cluster"], data["tag"]) == ("homelab", "homelab")
    assert {c["id"]: c["infisical"] for c in data["components"]} == declared()
    traefik = next(c for c in data["components"] if c["id"] == "network/traefik")
    assert traefik["step"] == "secrets/traefik"
    assert traefik["secrets"] == [
        {
            "namespace": "traefik",
            "name": "cloudflare-api-token",
            "type": "Opaque",
            "keys": {"token": "CLOUDFLARE_API_TOKEN"},
        }
    ]


def test_list_table_is_the_default():
    result = invoke("secrets.list", "--layer", "storage")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Secrets for cluster homelab (Infisical tag 'homelab'):"
    assert lines[1].split() == ["component", "secret", "key", "infisical"]
    body = [line.split() for line in lines[3:]]
    assert body == [
        [
            "storage/longhorn",
            "longhorn-system/longhorn-b2-credentials",
            "AWS_ACCESS_KEY_ID",
            "B2_APPLICATION_KEY_ID",
        ],
        [
            "storage/longhorn",
            "longhorn-system/longhorn-b2-credentials",
            "AWS_ENDPOINTS",
            "B2_S3_ENDPOINT",
        ],
        [
            "storage/longhorn",
            "longhorn-system/longhorn-b2-credentials",
            "AWS_SECRET_ACCESS_KEY",
            "B2_APPLICATION_KEY",
        ],
        # the etcd snapshots go to the same bucket with the same key, encrypted to an age key
        [
            "storage/talos-backup",
            "talos-backup/talos-backup-s3",
            "AGE_X25519_PUBLIC_KEY",
            "TALOS_BACKUP_AGE_PUBLIC_KEY",
        ],
        [
            "storage/talos-backup",
            "talos-backup/talos-backup-s3",
            "AWS_ACCESS_KEY_ID",
            "B2_APPLICATION_KEY_ID",
        ],
        [
            "storage/talos-backup",
            "talos-backup/talos-backup-s3",
            "AWS_SECRET_ACCESS_KEY",
            "B2_APPLICATION_KEY",
        ],
        [
            "storage/talos-backup",
            "talos-backup/talos-backup-s3",
            "CUSTOM_S3_ENDPOINT",
            "B2_S3_ENDPOINT",
        ],
    ]


def test_list_rejects_an_unknown_component():
    result = invoke("secrets.list", "--component", "apps/nothing-here")
    assert result.returncode == 1
    assert "--component apps/nothing-here: declares no secrets or does not exist" in result.stderr
    assert "network/traefik" in result.stderr  # the ones that exist are listed


def test_check_reports_every_missing_name_in_one_message(fakes):
    infisical, kube, env = fakes
    fill(infisical, skip=("CLOUDFLARE_API_TOKEN", "NANOBOT_SLACK_APP_TOKEN", "B2_APPLICATION_KEY"))
    result = invoke("secrets.check", env=env)
    assert result.returncode == 1
    err = result.stderr
    # one missing name is reported for every component that needs it
    assert err.startswith("error: 5 secret(s) the selected components need are missing")
    assert "  - network/traefik: CLOUDFLARE_API_TOKEN\n" in err
    assert "  - network/certificates: CLOUDFLARE_API_TOKEN\n" in err
    assert "  - storage/longhorn: B2_APPLICATION_KEY\n" in err
    assert "  - storage/talos-backup: B2_APPLICATION_KEY\n" in err
    assert "  - ai/nanobot: NANOBOT_SLACK_APP_TOKEN\n" in err
    assert "cloudflared" not in err
    assert kube.requests == []  # no cluster contact
    assert "value-of-" not in result.stdout + err


def test_check_honours_the_selection(fakes):
    infisical, _, env = fakes
    fill(infisical, skip=("CLOUDFLARE_API_TOKEN",))
    ok = invoke("secrets.check", "--layer", "storage", "--component", "ai/nanobot", env=env)
    assert ok.returncode == 0, ok.stderr
    chosen = [c for c in declared() if c.startswith("storage/") or c == "ai/nanobot"]
    # one name several components read (the B2 key: Longhorn and talos-backup) counts once
    total = len({n for c in chosen for n in declared()[c]})
    assert (
        f"ok: all {total} secret(s) for {len(chosen)} component(s) present in Infisical"
        in ok.stdout
    )
    bad = invoke("secrets.check", "--component", "traefik", env=env)
    assert bad.returncode == 1 and "network/traefik: CLOUDFLARE_API_TOKEN" in bad.stderr


def test_check_without_credentials_names_the_variables():
    result = invoke("secrets.check")
    assert result.returncode == 1
    assert "set $INFISICAL_CLIENT_ID and $INFISICAL_CLIENT_SECRET" in result.stderr


def test_sync_dry_run_without_credentials_prints_and_contacts_nothing(fakes):
    _, kube, env = fakes
    env = {
        k: v for k, v in env.items() if k not in ("INFISICAL_CLIENT_ID", "INFISICAL_CLIENT_SECRET")
    }
    result = invoke("secrets.sync", "--dry-run", "--layer", "network", env=env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "# dry-run: Infisical not checked" in out
    assert "[secrets/traefik] would sync Secret(s) traefik/cloudflare-api-token" in out
    assert "[secrets/cloudflared] would sync" in out
    assert "secrets/longhorn" not in out
    assert kube.requests == []


def test_sync_applies_the_selected_secrets(fakes):
    infisical, kube, env = fakes
    fill(infisical)
    result = invoke("secrets.sync", "--component", "storage/longhorn", env=env)
    assert result.returncode == 0, result.stderr
    assert "Secret longhorn-system/longhorn-b2-credentials created" in result.stdout
    longhorn = next(c for c in _comps() if c.id == "storage/longhorn")
    (spec,) = longhorn.secrets
    assert kube.secret_values("longhorn-system", "longhorn-b2-credentials") == {
        key: f"value-of-{name.lower()}" for key, name in spec.keys.items()
    }
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(spec.keys)
    assert kube.get("Secret", "cloudflare-api-token", "traefik") is None
    again = invoke("secrets.sync", "--component", "storage/longhorn", env=env)
    # every Secret already holds its values: the step's read-compare finds nothing to do
    assert "unchanged secrets/longhorn (its read-compare finds nothing to do)" in again.stdout
    assert "value-of-" not in result.stdout + result.stderr + again.stdout + again.stderr


def test_sync_stops_before_any_change_when_a_name_is_missing(fakes):
    infisical, kube, env = fakes
    fill(infisical, skip=("CLOUDFLARE_TUNNEL_TOKEN",))
    result = invoke("secrets.sync", env=env)
    assert result.returncode == 1
    assert "preflight failed, nothing was changed" in result.stderr
    assert "secrets/cloudflared: missing in Infisical" in result.stderr
    assert kube.requests == []


def test_secrets_deploy_is_kept():
    result = invoke("--help", "secrets.deploy")
    assert result.returncode == 0 and "--dry-run" in result.stdout


def test_every_flag_has_help():
    for name in ("list", "check", "sync"):
        task = tasks.namespace.collections["secrets"].tasks[name]
        params = [p for p in task.argspec(task.body).parameters if p != "c"]
        assert set(params) <= set(task.help), name


# selection and requirements, in process -------------------------------------------------------


def _comps() -> list[Component]:
    return catalog(load_inventory(CLUSTER))


def test_every_declaring_component_has_its_generated_sync_step():
    reqs = secrets_tasks.requirements(_comps())
    assert {r.component.id: r.step for r in reqs} == {
        cid: f"secrets/{cid.split('/')[1]}" for cid in declared()
    }


def test_a_hand_declared_sync_step_is_its_own_requirement():
    spec = SecretSpec("kube-system", "talos-bundle", {"bundle": "TALOS_SECRETS"})
    comps = [SecretSync(layer="secrets", name="talos-bundle", secrets=(spec,))]
    (req,) = secrets_tasks.requirements(comps)
    assert (req.step, req.names) == ("secrets/talos-bundle", ["TALOS_SECRETS"])


def test_a_component_whose_secrets_were_not_wired_is_an_error():
    spec = SecretSpec("x", "y", {"k": "V"})
    comp = HelmRelease(
        layer="apps", name="x", release="x", chart="x", version="1", namespace="x", secrets=(spec,)
    )
    with pytest.raises(SecretsError, match="apps/x declares secrets but no secrets/ step"):
        secrets_tasks.requirements([comp])


@pytest.mark.parametrize(
    ("components", "layers", "expected"),
    [
        ((), (), sorted(declared())),
        (("traefik",), (), ["network/traefik"]),
        (("secrets/nanobot",), (), ["ai/nanobot"]),
        ((), ("network",), sorted(c for c in declared() if c.startswith("network/"))),
        (("ai/nanobot",), ("storage",), ["ai/nanobot", "storage/longhorn", "storage/talos-backup"]),
    ],
    ids=["all", "by-name", "by-step", "by-layer", "mixed"],
)
def test_selection(components, layers, expected):
    reqs = secrets_tasks.select(secrets_tasks.requirements(_comps()), components, layers)
    assert sorted(r.component.id for r in reqs) == expected


def test_unknown_layer_names_the_layers_with_secrets():
    with_secrets = sorted({cid.split("/")[0] for cid in declared()})
    without = next(
        c.layer for c in _comps() if c.layer not in with_secrets and c.layer != "secrets"
    )
    with pytest.raises(SecretsError, match=f"layers with secrets: {', '.join(with_secrets)}"):
        secrets_tasks.select(secrets_tasks.requirements(_comps()), (), (without,))


def test_check_secrets_against_a_memory_store(capsys):
    names = {n for ns in declared().values() for n in ns}
    store = MemoryStore({n: f"memory-{n}" for n in names})
    total = secrets_tasks.check_secrets(STACK, cluster=str(CLUSTER), store=store)
    assert total == len(names)
    assert "memory-" not in capsys.readouterr().out
