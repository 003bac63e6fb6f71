"""The Infisical store, driven through the real infisicalsdk over HTTP against a fake server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes.infisical_server import HIDDEN, FakeInfisical

from tasks.engine.errors import SecretsError
from tasks.engine.inventory import load_inventory
from tasks.engine.output import redact
from tasks.secrets import infisical

ROOT = Path(__file__).resolve().parents[1]
CLIENT_ID = "0b1c2d3e-machine-identity"
CLIENT_SECRET = "client-secret-7f3a9c1e5b"
PROJECT = "11111111-2222-4333-8444-555555555555"


@pytest.fixture
def inventory():
    return load_inventory(ROOT / "talos" / "cluster.yaml")  # cluster name (tag): homelab


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeInfisical]:
    """A fake Infisical with one project, and the environment pointing the store at it."""
    fake = FakeInfisical(CLIENT_ID, CLIENT_SECRET)
    fake.add_project(PROJECT, {"prod": ["/", "/apps"], "staging": ["/"]})
    fake.start_for(monkeypatch, PROJECT)
    yield fake
    fake.stop()


def seed(fake: FakeInfisical) -> None:
    fake.put(PROJECT, "prod", "/", "CLOUDFLARE_API_TOKEN", "cf-token-homelab-1", "homelab")
    fake.put(PROJECT, "prod", "/", "B2_APPLICATION_KEY", "b2-key-homelab-22", "homelab", "shared")
    fake.put(PROJECT, "prod", "/", "OTHER_CLUSTER_TOKEN", "other-cluster-333", "lab2")
    fake.put(PROJECT, "prod", "/", "UNTAGGED", "untagged-value-4444")
    fake.put(PROJECT, "prod", "/apps", "APP_ONLY", "apps-folder-55555", "homelab")
    fake.put(PROJECT, "staging", "/", "CLOUDFLARE_API_TOKEN", "cf-token-staging-6", "homelab")


def test_read_sees_only_this_clusters_tag_in_the_inventorys_environment_and_path(server, inventory):
    seed(server)
    store = infisical.open_store(inventory)
    got = store.read(
        [
            "CLOUDFLARE_API_TOKEN",
            "B2_APPLICATION_KEY",
            "OTHER_CLUSTER_TOKEN",
            "UNTAGGED",
            "APP_ONLY",
        ]
    )
    assert got == {
        "CLOUDFLARE_API_TOKEN": "cf-token-homelab-1",
        "B2_APPLICATION_KEY": "b2-key-homelab-22",
    }
    listed = [r for r in server.requests if r.path == "/api/v3/secrets/raw"]
    assert listed[-1].query["tagSlugs"] == "homelab"
    assert (listed[-1].query["environment"], listed[-1].query["secretPath"]) == ("prod", "/")
    assert listed[-1].query["workspaceId"] == PROJECT


def test_environment_variables_override_environment_and_path(server, inventory, monkeypatch):
    seed(server)
    monkeypatch.setenv("INFISICAL_ENVIRONMENT", "staging")
    assert infisical.open_store(inventory).read(["CLOUDFLARE_API_TOKEN"]) == {
        "CLOUDFLARE_API_TOKEN": "cf-token-staging-6"
    }
    monkeypatch.setenv("INFISICAL_ENVIRONMENT", "prod")
    monkeypatch.setenv("INFISICAL_SECRET_PATH", "/apps")
    assert infisical.open_store(inventory).names() == {"APP_ONLY"}


def test_inventory_values_apply_when_no_override(inventory):
    where = infisical.location(inventory, env={})
    assert (where.site_url, where.environment, where.path, where.tag) == (
        "https://app.infisical.com",
        "prod",
        "/",
        "homelab",
    )
    assert where.project_id == inventory.infisical.project_id


def test_names_fetch_no_values(server, inventory):
    seed(server)
    store = infisical.open_store(inventory)
    assert store.names() == {"CLOUDFLARE_API_TOKEN", "B2_APPLICATION_KEY"}
    assert server.requests[-1].query["viewSecretValue"] == "false"
    # nothing was fetched, so nothing needed registering
    assert redact("cf-token-homelab-1") == "cf-token-homelab-1"


def test_every_value_read_is_registered_for_redaction_at_once(server, inventory):
    seed(server)
    infisical.open_store(inventory).read(["CLOUDFLARE_API_TOKEN"])
    assert redact("token=cf-token-homelab-1") == "token=***"
    # values of the cluster's other secrets came over the wire too: they are masked as well
    assert redact("b2-key-homelab-22") == "***"
    # so are the machine identity's secret and the access token
    assert redact(CLIENT_SECRET) == "***"


def test_write_creates_a_secret_tagged_with_the_cluster_creating_the_tag(server, inventory):
    store = infisical.open_store(inventory)
    store.write("TALOS_SECRETS_BUNDLE", "cluster:\n  id: abc\n  secret: s3cr3t-bundle-value\n")
    stored = server.secret(PROJECT, "prod", "/", "TALOS_SECRETS_BUNDLE")
    assert stored is not None and stored.tags == {"homelab"}
    assert stored.value.endswith("s3cr3t-bundle-value\n")
    assert ("POST", f"/api/v1/projects/{PROJECT}/tags") in [
        (r.method, r.path) for r in server.requests
    ]
    assert store.names() == {"TALOS_SECRETS_BUNDLE"}
    assert "s3cr3t" not in redact("  secret: s3cr3t-bundle-value")


def test_write_updates_this_clusters_secret_in_place(server, inventory):
    seed(server)
    store = infisical.open_store(inventory)
    store.write("CLOUDFLARE_API_TOKEN", "cf-token-rotated-7")
    stored = server.secret(PROJECT, "prod", "/", "CLOUDFLARE_API_TOKEN")
    assert (stored.value, stored.tags, stored.version) == ("cf-token-rotated-7", {"homelab"}, 2)
    assert "PATCH" in [r.method for r in server.requests]


@pytest.mark.parametrize("name", ["OTHER_CLUSTER_TOKEN", "UNTAGGED"])
def test_write_refuses_a_secret_without_this_clusters_tag(server, inventory, name):
    seed(server)
    before = server.secret(PROJECT, "prod", "/", name).value
    with pytest.raises(SecretsError, match=f"{name} already exists .* without the tag 'homelab'"):
        infisical.open_store(inventory).write(name, "would-overwrite-8")
    assert server.secret(PROJECT, "prod", "/", name).value == before


@pytest.mark.parametrize(
    "unset",
    [
        ("INFISICAL_CLIENT_ID",),
        ("INFISICAL_CLIENT_SECRET",),
        ("INFISICAL_CLIENT_ID", "INFISICAL_CLIENT_SECRET"),
    ],
    ids=["id", "secret", "both"],
)
def test_missing_credentials_name_every_variable_to_set(server, inventory, monkeypatch, unset):
    for var in unset:
        monkeypatch.delenv(var)
    with pytest.raises(SecretsError) as err:
        infisical.open_store(inventory)
    message = str(err.value)
    assert message.startswith("Infisical credentials missing: set ")
    for var in ("INFISICAL_CLIENT_ID", "INFISICAL_CLIENT_SECRET"):
        assert (f"${var}" in message) == (var in unset)
    assert server.requests == []  # nothing was sent anywhere


def _bad_secret(server, monkeypatch):
    monkeypatch.setenv("INFISICAL_CLIENT_SECRET", "wrong-secret-9999")


def _unknown_project(server, monkeypatch):
    monkeypatch.setenv("INFISICAL_PROJECT_ID", "99999999-0000-4000-8000-000000000000")


def _server_error(server, monkeypatch):
    server.fail(500, "Something went wrong", prefix="/api/v3/")


def _timeout(server, monkeypatch):
    server.hang()


@pytest.mark.parametrize(
    ("cause", "expected"),
    [
        (_bad_secret, r"refused the machine identity \(HTTP 401\).*\$INFISICAL_CLIENT_SECRET"),
        (_unknown_project, r"no project 99999999-.* \(HTTP 404\).*infisical\.projectId"),
        (_server_error, r"server error \(HTTP 500\).*Try again later"),
        (_timeout, r"did not answer within 1s .*\(timeout\).*\$INFISICAL_TIMEOUT"),
    ],
    ids=["401", "404", "500", "timeout"],
)
def test_failures_give_a_clear_message(server, inventory, monkeypatch, cause, expected):
    seed(server)
    cause(server, monkeypatch)
    with pytest.raises(SecretsError, match=expected) as err:
        infisical.open_store(inventory).read(["CLOUDFLARE_API_TOKEN"])
    assert str(err.value).endswith("Nothing was changed.")
    assert err.value.__cause__ is None and err.value.__suppress_context__
    assert CLIENT_SECRET not in str(err.value)


def test_a_timeout_is_not_retried(server, inventory):
    # the SDK retries network errors 4 times with backoff; a stalled server gets one wait
    server.hang()
    with pytest.raises(SecretsError, match="timeout"):
        infisical.open_store(inventory)
    assert len(server.requests) == 1


def test_unreachable_site_says_so(inventory, monkeypatch):
    monkeypatch.setenv("INFISICAL_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("INFISICAL_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("INFISICAL_SITE_URL", "http://127.0.0.1:9")  # discard port: refused
    with pytest.raises(
        SecretsError, match=r"could not connect to Infisical at http://127\.0\.0\.1:9"
    ):
        infisical.open_store(inventory)


@pytest.mark.parametrize(
    "url", ["http://infisical.example.com", "ftp://127.0.0.1", "app.infisical.com"]
)
def test_site_url_must_be_https_unless_loopback(inventory, url):
    with pytest.raises(SecretsError, match=r"INFISICAL_SITE_URL: expected an https:// URL"):
        infisical.location(inventory, env={"INFISICAL_SITE_URL": url})


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:80"]
)
def test_plain_http_is_accepted_on_loopback(inventory, url):
    assert infisical.location(inventory, env={"INFISICAL_SITE_URL": url}).site_url == url


@pytest.mark.parametrize("value", ["soon", "0", "-3"])
def test_bad_timeout_is_an_error_naming_the_variable(inventory, value):
    with pytest.raises(SecretsError, match=r"\$INFISICAL_TIMEOUT: expected seconds > 0"):
        infisical.location(inventory, env={"INFISICAL_TIMEOUT": value})


def test_hidden_marker_matches_the_fake():
    assert infisical.HIDDEN == HIDDEN
