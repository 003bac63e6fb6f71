"""A node's live config against the rendered one: every secret field masked on both sides."""

from __future__ import annotations

import pytest

from tasks.talos.configdiff import AFTER, BEFORE, MASK, config_diff, masked

KEY_OLD, KEY_NEW = "LS0tLS1CRUdJTiBFQyBQUklWQVRFIEtFWS0tLS0t-old", "LS0tLS1CRUdJTi-new-key"
TOKEN = "abcdef.0123456789abcdef"


def config(**over):
    """A v1alpha1 machine config, shaped as v1alpha1_types.go names its fields (v1.12.4)."""
    doc = {
        "version": "v1alpha1",
        "machine": {
            "type": "controlplane",
            "token": TOKEN,
            "ca": {"crt": "Q1JULXNhbWU=", "key": KEY_OLD},
            "network": {
                "interfaces": [{"interface": "eth0", "wireguard": {"privateKey": "wg-priv"}}]
            },
            "registries": {"config": {"r.io": {"auth": {"username": "u", "password": "reg-pass"}}}},
            "systemDiskEncryption": {"state": {"keys": [{"static": {"passphrase": "disk-pass"}}]}},
        },
        "cluster": {
            "clusterName": "homelab",
            "secret": "cluster-secret-value",
            "token": "bootstrap-token-value",
            "secretboxEncryptionSecret": "secretbox-value",
            "serviceAccount": {"key": "sa-key-value"},
            "etcd": {"ca": {"crt": "ZXRjZC1jcnQ=", "key": "etcd-key-value"}},
        },
    }
    doc["machine"].update(over)
    return [doc, {"apiVersion": "v1alpha1", "kind": "SideroLinkConfig",
                  "apiUrl": "https://siderolink.example/?jointoken=join-secret"}]  # fmt: skip


SECRETS = ("wg-priv", "reg-pass", "disk-pass", "cluster-secret-value", "bootstrap-token-value",
           "secretbox-value", "sa-key-value", "etcd-key-value", "join-secret", TOKEN, KEY_OLD,
           KEY_NEW, "Q1JULXNhbWU=", "ZXRjZC1jcnQ=")  # fmt: skip


def test_equal_configs_have_no_diff():
    assert config_diff("n", config(), config()) == (False, "")


def test_a_changed_key_shows_as_before_and_after_and_its_value_never():
    live = config()
    rendered = config(ca={"crt": "Q1JULXNhbWU=", "key": KEY_NEW}, type="worker")
    differs, text = config_diff("talostrk1", live, rendered)
    assert differs
    assert f"-    key: '{BEFORE}'" in text and f"+    key: '{AFTER}'" in text
    assert "-  type: controlplane" in text and "+  type: worker" in text
    assert not any(s in text for s in SECRETS), text
    left, right = masked(live, rendered)
    assert left[0]["machine"]["token"] == right[0]["machine"]["token"] == MASK  # unchanged: ***


@pytest.mark.parametrize(
    "path",
    [
        ("machine", "token"), ("machine", "ca", "crt"), ("machine", "ca", "key"),
        ("cluster", "secret"), ("cluster", "token"), ("cluster", "secretboxEncryptionSecret"),
        ("cluster", "serviceAccount", "key"), ("cluster", "etcd", "ca", "key"),
    ],
)  # fmt: skip
def test_every_secret_field_is_masked(path):
    (doc, link), _ = masked(config(), config())
    node = doc
    for part in path:
        node = node[part]
    assert node == MASK
    assert doc["machine"]["network"]["interfaces"][0]["wireguard"]["privateKey"] == MASK
    assert doc["machine"]["registries"]["config"]["r.io"]["auth"]["password"] == MASK
    assert (
        doc["machine"]["systemDiskEncryption"]["state"]["keys"][0]["static"]["passphrase"] == MASK
    )
    assert link["apiUrl"] == MASK
    assert doc["cluster"]["clusterName"] == "homelab"  # what is not secret stays


def test_a_config_only_on_one_side_is_masked_too():
    differs, text = config_diff("n", [], config())
    assert differs and "+  type: controlplane" in text
    assert not any(s in text for s in SECRETS), text
