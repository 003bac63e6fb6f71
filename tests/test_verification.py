"""The verification machinery itself: probe Pods, layer selection, the kind profile, the parsers.

Everything here runs offline: kubectl and kind are the recording fakes, the cluster's answers are
small JSON documents, and the kind profile is built from the real stack catalogue.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import testinfra
import yaml
from conftest import call_task

import noxfile
from tasks.engine.components import Component, HelmRelease, ManifestBundle, SecretSpec
from tasks.engine.context import run_context
from tasks.engine.errors import GraphError, OneclusterError
from tasks.engine.gates import Gate
from tasks.engine.inventory import load_inventory
from tasks.engine.kubectl import Kubectl
from tasks.engine.output import redact
from tasks.engine.poll import poll
from tasks.engine.values import merge_values
from tasks.stack import LAYERS, STACK
from tasks.talos.upgrade import unhealthy_volumes
from tasks.validate.valuescheck import check_values, schema_errors
from tasks.verify.probe import (
    HOST_ROOT,
    PROBE_NAMESPACE,
    Kube,
    ProbeError,
    pod_name,
    probe_manifest,
    probe_pods,
)
from tasks.verify.profile import KIND, KIND_CONFIG, KIND_GATEWAY_HTTP, GeneratedSecrets, Profile
from tasks.verify.verification import (
    condition,
    down_targets,
    exporter_instances,
    http_status,
    injection_policies,
    longhorn_volume_problems,
    module_present,
    mount_propagation,
    policy_ready,
    scheduled_by,
    select_layers,
    unready_nodes,
    unready_pods,
)
from tests.rendered import chart_of, rendered

ROOT = Path(__file__).resolve().parents[1]
NODES = ["talostrk1", "talostrk2"]


def nodes_json(*nodes: tuple[str, str]) -> str:
    return json.dumps(
        {
            "items": [
                {
                    "metadata": {"name": n},
                    "status": {"conditions": [{"type": "Ready", "status": s}]},
                }
                for n, s in nodes
            ]
        }
    )


# Probe Pods ------------------------------------------------------------------------------------


@pytest.fixture
def manifest() -> dict:
    return probe_manifest("talostrk2", "onecluster-probe-abc-talostrk2")


def test_probe_pod_is_privileged_in_host_namespaces(manifest):
    spec = manifest["spec"]
    (container,) = spec["containers"]
    assert container["securityContext"] == {"privileged": True}
    assert (spec["hostPID"], spec["hostNetwork"]) == (True, True)


def test_probe_pod_mounts_host_root_read_only(manifest):
    (container,) = manifest["spec"]["containers"]
    (mount,) = container["volumeMounts"]
    (volume,) = manifest["spec"]["volumes"]
    assert (mount["mountPath"], mount["readOnly"]) == (HOST_ROOT, True)
    assert volume == {"name": mount["name"], "hostPath": {"path": "/", "type": "Directory"}}


def test_probe_pod_is_pinned_to_its_node_without_a_scheduler(manifest):
    spec = manifest["spec"]
    assert spec["nodeName"] == "talostrk2"
    assert "schedulerName" not in spec and "nodeSelector" not in spec
    # tainted control planes must be reachable too
    assert {"operator": "Exists"} in spec["tolerations"]


def test_probe_pod_cannot_outlive_its_run(manifest):
    spec = manifest["spec"]
    assert spec["restartPolicy"] == "Never"
    assert 0 < spec["activeDeadlineSeconds"] <= 3600
    assert spec["automountServiceAccountToken"] is False
    assert manifest["metadata"]["namespace"] == PROBE_NAMESPACE == "kube-system"


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        ("talostrk1", "onecluster-probe-r1-talostrk1"),
        ("Worker_2.lan", "onecluster-probe-r1-worker-2-lan"),
        ("n" * 80, "onecluster-probe-r1-" + "n" * 43),
    ],
    ids=["plain", "unsafe-chars", "too-long"],
)
def test_probe_pod_names_are_dns_labels(node, expected):
    assert pod_name(node, "r1") == expected
    assert len(pod_name(node, "r1")) <= 63


def test_probe_pods_apply_wait_yield_hosts_then_delete(fake_tools):
    kube = Kube(Kubectl(kubeconfig="/tmp/kc"))
    with probe_pods(kube, NODES, run_id="r1") as hosts:
        assert fake_tools.argvs("kubectl")[-1][:6] == [
            "kubectl",
            "--kubeconfig",
            "/tmp/kc",
            "wait",
            "--for=condition=Ready",
            "--timeout=180s",
        ]
    pods = ["pod/onecluster-probe-r1-talostrk1", "pod/onecluster-probe-r1-talostrk2"]
    apply, wait, delete = fake_tools.calls("kubectl")
    assert apply["argv"] == ["--kubeconfig", "/tmp/kc", "apply", "-f", "-"]
    expected = yaml.safe_dump_all(
        [probe_manifest(n, pod_name(n, "r1")) for n in NODES], sort_keys=False
    )
    assert apply["stdin_sha256"] == hashlib.sha256(expected.encode()).hexdigest()
    assert wait["argv"][-3:] == ["kube-system", *pods]
    assert delete["argv"] == [
        "--kubeconfig",
        "/tmp/kc",
        "delete",
        "-n",
        "kube-system",
        "--ignore-not-found",
        "--wait=false",
        *pods,
    ]
    assert hosts == {
        n: f"kubectl://onecluster-probe-r1-{n}?namespace=kube-system&container=probe"
        "&kubeconfig=%2Ftmp%2Fkc"
        for n in NODES
    }


def test_probe_pods_are_deleted_when_a_check_fails(fake_tools):
    with pytest.raises(AssertionError), probe_pods(Kube(), NODES, run_id="r2"):
        raise AssertionError("a node check failed")
    verbs = [a[1] for a in fake_tools.argvs("kubectl")]
    assert verbs == ["apply", "wait", "delete"]


def test_probe_pods_are_deleted_when_they_never_get_ready(fake_tools):
    fake_tools.rule(
        "kubectl", "--for=condition=Ready", exit=1, stderr="timed out waiting for the condition"
    )
    fake_tools.rule("kubectl", "get", stdout="onecluster-probe-r3-talostrk1  0/1  ImagePullBackOff")
    with (
        pytest.raises(ProbeError, match="ImagePullBackOff"),
        probe_pods(Kube(), NODES, run_id="r3"),
    ):
        pytest.fail("the block must not run when the probes are not Ready")
    verbs = [a[1] for a in fake_tools.argvs("kubectl")]
    assert verbs == ["apply", "wait", "get", "delete"]


def test_probe_pods_are_deleted_when_apply_fails(fake_tools):
    fake_tools.rule("kubectl", "apply", exit=1, stderr="forbidden: violates PodSecurity")
    with pytest.raises(OneclusterError, match="PodSecurity"), probe_pods(Kube(), NODES):
        pytest.fail("unreachable")
    assert [a[1] for a in fake_tools.argvs("kubectl")] == ["apply", "delete"]


def test_probe_host_spec_drives_testinfra_kubectl_backend(fake_tools):
    fake_tools.rule("kubectl", "exec", stdout="ok")
    with probe_pods(Kube(Kubectl("/tmp/kc", "homelab")), ["talostrk1"], run_id="r4") as h:
        host = testinfra.get_host(h["talostrk1"])
        assert host.check_output("cat /host/etc/os-release") == "ok"
    execs = [a for a in fake_tools.argvs("kubectl") if "exec" in a]
    assert execs == [
        [
            "kubectl",
            "--kubeconfig=/tmp/kc",
            "--context=homelab",
            "-n",
            "kube-system",
            "-c",
            "probe",
            "exec",
            "onecluster-probe-r4-talostrk1",
            "--",
            "/bin/sh",
            "-c",
            "cat /host/etc/os-release",
        ]
    ]


# Layer selection -------------------------------------------------------------------------------

CHECKS = {
    "test_nodes.py::test_kubelet_healthy[a]": ["talos"],
    "test_storage.py::test_mounted[a]": ["storage"],
    "test_storage.py::test_volumes": ["storage"],
    "test_network.py::test_gateway": ["network"],
}


@pytest.mark.parametrize(
    ("wanted", "kept"),
    [
        ([], list(CHECKS)),
        (["storage"], ["test_storage.py::test_mounted[a]", "test_storage.py::test_volumes"]),
        (
            ["talos", "network"],
            ["test_nodes.py::test_kubelet_healthy[a]", "test_network.py::test_gateway"],
        ),
        (["ai"], []),
    ],
    ids=["all", "storage", "two-layers", "layer-without-checks"],
)
def test_layer_selection(wanted, kept):
    chosen, dropped = select_layers(CHECKS, wanted, LAYERS)
    assert chosen == kept
    assert sorted(dropped) == sorted(set(CHECKS) - set(kept))


def test_unknown_layer_is_an_error_naming_the_layers():
    with pytest.raises(OneclusterError, match="--layer storgae: unknown layer; use one of talos"):
        select_layers(CHECKS, ["storgae"], LAYERS)


def test_check_without_layer_is_an_error():
    with pytest.raises(OneclusterError, match="test_x"):
        select_layers({**CHECKS, "test_x": []}, [], LAYERS)


def run_postdeploy(*args: str) -> subprocess.CompletedProcess:
    """``pytest tests/postdeploy ARGS`` in a fresh process, as ``nox -s postdeploy`` runs it."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "tests/postdeploy", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def collect_postdeploy(*args: str) -> subprocess.CompletedProcess:
    return run_postdeploy("--collect-only", *args)


def test_postdeploy_rejects_unknown_layer(fake_tools):
    fake_tools.rule("kubectl", "get nodes", stdout=nodes_json(("cp1", "True")))
    run = collect_postdeploy("--layer", "storgae")
    assert run.returncode == 4
    assert "unknown layer" in run.stderr


def test_postdeploy_stops_with_reason_when_cluster_does_not_answer(fake_tools):
    fake_tools.rule("kubectl", "get nodes", exit=1, stderr="connection refused")
    run = collect_postdeploy()
    assert run.returncode == 3
    assert "cannot list the cluster's nodes" in run.stdout + run.stderr


def verbs(fake_tools) -> list[str]:
    """kubectl's verb in each call, past the --kubeconfig/--context options."""
    out = []
    for argv in fake_tools.argvs("kubectl"):
        words = iter(argv[1:])
        for word in words:
            if word in ("--kubeconfig", "--context"):
                next(words)
            elif not word.startswith(("--kubeconfig=", "--context=")):
                break
        out.append("exec" if "exec" in argv else word)
    return out


@pytest.mark.parametrize(("answer", "code"), [("ok", 0), ("unhealthy", 1)], ids=["pass", "fail"])
def test_postdeploy_node_check_runs_in_probes_then_removes_them(fake_tools, answer, code):
    fake_tools.rule("kubectl", "get nodes", stdout=nodes_json(("cp1", "True"), ("w1", "True")))
    fake_tools.rule("kubectl", "exec", "healthz", stdout=answer)
    run = run_postdeploy("--layer", "talos", "-k", "kubelet")
    assert run.returncode == code, run.stdout + run.stderr
    assert verbs(fake_tools) == ["get", "apply", "wait", "exec", "exec", "delete"]
    execs = [a for a in fake_tools.argvs("kubectl") if "exec" in a]
    assert [a[a.index("exec") + 1].rsplit("-", 1)[1] for a in execs] == ["cp1", "w1"]


def test_postdeploy_kind_profile_skips_talos_only_checks_without_probes(fake_tools):
    fake_tools.rule("kubectl", "get nodes", stdout=nodes_json(("cp1", "True")))
    run = run_postdeploy("-rs", "--profile", "kind", "-k", "iscsi")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "5 skipped" in run.stdout
    assert "kind profile: kind node images carry no iSCSI extension" in run.stdout
    assert verbs(fake_tools) == ["get"], "skipped checks start no probe Pods"


def test_probe_delete_failure_does_not_hide_the_check_failure(fake_tools, capsys):
    fake_tools.rule("kubectl", "delete", exit=1, stderr="connection refused")
    with pytest.raises(AssertionError, match="the real failure"), probe_pods(Kube(), NODES):
        raise AssertionError("the real failure")
    assert "could not delete probe Pods" in capsys.readouterr().err


def test_probe_delete_failure_after_success_is_an_error(fake_tools):
    fake_tools.rule("kubectl", "delete", exit=1, stderr="connection refused")
    with pytest.raises(OneclusterError, match="connection refused"), probe_pods(Kube(), NODES):
        pass


# The kind profile ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kind_steps() -> dict[str, Component]:
    return {c.id: c for c in KIND.catalog(STACK).components(load_inventory())}


@pytest.fixture
def ctx(fake_tools):
    with run_context(load_inventory(), dry_run=True, fetch_kubeconfig=False) as ctx:
        yield ctx


def test_kind_profile_deploys_the_targets(kind_steps):
    assert set(KIND.targets) <= set(kind_steps)


def test_kind_profile_runs_no_talos_or_longhorn_step(kind_steps):
    talos = [i for i in kind_steps if i.startswith("talos/")]
    longhorn = [i for i in kind_steps if i.startswith("storage/longhorn")]
    assert talos == ["talos/health"]
    assert set(longhorn) <= {"storage/longhorn-ready", "storage/longhorn-extras"}
    assert all(kind_steps[i].path.startswith("tests/integration/") for i in longhorn)
    assert isinstance(kind_steps["talos/health"], Gate)
    assert "kind" in kind_steps["talos/health"].summary


def test_kind_health_waits_for_every_node(kind_steps, ctx):
    (wait,) = kind_steps["talos/health"].commands(ctx)
    assert wait.argv[3:] == ["wait", "--for=condition=Ready", "node", "--all", "--timeout=300s"]


def test_kind_storage_is_a_local_path_class_named_longhorn(kind_steps, ctx):
    step = kind_steps["storage/longhorn-ready"]
    assert isinstance(step, ManifestBundle)
    (storage_class,) = list(yaml.safe_load_all(step.rendered(ctx)))
    assert storage_class["kind"] == "StorageClass"
    assert storage_class["metadata"]["name"] == "longhorn"
    assert storage_class["provisioner"] == "rancher.io/local-path"


def test_kind_turns_rwx_claims_into_rwo_for_local_path(kind_steps, ctx):
    claims = [
        doc
        for step in kind_steps.values()
        if isinstance(step, ManifestBundle)
        for doc in yaml.safe_load_all(step.applied(ctx))
        if doc and doc.get("kind") == "PersistentVolumeClaim"
    ]
    assert claims, "the kind profile deploys at least one app volume"
    assert all("ReadWriteMany" not in c["spec"]["accessModes"] for c in claims)
    mealie = kind_steps["apps/mealie"]
    assert "ReadWriteMany" in (ROOT / "manifests/apps/mealie/data.yaml").read_text()
    assert "ReadWriteMany" in mealie.rendered(ctx)
    assert "ReadWriteMany" not in mealie.applied(ctx)


def test_kind_secrets_are_random_and_redacted(kind_steps, ctx):
    syncs = [s for s in kind_steps.values() if s.kind == "secret"]
    assert syncs and all(isinstance(s, GeneratedSecrets) for s in syncs)
    docs = syncs[0].manifests()
    secret = next(d for d in docs if d["kind"] == "Secret")
    values = list(secret["stringData"].values())
    assert values and all(len(v) >= 24 for v in values)
    assert redact(f"token {values[0]}") == "token ***"
    assert (
        next(d for d in docs if d["kind"] == "Namespace")["metadata"]["name"]
        == (secret["metadata"]["namespace"])
    )
    # every run makes new values
    assert syncs[0].manifests()[1]["stringData"] != secret["stringData"]


def kind_config() -> dict:
    return yaml.safe_load((ROOT / KIND_CONFIG).read_text())


def test_kind_config_has_one_control_plane_and_two_workers():
    assert [n["role"] for n in kind_config()["nodes"]] == ["control-plane", "worker", "worker"]


def test_kind_traefik_overlay_matches_the_port_mapping(kind_steps, ctx):
    traefik = kind_steps["network/traefik"]
    assert traefik.overlays == ("tests/integration/values/traefik.yaml",)
    values = yaml.safe_load(traefik.rendered_values(ctx))
    assert values["service"]["spec"]["type"] == "NodePort"
    mappings = {
        m["hostPort"]: m["containerPort"] for m in kind_config()["nodes"][0]["extraPortMappings"]
    }
    http_port = int(KIND_GATEWAY_HTTP.rsplit(":", 1)[1])
    assert mappings[http_port] == values["ports"]["web"]["nodePort"]


def test_kind_prometheus_overlay_trims_the_stack(kind_steps, ctx):
    stack = kind_steps["observability/kube-prometheus-stack"]
    values = yaml.safe_load(stack.rendered_values(ctx))
    assert values["alertmanager"]["enabled"] is False
    assert values["grafana"]["enabled"] is False
    # null reaches helm, which then drops the chart's default too
    assert values["prometheus"]["prometheusSpec"]["storageSpec"] is None


OVERLAYS = sorted(p.name for p in (ROOT / KIND.overlays).glob("*.yaml"))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kind_overlay_sets_only_keys_the_chart_has(overlay, kind_steps, reference):
    (release,) = [
        s
        for s in kind_steps.values()
        if isinstance(s, HelmRelease) and s.release == overlay.removesuffix(".yaml")
    ]
    path = ROOT / KIND.overlays / overlay
    values = yaml.safe_load(rendered(path))
    result = check_values(values, chart_of(release, reference), f"{KIND.overlays}/{overlay}")
    assert not result.errors, "\n".join(str(e) for e in result.errors)


def test_kind_traefik_values_fit_the_chart_schema(kind_steps, ctx, reference):
    traefik = kind_steps["network/traefik"]
    chart = chart_of(traefik, reference)
    assert chart.schema, "the traefik chart ships a values.schema.json"
    values = yaml.safe_load(traefik.rendered_values(ctx))
    errors = schema_errors(values, chart, "kind network/traefik values")
    assert not errors, "\n".join(str(e) for e in errors)


def test_kind_overlay_is_fed_to_helm_on_stdin(kind_steps, ctx):
    (helm,) = kind_steps["network/traefik"].commands(ctx)
    assert helm.argv[helm.argv.index("--values") + 1] == "-"
    assert b"NodePort" in helm.stdin


def test_profile_refuses_a_step_it_cannot_run():
    steps = [
        Gate(layer="talos", name="health", checks=()),
        HelmRelease(
            layer="storage",
            name="longhorn",
            needs=("talos/health",),
            repo="https://charts.longhorn.io",
            version="1.11.3",
            namespace="longhorn-system",
        ),
        ManifestBundle(layer="apps", name="notes", needs=("storage/longhorn",)),
    ]
    profile = Profile(
        name="kind",
        targets=("apps/notes",),
        stand_ins={},
        unsupported=("storage/longhorn",),
        overlays="tests/integration/values",
    )
    with pytest.raises(GraphError, match=r"storage/longhorn \(needed by apps/notes\)"):
        profile.select(steps)


def test_profile_swaps_secret_syncs_and_keeps_their_needs():
    from tasks.secrets.steps import SecretSync

    sync = SecretSync(
        layer="secrets",
        name="notes",
        needs=("talos/health",),
        secrets=(SecretSpec("notes", "db", {"password": "NOTES_DB"}),),
    )
    adapted = KIND.adapt(sync)
    assert isinstance(adapted, GeneratedSecrets)
    assert (adapted.id, adapted.needs, adapted.secrets) == (sync.id, sync.needs, sync.secrets)


def test_kind_profile_dry_run_runs_nothing(fake_tools, capsys):
    call_task("cluster.rebuild", profile="kind", dry_run=True)
    out = capsys.readouterr().out
    assert fake_tools.calls() == []
    assert "[storage/longhorn-ready] $ kubectl" in out and re.search(
        r"helm --kubeconfig \S+ upgrade --install traefik", out
    )


# Values overlays -------------------------------------------------------------------------------


def test_merge_values_follows_helm():
    base = {"a": {"b": 1, "c": [1, 2], "d": {"e": 1}}, "keep": True}
    overlay = {"a": {"c": [3], "d": None, "f": "new"}}
    merged = merge_values(base, overlay)
    assert merged == {"a": {"b": 1, "c": [3], "d": None, "f": "new"}, "keep": True}
    assert base["a"]["c"] == [1, 2], "the base is not modified"


def test_overlay_must_be_a_mapping(tmp_path, ctx):
    bad = ROOT / "tests" / "integration" / "values" / "not-a-mapping.yaml"
    release = HelmRelease(
        layer="apps",
        name="x",
        release="x",
        chart="x",
        repo="r",
        version="1",
        namespace="x",
        overlays=(str(bad.relative_to(ROOT)),),
    )
    bad.write_text("- a list\n")
    try:
        with pytest.raises(OneclusterError, match="must be a mapping"):
            release.rendered_values(ctx)
    finally:
        bad.unlink()


# What the checks read --------------------------------------------------------------------------


def test_unready_nodes_names_them():
    nodes = json.loads(nodes_json(("a", "True"), ("b", "False"), ("c", "Unknown")))
    assert unready_nodes(nodes) == ["b: Ready=False", "c: Ready=Unknown"]


def test_unready_pods_ignores_finished_jobs():
    pods = {
        "items": [
            {
                "metadata": {"name": "ok", "namespace": "x"},
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
            },
            {"metadata": {"name": "job", "namespace": "x"}, "status": {"phase": "Succeeded"}},
            {"metadata": {"name": "bad", "namespace": "y"}, "status": {"phase": "Pending"}},
        ]
    }
    assert unready_pods(pods) == ["y/bad: phase=Pending, not Ready"]


def test_longhorn_volume_problems():
    def vol(name, replicas, state, robustness):
        return {
            "metadata": {"name": name},
            "spec": {"numberOfReplicas": replicas},
            "status": {"state": state, "robustness": robustness},
        }

    volumes = {
        "items": [
            vol("good", 2, "attached", "healthy"),
            vol("idle", 2, "detached", "unknown"),
            vol("one", 1, "attached", "healthy"),
            vol("sick", 2, "attached", "degraded"),
        ]
    }
    assert longhorn_volume_problems(volumes) == [
        "one: numberOfReplicas=1, expected 2",
        "sick: attached but robustness=degraded",
    ]


def test_longhorn_volume_problems_judge_health_as_the_upgrade_gate_does():
    def vol(name, state, robustness):
        return {
            "metadata": {"name": name},
            "spec": {"numberOfReplicas": 2},
            "status": {"state": state, "robustness": robustness},
        }

    # the same listing the rolling upgrade reads: one rule, so a volume one check would stop
    # for, the other does not pass
    volumes = {
        "items": [
            vol("idle", "detached", "unknown"),
            vol("lost", "detached", "faulted"),
            vol("coming", "attaching", ""),
        ]
    }
    assert longhorn_volume_problems(volumes) == [
        "lost: detached but robustness=faulted",
        "coming: attaching but robustness=none",
    ]
    assert unhealthy_volumes(json.dumps(volumes)) == [
        "lost (detached, faulted)",
        "coming (attaching, no robustness)",
    ]


TARGETS = {
    "data": {
        "activeTargets": [
            {"labels": {"job": "node-exporter", "instance": "talostrk1"}, "health": "up"},
            {"labels": {"job": "node-exporter", "instance": "192.168.50.12:9100"}, "health": "up"},
            {
                "labels": {"job": "kubelet", "instance": "x"},
                "health": "down",
                "scrapeUrl": "https://x/metrics",
                "lastError": "401",
            },
        ]
    }
}


def test_down_targets_and_exporter_instances():
    assert down_targets(TARGETS) == ["kubelet https://x/metrics: down (401)"]
    # an address instead of the node name is exactly what the check must catch
    assert exporter_instances(TARGETS) == {"talostrk1", "192.168.50.12:9100"}


def test_policy_readiness_and_injection():
    cluster_policy = {
        "metadata": {"name": "inject"},
        "spec": {
            "rules": [
                {
                    "mutate": {
                        "patchStrategicMerge": {
                            "spec": {"schedulerName": "scheduler-plugins-scheduler"}
                        }
                    }
                }
            ]
        },
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }
    other = {"metadata": {"name": "other"}, "spec": {"rules": []}, "status": {}}
    new_kind = {
        "metadata": {"name": "mp"},
        "spec": {"x": "scheduler-plugins-scheduler"},
        "status": {"conditionStatus": {"ready": True}},
    }
    assert injection_policies([cluster_policy, other, new_kind]) == [cluster_policy, new_kind]
    assert policy_ready(cluster_policy) and policy_ready(new_kind) and not policy_ready(other)
    assert condition(cluster_policy, "Ready") == "True" and condition(other, "Ready") == ""


def test_scheduled_by_reads_the_reporting_scheduler():
    events = {
        "items": [
            {
                "reason": "Scheduled",
                "involvedObject": {"name": "p"},
                "reportingComponent": "scheduler-plugins-scheduler",
            },
            {
                "reason": "Scheduled",
                "involvedObject": {"name": "other"},
                "reportingComponent": "default-scheduler",
            },
            {
                "reason": "Pulled",
                "involvedObject": {"name": "p"},
                "source": {"component": "kubelet"},
            },
        ]
    }
    assert scheduled_by(events, "p") == {"scheduler-plugins-scheduler"}


MOUNTINFO = """\
22 1 0:21 / / rw,relatime shared:1 - overlay overlay rw
801 22 259:3 /var/mnt/longhorn /var/mnt/longhorn rw,relatime shared:412 master:9 - xfs /dev/sdb1 rw
802 22 259:3 /var/lib/x /var/lib/x rw,relatime - xfs /dev/sdb1 rw
"""


def test_mount_propagation():
    assert mount_propagation(MOUNTINFO, "/var/mnt/longhorn") == ["shared:412", "master:9"]
    assert mount_propagation(MOUNTINFO, "/var/lib/x") == []
    assert mount_propagation(MOUNTINFO, "/var/mnt/other") is None


@pytest.mark.parametrize(
    ("module", "present"),
    [("iscsi_tcp", True), ("libiscsi", True), ("scsi_transport_iscsi", True), ("nbd", False)],
)
def test_module_present(module, present):
    loaded = "iscsi_tcp 24576 0 - Live 0x0\n"
    dep = "kernel/drivers/scsi/libiscsi.ko.xz: kernel/drivers/scsi/scsi_transport_iscsi.ko.xz\n"
    builtin = "kernel/drivers/scsi/scsi_transport_iscsi.ko\n"
    assert module_present(module, loaded, dep, builtin) is present


def test_http_status_sends_the_route_host():
    seen = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen["host"] = self.headers["Host"]
            self.send_response(302 if self.path == "/" else 404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    try:
        assert http_status(f"127.0.0.1:{server.server_port}", "mealie.example.com") == 302
    finally:
        thread.join()
        server.server_close()
    assert seen["host"] == "mealie.example.com"


def test_poll_until_done_or_out_of_time():
    # the live checks wait on a just-deployed cluster with the engine's poller and a `done` test
    answers = iter([1, 2, 3, 4])
    assert poll(lambda: next(answers), 60, 0, done=lambda n: n == 3) == 3
    # out of time: the last answer comes back for the check to report
    assert poll(lambda: "still starting", 0, 5, done=lambda s: False) == "still starting"


# The nox sessions ------------------------------------------------------------------------------


def test_shell_scripts_found_for_shellcheck():
    assert ".ci/run" in noxfile.shell_scripts()
    assert not any(p.endswith(".py") for p in noxfile.shell_scripts())


def test_kind_unavailable_names_what_is_missing(fake_tools, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(fake_tools.bin_dir))  # the fake kind, and no docker
    assert noxfile.kind_unavailable().startswith("docker is not installed")
    docker = tmp_path / "docker"
    docker.write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n")
    docker.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_tools.bin_dir}{os.pathsep}{tmp_path}")
    assert noxfile.kind_unavailable().startswith("no docker engine is reachable")


def test_integration_session_skips_without_kind(tmp_path):
    # PATH without kind: the session must skip with one line, create nothing and claim nothing
    env = {
        **os.environ,
        "PATH": os.pathsep.join(
            p for p in os.environ["PATH"].split(os.pathsep) if not (Path(p) / "kind").exists()
        ),
    }
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "nox",
            "-f",
            str(ROOT / "noxfile.py"),
            "-s",
            "integration",
            "--no-venv",
            "--envdir",
            str(tmp_path / "nox"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    out = run.stdout + run.stderr
    skipped = [line for line in out.splitlines() if "skipped: " in line]
    assert run.returncode == 0, out
    assert len(skipped) == 1 and "kind is not installed" in skipped[0], out
    assert skipped[0].endswith("nothing was checked."), out
    assert "was successful" not in out and "kind create" not in out
