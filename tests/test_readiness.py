"""What kubectl's waits conclude from one read of an object (tasks/engine/readiness.py).

Each case is a rule of kubectl, read from its source (the kubernetes/kubectl repository):
``staging/src/k8s.io/kubectl/pkg/polymorphichelpers/rollout_status.go`` (``kubectl rollout
status``: DeploymentStatusViewer, DaemonSetStatusViewer, StatefulSetStatusViewer) and
``staging/src/k8s.io/kubectl/pkg/cmd/wait/condition.go`` (``kubectl wait --for=condition``:
``checkCondition`` and ``getObservedGeneration``). A gate judged "holds" here is one the real
command would have passed at once; anything else runs the real wait.
"""

from __future__ import annotations

import copy

import pytest

from tasks.engine.readiness import condition_met, rolled_out

DEPLOYMENT = {
    "kind": "Deployment",
    "metadata": {"name": "traefik", "generation": 4},
    "spec": {"replicas": 2},
    "status": {
        "observedGeneration": 4,
        "replicas": 2,
        "updatedReplicas": 2,
        "availableReplicas": 2,
        "conditions": [
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}
        ],
    },
}
DAEMONSET = {
    "kind": "DaemonSet",
    "metadata": {"name": "alloy", "generation": 2},
    "spec": {"updateStrategy": {"type": "RollingUpdate"}},
    "status": {
        "observedGeneration": 2,
        "desiredNumberScheduled": 6,
        "updatedNumberScheduled": 6,
        "numberAvailable": 6,
    },
}
STATEFULSET = {
    "kind": "StatefulSet",
    "metadata": {"name": "loki", "generation": 3},
    "spec": {"replicas": 3, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {}}},
    "status": {"observedGeneration": 3, "readyReplicas": 3, "updatedReplicas": 3},
}


def changed(obj: dict, path: str, value: object) -> dict:
    out = copy.deepcopy(obj)
    *parents, last = path.split(".")
    node = out
    for part in parents:
        node = node.setdefault(part, {})
    if value is None:
        node.pop(last, None)
    else:
        node[last] = value
    return out


def test_rolled_out_workloads_hold():
    assert rolled_out(DEPLOYMENT) and rolled_out(DAEMONSET) and rolled_out(STATEFULSET)


@pytest.mark.parametrize(
    ("why", "obj"),
    [
        # "Waiting for deployment spec update to be observed"
        ("spec not observed", changed(DEPLOYMENT, "metadata.generation", 5)),
        # "deployment %q exceeded its progress deadline"
        (
            "progress deadline",
            changed(
                DEPLOYMENT,
                "status.conditions",
                [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}],
            ),
        ),
        # "%d out of %d new replicas have been updated"
        ("replicas not updated", changed(DEPLOYMENT, "status.updatedReplicas", 1)),
        # "%d old replicas are pending termination"
        ("old replicas", changed(DEPLOYMENT, "status.replicas", 3)),
        # "%d of %d updated replicas are available"
        ("not available", changed(DEPLOYMENT, "status.availableReplicas", 1)),
        # "rollout status is only available for RollingUpdate strategy type"
        ("OnDelete daemonset", changed(DAEMONSET, "spec.updateStrategy.type", "OnDelete")),
        ("daemonset not observed", changed(DAEMONSET, "status.observedGeneration", 1)),
        ("daemonset pods not updated", changed(DAEMONSET, "status.updatedNumberScheduled", 5)),
        ("daemonset pods not available", changed(DAEMONSET, "status.numberAvailable", 5)),
        # a StatefulSet never observed (observedGeneration 0) waits
        ("statefulset never observed", changed(STATEFULSET, "status.observedGeneration", None)),
        ("statefulset pods not ready", changed(STATEFULSET, "status.readyReplicas", 2)),
        (
            "partitioned rollout",
            changed(
                changed(STATEFULSET, "spec.updateStrategy.rollingUpdate", {"partition": 1}),
                "status.updatedReplicas",
                1,
            ),
        ),
        (
            "revision not rolled",
            changed(
                changed(STATEFULSET, "spec.updateStrategy.rollingUpdate", None),
                "status.updateRevision",
                "loki-2",
            ),
        ),
        ("not a workload", {"kind": "ConfigMap", "metadata": {"name": "x"}}),
    ],
)
def test_what_kubectl_rollout_status_would_wait_for_does_not_hold(why, obj):
    assert not rolled_out(obj), why


def test_a_partition_that_is_met_and_matching_revisions_hold():
    partitioned = changed(STATEFULSET, "spec.updateStrategy.rollingUpdate", {"partition": 1})
    assert rolled_out(changed(partitioned, "status.updatedReplicas", 2))
    no_rolling = changed(STATEFULSET, "spec.updateStrategy.rollingUpdate", None)
    assert rolled_out(
        changed(changed(no_rolling, "status.updateRevision", "a"), "status.currentRevision", "a")
    )


CERTIFICATE = {
    "kind": "Certificate",
    "metadata": {"name": "wildcard-tls", "generation": 2},
    "status": {"conditions": [{"type": "Ready", "status": "True", "observedGeneration": 2}]},
}


def test_condition_rules_of_kubectl_wait():
    assert condition_met(CERTIFICATE, "Ready")
    assert condition_met(CERTIFICATE, "ready")  # the type is matched case-insensitively
    assert not condition_met(CERTIFICATE, "Issuing")  # absent: not met
    stale = changed(CERTIFICATE, "metadata.generation", 3)  # the condition's own generation
    assert not condition_met(stale, "Ready")
    false = changed(CERTIFICATE, "status.conditions", [{"type": "Ready", "status": "False"}])
    assert not condition_met(false, "Ready")
    # no observedGeneration on the condition: the status's is used; none at all: not compared
    by_status = {
        "kind": "Gateway",
        "metadata": {"generation": 5},
        "status": {
            "observedGeneration": 4,
            "conditions": [{"type": "Programmed", "status": "True"}],
        },
    }
    assert not condition_met(by_status, "Programmed")
    assert condition_met(changed(by_status, "status.observedGeneration", None), "Programmed")
