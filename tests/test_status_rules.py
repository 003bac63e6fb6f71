"""Each cluster.status rule on a small hand-made snapshot (objects in their upstream shapes, parsed
by tasks/status/objects.py), and the parsers those snapshots go through."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tasks.status import objects, rules
from tasks.status.assess import assess, pod_workload
from tasks.status.declared import Unit
from tasks.status.findings import Facts
from tasks.status.reads import ETCD, EtcdMember, Snapshot, parse_etcd_status
from tasks.verify import longhorn

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
SINCE = NOW - timedelta(hours=9)


def at(minutes_ago: float) -> str:
    return (NOW - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod(name, namespace="app", *, owner=("ReplicaSet", "web-5f7d9c8b6"), phase="Running",
        node="w1", scheduler="default-scheduler", created=600, claims=(), scheduled=None,
        containers=(), requests=None, hash_="5f7d9c8b6"):  # fmt: skip
    """A core/v1 Pod as the API server returns it (only what the rules read)."""
    conditions = [{"type": "PodScheduled", "status": "True"}]
    if scheduled is not None:
        conditions = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                       "message": scheduled}]  # fmt: skip
    if scheduled is None and not node:
        conditions = []
    return objects.pod({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": at(created),
                     "labels": {"pod-template-hash": hash_},
                     "ownerReferences": [{"kind": owner[0], "name": owner[1], "controller": True}]},
        "spec": {"nodeName": node, "schedulerName": scheduler,
                 "containers": [{"name": "c", "resources": {"requests": requests or {}}}],
                 "volumes": [{"name": c, "persistentVolumeClaim": {"claimName": c}} for c in claims]},
        "status": {"phase": phase, "conditions": conditions, "containerStatuses": list(containers)},
    })  # fmt: skip


def workload(kind, name, namespace="app", desired=1, ready=1):
    status = ({"desiredNumberScheduled": desired, "numberReady": ready} if kind == "DaemonSet"
              else {"readyReplicas": ready})  # fmt: skip
    spec = {} if kind == "DaemonSet" else {"replicas": desired}
    return objects.workload({"kind": kind, "metadata": {"name": name, "namespace": namespace},
                             "spec": spec, "status": status})  # fmt: skip


def event(name, reason, *, namespace="app", minutes_ago=10, count=1, message="", component="kubelet",
          action="", first_minutes_ago=None, host=""):  # fmt: skip
    """A core/v1 Event as a legacy recorder writes it (source, count, first/lastTimestamp)."""
    return objects.event({
        "kind": "Event", "metadata": {"name": f"{name}.1", "namespace": namespace},
        "involvedObject": {"kind": "Pod", "name": name, "namespace": namespace},
        "reason": reason, "message": message, "type": "Warning", "action": action,
        "source": {"component": component, "host": host}, "count": count,
        "firstTimestamp": at(first_minutes_ago if first_minutes_ago is not None else minutes_ago),
        "lastTimestamp": at(minutes_ago),
    })  # fmt: skip


def facts(snapshot: Snapshot, units=(), **kw) -> Facts:
    return Facts(snapshot, assess(snapshot, units), SINCE, **kw)


def only(found, rule):
    return [f for f in found if f.rule == rule]


# --- parsers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [("250m", 0.25), ("2", 2.0), ("1.5", 1.5), ("512Mi", 512 * 2**20), ("16129740Ki", 16129740 * 1024),
     ("1G", 1e9), ("1e3", 1000.0), ("", 0.0), ("bogus", 0.0)],
)  # fmt: skip
def test_quantities_as_kubernetes_writes_them(text, value):
    assert objects.quantity(text) == value


def test_a_deployment_pod_belongs_to_the_deployment_not_its_replicaset():
    p = pod("web-5f7d9c8b6-abcde")
    assert p.owner == ("Deployment", "web")
    assert pod("db-0", owner=("StatefulSet", "db")).owner == ("StatefulSet", "db")


def test_a_gone_pod_is_matched_to_its_workload_by_the_names_controllers_generate():
    snap = Snapshot(NOW, workloads=[
        workload("StatefulSet", "db"), workload("Deployment", "web"),
        workload("Deployment", "web-api"), workload("DaemonSet", "agent"),
    ])  # fmt: skip
    assert pod_workload(snap, "app", "db-0") == ("statefulset", "db", "app")
    assert pod_workload(snap, "app", "web-api-6c8d7f9b5-x2kqp") == ("deployment", "web-api", "app")
    assert pod_workload(snap, "app", "web-6c8d7f9b5-x2kqp") == ("deployment", "web", "app")
    assert pod_workload(snap, "app", "agent-k8m2p") == ("daemonset", "agent", "app")
    assert pod_workload(snap, "app", "other-0") is None
    assert pod_workload(snap, "elsewhere", "db-0") is None


def test_an_events_k8s_io_event_reads_through_core_v1():
    e = objects.event({
        "kind": "Event", "metadata": {"name": "x", "namespace": "app"},
        "involvedObject": {"kind": "Pod", "name": "db-0", "namespace": "app"},
        "reason": "LowNodeUtilization", "action": "Descheduled",
        "message": "pod eviction from w2 node by sigs.k8s.io/descheduler",
        "eventTime": "2026-12-01T11:00:02.412345Z", "firstTimestamp": None,
        "series": {"count": 3, "lastObservedTime": "2026-12-01T11:30:00.000000Z"},
        "reportingComponent": "sigs.k8s.io.descheduler", "source": {},
    })  # fmt: skip
    assert (e.component, e.count, e.action) == ("sigs.k8s.io.descheduler", 3, "Descheduled")
    assert e.first == datetime(2026, 12, 1, 11, 0, 2, 412345, tzinfo=UTC)
    assert e.last == datetime(2026, 12, 1, 11, 30, tzinfo=UTC)


ETCD_STATUS = """\
NODE            MEMBER             DB SIZE   IN USE            LEADER             RAFT INDEX   RAFT TERM   RAFT APPLIED INDEX   LEARNER   PROTOCOL   STORAGE   ERRORS
192.168.50.11   3f1e5c2a9b7d4e60   48 MB     21 MB (43.75%)    3f1e5c2a9b7d4e60   9123456      7           9123456              false     3.6.0      3.6.0
192.168.50.15   8a2b4c6d8e0f1a2b   48 MB     21 MB (43.75%)    3f1e5c2a9b7d4e60   9123450      7           9123450              true      3.6.0      3.6.0     etcdserver: mvcc: database space exceeded, NOSPACE
"""


def test_etcd_status_rows_with_and_without_errors():
    rows = parse_etcd_status(ETCD_STATUS)
    assert rows == [
        EtcdMember("192.168.50.11", "3f1e5c2a9b7d4e60", "3f1e5c2a9b7d4e60", False, ""),
        EtcdMember("192.168.50.15", "8a2b4c6d8e0f1a2b", "3f1e5c2a9b7d4e60", True,
                   "etcdserver: mvcc: database space exceeded, NOSPACE"),
    ]  # fmt: skip
    assert parse_etcd_status("") == []


# --- the rules -----------------------------------------------------------------------------------


def test_etcd_missing_members_and_errors_are_errors():
    snap = Snapshot(NOW, etcd=parse_etcd_status(ETCD_STATUS))
    found = rules.etcd(facts(snap, control_planes=3))
    assert [(f.rule, f.severity) for f in found] == [
        ("etcd-members", "error"),
        ("etcd-unhealthy", "error"),
    ]
    assert found[0].summary == "2 of 3 etcd members answered"
    assert any("NOSPACE" in e for e in found[1].evidence)
    unknown = rules.etcd(
        facts(Snapshot(NOW, problems={ETCD: "no talosconfig at /x"}), control_planes=3)
    )
    assert [(f.rule, f.severity) for f in unknown] == [("etcd-unknown", "warning")]


def test_nodes_not_ready_and_off_version():
    snap = Snapshot(NOW, nodes=[objects.node({
        "metadata": {"name": "w1"},
        "status": {"conditions": [{"type": "Ready", "status": "Unknown"}],
                   "nodeInfo": {"osImage": "Talos (v1.12.3)", "kubeletVersion": "v1.34.2"}},
    })])  # fmt: skip
    f = facts(snap, talos_version="v1.12.4", kubernetes_version="v1.35.0")
    assert [x.rule for x in rules.nodes_not_ready(f)] == ["node-not-ready"]
    assert [(x.rule, x.severity) for x in rules.versions(f)] == [
        ("talos-version", "warning"), ("kubernetes-version", "warning"),
    ]  # fmt: skip


def test_a_release_missing_failed_or_drifted():
    units = [
        Unit("a/one", "a", "one", "helm", "ns", release=("ns", "one"), chart="one-1.0.0"),
        Unit("a/two", "a", "two", "helm", "ns", release=("ns", "two"), chart="two-2.0.0"),
        Unit("a/three", "a", "three", "helm", "ns", release=("ns", "three"), chart="three-3.0.0"),
    ]
    snap = Snapshot(NOW, releases={
        ("ns", "two"): {"status": "failed", "chart": "two-2.0.0"},
        ("ns", "three"): {"status": "deployed", "chart": "three-2.9.0"},
    })  # fmt: skip
    found = rules.releases(facts(snap, units))
    assert [(x.subject, x.severity, x.rule) for x in found] == [
        ("a/one", "error", "release"), ("a/two", "error", "release"),
        ("a/three", "warning", "release-drift"),
    ]  # fmt: skip
    assert "runs chart three-2.9.0, the stack pins three-3.0.0" in found[2].summary


def test_workloads_not_ready_or_absent():
    unit = Unit("apps/web", "apps", "web", "manifests", "app",
                workloads=[("deployment", "web", "app")], databases=[("statefulset", "web-db", "app")])  # fmt: skip
    snap = Snapshot(NOW, workloads=[workload("Deployment", "web", desired=3, ready=1)])
    found = rules.workloads(facts(snap, [unit]))
    assert [(x.rule, x.summary) for x in found] == [
        ("workload", "apps/web: workload deployment/web in app has 1/3 ready"),
        ("database", "apps/web: database statefulset/web-db in app is absent"),
    ]  # fmt: skip


def _descheduled(name, minutes_ago, node="w2"):
    return objects.event({
        "kind": "Event", "metadata": {"name": f"{name}.{minutes_ago}", "namespace": "app"},
        "involvedObject": {"kind": "Pod", "name": name, "namespace": "app"},
        "reason": "LowNodeUtilization", "action": "Descheduled", "type": "Normal",
        "message": f"pod eviction from {node} node by sigs.k8s.io/descheduler",
        "eventTime": at(minutes_ago), "reportingComponent": "sigs.k8s.io.descheduler",
    })  # fmt: skip


@pytest.mark.parametrize(
    ("times", "severity"), [((5,), None), ((5, 20), "warning"), ((5, 20, 35), "error")]
)
def test_evictions_repeated_are_a_warning_a_storm_an_error(times, severity):
    unit = Unit("apps/web", "apps", "web", "manifests", "app", owns_namespace=True,
                workloads=[("deployment", "web", "app")], databases=[("statefulset", "web-db", "app")])  # fmt: skip
    snap = Snapshot(
        NOW,
        workloads=[workload("Deployment", "web"), workload("StatefulSet", "web-db")],
        events=[_descheduled("web-db-0", t) for t in times]
        + [event("web-6c8d7f9b5-x2kqp", "Unhealthy", minutes_ago=1, first_minutes_ago=4, count=3,
                 message="Readiness probe failed: connection refused")],
    )  # fmt: skip
    found = rules.evictions(facts(snap, [unit]))
    assert [x.severity for x in found] == ([severity] if severity else [])
    if severity:
        assert "by sigs.k8s.io.descheduler from w2" in found[0].summary
        assert found[0].summary.endswith("workloads hit: statefulset/web-db, deployment/web")
        assert found[0].units == ("apps/web",)


def test_kubelet_evictions_name_the_node_from_the_event_source():
    snap = Snapshot(NOW, workloads=[workload("Deployment", "web")], events=[
        event("web-6c8d7f9b5-aaaaa", "Evicted", minutes_ago=m, host="w3", component="kubelet",
              message="The node was low on resource: memory.")
        for m in (5, 15)
    ])  # fmt: skip
    [found] = rules.evictions(facts(snap))
    assert "deployment/web in app evicted 2 times" in found.summary and "from w3" in found.summary
    assert "under resource pressure" in found.suggestion


def test_probes_failing_after_a_database_restart():
    unit = Unit("apps/web", "apps", "web", "manifests", "app",
                workloads=[("deployment", "web", "app")], databases=[("statefulset", "web-db", "app")])  # fmt: skip
    restarted = {"name": "db", "ready": True, "restartCount": 1,
                 "lastState": {"terminated": {"reason": "OOMKilled", "finishedAt": at(30)}}}  # fmt: skip
    snap = Snapshot(
        NOW,
        workloads=[workload("Deployment", "web"), workload("StatefulSet", "web-db")],
        pods=[pod("web-db-0", owner=("StatefulSet", "web-db"), containers=[restarted])],
        events=[
            event("web-6c8d7f9b5-x2kqp", "Unhealthy", minutes_ago=25, first_minutes_ago=29, count=4,
                  message="Liveness probe failed: HTTP probe failed with statuscode: 500"),
            # long before the restart: not a consequence of it
            event("web-6c8d7f9b5-x2kqp", "Unhealthy", minutes_ago=200, count=1, message="old"),
        ],
    )  # fmt: skip
    [found] = rules.probes_after_database_restart(facts(snap, [unit]))
    assert found.severity == "error"
    assert found.summary.startswith(
        "apps/web: deployment/web failed probes after its database web-db"
    )
    assert any("container db restarted (OOMKilled)" in e for e in found.evidence)
    assert not any(": old" in e for e in found.evidence)


def test_crash_loops_and_restarts():
    looping = {"name": "app", "restartCount": 9, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
               "lastState": {"terminated": {"reason": "Error", "finishedAt": at(2)}}}  # fmt: skip
    restarting = {"name": "app", "restartCount": 4, "state": {"running": {}},
                  "lastState": {"terminated": {"reason": "OOMKilled", "finishedAt": at(60)}}}  # fmt: skip
    long_ago = {"name": "app", "restartCount": 4, "state": {"running": {}},
                "lastState": {"terminated": {"reason": "Error", "finishedAt": at(60 * 24)}}}  # fmt: skip
    snap = Snapshot(NOW, pods=[
        pod("a-5f7d9c8b6-aaaaa", containers=[looping]), pod("b-5f7d9c8b6-bbbbb", containers=[restarting]),
        pod("c-5f7d9c8b6-ccccc", containers=[long_ago]),
    ])  # fmt: skip
    found = rules.crash_loops(facts(snap))
    assert [(x.rule, x.severity) for x in found] == [
        ("crash-loop", "error"),
        ("restarts", "warning"),
    ]
    assert "--previous" in found[0].suggestion


@pytest.mark.parametrize(
    ("the_pod", "extra", "cause"),
    [
        (pod("p-5f7d9c8b6-aaaaa", phase="Pending", node="", scheduler="scheduler-plugins-scheduler"),
         {"workloads": [workload("Deployment", "scheduler-plugins-scheduler", "scheduler-plugins", 2, 0)]},
         ("no scheduler serving", "spec.schedulerName scheduler-plugins-scheduler: Deployment "
          "scheduler-plugins/scheduler-plugins-scheduler has 0/2 ready")),
        (pod("p-5f7d9c8b6-aaaaa", phase="Pending", node="", claims=("data",),
             scheduled='0/6 nodes are available: pod has unbound immediate PersistentVolumeClaims.'),
         {"claims": [objects.claim({"metadata": {"name": "data", "namespace": "app"},
                                    "status": {"phase": "Pending"}})]},
         ("unbound PVC", "data not Bound; scheduler: 0/6 nodes are available: pod has unbound "
          "immediate PersistentVolumeClaims.")),
        (pod("p-5f7d9c8b6-aaaaa", phase="Pending", node="", scheduled="0/6 nodes are available: 3 Insufficient cpu, "
             "2 Insufficient memory, 3 node(s) had untolerated taint {node-role.kubernetes.io/"
             "control-plane: }. preemption: 0/6 nodes are available."), {},
         ("insufficient resources", "3 nodes short of cpu, 2 nodes short of memory")),
    ],
    ids=["no-scheduler", "unbound-pvc", "insufficient"],
)  # fmt: skip
def test_pending_pods_say_why(the_pod, extra, cause):
    snap = Snapshot(NOW, pods=[the_pod], **extra)
    [found] = rules.pending(facts(snap))
    assert found.severity == "error"
    assert found.summary == f"1 pod(s) Pending: {cause[0]}"
    assert found.evidence[0] == cause[1]


def test_a_pod_pending_for_a_moment_is_no_finding():
    snap = Snapshot(
        NOW,
        pods=[pod("p-5f7d9c8b6-aaaaa", phase="Pending", node="", created=1, scheduled="0/6 nodes")],
    )
    assert rules.pending(facts(snap)) == []


def _volume(name, robustness="healthy", state="attached", pvc="data", backup=None):
    return {"metadata": {"name": name}, "spec": {"numberOfReplicas": 3},
            "status": {"state": state, "robustness": robustness, "lastBackupAt": backup,
                       "kubernetesStatus": {"namespace": "app", "pvcName": pvc}}}  # fmt: skip


def test_volumes_degraded_faulted_or_with_replicas_on_one_node():
    snap = Snapshot(
        NOW,
        volumes=longhorn.volumes({"items": [
            _volume("v1", "degraded"), _volume("v2", "faulted", "detached"), _volume("v3"),
        ]}),
        replicas=longhorn.replicas({"items": [
            {"metadata": {"name": f"v3-r-{i}"}, "spec": {"volumeName": "v3", "nodeID": node}}
            for i, node in enumerate(("w1", "w1", "w2"))
        ]}),
    )  # fmt: skip
    found = rules.volumes(facts(snap))
    assert [(x.subject, x.rule, x.severity) for x in found] == [
        ("v1", "volume", "warning"), ("v2", "volume", "error"), ("v3", "volume-replicas", "warning"),
    ]  # fmt: skip
    assert found[2].evidence == ("replicas of v3 share w1",)


def test_backups_older_than_two_days_or_missing():
    claims = [objects.claim({"metadata": {"name": n, "namespace": "app", "creationTimestamp": at(c)},
                             "status": {"phase": "Bound"}})
              for n, c in (("old", 60 * 24 * 30), ("none", 60 * 24 * 30), ("new", 60), ("fresh", 60 * 24 * 30))]  # fmt: skip
    snap = Snapshot(
        NOW, claims=claims,
        volumes=longhorn.volumes({"items": [
            _volume("v-old", pvc="old", backup=at(60 * 24 * 3)), _volume("v-none", pvc="none"),
            _volume("v-new", pvc="new"), _volume("v-fresh", pvc="fresh", backup=at(60 * 30)),
        ]}),
        # a completed Backup object newer than the volume's own lastBackupAt counts
        backups=longhorn.backups({"items": [{
            "metadata": {"name": "b1"},
            "status": {"state": "Completed", "volumeName": "v-old", "backupCreatedAt": at(60 * 24 * 2.5)},
        }]}),
    )  # fmt: skip
    found = rules.backups(facts(snap))
    assert [(x.subject, x.severity) for x in found] == [
        ("v-old", "error"), ("v-none", "error"), ("v-new", "info"),
    ]  # fmt: skip
    assert "2d 12h ago" in found[0].summary and "none at all" in found[1].summary


def test_a_restored_volume_keeps_its_claims_backup_history():
    """A volume restored into a rebuilt cluster has a new name; its backups carry the claim in
    the KubernetesStatus label of ``status.labels`` (longhorn-manager v1.11.3 api/snapshot.go), so the claim's
    last backup is still its last backup, and no finding says it has none."""
    claims = [objects.claim({"metadata": {"name": "data", "namespace": "app",
                                          "creationTimestamp": at(60 * 24 * 30)},
                             "status": {"phase": "Bound"}})]  # fmt: skip
    label = json.dumps({"namespace": "app", "pvcName": "data", "pvName": "pvc-old"})
    snap = Snapshot(
        NOW, claims=claims,
        volumes=longhorn.volumes({"items": [_volume("app-data", pvc="data")]}),
        backups=longhorn.backups({"items": [{
            "metadata": {"name": "b-old"},
            "status": {"state": "Completed", "volumeName": "pvc-old",
                       "labels": {"KubernetesStatus": label},
                       "backupCreatedAt": at(60 * 20)},
        }]}),
    )  # fmt: skip
    assert rules.backups(facts(snap)) == []


def test_certificates_expiring_within_fourteen_days_or_not_ready():
    def cert(name, days, ready=True):
        return objects.certificate({
            "metadata": {"name": name, "namespace": "traefik"},
            "status": {"notAfter": (NOW + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                       "message": "" if ready else "Issuing certificate as Secret does not exist"}]},
        })  # fmt: skip

    snap = Snapshot(
        NOW,
        certificates=[cert("ok", 60), cert("soon", 10), cert("gone", -1), cert("bad", 60, False)],
    )
    found = rules.certificates(facts(snap))
    assert [(x.subject, x.severity) for x in found] == [
        ("traefik/soon", "error"), ("traefik/gone", "error"), ("traefik/bad", "error"),
    ]  # fmt: skip
    assert "expires in 10d 0h" in found[0].summary and "expired" in found[1].summary


def test_etcd_snapshots_absent_is_a_warning_and_old_ones_too():
    absent = rules.etcd_snapshots(facts(Snapshot(NOW)))
    assert [(x.severity, x.summary) for x in absent] == [
        ("warning", "no etcd snapshots configured")
    ]
    old = objects.cronjob({"metadata": {"name": "talos-backup", "namespace": "talos-backup"},
                           "status": {"lastSuccessfulTime": at(60 * 24 * 3)}})  # fmt: skip
    assert [x.severity for x in rules.etcd_snapshots(facts(Snapshot(NOW, cronjobs=[old])))] == [
        "warning"
    ]
    fresh = objects.cronjob({"metadata": {"name": "talos-backup", "namespace": "talos-backup"},
                             "status": {"lastSuccessfulTime": at(60)}})  # fmt: skip
    assert rules.etcd_snapshots(facts(Snapshot(NOW, cronjobs=[fresh]))) == []


def test_no_release_is_called_missing_when_helm_could_not_be_read():
    unit = Unit("a/one", "a", "one", "helm", "ns", release=("ns", "one"), chart="one-1.0.0")
    snap = Snapshot(NOW, problems={"helm": "Kubernetes cluster unreachable"})
    assert rules.releases(facts(snap, [unit])) == []
    assert [x.rule for x in rules.reads_failed(facts(snap, [unit]))] == ["read-failed"]


def test_a_declared_certificate_absent_is_an_error_unless_they_could_not_be_read():
    unit = Unit("network/certificates", "network", "certificates", "manifests",
                certificates=[("traefik", "wildcard-tls")])  # fmt: skip
    [found] = rules.certificates(facts(Snapshot(NOW), [unit]))
    assert (found.severity, found.summary) == (
        "error", "network/certificates: certificate traefik/wildcard-tls is absent",
    )  # fmt: skip
    unread = Snapshot(NOW, problems={"certificates": "the server doesn't have a resource type"})
    assert rules.certificates(facts(unread, [unit])) == []
