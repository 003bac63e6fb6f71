"""Talos layer: every node is Ready and its kubelet healthy (checked inside each node)."""

import pytest

from tasks.verify.verification import node_names, unready_nodes

pytestmark = pytest.mark.layer("talos")


def test_every_node_ready(kube):
    assert unready_nodes(kube.json("get", "nodes")) == []


@pytest.mark.live_only("kind nodes are not the inventory's machines")
def test_nodes_are_the_inventory(kube, inventory):
    assert sorted(node_names(kube.json("get", "nodes"))) == sorted(n.name for n in inventory.nodes)


def test_kubelet_healthy(host):
    # the kubelet's own health endpoint, on the node's loopback (the probe shares its network)
    assert host.check_output("wget -q -T 10 -O - http://127.0.0.1:10248/healthz") == "ok"
