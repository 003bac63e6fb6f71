"""Scheduling layer: the Kyverno policy is ready and really injects the second scheduler."""

import json

import pytest

from tasks.engine import yamlio
from tasks.engine.errors import CommandError
from tasks.verify.verification import SCHEDULER_NAME, injection_policies, items, policy_ready

pytestmark = pytest.mark.layer("scheduling")

POLICY_KINDS = ("clusterpolicies.kyverno.io", "mutatingpolicies.policies.kyverno.io")
PROBE_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "onecluster-policy-check", "namespace": "default"},
    "spec": {"containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10"}]},
}


@pytest.fixture(scope="module")
def policies(kube):
    found = []
    for kind in POLICY_KINDS:
        try:
            found += items(kube.json("get", kind))
        except CommandError:
            continue  # that policy kind is not installed
    return injection_policies(found)


def test_injection_policy_ready(policies):
    assert policies, f"no Kyverno policy sets schedulerName: {SCHEDULER_NAME}"
    assert [p["metadata"]["name"] for p in policies if not policy_ready(p)] == []


def test_new_pod_gets_scheduler(kube):
    # a server-side dry run goes through admission (Kyverno included) and persists nothing
    made = kube.query(
        "create", "--dry-run=server", "-f", "-", "-o", "json",
        stdin=yamlio.dump(PROBE_POD).encode(),
    )  # fmt: skip
    assert json.loads(made.stdout)["spec"].get("schedulerName") == SCHEDULER_NAME
