"""Observability layer: Prometheus scrapes every target, node-exporter under the node names."""

import json

import pytest

from tasks.verify.verification import down_targets, exporter_instances, node_names

pytestmark = pytest.mark.layer("observability")

# Prometheus's API, reached through the API server's service proxy (no port-forward needed)
TARGETS = (
    "/api/v1/namespaces/monitoring/services/http:kube-prometheus-stack-prometheus:http-web"
    "/proxy/api/v1/targets?state=active"
)


@pytest.fixture(scope="module")
def targets(kube):
    return json.loads(kube.query("get", "--raw", TARGETS).stdout)


def test_prometheus_targets_up(targets):
    assert targets["data"]["activeTargets"], "Prometheus has no active targets"
    assert down_targets(targets) == []


def test_node_exporter_instance_is_node_name(kube, targets):
    assert exporter_instances(targets) == set(node_names(kube.json("get", "nodes")))
