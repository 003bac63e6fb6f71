"""Converge, don't redo: a re-run of the reference stack on stateful fakes reads, and only reads.

The whole reference graph runs through the real runner on the stateful fakes of
``tests/stateful.py`` (helm lists what it installed, kubectl returns what was applied, a Talos
node the config applied to it; the secret syncs stand in as reads).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from conftest import call_task
from invoke.exceptions import Exit
from stateful import (
    SyncStandIn,
    applied,
    components,
    lease_call,
    mutating,
    record_write,
    stateful_nodes,
)
from test_talos_fixtures import BUNDLE, MARK, make_talos_env, write_inventory

from tasks.engine.components import PARSED, CrdBundle, HelmRelease, ManifestBundle
from tasks.engine.context import run_context
from tasks.engine.errors import FlagError, OneclusterError
from tasks.engine.execute import diff, execute
from tasks.engine.inventory import REPO_ROOT
from tasks.engine.record import NAME, NAMESPACE, RECORD_MANAGER, Converge, key
from tasks.engine.runner import OK, UNCHANGED, RunFailed
from tasks.stack import STACK
from tasks.talos.options import TalosOptions

INV = STACK.load()
IPS = [str(n.ip) for n in INV.nodes]


@pytest.fixture
def env(tmp_path, monkeypatch, fake_tools):
    env = make_talos_env(tmp_path, monkeypatch, fake_tools)
    stateful_nodes(fake_tools, IPS)
    # the user's kubeconfig that cluster.diff reads (the fake kubectl needs no content in it)
    kubeconfig = Path(os.environ["KUBECONFIG"])
    if not kubeconfig.exists():
        kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    return env


def rebuild(jobs: int = 4, traefik_values: str = "", **flags):
    return execute(
        STACK.with_components(components(traefik_values)), jobs=jobs,
        options=(TalosOptions(poll_interval=0),), **flags,
    )  # fmt: skip


def identity(call: dict, workdirs: list[str]) -> tuple:
    argv = []
    for a in call["argv"]:
        for wd in workdirs:
            a = a.replace(wd, "$WD")
        argv.append(a)
    return (call["tool"], *argv, call["stdin_sha256"])


def workdirs(calls: list[dict]) -> list[str]:
    found = set()
    for c in calls:
        for i, a in enumerate(c["argv"]):
            if a in ("--kubeconfig", "--talosconfig") and "onecluster-" in c["argv"][i + 1]:
                found.add(str(Path(c["argv"][i + 1]).parent))
    return sorted(found)


def counts(steps):
    return (
        [s for s in steps if isinstance(s, HelmRelease)],
        [s for s in steps if isinstance(s, ManifestBundle)],
        [s for s in steps if isinstance(s, CrdBundle)],
    )


def test_second_rebuild_makes_no_mutating_call_and_one_read_per_release_bundle_node(
    env, fake_tools
):
    first = rebuild()
    assert first.ok
    n_first = len(fake_tools.calls())
    first_applied = applied(fake_tools.calls())
    steps = components()(INV)
    releases, bundles, crds = counts(steps)
    # the first run applied every release, bundle, CRD source and node once, recorded each
    assert len([c for c in first_applied if c["tool"] == "helm"]) == len(releases)
    assert len([c for c in first_applied if "apply-config" in c["argv"]]) == len(IPS)
    kubectl_applies = [c for c in first_applied if c["tool"] == "kubectl"]
    syncs = [s for s in steps if isinstance(s, SyncStandIn)]
    # every bundle, every CRD source, and each secret sync's Secrets (none existed)
    assert len(kubectl_applies) == len(bundles) + sum(len(c.sources) for c in crds) + len(syncs)
    cm = fake_tools.log.parent / "objects.json"
    record = json.loads(cm.read_text())[f"configmap/{NAMESPACE}/{NAME}"]["data"]
    fingerprinted = {s.id for s in [*releases, *bundles, *crds]}
    nodes = {f"talos/apply-{n.name}" for n in INV.nodes}
    assert set(record) == {key(i) for i in fingerprinted | nodes}
    assert all(
        json.loads(record[key(i)])["fingerprint"].startswith("sha256:") for i in fingerprinted
    )
    # a node's entry: keyed fingerprints (the bundle's key) of its inputs and of its config
    entries = [json.loads(record[key(i)]) for i in nodes]
    assert all(
        e["fingerprint"].startswith("hmac-sha256:") and e["config"].startswith("hmac-sha256:")
        for e in entries
    )
    assert len({e["config"] for e in entries}) == len(IPS)  # each node has its own config

    second = rebuild()
    assert second.ok
    calls = fake_tools.calls()[n_first:]
    # 0 mutating calls at all: nothing of the stack, no record, and not even the run lock's
    # Lease (taken only before a step that may change something): it is read once
    assert [c for c in calls if mutating(c)] == []
    leases = [c for c in calls if lease_call(c)]
    assert len(leases) == 1 and leases[0]["argv"][2:4] == ["get", "lease"]
    status = {r.id: r.status for r in second.results}
    compared = {s.id for s in syncs} | {f"talos/apply-{n.name}" for n in INV.nodes}
    compared |= {"talos/bootstrap"}  # etcd answered
    compared |= {"talos/kubeconfig"}  # fetched beside the node configs: nothing left to do
    assert {i for i, s in status.items() if s == UNCHANGED} == fingerprinted | compared
    gates = [s for s in steps if s.kind == "gate"]
    assert all(status[g.id] == OK for g in gates)
    assert all(s == OK for i, s in status.items() if i not in fingerprinted | compared)
    assert "unchanged" in second.summary()
    # the reads: one helm list, one record read, one get of every bundle's objects, one of
    # every gate's objects (judged by kubectl's own rules), one list of onecluster's Secrets,
    # one read of every node's config (no maintenance probe: each answered the authenticated read)
    assert [c["argv"][2:] for c in calls if c["tool"] == "helm"] == [
        ["list", "--all-namespaces", "--output", "json"]
    ]
    assert len([c for c in calls if "configmap" in c["argv"] and "get" in c["argv"]]) == 1
    gets = [c for c in calls if c["tool"] == "kubectl" and c["argv"][-2:] == ["-f", "-"]]
    gets = [c for c in gets if "get" in c["argv"]]
    assert len(gets) == 2 and all("--ignore-not-found" in g["argv"] for g in gets)
    assert len([c for c in calls if "secret" in c["argv"] and "--all-namespaces" in c["argv"]]) == 1
    talos_gates = [g for g in gates if g.layer == "talos"]  # talosctl health: its own call
    assert [
        c for c in calls if c["argv"][2:4] == ["rollout", "status"] or "wait" in c["argv"]
    ] == []
    (read,) = [c for c in calls if c["argv"][2:4] == ["get", "machineconfig"]]
    assert read["argv"][read["argv"].index("--nodes") + 1] == ",".join(IPS)  # every node at once
    assert [c for c in calls if "--insecure" in c["argv"]] == []
    # no node config is rendered again, nor validated: each node runs what its record names
    assert [c for c in calls if c["argv"][:2] == ["machineconfig", "patch"]] == []
    assert [c for c in calls if "validate" in c["argv"]] == []
    bound = (
        5 + 1  # helm list, the record, bundles' and gates' objects, Secrets; the nodes' configs
        + len(talos_gates)  # talosctl health
        + 1  # gen config (the talosconfig; the templates the nodes' inputs are made of)
        + 3  # Talos: the client's version, etcd status, the kubeconfig
        + 1  # the lock's Lease, read
    )  # fmt: skip
    assert len(calls) <= bound, (len(calls), bound)


def talos_rebuild(**flags):
    return rebuild(layers=["talos"], **flags)


def config_reads(calls: list[dict]) -> list[str]:
    """The ``--nodes`` of each ``talosctl get machineconfig``."""
    reads = [c["argv"] for c in calls if c["argv"][2:4] == ["get", "machineconfig"]]
    return [a[a.index("--nodes") + 1] for a in reads]


def reinstall(fake_tools, name: str) -> str:
    """Node ``name`` reinstalled: back in maintenance mode, running no config; its IP."""
    ip = node_ip(name)
    configs = fake_tools.log.parent / "machineconfigs.json"
    configs.write_text(json.dumps({k: v for k, v in json.loads(configs.read_text()).items()
                                   if k != ip}))  # fmt: skip
    state = fake_tools.log.parent / "state.json"
    state.write_text(json.dumps({**json.loads(state.read_text()), f"applied-{ip}": None}))
    return ip


def test_a_node_reinstalled_is_read_alone_after_the_read_of_all_and_only_it_is_applied(
    env, fake_tools
):
    assert talos_rebuild().ok
    gone = reinstall(fake_tools, "talostrk5")
    before = len(fake_tools.calls())
    second = talos_rebuild()
    assert second.ok
    calls = fake_tools.calls()[before:]
    # the read of every node printed the five others and exited 1 for talostrk5 (as talosctl
    # get does); only talostrk5 is asked again, alone, then probed and applied
    assert config_reads(calls) == [",".join(IPS), gone]
    assert [c["argv"][c["argv"].index("--nodes") + 1] for c in calls
            if "apply-config" in c["argv"]] == [gone]  # fmt: skip
    assert "--insecure" in next(c["argv"] for c in calls if "apply-config" in c["argv"])
    status = {r.id: r.status for r in second.results}
    assert [i for i, s in status.items() if i.startswith("talos/apply-") and s != UNCHANGED] == [
        "talos/apply-talostrk5"
    ]


def test_a_read_of_all_nodes_that_fails_is_made_node_by_node(env, fake_tools):
    assert talos_rebuild().ok
    # the control planes' apid does not answer the read through them; each node does alone
    fake_tools.rule("talosctl", "get machineconfig", ",", exit=1,
                    stderr="rpc error: code = Unavailable desc = connection refused")  # fmt: skip
    before = len(fake_tools.calls())
    second = talos_rebuild()
    assert second.ok
    calls = fake_tools.calls()[before:]
    reads = config_reads(calls)
    assert reads[0] == ",".join(IPS) and sorted(reads[1:]) == sorted(IPS)
    assert [c for c in calls if mutating(c)] == []  # each node runs its config: nothing applied


def node_ip(name: str) -> str:
    return str(next(n for n in INV.nodes if n.name == name).ip)


def patched_nodes(calls: list[dict]) -> list[str]:
    """The nodes whose config ``talosctl machineconfig patch`` rendered."""
    return sorted(
        Path(c["argv"][c["argv"].index("--output") + 1]).stem
        for c in calls if c["argv"][:2] == ["machineconfig", "patch"]
    )  # fmt: skip


def applied_to(calls: list[dict]) -> list[str]:
    return [c["argv"][c["argv"].index("--nodes") + 1] for c in calls if "apply-config" in c["argv"]]


def record_data(fake_tools) -> dict[str, str]:
    objects = json.loads((fake_tools.log.parent / "objects.json").read_text())
    return objects[f"configmap/{NAMESPACE}/{NAME}"]["data"]


def test_a_node_config_changed_by_hand_is_rendered_compared_and_applied_alone(env, fake_tools):
    assert talos_rebuild().ok
    entry = json.loads(record_data(fake_tools)[key("talos/apply-talostrk3")])
    configs = fake_tools.log.parent / "machineconfigs.json"
    stored = json.loads(configs.read_text())
    ip = node_ip("talostrk3")
    stored[ip] = stored[ip].replace("patch: ", "patch: edited-")  # `talosctl edit` by hand
    configs.write_text(json.dumps(stored))
    before = len(fake_tools.calls())
    assert talos_rebuild().ok
    calls = fake_tools.calls()[before:]
    # its inputs are as recorded, but the node runs another config: it alone is rendered,
    # validated and applied (authenticated); the five others are left as their record names them
    assert patched_nodes(calls) == ["talostrk3"]
    validated = [c["argv"] for c in calls if "validate" in c["argv"]]
    assert [Path(a[a.index("--config") + 1]).stem for a in validated] == ["talostrk3"]
    assert applied_to(calls) == [ip]
    assert "--insecure" not in next(c["argv"] for c in calls if "apply-config" in c["argv"])
    assert (
        json.loads(record_data(fake_tools)[key("talos/apply-talostrk3")])["config"]
        == (
            entry["config"]  # the config its inputs make, applied again
        )
    )


def test_a_node_whose_inventory_entry_changed_is_rendered_and_applied_alone(
    env, fake_tools, tmp_path
):
    assert talos_rebuild().ok
    before_entry = json.loads(record_data(fake_tools)[key("talos/apply-talostrk4")])

    def relink(data):
        node = next(n for n in data["nodes"] if n["name"] == "talostrk4")
        node["link"] = "enp2s0"

    cluster = write_inventory(tmp_path, relink)
    before = len(fake_tools.calls())
    assert talos_rebuild(cluster=cluster).ok
    calls = fake_tools.calls()[before:]
    assert patched_nodes(calls) == ["talostrk4"]  # its inputs changed; no other node's did
    assert applied_to(calls) == [node_ip("talostrk4")]
    after_entry = json.loads(record_data(fake_tools)[key("talos/apply-talostrk4")])
    assert after_entry["fingerprint"] != before_entry["fingerprint"]
    assert after_entry["config"] != before_entry["config"]


def test_nodes_the_record_does_not_name_are_compared_and_named_with_the_next_write(env, fake_tools):
    assert talos_rebuild().ok
    # a record written before onecluster kept nodes in it (or that lost them)
    objects_file = fake_tools.log.parent / "objects.json"
    objects = json.loads(objects_file.read_text())
    data = objects[f"configmap/{NAMESPACE}/{NAME}"]["data"]
    nodes = {key(f"talos/apply-{n.name}") for n in INV.nodes}
    for k in nodes:
        data.pop(k)
    objects_file.write_text(json.dumps(objects))
    before = len(fake_tools.calls())
    assert talos_rebuild().ok
    calls = fake_tools.calls()[before:]
    # every config rendered and compared: each runs on its node, nothing applied, and the
    # record is not written for that alone (a run that changes nothing writes nothing)
    assert patched_nodes(calls) == sorted(n.name for n in INV.nodes)
    assert [c for c in calls if mutating(c)] == []
    assert not nodes & set(record_data(fake_tools))
    # the next run that changes something writes them beside its change
    gone = reinstall(fake_tools, "talostrk2")
    before = len(fake_tools.calls())
    assert talos_rebuild().ok
    calls = fake_tools.calls()[before:]
    assert applied_to(calls) == [gone]
    assert len([c for c in calls if record_write(c)]) == 1
    assert nodes <= set(record_data(fake_tools))
    before = len(fake_tools.calls())
    assert talos_rebuild().ok  # and from then on, no node is rendered again
    assert patched_nodes(fake_tools.calls()[before:]) == []


def test_the_record_holds_no_bundle_material_and_is_keyed_by_the_bundle(env, fake_tools):
    assert talos_rebuild().ok
    text = json.dumps(record_data(fake_tools))
    assert MARK not in text
    entry = json.loads(record_data(fake_tools)[key("talos/apply-talostrk1")])
    # the config fingerprint is keyed: the plain hash of the node's config is not it
    node_config = json.loads((fake_tools.log.parent / "machineconfigs.json").read_text())
    docs = [d for d in yaml.safe_load_all(node_config[node_ip("talostrk1")]) if d is not None]
    canonical = json.dumps(docs, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert hashlib.sha256(canonical.encode()).hexdigest() not in text
    assert entry["config"].startswith("hmac-sha256:")


def test_the_fingerprint_thread_parses_every_bundles_objects_before_the_cluster_answers(
    env, fake_tools
):
    bundles = [s for s in components()(INV) if isinstance(s, ManifestBundle)]
    with run_context(INV, dry_run=False, fetch_kubeconfig=False) as ctx:
        Converge(ctx).select(bundles)
        deadline = time.monotonic() + 30
        while len(ctx.state.get(PARSED, {})) < len(bundles) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert set(ctx.state.get(PARSED, {})) == {b.id for b in bundles}
    # ready for the one read of every bundle's objects, which waits for the kubeconfig
    assert [c for c in fake_tools.calls() if "get" in c["argv"]] == []


def test_a_gate_whose_objects_the_read_shows_not_ready_waits_on_the_cluster(env, fake_tools):
    assert rebuild().ok
    objects = fake_tools.log.parent / "objects.json"
    data = json.loads(objects.read_text())
    # a Traefik pod went away since: kubectl rollout status would wait
    data["deployment/traefik/traefik"]["status"]["availableReplicas"] = 0
    objects.write_text(json.dumps(data))
    before = len(fake_tools.calls())
    report = rebuild()
    assert report.ok
    calls = fake_tools.calls()[before:]
    waits = [c["argv"][2:5] for c in calls if c["argv"][2:3] in (["rollout"], ["wait"])]
    assert waits == [["rollout", "status", "deployment/traefik"]]  # that gate alone
    assert applied(calls) == []
    assert {r.id: r.status for r in report.results}["network/traefik-ready"] == OK


def test_the_client_probe_runs_beside_the_first_talos_steps(env, fake_tools):
    """The preflight's talosctl version probe costs a re-run no round trip of its own: the
    bundle is read and the configs generated meanwhile."""
    assert rebuild().ok
    before = len(fake_tools.calls())
    want = INV.cluster.talos_version
    fake_tools.rule("talosctl", "version --client", sleep=2.0, stdout=f"Client:\nTalos {want}\n")
    report = rebuild()
    assert report.ok
    calls = fake_tools.calls()[before:]
    (probe,) = [c for c in calls if c["argv"][:2] == ["version", "--client"]]
    (gen,) = [c for c in calls if c["argv"][:2] == ["gen", "config"]]
    assert gen["start"] < probe["end"]  # side by side
    assert [c for c in calls if mutating(c)] == []


def test_a_wrong_client_found_beside_the_first_steps_still_changes_nothing(env, fake_tools):
    """A re-run that would change something, with a talosctl that is not the pinned one (its
    answer slow to come): the configs were rendered and the cluster read meanwhile, and nothing
    was changed."""
    assert rebuild().ok
    before = len(fake_tools.calls())
    changed = env.root / "traefik.yaml"
    text = (REPO_ROOT / "helm-values" / "traefik.yaml").read_text()
    changed.write_text(text.replace("  replicas: 2\n", "  replicas: 3\n", 1))
    fake_tools.rule("talosctl", "version --client", sleep=2.0, stdout="Client:\nTalos v1.11.3\n")
    with pytest.raises(OneclusterError) as err:
        rebuild(traefik_values=str(changed))
    assert str(err.value).startswith("preflight failed, nothing was changed:")
    assert "talosctl is v1.11.3" in str(err.value)
    calls = fake_tools.calls()[before:]
    assert [c for c in calls if c["argv"][:2] == ["gen", "config"]]  # it ran meanwhile
    assert [c for c in calls if mutating(c)] == []


def test_talos_health_of_an_untouched_cluster_is_its_early_check(env, fake_tools, capsys):
    """talosctl health runs beside the cluster's reads once the kubeconfig came (a minute at
    most); the gate of an untouched cluster is judged by it. When it did not pass, the gate
    checks on its own, with its full timeout, after the early check ended."""
    assert rebuild().ok
    before = len(fake_tools.calls())
    assert rebuild().ok
    (early,) = [c["argv"] for c in fake_tools.calls()[before:] if "health" in c["argv"]]
    assert early[early.index("--wait-timeout") + 1] == "1m"
    assert "==> ok     talos/health (its steps unchanged" in capsys.readouterr().out

    before = len(fake_tools.calls())
    fake_tools.rule("talosctl", "health", "--wait-timeout 1m", sleep=0.3, exit=1)
    report = rebuild()
    assert report.ok
    checks = [c for c in fake_tools.calls()[before:] if "health" in c["argv"]]
    assert [c["argv"][c["argv"].index("--wait-timeout") + 1] for c in checks] == ["1m", "10m"]
    assert checks[1]["start"] >= checks[0]["end"]  # never two at once


def test_a_read_no_step_waited_for_ends_with_the_run(env, fake_tools):
    """A failed run does not leave its background reads running: the early health check (slow
    here) is ended with the run."""
    assert rebuild().ok
    before = len(fake_tools.started())
    fake_tools.rule("talosctl", "health", "--wait-timeout 1m", sleep=60, sets={"health": "on"})
    # a node's patch (forced: its record would spare it) fails once the early health check
    # runs (a slow machine: after a while)
    fail = ("talosctl", "machineconfig patch", "talostrk6")
    fake_tools.rule(*fail, exit=1, when={"health": "on"})
    fake_tools.rule(*fail, exit=1, sleep=5)
    with pytest.raises(RunFailed):
        rebuild(force_steps=["talos/apply-talostrk6"])
    (early,) = [c for c in fake_tools.started()[before:] if "health" in c["argv"]]
    deadline = time.monotonic() + 10
    while _alive(early["pid"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(early["pid"])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _ctx():
    from tasks.engine.context import run_context

    with run_context(INV, dry_run=True, fetch_kubeconfig=True) as ctx:
        return ctx


def test_one_line_values_change_reapplies_only_traefik_and_force_step_one(
    env, fake_tools, tmp_path
):
    assert rebuild().ok
    changed = tmp_path / "traefik.yaml"
    text = (REPO_ROOT / "helm-values" / "traefik.yaml").read_text()
    assert "  replicas: 2\n" in text
    changed.write_text(text.replace("  replicas: 2\n", "  replicas: 3\n", 1))  # one line
    before = len(fake_tools.calls())
    report = rebuild(traefik_values=str(changed))
    calls = fake_tools.calls()[before:]
    ran = [c for c in applied(calls)]
    assert [(c["tool"], c["argv"][2:5]) for c in ran] == [
        ("helm", ["upgrade", "--install", "traefik"])
    ]
    assert len([c for c in calls if record_write(c)]) == 1
    status = {r.id: r.status for r in report.results}
    assert status["network/traefik"] == OK
    releases, bundles, crds = counts(components()(INV))
    others = {s.id for s in [*releases, *bundles, *crds]} - {"network/traefik"}
    assert {i for i in others if status[i] != UNCHANGED} == set()

    # the change is recorded: the same values again change nothing
    before = len(fake_tools.calls())
    assert rebuild(traefik_values=str(changed)).ok
    assert applied(fake_tools.calls()[before:]) == []

    # --force-step re-applies that one step; an unknown id is refused before anything runs
    before = len(fake_tools.calls())
    rebuild(traefik_values=str(changed), force_steps=["network/kube-vip"])
    ran = applied(fake_tools.calls()[before:])
    assert [c["argv"][2:5] for c in ran] == [["upgrade", "--install", "kube-vip"]]
    with pytest.raises(FlagError, match="--force-step network/nope: not a selected step"):
        rebuild(force_steps=["network/nope"])


def test_force_reapplies_everything(env, fake_tools):
    assert rebuild().ok
    first = Counter(identity(c, workdirs(fake_tools.calls())) for c in applied(fake_tools.calls()))
    before = len(fake_tools.calls())
    assert rebuild(force=True).ok
    calls = fake_tools.calls()[before:]
    again = [c for c in applied(calls) if c["tool"] != "talosctl" or "bootstrap" not in c["argv"]]
    syncs = [s for s in components()(INV) if isinstance(s, SyncStandIn)]
    # everything but the bootstrap (etcd answers) and the secret syncs: their read-compare
    # finds every Secret as it should be, and an apply would change nothing
    assert len(again) == sum(first.values()) - 1 - len(syncs)


def test_rebuild_failed_at_longhorn_then_plain_rerun_runs_exactly_what_had_not_succeeded(
    env, fake_tools
):
    fake_tools.rule("helm", "upgrade --install longhorn", exit=1, stderr="timed out", times=1)
    with pytest.raises(RunFailed) as err:
        rebuild(jobs=8)
    first = err.value.report
    assert [r.id for r in first.failed] == ["storage/longhorn"]
    assert "resume with: " in str(err.value) and "--from" not in str(err.value)
    first_calls = fake_tools.calls()
    before = len(first_calls)
    second = rebuild(jobs=8)
    assert second.ok
    status1 = {r.id: r.status for r in first.results}
    status2 = {r.id: r.status for r in second.results}
    fingerprinted = {
        s.id for s in components()(INV) if isinstance(s, (HelmRelease, ManifestBundle, CrdBundle))
    }
    for step, was in status1.items():
        if step in fingerprinted or step.startswith("talos/apply-"):
            # what succeeded is unchanged now; the failed, skipped and never-run steps run
            assert status2[step] == (UNCHANGED if was == OK else OK), step
    assert {s for s, r in status1.items() if r != OK} <= {s for s, r in status2.items() if r == OK}
    # together the two runs make each apply of one full rebuild exactly once
    all_calls = fake_tools.calls()
    wds = workdirs(all_calls)
    done = [c for c in applied(all_calls) if c["exit"] == 0]
    made = Counter(identity(c, wds) for c in done)
    assert max(made.values()) == 1
    releases, bundles, crds = counts(components()(INV))
    assert len([c for c in done if c["tool"] == "helm"]) == len(releases)
    assert len([c for c in done if "apply-config" in c["argv"]]) == len(IPS)
    syncs = [s for s in components()(INV) if isinstance(s, SyncStandIn)]
    assert len([c for c in done if c["tool"] == "kubectl"]) == len(bundles) + sum(
        len(c.sources) for c in crds
    ) + len(syncs)
    assert len(fake_tools.calls()) > before


def test_diff_shows_a_values_change_exits_2_before_and_0_after(env, fake_tools, tmp_path):
    assert rebuild().ok
    changed = tmp_path / "traefik.yaml"
    text = (REPO_ROOT / "helm-values" / "traefik.yaml").read_text()
    changed.write_text(text.replace("  replicas: 2\n", "  replicas: 3\n", 1))
    catalog = STACK.with_components(components(str(changed)))
    before = len(fake_tools.calls())
    shown, changes = diff(catalog, fmt="json")
    assert changes
    verdicts = {s["id"]: s["status"] for s in json.loads(shown)["steps"]}
    assert verdicts["network/traefik"] == "changed"
    releases, bundles, crds = counts(components()(INV))
    others = {s.id for s in [*releases, *bundles, *crds]} - {"network/traefik"}
    assert {verdicts[i] for i in others} == {"unchanged"}
    assert verdicts["network/traefik-ready"] == "checked at run time"
    assert applied(fake_tools.calls()[before:]) == []  # the diff only read
    assert rebuild(traefik_values=str(changed)).ok
    shown, changes = diff(catalog)
    assert not changes
    assert "network/traefik " in shown and "0 new, 0 changed, 0 drifted" in shown
    # the task: the stack's own Traefik values differ from what was just applied: exit 2
    with pytest.raises(Exit) as err:
        call_task("cluster.diff", step=["network/traefik"], format="json")
    assert err.value.code == 2


def test_diff_live_finds_drift_by_hand_and_a_new_cluster_is_all_new(env, fake_tools):
    catalog = STACK.with_components(components())
    shown, changes = diff(catalog, layers=["storage"])
    assert changes and "storage/longhorn" in shown
    assert {r.split()[-1] for r in shown.splitlines() if r.startswith("storage/longhorn ")} == {
        "new"
    }
    assert rebuild().ok
    assert diff(catalog, layers=["storage"])[1] is False
    fake_tools.rule("kubectl", "diff", "--server-side", exit=1,
                    stdout="-  numberOfReplicas: \"3\"\n+  numberOfReplicas: \"2\"\n")  # fmt: skip
    assert diff(catalog, layers=["storage"])[1] is False  # without --live: the record agrees
    shown, changes = diff(catalog, layers=["storage"], live=True)
    assert changes
    assert "storage/longhorn-extras" in shown and "drifted" in shown
    assert '+  numberOfReplicas: "2"' in shown


def test_a_record_that_cannot_be_written_fails_no_step_and_is_said(env, fake_tools, capsys):
    fake_tools.rule("kubectl", f"--field-manager={RECORD_MANAGER}", exit=1,
                    stderr='Error from server (Forbidden): configmaps is forbidden\n')  # fmt: skip
    catalog = STACK.with_components(components())
    assert execute(catalog, targets=["network/kube-vip"]).ok
    err = capsys.readouterr().err
    assert f"the record {NAMESPACE}/{NAME} was not written" in err
    line = next(x for x in err.splitlines() if "was not written" in x)
    assert "network/kube-vip" in line and line.endswith("succeeded but will run again next time")
    before = len(fake_tools.calls())
    execute(catalog, targets=["network/kube-vip"])  # nothing was recorded: it runs again
    ran = [c["argv"][2:5] for c in applied(fake_tools.calls()[before:])]
    assert ["upgrade", "--install", "kube-vip"] in ran


def test_diff_without_a_kubeconfig_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    with pytest.raises(Exit) as err:
        call_task("cluster.diff")
    assert err.value.code == 1
    assert "no kubeconfig at" in str(err.value.message) and "talos.kubeconfig" in str(
        err.value.message
    )


# cluster.diff's object diffs: Helm releases, Talos node configs, secrets masked -----------------

SECRET_VALUE = "s3cr3t-rendered-by-the-chart-4242"
TEMPLATE = f"""\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: traefik, namespace: traefik}}
spec: {{replicas: 3}}
---
apiVersion: v1
kind: Secret
metadata: {{name: traefik-dashboard-auth, namespace: traefik}}
stringData: {{password: {SECRET_VALUE}}}
data: {{token: {base64.b64encode(SECRET_VALUE.encode()).decode()}}}
"""


def test_diff_of_a_changed_release_is_its_template_through_kubectl_diff_secrets_masked(
    env, fake_tools, tmp_path
):
    assert rebuild().ok
    changed = tmp_path / "traefik.yaml"
    text = (REPO_ROOT / "helm-values" / "traefik.yaml").read_text()
    changed.write_text(text.replace("  replicas: 2\n", "  replicas: 3\n", 1))
    catalog = STACK.with_components(components(str(changed)))
    fake_tools.rule("helm", "template traefik", stdout=TEMPLATE)
    # a kubectl that printed a Secret's value (the real one masks it: diff.go's Masker)
    fake_tools.rule("kubectl", "diff", "--server-side", exit=1, stdout=(
        "-  replicas: 2\n+  replicas: 3\n"
        f"+  password: {SECRET_VALUE}\n+  token: {base64.b64encode(SECRET_VALUE.encode()).decode()}\n"
    ))  # fmt: skip
    before = len(fake_tools.calls())
    encoded = base64.b64encode(SECRET_VALUE.encode()).decode()
    shown = {}
    for fmt in ("table", "json"):
        shown[fmt], changes = diff(catalog, layers=["network"], fmt=fmt)
        assert changes
        assert SECRET_VALUE not in shown[fmt] and encoded not in shown[fmt]
    table = shown["table"]
    assert "--- network/traefik (changed): helm template | kubectl diff --server-side" in table
    assert "+  replicas: 3" in table and "password: ***" in table and "token: ***" in table
    (traefik,) = [s for s in json.loads(shown["json"])["steps"] if s["id"] == "network/traefik"]
    assert traefik["status"] == "changed" and "+  replicas: 3" in traefik["diff"]
    calls = fake_tools.calls()[before:]
    (template,) = {tuple(c["argv"][2:]) for c in calls if "template" in c["argv"]}
    assert template[:2] == ("template", "traefik")
    assert {"--dry-run=server", "--no-hooks", "--is-upgrade", "--values"} <= set(template)
    # kubectl diff got exactly what helm template rendered
    diffs = [c for c in calls if "diff" in c["argv"] and c["stdin_len"] == len(TEMPLATE)]
    assert diffs and {c["stdin_sha256"] for c in diffs} == {
        hashlib.sha256(TEMPLATE.encode()).hexdigest()
    }
    assert applied(calls) == []  # the diff only read


def test_diff_live_finds_a_release_changed_by_hand(env, fake_tools):
    assert rebuild().ok
    catalog = STACK.with_components(components())
    fake_tools.rule("kubectl", "diff", "--server-side", exit=1,
                    stdout="-  replicas: 2\n+  replicas: 1\n")  # fmt: skip
    shown, changes = diff(catalog, targets=["network/traefik"])
    assert not changes  # the record agrees, and without --live nothing is diffed
    shown, changes = diff(catalog, targets=["network/traefik"], live=True)
    assert changes
    assert {r.split()[-1] for r in shown.splitlines() if r.startswith("network/traefik ")} == {
        "drifted"
    }
    assert "helm template | kubectl diff --server-side" in shown and "+  replicas: 1" in shown


LIVE_TOKEN = f"{MARK}-machine-token-live"
LIVE_KEY = f"{MARK}-cluster-ca-key-live"


def test_diff_of_a_node_config_masks_every_secret_field(env, fake_tools, capsys):
    assert rebuild().ok
    catalog = STACK.with_components(components())
    shown, changes = diff(catalog, layers=["talos"])
    assert not changes  # every node runs its rendered config
    verdicts = {r.split()[0]: r.split()[-1] for r in shown.splitlines() if r.startswith("talos/")}
    assert {verdicts[f"talos/apply-{n.name}"] for n in INV.nodes} == {"unchanged"}
    # talostrk2's config changed on the node by hand: other patch, secrets the render lacks
    stored = fake_tools.log.parent / "machineconfigs.json"
    configs = json.loads(stored.read_text())
    ip = str(INV.node("talostrk2").ip)
    configs[ip] = yaml.safe_dump({
        "version": "v1alpha1",
        "machine": {"token": LIVE_TOKEN, "patch": "by-hand",
                    "ca": {"crt": "LS0tLS1CRUdJTi1saXZl", "key": LIVE_KEY}},
        "cluster": {"secret": BUNDLE.split("secret: ")[1].splitlines()[0],
                    "inlineManifests": [{"name": "x", "contents": f"kind: Secret\n{MARK}\n"}]},
    })  # fmt: skip
    stored.write_text(json.dumps(configs))
    for fmt in ("table", "json"):
        shown, changes = diff(catalog, layers=["talos"], fmt=fmt)
        assert changes
        assert MARK not in shown and "LS0tLS1CRUdJTi1saXZl" not in shown
    found = {s["id"]: s for s in json.loads(shown)["steps"]}
    node = found["talos/apply-talostrk2"]
    assert node["status"] == "changed" and node["how"].startswith("talosctl get machineconfig")
    assert "-  token: '*** (before)'" in node["diff"] and "-  patch: by-hand" in node["diff"]
    # the CA and the inline manifest exist only live: every secret leaf of them masked
    assert "-    key: '***'" in node["diff"] and "-    crt: '***'" in node["diff"]
    assert "contents: '***'" in node["diff"] and "-  secret: '***'" in node["diff"]
    assert found["talos/apply-talostrk1"]["status"] == "unchanged"
    assert found["talos/genconfig"]["status"] == "checked at run time"
    out = capsys.readouterr()
    assert MARK not in out.out + out.err


def test_dry_run_reads_the_record_by_named_probes_and_says_what_a_run_skips(
    env, fake_tools, tmp_path, capsys
):
    assert rebuild().ok
    changed = tmp_path / "traefik.yaml"
    text = (REPO_ROOT / "helm-values" / "traefik.yaml").read_text()
    changed.write_text(text.replace("  replicas: 2\n", "  replicas: 3\n", 1))
    catalog = STACK.with_components(components(str(changed)))
    capsys.readouterr()
    before = len(fake_tools.calls())
    report = execute(catalog, layers=["network"], dry_run=True)  # the user's kubeconfig: there
    out = capsys.readouterr().out
    calls = fake_tools.calls()[before:]
    assert [c for c in calls if mutating(c)] == []  # no Lease, no record write, no apply
    probes = [line for line in out.splitlines() if line.startswith("# read-only probe: ")]
    assert len(probes) == len(calls) == 3  # the record, the one helm list, every bundle's objects
    assert any("get configmap onecluster-state" in p for p in probes)
    assert any("helm" in p and " list --all-namespaces" in p for p in probes)
    status = {r.id: r.status for r in report.results}
    assert status["network/traefik"] == OK and status["network/kube-vip"] == UNCHANGED
    assert "# network/kube-vip: unchanged (fingerprint recorded, live state confirms): a run " \
        "skips it" in out  # fmt: skip
    assert "upgrade --install traefik" in out and "upgrade --install kube-vip" not in out

    # a rebuild's dry-run has no kubeconfig yet: it says so and reads nothing
    before = len(fake_tools.calls())
    rebuild(dry_run=True)
    out = capsys.readouterr().out
    assert "the cluster's record cannot be read: every step is shown" in out
    assert "onecluster-state" not in out and " list --all-namespaces" not in out
    assert [c for c in fake_tools.calls()[before:] if c["tool"] != "talosctl"] == []


def test_a_record_that_cannot_be_read_is_asked_a_bounded_number_of_times(env, fake_tools, capsys):
    fake_tools.rule("kubectl", "get configmap onecluster-state", exit=1,
                    stderr="Error from server (Forbidden): configmaps is forbidden\n")  # fmt: skip
    catalog = STACK.with_components(components())
    assert execute(catalog, layers=["network"]).ok  # every step runs: none can be confirmed
    reads = [c for c in fake_tools.calls() if "onecluster-state" in c["argv"]]
    # an early check, the check once its needs are done, the write's own read: not one per step
    assert 1 <= len(reads) <= 3
    out = capsys.readouterr()
    assert out.out.count("could not be read") == 1
    assert "was not written" in out.err  # a write without what the record held would drop it
