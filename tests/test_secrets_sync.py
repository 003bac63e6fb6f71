"""Secrets synced into Kubernetes: real infisicalsdk and kubernetes clients against local fakes."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest
from fakes.infisical_server import FakeInfisical
from fakes.kube_apiserver import FakeKubeAPI

from tasks.engine.components import Component, SecretSpec
from tasks.engine.context import RunContext, run_context
from tasks.engine.errors import OneclusterError, SecretsError
from tasks.engine.execute import execute
from tasks.engine.inventory import Inventory, load_inventory
from tasks.engine.runner import RunFailed
from tasks.secrets import sync as secretsync
from tasks.secrets.steps import SecretSync
from tasks.stack import STACK

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "talos" / "cluster.yaml"
PROJECT = "11111111-2222-4333-8444-555555555555"
LABELS = {"app.kubernetes.io/managed-by": "onecluster"}

APP = SecretSpec("apps", "app-credentials", {"username": "APP_USER", "password": "APP_PASSWORD"})
TUNNEL = SecretSpec("tunnel", "tunnel-token", {"token": "TUNNEL_TOKEN"})


@pytest.fixture
def infisical(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeInfisical]:
    fake = FakeInfisical("sync-client", "sync-client-secret-1")
    fake.add_project(PROJECT, {"prod": ["/"]})
    fake.put(PROJECT, "prod", "/", "APP_USER", "app-user-1111", "homelab")
    fake.put(PROJECT, "prod", "/", "APP_PASSWORD", "app-password-2222", "homelab")
    fake.put(PROJECT, "prod", "/", "TUNNEL_TOKEN", "tunnel-token-3333", "homelab")
    fake.start_for(monkeypatch, PROJECT)
    yield fake
    fake.stop()


@pytest.fixture
def kube(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKubeAPI]:
    fake = FakeKubeAPI()
    fake.start()
    monkeypatch.setenv("KUBECONFIG", str(fake.kubeconfig(tmp_path / "kubeconfig")))
    yield fake
    fake.stop()


@pytest.fixture
def inventory() -> Inventory:
    return load_inventory(CLUSTER)


@pytest.fixture
def ctx(inventory, kube, infisical) -> Iterator[RunContext]:
    with run_context(
        inventory, dry_run=False, fetch_kubeconfig=False, open_store=STACK.open_store
    ) as context:
        yield context


def test_sync_creates_namespace_and_secret_with_keys_and_labels(ctx, kube):
    outcomes = secretsync.sync(ctx, [APP], owner="secrets/app")
    assert [o.action for o in outcomes] == ["created"]
    namespace = kube.get("Namespace", "apps")
    assert namespace["metadata"]["labels"] == LABELS
    secret = kube.get("Secret", "app-credentials", "apps")
    assert secret["metadata"]["labels"] == LABELS
    assert secret["type"] == "Opaque"
    assert kube.secret_values("apps", "app-credentials") == {
        "username": "app-user-1111",
        "password": "app-password-2222",
    }
    patches = kube.writes()
    assert {r.content_type for r in patches} == {"application/apply-patch+yaml"}
    assert {r.query["fieldManager"] for r in patches} == {"onecluster"}
    managed = kube._render(kube.objects[("Secret", "apps", "app-credentials")])
    assert [m["manager"] for m in managed["metadata"]["managedFields"]] == ["onecluster"]


def test_existing_namespace_is_left_alone(ctx, kube):
    secretsync.sync(ctx, [APP], owner="secrets/app")
    before = kube.get("Namespace", "apps")["metadata"]["resourceVersion"]
    secretsync.sync(ctx, [APP], owner="secrets/app")
    namespace_patches = [r for r in kube.writes() if r.path == "/api/v1/namespaces/apps"]
    assert len(namespace_patches) == 1
    assert kube.get("Namespace", "apps")["metadata"]["resourceVersion"] == before


def test_resync_with_nothing_changed_changes_nothing(ctx, kube):
    secretsync.sync(ctx, [APP, TUNNEL], owner="secrets/x")
    before = {k: s.obj["metadata"]["resourceVersion"] for k, s in kube.objects.items()}
    writes = len(kube.writes())
    outcomes = secretsync.sync(ctx, [APP, TUNNEL], owner="secrets/x")
    assert [o.action for o in outcomes] == ["unchanged", "unchanged"]
    after = {k: s.obj["metadata"]["resourceVersion"] for k, s in kube.objects.items()}
    assert after == before
    # a Secret that already is what would be applied is not written: the re-sync only read
    assert len(kube.writes()) == writes


def test_up_to_date_is_one_list_and_compares_values_types_and_labels(inventory, kube, infisical):
    def fresh_run():
        return run_context(
            inventory, dry_run=False, fetch_kubeconfig=False, open_store=STACK.open_store
        )

    with fresh_run() as run:
        assert not secretsync.up_to_date(run, [APP], owner="secrets/app")  # nothing there yet
        secretsync.sync(run, [APP, TUNNEL], owner="secrets/x")
    with fresh_run() as run:
        before = len(kube.requests)
        assert secretsync.up_to_date(run, [APP], owner="secrets/app")
        assert secretsync.up_to_date(run, [TUNNEL], owner="secrets/tunnel")
        seen = kube.requests[before:]
        # both steps' checks shared one list of onecluster's Secrets, and wrote nothing
        assert [(r.method, r.path) for r in seen] == [("GET", "/api/v1/secrets")]
        assert seen[0].query["labelSelector"] == "app.kubernetes.io/managed-by=onecluster"
    infisical.put(PROJECT, "prod", "/", "TUNNEL_TOKEN", "tunnel-token-rotated", "homelab")
    with fresh_run() as run:  # a value rotated in Infisical: that step is not up to date
        assert secretsync.up_to_date(run, [APP], owner="secrets/app")
        assert not secretsync.up_to_date(run, [TUNNEL], owner="secrets/tunnel")
    stored = kube.objects[("Secret", "apps", "app-credentials")].obj
    stored["metadata"]["labels"] = {}  # the label taken off by hand
    with fresh_run() as run:
        assert not secretsync.up_to_date(run, [APP], owner="secrets/app")
    stored["metadata"]["labels"] = dict(LABELS)
    stored["data"]["extra"] = base64.b64encode(b"added-by-hand").decode()  # a key too many
    with fresh_run() as run:
        assert not secretsync.up_to_date(run, [APP], owner="secrets/app")


def test_the_secret_step_is_unchanged_when_every_secret_holds_its_values(
    inventory, kube, infisical
):
    step = SecretSync(layer="secrets", name="app", secrets=(APP,))
    with run_context(
        inventory, dry_run=False, fetch_kubeconfig=False, open_store=STACK.open_store
    ) as run:
        assert step.run(run) is None  # created
    with run_context(
        inventory, dry_run=False, fetch_kubeconfig=False, open_store=STACK.open_store
    ) as run:
        writes = len(kube.writes())
        assert step.up_to_date(run)
        assert step.run(run) == "unchanged" and len(kube.writes()) == writes
    with run_context(inventory, dry_run=True, fetch_kubeconfig=False) as run:
        assert not step.up_to_date(run)  # a dry-run opens no store to compare with


def test_a_changed_value_in_infisical_updates_the_secret(inventory, ctx, kube, infisical):
    secretsync.sync(ctx, [TUNNEL], owner="secrets/tunnel")
    infisical.put(PROJECT, "prod", "/", "TUNNEL_TOKEN", "tunnel-token-rotated", "homelab")
    with run_context(  # the next run: a run reads Infisical's values once, when it starts
        inventory, dry_run=False, fetch_kubeconfig=False, open_store=STACK.open_store
    ) as next_run:
        outcomes = secretsync.sync(next_run, [TUNNEL], owner="secrets/tunnel")
    assert [o.action for o in outcomes] == ["configured"]
    assert kube.secret_values("tunnel", "tunnel-token") == {"token": "tunnel-token-rotated"}


def test_keys_removed_from_the_declaration_are_pruned(ctx, kube):
    secretsync.sync(ctx, [APP], owner="secrets/app")
    fewer = SecretSpec("apps", "app-credentials", {"password": "APP_PASSWORD"})
    outcomes = secretsync.sync(ctx, [fewer], owner="secrets/app")
    assert [o.action for o in outcomes] == ["configured"]
    assert kube.secret_values("apps", "app-credentials") == {"password": "app-password-2222"}
    assert kube.get("Secret", "app-credentials", "apps")["metadata"]["labels"] == LABELS


def test_pruning_keeps_keys_another_field_manager_owns(ctx, kube):
    """Server-side apply removes only what onecluster itself applied before."""
    from kubernetes import client as k8s

    secretsync.sync(ctx, [APP], owner="secrets/app")
    api = secretsync.api_client(ctx.kubeconfig)
    try:
        k8s.CoreV1Api(api).patch_namespaced_secret(
            "app-credentials",
            "apps",
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "app-credentials", "namespace": "apps"},
                "data": {"extra": base64.b64encode(b"added-by-hand").decode()},
            },
            field_manager="someone-else",
            _content_type="application/apply-patch+yaml",
        )
    finally:
        api.close()
    secretsync.sync(
        ctx, [SecretSpec("apps", "app-credentials", {"username": "APP_USER"})], owner="secrets/app"
    )
    assert kube.secret_values("apps", "app-credentials") == {
        "username": "app-user-1111",
        "extra": "added-by-hand",
    }


def test_a_missing_name_fails_before_the_cluster_is_touched(ctx, kube):
    keys = {"a": "APP_USER", "b": "NOT_THERE", "c": "NOR_THIS"}
    spec = SecretSpec("apps", "app-credentials", keys)
    with pytest.raises(SecretsError, match=r"missing in Infisical .*: NOR_THIS, NOT_THERE"):
        secretsync.sync(ctx, [spec], owner="secrets/app")
    assert kube.requests == []


# what can go wrong with Infisical, and the words the error must use
FAILURES = [
    pytest.param(
        lambda f, mp: mp.setenv("INFISICAL_CLIENT_SECRET", "wrong-one-99"), "HTTP 401", id="401"
    ),
    pytest.param(
        lambda f, mp: mp.setenv("INFISICAL_PROJECT_ID", "no-such-project"), "HTTP 404", id="404"
    ),
    pytest.param(lambda f, mp: f.fail(500, prefix="/api/v3/"), "HTTP 500", id="500"),
    pytest.param(lambda f, mp: f.hang(), "timeout", id="timeout"),
]
NO_CREDENTIALS = pytest.param(
    lambda f, mp: mp.delenv("INFISICAL_CLIENT_ID"), "$INFISICAL_CLIENT_ID", id="no-credentials"
)


# kubectl's API discovery: read-only
DISCOVERY = ("/version", "/api", "/apis")


@pytest.mark.parametrize(("inject", "expected"), FAILURES)
def test_infisical_failures_change_nothing_in_the_cluster(
    inventory, kube, infisical, monkeypatch, inject, expected
):
    inject(infisical, monkeypatch)
    with pytest.raises(RunFailed) as err:
        execute(
            STACK.with_components(
                lambda inv: [SecretSync(layer="secrets", name="app", secrets=(APP,))]
            ),
            cluster=str(CLUSTER),
            preflight=False,
        )
    assert expected in str(err.value)
    # the run's Lease (tasks/engine/lock.py) made kubectl ask which APIs the server has; this
    # fake serves none for Leases, so the run went on without one. Nothing else was asked.
    assert [r.path for r in kube.requests if r.path not in DISCOVERY] == []


@pytest.mark.parametrize(("inject", "expected"), [*FAILURES, NO_CREDENTIALS])
def test_deploy_preflight_stops_before_any_step_runs(
    inventory, kube, infisical, monkeypatch, inject, expected
):
    ran = []
    inject(infisical, monkeypatch)
    with pytest.raises(SecretsError, match=expected.replace("$", r"\$")):
        execute(STACK.with_components(lambda inv: _catalog(ran)), cluster=str(CLUSTER))
    assert ran == []
    assert kube.requests == []


@dataclass(frozen=True, kw_only=True)
class Recorder(Component):
    """A step that only records that it ran."""

    kind: ClassVar[str] = "record"
    log: list

    def run(self, ctx):
        self.log.append(self.id)


def _catalog(ran: list, specs=(APP, TUNNEL)) -> list[Component]:
    first = Recorder(layer="talos", name="health", log=ran)
    syncs = [
        SecretSync(layer="secrets", name=s.name, needs=("talos/health",), secrets=(s,))
        for s in specs
    ]
    user = Recorder(layer="apps", name="app", needs=tuple(s.id for s in syncs), log=ran)
    return [first, *syncs, user]


def test_deploy_reports_every_missing_name_at_once_and_changes_nothing(kube, infisical):
    ran = []
    specs = (
        SecretSpec("apps", "one", {"a": "MISSING_ONE", "b": "APP_USER"}),
        SecretSpec("other", "two", {"c": "MISSING_TWO", "d": "MISSING_THREE"}),
    )
    with pytest.raises(OneclusterError) as err:
        execute(STACK.with_components(lambda inv: _catalog(ran, specs)), cluster=str(CLUSTER))
    message = str(err.value)
    assert message.startswith("preflight failed, nothing was changed:")
    assert "secrets/one: missing in Infisical" in message and "MISSING_ONE" in message
    assert "secrets/two: missing in Infisical" in message
    assert "MISSING_THREE, MISSING_TWO" in message
    assert "APP_USER" not in message
    assert ran == []
    assert kube.requests == []


def test_deploy_syncs_then_runs_what_needs_the_secrets(kube, infisical):
    ran = []
    report = execute(STACK.with_components(lambda inv: _catalog(ran)), cluster=str(CLUSTER))
    assert report.ok
    assert ran == ["talos/health", "apps/app"]
    assert kube.secret_values("tunnel", "tunnel-token") == {"token": "tunnel-token-3333"}
    # preflight and sync share one login and the names listing is fetched once
    logins = [p for p in infisical.paths() if p.endswith("/login")]
    assert len(logins) == 1


def test_dry_run_without_credentials_checks_nothing_and_says_so(kube, monkeypatch, capsys):
    for var in ("INFISICAL_CLIENT_ID", "INFISICAL_CLIENT_SECRET"):
        monkeypatch.delenv(var, raising=False)
    ran = []
    execute(STACK.with_components(lambda inv: _catalog(ran)), cluster=str(CLUSTER), dry_run=True)
    out = capsys.readouterr().out
    assert out.count("Infisical not checked") == 1
    assert "$INFISICAL_CLIENT_ID and $INFISICAL_CLIENT_SECRET unset" in out
    assert "[secrets/app-credentials] would sync Secret(s) apps/app-credentials" in out
    assert "apps/app-credentials: password <- Infisical APP_PASSWORD" in out
    assert kube.requests == []


def test_dry_run_with_credentials_checks_names_only(kube, infisical, capsys):
    ran = []
    execute(STACK.with_components(lambda inv: _catalog(ran)), cluster=str(CLUSTER), dry_run=True)
    lists = [r for r in infisical.requests if r.path == "/api/v3/secrets/raw"]
    assert lists and {r.query["viewSecretValue"] for r in lists} == {"false"}
    assert "Infisical not checked" not in capsys.readouterr().out
    assert kube.requests == []


def test_dry_run_with_credentials_stops_on_missing_names(kube, infisical):
    specs = (SecretSpec("apps", "one", {"a": "MISSING_ONE"}),)
    with pytest.raises(OneclusterError, match="MISSING_ONE"):
        execute(
            STACK.with_components(lambda inv: _catalog([], specs)),
            cluster=str(CLUSTER),
            dry_run=True,
        )


def test_kubernetes_errors_are_reported_without_the_response_body(ctx, kube):
    kube.fail(403)
    with pytest.raises(
        SecretsError,
        match=r"Kubernetes API refused to create namespace apps "
        r"\(HTTP 403\).*may not get/patch",
    ):
        secretsync.sync(ctx, [APP], owner="secrets/app")


def test_unreadable_kubeconfig_is_a_clear_error(inventory, infisical, tmp_path, monkeypatch):
    missing = tmp_path / "nope" / "kubeconfig"
    monkeypatch.setenv("KUBECONFIG", str(missing))
    with (
        run_context(
            inventory, dry_run=False, fetch_kubeconfig=False, open_store=STACK.open_store
        ) as context,
        pytest.raises(SecretsError, match=f"cannot use kubeconfig {missing}"),
    ):
        secretsync.sync(context, [APP], owner="secrets/app")


def test_an_error_cut_short_never_shows_part_of_a_secret(ctx, kube, infisical):
    # issue 13: the API's message was cut to 300 characters before redaction, and a cut inside the
    # base64 form of a value left a piece no registered value matched, printed in clear
    value = "".join(f"{i:03d}-Zq" for i in range(100))  # 600 characters: base64 spans the cut
    infisical.put(PROJECT, "prod", "/", "LONG_VALUE", value, "homelab")
    secretsync.sync(ctx, [APP], owner="secrets/app")  # namespace apps now exists
    kube.fail(500, echo_body=True)  # the server echoes the Secret it was sent, base64 and all
    with pytest.raises(SecretsError) as failed:
        secretsync.sync(ctx, [SecretSpec("apps", "long", {"value": "LONG_VALUE"})], owner="x")
    text = str(failed.value)
    assert "HTTP 500" in text and "***" in text
    encoded = base64.b64encode(value.encode()).decode()
    pieces = {s[i : i + 12] for s in (value, encoded) for i in range(len(s) - 11)}
    assert [p for p in pieces if p in text] == []
