"""The kind profile, checked from outside: Pods Ready, the second scheduler injected and used, and
the app answering through Traefik's Gateway."""

import pytest

from tasks.engine import yamlio
from tasks.engine.inventory import load_inventory
from tasks.engine.kubectl import namespace_manifest
from tasks.engine.poll import poll
from tasks.verify.profile import KIND_APPS, KIND_GATEWAY_HTTP
from tasks.verify.verification import (
    SCHEDULER_NAME,
    condition,
    http_status,
    scheduled_by,
    unready_pods,
)

NAMESPACE = "onecluster-it-scheduling"
POD = "scheduler-check"


def test_every_pod_ready(kube):
    problems = poll(lambda: unready_pods(kube.json("get", "pods", "--all-namespaces")), 600, 5)
    assert problems == []


@pytest.fixture
def plain_pod(kube):
    """A Pod created with no schedulerName, in a namespace of its own (removed afterwards)."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": POD, "namespace": NAMESPACE},
        "spec": {"containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10"}]},
    }
    stream = yamlio.dump_all([namespace_manifest(NAMESPACE), pod])
    try:
        kube.run("apply", "-f", "-", stdin=stream.encode())
        yield POD
    finally:
        kube.run("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=false")


def test_new_pod_injected_and_scheduled_by_second_scheduler(kube, plain_pod):
    pod = kube.json("get", "pod", plain_pod, "-n", NAMESPACE)
    assert pod["spec"].get("schedulerName") == SCHEDULER_NAME
    pod = poll(
        lambda: kube.json("get", "pod", plain_pod, "-n", NAMESPACE),
        180,
        5,
        done=lambda p: condition(p, "PodScheduled") == "True",
    )
    assert condition(pod, "PodScheduled") == "True", pod.get("status")
    events = poll(
        lambda: kube.json("get", "events", "-n", NAMESPACE),
        60,
        5,
        done=lambda e: bool(scheduled_by(e, plain_pod)),
    )
    assert scheduled_by(events, plain_pod) == {SCHEDULER_NAME}


@pytest.mark.parametrize("app", KIND_APPS)
def test_app_answers_through_gateway(app):
    host = load_inventory().domains.hosts[app]

    def status():
        try:
            return http_status(KIND_GATEWAY_HTTP, host)
        except OSError as exc:
            return exc

    answer = poll(status, 300, 5, done=lambda s: isinstance(s, int) and 200 <= s < 400)
    assert isinstance(answer, int) and 200 <= answer < 400, (
        f"{host} via {KIND_GATEWAY_HTTP}: {answer}"
    )
