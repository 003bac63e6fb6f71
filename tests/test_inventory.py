"""Inventory loading and validation: every bad input is one clear error naming its field."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from tasks.engine.errors import InventoryError
from tasks.engine.inventory import DEFAULT_INVENTORY, load_inventory, parse_inventory

REFERENCE = yaml.safe_load(DEFAULT_INVENTORY.read_text())


def mutate(path: str, value: object) -> dict:
    """A copy of the reference inventory with ``path`` (``a.b[2].c``) set, or deleted if DELETE."""
    data = copy.deepcopy(REFERENCE)
    parts = re.findall(r"[^.\[\]]+|\[\d+\]", path)
    target = data
    for part in parts[:-1]:
        target = target[int(part[1:-1])] if part.startswith("[") else target[part]
    last = parts[-1]
    key = int(last[1:-1]) if last.startswith("[") else last
    if value is DELETE:
        del target[key]
    else:
        target[key] = value
    return data


DELETE = object()

# (id, field path to change, new value, field the error must name, words the message must contain)
BAD = [
    (
        "wrong-type-bootstrapped",
        "cluster.bootstrapped",
        "yes",
        "cluster.bootstrapped",
        "true or false",
    ),
    ("unquoted-version", "cluster.talosVersion", 1.12, "cluster.talosVersion", "a string"),
    (
        "bad-version-format",
        "cluster.kubernetesVersion",
        "1.35",
        "cluster.kubernetesVersion",
        "v1.12.4",
    ),
    ("talos-not-1.12", "cluster.talosVersion", "v1.11.5", "cluster.talosVersion", "v1.12"),
    ("unknown-key", "cluster.nmae", "x", "cluster.nmae", "unknown key"),
    ("missing-key", "cluster.vip", DELETE, "cluster.vip", "missing required key"),
    ("not-an-ip", "nodes[1].ip", "192.168.50.300", "nodes[1].ip", "IPv4 address"),
    ("duplicate-name", "nodes[4].name", "talostrk2", "nodes[4].name", "duplicate node name"),
    ("duplicate-ip", "nodes[2].ip", "192.168.50.11", "nodes[2].ip", "duplicate node IP"),
    ("ip-outside-subnet", "nodes[3].ip", "10.0.0.12", "nodes[3].ip", "inside network.subnet"),
    ("vip-is-node-ip", "cluster.vip", "192.168.50.12", "cluster.vip", "also the address of node"),
    (
        "vip-in-pool",
        "cluster.vip",
        "192.168.50.210",
        "cluster.vip",
        "inside network.loadBalancerPool",
    ),
    (
        "pool-overlaps-node",
        "network.loadBalancerPool",
        "192.168.50.10-192.168.50.30",
        "network.loadBalancerPool",
        "overlaps node",
    ),
    (
        "pool-backwards",
        "network.loadBalancerPool",
        "192.168.50.230-192.168.50.200",
        "network.loadBalancerPool",
        "ends before it starts",
    ),
    (
        "pool-not-a-range",
        "network.loadBalancerPool",
        "192.168.50.200",
        "network.loadBalancerPool",
        "range FIRST-LAST",
    ),
    (
        "static-ip-outside-pool",
        "network.staticIPs.dispatcharr",
        "192.168.50.100",
        "network.staticIPs.dispatcharr",
        "inside network.loadBalancerPool",
    ),
    (
        "static-ip-shared",
        "network.staticIPs.dispatcharr",
        "192.168.50.200",
        "network.staticIPs.dispatcharr",
        "already used",
    ),
    (
        "even-control-planes",
        "nodes[3].role",
        "controlplane",
        "nodes",
        "odd number of control planes",
    ),
    ("unknown-role", "nodes[0].role", "master", "nodes[0].role", "one of 'controlplane', 'worker'"),
    ("bad-install-disk", "nodes[0].installDisk", "sda", "nodes[0].installDisk", "device path"),
    ("bad-hostname", "nodes[0].name", "TalosTrk1", "nodes[0].name", "DNS label"),
    (
        "endpoint-not-on-vip",
        "cluster.endpoint",
        "https://192.168.50.11:6443",
        "cluster.endpoint",
        "endpoint on the VIP",
    ),
    (
        "gateway-outside-subnet",
        "network.gateway",
        "10.0.0.1",
        "network.gateway",
        "inside network.subnet",
    ),
    ("bad-subnet", "network.subnet", "192.168.50.0/33", "network.subnet", "CIDR"),
    (
        "host-outside-domain",
        "domains.hosts.mealie",
        "mealie.example.org",
        "domains.hosts.mealie",
        "a name under it",
    ),
    (
        "infisical-plain-http",
        "infisical.siteUrl",
        "http://infisical.local",
        "infisical.siteUrl",
        "https://",
    ),
    ("bad-schematic-id", "talos.schematic.id", "abc123", "talos.schematic.id", "64-character"),
    ("nodes-not-a-list", "nodes", {"talostrk1": {}}, "nodes", "a list of"),
]


@pytest.mark.parametrize(
    ("path", "value", "field", "words"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_bad_inventory_names_the_field(path, value, field, words):
    with pytest.raises(InventoryError) as info:
        parse_inventory(mutate(path, value), "talos/cluster.yaml")
    matching = [e for e in info.value.errors if e.field == field]
    assert matching, f"no error for {field}; got: {info.value}"
    assert any(words in e.message for e in matching), str(info.value)
    # every error names the file, the field, and how to fix it
    assert all(e.file == "talos/cluster.yaml" for e in info.value.errors)
    assert f"talos/cluster.yaml: {field}: " in str(info.value)


def test_reference_inventory_is_valid():
    inv = load_inventory()
    assert inv.name == "homelab"
    assert inv.cluster.talos_version == "v1.12.4"
    assert [n.name for n in inv.control_planes] == ["talostrk1", "talostrk5", "talostrk6"]
    assert [n.name for n in inv.workers] == ["talostrk2", "talostrk3", "talostrk4"]
    assert all(ip in inv.network.pool for ip in inv.network.static_ips.values())
    assert inv.domains.base == "thedougie.com"
    assert inv.domains.hosts["mealie"] == "mealie.thedougie.com"


def test_reference_inventory_says_addresses_are_examples():
    assert "EXAMPLE" in DEFAULT_INVENTORY.read_text().upper().split("NODES:")[0]


def test_all_errors_are_reported_together():
    data = mutate("nodes[0].ip", "10.9.9.9")
    data["cluster"]["bootstrapped"] = "no"
    data["network"]["staticIPs"]["dispatcharr"] = "192.168.50.2"
    with pytest.raises(InventoryError) as info:
        parse_inventory(data, "x.yaml")
    fields = {e.field for e in info.value.errors}
    assert {"nodes[0].ip", "cluster.bootstrapped", "network.staticIPs.dispatcharr"} <= fields
    assert str(info.value).startswith(f"{len(info.value.errors)} problem(s)")


def test_errors_carry_a_fix():
    with pytest.raises(InventoryError) as info:
        parse_inventory(mutate("nodes[2].ip", "192.168.50.11"), "x.yaml")
    assert all(e.fix for e in info.value.errors)
    assert "(fix: " in str(info.value)


def test_missing_file_and_bad_yaml(tmp_path: Path):
    with pytest.raises(InventoryError, match=r"cannot read.*--cluster PATH"):
        load_inventory(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("cluster: [unclosed\n")
    with pytest.raises(InventoryError, match=r"broken.yaml: line \d+: not valid YAML"):
        load_inventory(broken)


def test_another_cluster_is_another_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    other = tmp_path / "lab.yaml"
    other.write_text(yaml.safe_dump(mutate("cluster.name", "lab")))
    assert load_inventory(other).name == "lab"
    monkeypatch.setenv("ONECLUSTER_CLUSTER", str(other))
    assert load_inventory().name == "lab"
