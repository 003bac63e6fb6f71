"""Create-only writes: a secret another run stored first is read back and never overwritten.

The Talos secrets bundle is stored this way (``tasks/talos/secretsbundle.py``), so two rebuilds
racing to store a new PKI end with one. Infisical refuses a second secret of one name in a folder
(HTTP 400 "Secret already exist", as ``tests/fakes/infisical_server.py`` answers).
"""

from __future__ import annotations

import threading

import pytest
from test_secrets_infisical import PROJECT, inventory, server  # noqa: F401 - fixtures

from tasks.engine.errors import SecretsError
from tasks.engine.output import redact
from tasks.secrets import infisical
from tasks.secrets.store import MemoryStore

NAME = "TALOS_SECRETS_BUNDLE"


def test_memory_create_keeps_the_first_value_under_concurrent_creates():
    store = MemoryStore()
    barrier = threading.Barrier(8)
    got: list[str] = []

    def create(i: int) -> None:
        barrier.wait()
        got.append(store.create(NAME, f"bundle-from-run-{i}"))

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    (kept,) = store.read([NAME]).values()
    assert got == [kept] * 8
    assert redact("bundle-from-run-3") == "***"  # every offered value is registered


def test_memory_create_never_overwrites():
    store = MemoryStore({NAME: "first-bundle-value"})
    assert store.create(NAME, "second-bundle-value") == "first-bundle-value"
    assert store.read([NAME]) == {NAME: "first-bundle-value"}


def test_infisical_create_stores_a_tagged_secret_when_absent(server, inventory):  # noqa: F811
    store = infisical.open_store(inventory)
    assert store.create(NAME, "new-bundle-value-1") == "new-bundle-value-1"
    stored = server.secret(PROJECT, "prod", "/", NAME)
    assert (stored.value, stored.tags) == ("new-bundle-value-1", {"homelab"})


def test_infisical_create_reads_back_the_existing_secret(server, inventory):  # noqa: F811
    server.put(PROJECT, "prod", "/", NAME, "existing-bundle-value-2", "homelab")
    store = infisical.open_store(inventory)
    assert store.create(NAME, "late-bundle-value-3") == "existing-bundle-value-2"
    stored = server.secret(PROJECT, "prod", "/", NAME)
    assert (stored.value, stored.version) == ("existing-bundle-value-2", 1)
    assert not [r for r in server.requests if r.method in ("PATCH", "POST") and NAME in r.path]


def test_infisical_create_loses_a_race_without_overwriting(server, inventory, monkeypatch):  # noqa: F811
    store = infisical.open_store(inventory)
    # this run listed the folder and found nothing; another run's create lands before its own
    real, asked = store._existing, []

    def existing(name: str) -> bool:
        asked.append(name)
        return len(asked) > 1 and real(name)

    monkeypatch.setattr(store, "_existing", existing)
    server.put(PROJECT, "prod", "/", NAME, "winner-bundle-value-4", "homelab")
    assert store.create(NAME, "loser-bundle-value-5") == "winner-bundle-value-4"
    assert server.secret(PROJECT, "prod", "/", NAME).value == "winner-bundle-value-4"
    # its create was tried and refused (400 "Secret already exist"), then it read the winner's
    assert [r.method for r in server.requests if r.path.endswith(f"/{NAME}")].count("POST") == 1


def test_infisical_create_refuses_a_secret_without_the_clusters_tag(server, inventory):  # noqa: F811
    server.put(PROJECT, "prod", "/", NAME, "someone-elses-value-6")
    with pytest.raises(SecretsError, match="without the tag 'homelab'"):
        infisical.open_store(inventory).create(NAME, "would-be-bundle-7")
    assert server.secret(PROJECT, "prod", "/", NAME).value == "someone-elses-value-6"


def test_infisical_create_after_a_cached_listing_reads_the_winner(server, inventory):  # noqa: F811
    # the run read its values once (the listing every later read reuses) before the bundle existed;
    # another run stores the bundle; this run's create must read the winner, not its stale listing
    store = infisical.open_store(inventory)
    assert store.read([NAME]) == {}
    server.put(PROJECT, "prod", "/", NAME, "winner-bundle-value-8", "homelab")
    assert store.create(NAME, "loser-bundle-value-9") == "winner-bundle-value-8"
    assert store.read([NAME]) == {NAME: "winner-bundle-value-8"}
    assert server.secret(PROJECT, "prod", "/", NAME).value == "winner-bundle-value-8"
