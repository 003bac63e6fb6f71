"""``scheduling.record`` against the recording fakes: canned Prometheus answers and kubectl lists.

The fake kubectl answers ``get --raw`` of the service proxy with Prometheus' JSON envelope
(prometheus/prometheus ``web/api/v1/api.go``: ``{"status": "success", "data": {"resultType":
"matrix"|"vector", "result": [...]}}``, values as strings), and ``get nodes``/``get pods`` with
v1 Lists. The queries are load-watcher v0.2.4's (``pkg/watcher/internal/metricsprovider/
prometheus.go``: ``avg_over_time``/``stddev_over_time`` of ``instance:node_cpu:ratio`` and
``instance:node_memory_utilisation:ratio`` over ``[15m]``, keyed by ``instance``, x100).
"""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from tasks.engine.kubectl import Kubectl
from tasks.trimaran import tasks as trimaran_tasks
from tasks.trimaran.collect import (
    MAX_POINTS,
    chunks,
    nodes_command,
    pod_queries,
    pods_command,
    window,
)
from tasks.trimaran.recording import SCHEMA, SERIES, load
from tests.conftest import call_task

NOW = 1_790_003_000.0
STEP = 300
END = 1_790_002_800  # NOW floored to the step
START = END - 3600
TIMES = [START + i * STEP for i in range(13)]
MiB = 2**20


def envelope(kind: str, result: list) -> str:
    return json.dumps({"status": "success", "data": {"resultType": kind, "result": result}})


def matrix(by_instance: dict[str, float], nan_at: int | None = None) -> str:
    result = []
    for instance, ratio in by_instance.items():
        values = [[t, "NaN" if i == nan_at else repr(ratio)] for i, t in enumerate(TIMES)]
        result.append({"metric": {"instance": instance, "job": "node-exporter"}, "values": values})
    return envelope("matrix", result)


def vector(items: list[tuple[dict, float]]) -> str:
    return envelope("vector", [{"metric": m, "value": [END, repr(v)]} for m, v in items])


def match_query(promql: str) -> str:
    """The query as the service-proxy URI carries it (urlencoded, as Endpoint.path encodes it)."""
    return urlencode([("query", promql)]) + "&"


NODES = {
    "apiVersion": "v1",
    "kind": "List",
    "items": [
        {"metadata": {"name": "node-a", "annotations": {"talos.dev/secret": "x"}},
         "status": {"allocatable": {"cpu": "3800m", "memory": "15Gi", "pods": "110"}}},
        {"metadata": {"name": "node-b"},
         "spec": {"taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]},
         "status": {"allocatable": {"cpu": "4", "memory": "16302048Ki"}}},
        {"metadata": {"name": "node-c"}, "spec": {"unschedulable": True},
         "status": {"allocatable": {"cpu": "2", "memory": "8Gi"}}},
    ],
}  # fmt: skip

SECRET = "hunter2-do-not-record"
LIVE_UID = "11111111-1111-4111-8111-111111111111"
GONE_UID = "22222222-2222-4222-8222-222222222222"
OLD_UID = "33333333-3333-4333-8333-333333333333"
DONE_UID = "44444444-4444-4444-8444-444444444444"
PODS = {
    "apiVersion": "v1",
    "kind": "List",
    "items": [
        {
            "metadata": {
                "name": "web-1", "namespace": "apps", "uid": LIVE_UID,
                "creationTimestamp": "2026-09-21T14:00:00Z",  # 1789999200: the window's start
                "annotations": {"token": SECRET},
                "labels": {"app": "web"},
                "ownerReferences": [{"kind": "ReplicaSet", "name": "web-5d", "controller": True}],
            },
            "spec": {
                "nodeName": "node-a", "schedulerName": "scheduler-plugins-scheduler",
                "containers": [{"name": "web", "env": [{"name": "PASSWORD", "value": SECRET}],
                                "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}}}],
                "initContainers": [{"name": "init", "resources": {"requests": {"cpu": "1"}}}],
            },
        },
        {
            "metadata": {"name": "job-1", "namespace": "apps", "uid": DONE_UID,
                         "creationTimestamp": "2026-09-21T14:05:00Z"},  # 1789999500
            "spec": {"nodeName": "node-a", "schedulerName": "scheduler-plugins-scheduler",
                     "containers": [{"name": "c", "resources": {"requests": {"cpu": "2"}}}]},
            "status": {"phase": "Succeeded", "containerStatuses": [
                {"name": "c", "state": {"terminated": {"exitCode": 0,
                                                       "finishedAt": "2026-09-21T14:25:00Z"}}}]},
        },
        {
            "metadata": {"name": "old", "namespace": "apps", "uid": OLD_UID,
                         "creationTimestamp": "2026-09-01T00:00:00Z"},
            "spec": {"nodeName": "node-a", "containers": [{"name": "c"}]},
        },
    ],
}  # fmt: skip


@pytest.fixture
def cluster(fake_tools, monkeypatch):
    """The fakes answer every read of a 1-hour recording; the task's clock reads NOW."""
    monkeypatch.setattr(trimaran_tasks, "time", SimpleNamespace(time=lambda: NOW))
    answers = {
        "cpu_avg": matrix({"node-a": 0.42, "node-b": 0.1, "10.0.0.9:9100": 0.5}, nan_at=3),
        "memory_avg": matrix({"node-a": 0.5, "node-b": 0.25}),
        "cpu_std": matrix({"node-a": 0.05, "node-b": 0.01}),
        "memory_std": matrix({"node-a": 0.02, "node-b": 0.0}),
    }
    for key, _, _, promql in SERIES:
        fake_tools.rule("kubectl", "get", "--raw", "/query_range?", match_query(promql),
                        stdout=answers[key])  # fmt: skip
    pods = {"namespace": "apps", "uid": GONE_UID, "pod": "batch-1"}
    live = {"namespace": "apps", "uid": LIVE_UID, "pod": "web-1"}
    canned = {
        "created": vector([(pods, 1_790_001_000), (live, 1_789_999_200)]),
        "last_seen": vector([(pods, 1_790_002_100), (live, END)]),
        "info": vector([({**pods, "node": "node-b", "created_by_kind": "Job"}, 1)]),
        "scheduler": vector([({**pods, "name": "scheduler-plugins-scheduler"}, 1)]),
        "requests": vector(
            [
                ({"uid": GONE_UID, "container": "a", "resource": "cpu"}, 0.25),
                ({"uid": GONE_UID, "container": "b", "resource": "cpu"}, 0.1),
                ({"uid": GONE_UID, "container": "a", "resource": "memory"}, 268435456),
            ]
        ),
        "init_requests": vector(
            [({"uid": GONE_UID, "container": "i", "resource": "memory"}, 536870912)]
        ),
        "overhead_cpu": vector([({"uid": GONE_UID}, 0.05)]),
        "overhead_memory": vector([]),
    }
    for name, promql in pod_queries(3600, STEP).items():
        fake_tools.rule("kubectl", "get", "--raw", "/query?", match_query(promql),
                        stdout=canned[name])  # fmt: skip
    fake_tools.rule("kubectl", "get", "nodes", "-o", "json", stdout=json.dumps(NODES))
    fake_tools.rule("kubectl", "get", "pods", "--all-namespaces", stdout=json.dumps(PODS))
    return fake_tools


def test_record_writes_what_the_plugin_reads(cluster, tmp_path, capsys):
    out = tmp_path / "rec.json"
    call_task("scheduling.record", since="1h", step="5m", out=str(out))
    doc = json.loads(out.read_text())
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(doc, json.loads(SCHEMA.read_text()))
    assert doc["times"] == TIMES and (doc["start"], doc["end"], doc["step"]) == (START, END, 300)
    # x100, keyed by instance; the NaN at point 3 left out (null) and counted
    assert doc["metrics"]["node-a"]["cpu_avg"][0] == pytest.approx(42.0)
    assert doc["metrics"]["node-a"]["cpu_avg"][3] is None and doc["dropped_samples"] == 3
    assert doc["metrics"]["node-b"]["memory_avg"][5] == pytest.approx(25.0)
    assert "10.0.0.9:9100" in doc["metrics"] and "node-c" not in doc["metrics"]
    # allocatable as MilliValue/Value; a tainted or cordoned node is not schedulable
    assert doc["nodes"] == [
        {"name": "node-a", "allocatable": {"cpu_millicores": 3800, "memory_bytes": 15 * 2**30},
         "schedulable": True},
        {"name": "node-b", "allocatable": {"cpu_millicores": 4000, "memory_bytes": 16302048 * 1024},
         "schedulable": False},
        {"name": "node-c", "allocatable": {"cpu_millicores": 2000, "memory_bytes": 8 * 2**30},
         "schedulable": False},
    ]  # fmt: skip
    pods = {p["uid"]: p for p in doc["pods"]}
    # the Pod created before the window is left out
    assert set(pods) == {LIVE_UID, GONE_UID, DONE_UID}
    # a completed Pod still listed ended with its last container (14:25 UTC = 1790000700)
    assert pods[DONE_UID]["last_seen"] == 1_790_000_700
    assert pods[DONE_UID]["requests"]["cpu_millicores"] == 2000
    live = pods[LIVE_UID]
    # from the API: max(250m, init 1000m) = 1000m; 256Mi; still running: seen until the end
    assert live["requests"] == {"cpu_millicores": 1000, "memory_bytes": 256 * MiB}
    assert (live["requests_from"], live["last_seen"], live["node"]) == ("api", END, "node-a")
    assert (live["owner_kind"], live["scheduler"]) == ("ReplicaSet", "scheduler-plugins-scheduler")
    gone = pods[GONE_UID]
    # from kube-state-metrics: cpu 250m + 100m + overhead 50m = 400m;
    # memory max(256Mi, init 512Mi) = 512Mi
    assert gone["requests"] == {"cpu_millicores": 400, "memory_bytes": 512 * MiB}
    assert (gone["node"], gone["owner_kind"], gone["last_seen"]) == ("node-b", "Job", 1_790_002_100)
    text = out.read_text()
    assert SECRET not in text and "annotations" not in text and "env" not in text
    assert "labels" not in text
    captured = capsys.readouterr()
    assert "recorded 13 points of 2/3 nodes and 3 Pods" in captured.out
    assert "no metrics keyed by the node name for node-c" in captured.err
    assert "10.0.0.9:9100" in captured.err
    # read-only: Prometheus through the proxy, and two lists
    argvs = cluster.argvs("kubectl")
    assert all(a[a.index("--kubeconfig") + 2] == "get" for a in argvs), argvs
    assert len(argvs) == 4 + 8 + 2


def test_record_dry_run_prints_the_reads_and_makes_none(cluster, capsys):
    call_task("scheduling.record", since="1h", dry_run=True)
    out = capsys.readouterr().out
    assert cluster.calls() == []
    assert "# avg_over_time(instance:node_cpu:ratio[15m])" in out
    assert "# stddev_over_time(instance:node_memory_utilisation:ratio[15m])" in out
    assert "kube_pod_container_resource_requests" in out
    assert "get nodes -o json" in out and "get pods --all-namespaces -o json" in out


def test_record_without_out_is_an_error(cluster):
    from invoke.exceptions import Exit

    with pytest.raises(Exit, match="--out is required"):
        call_task("scheduling.record")
    assert cluster.calls() == []


def test_a_prometheus_that_does_not_answer_is_an_error_with_the_fix(fake_tools, tmp_path):
    from invoke.exceptions import Exit

    fake_tools.rule("kubectl", "get", "--raw", exit=1,
                    stderr='Error from server (ServiceUnavailable): the server is currently unable to handle the request\n')  # fmt: skip
    with pytest.raises(Exit, match=r"did not answer.*kube-prometheus-stack deployed"):
        call_task("scheduling.record", since="1h", out=str(tmp_path / "r.json"))
    assert not (tmp_path / "r.json").exists()


def test_durations_take_days():
    from tasks.engine.poll import parse_duration

    assert parse_duration("14d") == 14 * 86400 and parse_duration("5m") == 300


def test_the_window_is_whole_steps_and_long_ranges_are_cut():
    assert window(NOW, 3600, 300) == (START, END)
    # 14 days at 1 minute: 20,161 points, beyond Prometheus' 11,000: three queries
    parts = chunks(0, 14 * 86400, 60)
    assert len(parts) == 3 and parts[0] == (0, (MAX_POINTS - 1) * 60)
    assert parts[1][0] == parts[0][1] + 60 and parts[-1][1] == 14 * 86400


def test_a_recording_from_another_version_is_refused(tmp_path):
    from tasks.trimaran.recording import RecordingError

    bad = tmp_path / "r.json"
    bad.write_text(json.dumps({"format": "onecluster/trimaran-recording", "version": 9}))
    with pytest.raises(RecordingError, match=r"version.*record it again"):
        load(bad)
    bad.write_text(json.dumps({"format": "onecluster/trimaran-recording", "version": 1,
                               "times": [1, 2], "start": 1, "end": 2, "step": 1, "nodes": [],
                               "metrics": {"n": {"cpu_avg": [1]}}, "pods": []}))  # fmt: skip
    with pytest.raises(RecordingError, match=r"metrics.n.cpu_avg: expected a list of 2 values"):
        load(bad)
    bad.write_text(bad.read_text().replace('"cpu_avg": [1]', '"cpu_avg": [1, NaN]'))
    with pytest.raises(RecordingError, match=r"metrics.n.cpu_avg: values are finite numbers"):
        load(bad)
    bad.write_text(
        bad.read_text().replace(
            '"nodes": []',
            '"nodes": [{"name": "a", "allocatable": {"cpu_millicores": NaN, "memory_bytes": 1}}]',
        )
    )
    with pytest.raises(
        RecordingError, match=r"nodes\[0\].allocatable: field 'cpu_millicores' is nan"
    ):
        load(bad)
    bad.write_text(bad.read_text().replace('"times": [1, 2]', '"times": [1, "x"]'))
    with pytest.raises(RecordingError, match=r"malformed \(ValueError"):
        load(bad)


KUBECTL = shutil.which("kubectl")


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
def test_the_real_kubectl_takes_every_read(tmp_path):
    """Real kubectl parses each read and fails only at the connection (nothing listens on :1)."""
    from test_real_tools import assert_refused_only, unreachable_kubeconfig

    from tasks.metrics.prometheus import query_command

    kubeconfig = unreachable_kubeconfig(tmp_path)

    kubectl = Kubectl(str(kubeconfig))
    for command in (
        nodes_command(kubectl),
        pods_command(kubectl),
        query_command(kubectl, pod_queries(86400, 300)["info"], at=END),
    ):
        assert_refused_only(command, tmp_path)
    raw = query_command(kubectl, pod_queries(86400, 300)["info"]).args[4]
    assert parse_qs(urlsplit(raw).query)["query"] == [pod_queries(86400, 300)["info"]]
