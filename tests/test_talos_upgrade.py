"""Rolling upgrades on the recording fakes: drain, snapshot, upgrade, version, gates; stop at failure.

The fakes keep state: ``talosctl upgrade`` of a node makes its ``talosctl version`` answer the new
Talos version (unless the test makes the node fall back to the old image), ``kubectl drain``
remembers the node as cordoned and ``kubectl uncordon`` forgets it, and the Longhorn volumes and
replicas can change with what was upgraded. Output formats: ``talosctl version`` as
``cmd/talosctl/cmd/talos/version.go`` prints it (v1.12), Longhorn's CRs as ``kubectl get -o json``.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from conftest import task_context
from test_talos_fixtures import BUNDLE, make_talos_env

from tasks.engine.errors import OneclusterError
from tasks.engine.execute import execute
from tasks.engine.inventory import load_inventory
from tasks.engine.runner import RunFailed
from tasks.stack import STACK
from tasks.talos import tasks as talos_tasks
from tasks.talos import upgrade
from tasks.talos.options import TalosOptions
from tasks.talos.secretsbundle import SECRET_NAME

INV = load_inventory()
ORDER = ["talostrk1", "talostrk5", "talostrk6", "talostrk2", "talostrk3", "talostrk4"]
IMAGE = (
    "factory.talos.dev/metal-installer/"
    "613e1592b2da41ae5e265e8789429f22e121aab91cb4deb6bc3c0b6262961245:v1.12.4"
)


def volumes(*states: tuple[str, str, str]) -> str:
    items = [
        {"metadata": {"name": n}, "status": {"state": s, "robustness": r}} for n, s, r in states
    ]
    return json.dumps({"items": items})


def replicas(*placed: tuple[str, str] | tuple[str, str, str]) -> str:
    """Replicas as (volume, node) or (volume, node, failedAt)."""
    items = [
        {
            "metadata": {"name": f"{p[0]}-r-{i}"},
            "spec": {"volumeName": p[0], "nodeID": p[1], "failedAt": p[2] if len(p) > 2 else ""},
        }
        for i, p in enumerate(placed)
    ]
    return json.dumps({"items": items})


SPREAD = replicas(("pvc-db", "talostrk2"), ("pvc-db", "talostrk3"), ("pvc-old", "talostrk4"))
SHARED = replicas(("pvc-db", "talostrk2"), ("pvc-db", "talostrk2"), ("pvc-old", "talostrk4"))
OLD = "v1.12.3"
NEW = INV.cluster.talos_version
CPS = {n.name for n in INV.control_planes}


def version_output(ip: str, tag: str) -> str:
    """``talosctl version`` as v1.12 prints it: the client's block, then the node's."""
    block = (
        "\tTag:         {tag}\n\tSHA:         3a5b1c2d\n\tBuilt:       \n"
        "\tGo version:  go1.25.5\n\tOS/Arch:     linux/amd64\n"
    )
    return (
        "Client:\n" + block.format(tag=NEW) + "Server:\n"
        f"\tNODE:        {ip}\n" + block.format(tag=tag) + "\tEnabled:     RBAC\n"
    )


def cluster(fake_tools, *, fallback: tuple[str, ...] = (), longhorn: bool = True) -> None:
    """Nodes on the old Talos that report the new one once upgraded (except ``fallback`` ones),
    drains that cordon, and Longhorn volumes healthy on distinct nodes. Rules a test adds before
    calling this take precedence (the first matching rule applies)."""
    for n in INV.nodes:
        ip = str(n.ip)
        upgraded = {} if n.name in fallback else {"sets": {ip: NEW}}
        fake_tools.rule("talosctl", "upgrade --image", f"--nodes {ip}", **upgraded)
        fake_tools.rule("talosctl", f"version --nodes {ip}", when={ip: NEW},
                        stdout=version_output(ip, NEW))  # fmt: skip
        fake_tools.rule("talosctl", f"version --nodes {ip}", stdout=version_output(ip, OLD))
        fake_tools.rule("kubectl", f"drain {n.name} ", sets={f"cordoned/{n.name}": True})
        fake_tools.rule("kubectl", f"uncordon {n.name}", sets={f"cordoned/{n.name}": None})
    if longhorn:
        fake_tools.rule("kubectl", "volumes.longhorn.io", stdout=HEALTHY)
        fake_tools.rule("kubectl", "replicas.longhorn.io", stdout=SPREAD)


def cordoned(fake_tools) -> list[str]:
    state = fake_tools.state()
    return sorted(k.split("/", 1)[1] for k, v in state.items() if k.startswith("cordoned/") and v)


HEALTHY = volumes(("pvc-db", "attached", "healthy"), ("pvc-old", "detached", "unknown"))
DEGRADED = volumes(("pvc-db", "attached", "degraded"), ("pvc-old", "detached", "unknown"))


@pytest.fixture
def env(tmp_path, monkeypatch, fake_tools):
    env = make_talos_env(tmp_path, monkeypatch, fake_tools)
    env.store.write(SECRET_NAME, BUNDLE)
    return env


def run_upgrade(node=None, timeout="1m", snapshot_dir=None):
    execute(
        STACK.only(talos_tasks.upgrade_steps(node, timeout)),
        options=(TalosOptions(timeout=timeout, poll_interval=0, snapshot_dir=snapshot_dir),),
    )


INV_BY_IP = {str(n.ip): n.name for n in INV.nodes}


def events(env) -> list[str]:
    """The run as a readable trace, in call order."""
    trace = []
    for argv in env.argvs():
        tool, node = (
            argv[0],
            INV_BY_IP.get(argv[argv.index("--nodes") + 1] if "--nodes" in argv else ""),
        )
        if tool == "talosctl" and "upgrade" in argv:
            trace.append(f"upgrade {node}")
        elif tool == "talosctl" and "snapshot" in argv:
            trace.append(f"snapshot {node}")
        elif tool == "talosctl" and "version" in argv:
            trace.append(f"version {node}")
        elif "health" in argv:
            trace.append("health")
        elif "volumes.longhorn.io" in argv:
            trace.append("longhorn")
        elif "replicas.longhorn.io" in argv:
            trace.append("replicas")
        elif tool == "kubectl" and "wait" in argv:
            trace.append(f"ready {argv[-2].removeprefix('node/')}")
        elif tool == "kubectl" and ("drain" in argv or "uncordon" in argv):
            verb = "drain" if "drain" in argv else "uncordon"
            trace.append(f"{verb} {argv[argv.index(verb) + 1]}")
    return trace


GATE = ["health", "longhorn", "replicas"]


def gated(names: list[str]) -> list[str]:
    trace = list(GATE)
    for name in names:
        trace += [f"drain {name}", *([f"snapshot {name}"] if name in CPS else [])]
        trace += [f"upgrade {name}", f"version {name}", f"uncordon {name}", f"ready {name}", *GATE]
    return trace


def upgraded(env) -> list[str]:
    return [t.split()[1] for t in events(env) if t.startswith("upgrade ")]


def test_upgrade_drains_snapshots_checks_and_gates_each_node_in_turn(env, fake_tools):
    cluster(fake_tools)
    run_upgrade()
    assert events(env) == gated(ORDER)
    upgrades = [a for a in env.talosctl() if "upgrade" in a]
    at_first = ["--nodes", "192.168.50.11", "--endpoints", "192.168.50.11"]
    assert upgrades[0][3:] == ["upgrade", "--image", IMAGE, "--wait", "--timeout", "1m", *at_first]
    drains = [a for a in fake_tools.argvs("kubectl") if "drain" in a]
    assert drains[0][drains[0].index("drain"):] == [
        "drain", "talostrk1", "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=1m"
    ]  # fmt: skip
    assert not any("--disable-eviction" in a or "--force" in a for a in drains)
    assert cordoned(fake_tools) == []
    assert not [a for a in env.talosctl() if a[1:3] == ["gen", "secrets"]]


def test_a_drain_that_cannot_finish_stops_everything_with_nothing_rebooted(env, fake_tools):
    refused = (
        'evicting pod apps/postgres-0\nerror when evicting pods/"postgres-0" -n "apps" '
        "(will retry after 5s): Cannot evict pod as it would violate the pod's disruption "
        'budget.\nerror: unable to drain node "talostrk1" due to error: global timeout '
        "reached: 1m0s, continuing command...\n"
    )
    fake_tools.rule("kubectl", "drain talostrk1 ", exit=1, stderr=refused,
                    sets={"cordoned/talostrk1": True})  # fmt: skip
    cluster(fake_tools)
    with pytest.raises(RunFailed) as err:
        run_upgrade()
    message = str(err.value)
    assert "drain of talostrk1 did not finish within 1m" in message
    assert "talostrk1 is cordoned and was not rebooted; no further node was touched" in message
    assert "kubectl get pdb -A" in message
    assert events(env) == [*GATE, "drain talostrk1"]
    assert upgraded(env) == [] and not [a for a in env.talosctl() if "snapshot" in a]
    assert cordoned(fake_tools) == ["talostrk1"]


def test_a_drain_failing_later_leaves_only_that_node_cordoned(env, fake_tools):
    fake_tools.rule("kubectl", "drain talostrk5 ", exit=1, stderr="global timeout reached: 1m0s",
                    sets={"cordoned/talostrk5": True})  # fmt: skip
    cluster(fake_tools)
    with pytest.raises(RunFailed):
        run_upgrade()
    assert events(env) == [*gated(["talostrk1"]), "drain talostrk5"]
    assert upgraded(env) == ["talostrk1"]
    assert cordoned(fake_tools) == ["talostrk5"]


def test_a_node_back_on_the_old_version_stops_the_upgrade(env, fake_tools):
    cluster(fake_tools, fallback=("talostrk1",))
    with pytest.raises(RunFailed) as err:
        run_upgrade()
    message = str(err.value)
    assert f"talostrk1 came back on Talos {OLD}, not {NEW}" in message
    assert "a failed upgrade" in message and "talostrk1 is cordoned" in message
    assert events(env) == [*GATE, "drain talostrk1", "snapshot talostrk1", "upgrade talostrk1",
                           "version talostrk1"]  # fmt: skip
    assert upgraded(env) == ["talostrk1"]
    assert cordoned(fake_tools) == ["talostrk1"]


def test_a_node_that_never_reports_its_version_stops_the_upgrade(env, fake_tools):
    fake_tools.rule("talosctl", "version --nodes 192.168.50.12", exit=1,
                    stderr="rpc error: code = Unavailable desc = connection refused")  # fmt: skip
    cluster(fake_tools)
    with pytest.raises(RunFailed) as err:
        run_upgrade(node="talostrk2", timeout="0s")
    assert "talostrk2 did not report its Talos version within 0s" in str(err.value)
    assert cordoned(fake_tools) == ["talostrk2"]
    assert not [t for t in events(env) if t.startswith("uncordon")]


def test_a_snapshot_is_taken_before_each_control_plane_into_snapshot_dir(env, fake_tools, tmp_path):
    cluster(fake_tools)
    keep = tmp_path / "snapshots"
    run_upgrade(snapshot_dir=str(keep))
    trace = events(env)
    for name in ORDER:
        if name in CPS:
            i = trace.index(f"snapshot {name}")
            assert trace[i - 1] == f"drain {name}" and trace[i + 1] == f"upgrade {name}"
    assert [t for t in trace if t.startswith("snapshot")] == [f"snapshot {n}" for n in ORDER[:3]]
    files = sorted(keep.iterdir())
    assert [f.name.rsplit("-", 1)[0] for f in files] == [
        "etcd-homelab-talostrk1", "etcd-homelab-talostrk5", "etcd-homelab-talostrk6"
    ]  # fmt: skip
    assert stat.S_IMODE(keep.stat().st_mode) == 0o700
    assert {stat.S_IMODE(f.stat().st_mode) for f in files} == {0o600}
    snaps = [a for a in env.talosctl() if "snapshot" in a]
    assert snaps[0][3:6] == ["etcd", "snapshot", str(files[0])]
    assert snaps[0][-4:] == ["--nodes", "192.168.50.11", "--endpoints", "192.168.50.11"]


def test_by_default_the_snapshot_lives_in_the_private_workdir(env, fake_tools, capsys):
    cluster(fake_tools)
    run_upgrade(node="talostrk6")
    (snap,) = [a for a in env.talosctl() if "snapshot" in a]
    path = Path(snap[snap.index("snapshot") + 1])
    assert path.parent.parent == env.tmp and path.parent.name.startswith("onecluster-")
    assert not path.exists()  # removed with the workdir
    assert "--snapshot-dir keeps it" in capsys.readouterr().out


def test_a_failed_snapshot_stops_before_the_reboot(env, fake_tools):
    fake_tools.rule("talosctl", "etcd snapshot", exit=1, stderr="etcd: no leader")
    cluster(fake_tools)
    with pytest.raises(RunFailed) as err:
        run_upgrade()
    assert "etcd snapshot of talostrk1 failed" in str(err.value)
    assert upgraded(env) == []
    assert cordoned(fake_tools) == ["talostrk1"]


def test_upgrade_stops_at_the_first_failed_node(env, fake_tools):
    fake_tools.rule("talosctl", "upgrade --image", "--nodes 192.168.50.15", exit=1,
                    stderr="no pull")  # fmt: skip
    cluster(fake_tools)
    with pytest.raises(RunFailed) as err:
        run_upgrade()
    assert "upgrade of talostrk5 failed" in str(err.value)
    assert "no further node was touched" in str(err.value)
    assert events(env) == [*gated(["talostrk1"]), "drain talostrk5", "snapshot talostrk5",
                           "upgrade talostrk5"]  # fmt: skip
    assert cordoned(fake_tools) == ["talostrk5"]


def test_upgrade_stops_when_the_cluster_is_unhealthy_after_a_node(env, fake_tools):
    health = "health --control-plane-nodes"
    fake_tools.rule("talosctl", health, times=1)  # healthy before the first node
    fake_tools.rule("talosctl", health, exit=1, stderr="etcd member talostrk1 unhealthy")
    cluster(fake_tools)
    with pytest.raises(RunFailed) as err:
        run_upgrade()
    assert "after upgrading talostrk1" in str(err.value)
    assert events(env) == gated(["talostrk1"])[:-2]  # the gate stopped at health
    assert upgraded(env) == ["talostrk1"]


def test_upgrade_waits_for_degraded_longhorn_volumes_to_heal(env, fake_tools):
    fake_tools.rule("kubectl", "volumes.longhorn.io", stdout=HEALTHY, times=1)
    fake_tools.rule("kubectl", "volumes.longhorn.io", stdout=DEGRADED, times=2)
    cluster(fake_tools)
    run_upgrade()
    trace = events(env)
    after_first = trace[: trace.index("drain talostrk5")]
    assert after_first == [
        *gated(["talostrk1"])[:-2], "longhorn", "replicas", "longhorn", "replicas",
        "longhorn", "replicas",
    ]  # fmt: skip
    assert upgraded(env) == ORDER


def test_no_second_node_while_a_longhorn_volume_stays_degraded(env, fake_tools):
    fake_tools.rule("kubectl", "volumes.longhorn.io", stdout=HEALTHY, times=1)
    fake_tools.rule("kubectl", "volumes.longhorn.io", stdout=DEGRADED)
    cluster(fake_tools)
    with pytest.raises(RunFailed) as err:
        run_upgrade(timeout="0s")
    assert "pvc-db (attached, degraded)" in str(err.value)
    assert upgraded(env) == ["talostrk1"]


def test_no_second_node_while_replicas_of_a_volume_share_a_node(env, fake_tools):
    # healthy by robustness, but after talostrk1's upgrade both copies of pvc-db sit on talostrk2
    fake_tools.rule("kubectl", "replicas.longhorn.io", when={"192.168.50.11": NEW}, stdout=SHARED)
    cluster(fake_tools)
    with pytest.raises(RunFailed) as err:
        run_upgrade(timeout="0s")
    message = str(err.value)
    assert "after upgrading talostrk1" in message
    assert "pvc-db (several replicas on talostrk2)" in message
    assert upgraded(env) == ["talostrk1"]
    assert not [t for t in events(env) if t == "drain talostrk5"]


def test_upgrade_never_starts_on_a_degraded_cluster(env, fake_tools):
    fake_tools.rule("kubectl", "volumes.longhorn.io", stdout=DEGRADED)
    cluster(fake_tools)
    with pytest.raises(RunFailed) as err:
        run_upgrade(timeout="0s")
    assert "before the first upgrade" in str(err.value)
    assert upgraded(env) == [] and cordoned(fake_tools) == []


def test_upgrade_never_starts_while_replicas_share_a_node(env, fake_tools):
    fake_tools.rule("kubectl", "replicas.longhorn.io", stdout=SHARED)
    cluster(fake_tools)
    with pytest.raises(RunFailed) as err:
        run_upgrade(timeout="0s")
    assert "before the first upgrade" in str(err.value)
    assert upgraded(env) == [] and not [t for t in events(env) if t.startswith("drain")]


def test_upgrade_of_one_node(env, fake_tools):
    cluster(fake_tools)
    run_upgrade(node="talostrk3")
    assert events(env) == gated(["talostrk3"])


def test_upgrade_without_longhorn_installed_skips_the_volume_wait(env, fake_tools):
    missing = 'error: the server doesn\'t have a resource type "volumes"'
    fake_tools.rule("kubectl", "volumes.longhorn.io", exit=1, stderr=missing)
    cluster(fake_tools, longhorn=False)
    run_upgrade(node="talostrk2")
    assert events(env) == [t for t in gated(["talostrk2"]) if t != "replicas"]


def test_upgrade_task_dry_run_prints_every_step_and_runs_nothing(env, capsys):
    talos_tasks.upgrade_(task_context(), dry_run=True, node="talostrk5", timeout="20m")
    printed = capsys.readouterr().out
    assert env.argvs() == []
    lines = [line for line in printed.splitlines() if line.startswith("[talos/upgrade]")]
    at = "--nodes 192.168.50.15 --endpoints 192.168.50.15"
    assert " health --control-plane-nodes " in lines[0]
    body = [line.split("$ ", 1)[1] for line in lines[3:]]
    assert body[0].endswith(
        "drain talostrk5 --ignore-daemonsets --delete-emptydir-data --timeout=20m"
    )
    assert " etcd snapshot '$ONECLUSTER_WORKDIR/etcd-homelab-talostrk5-" in body[1]
    assert body[1].endswith(f".db' {at}")
    assert f"upgrade --image {IMAGE} --wait --timeout 20m {at}" in body[2]
    assert "(read-only probe) $ talosctl" in lines[6] and f"version {at}" in body[3]
    assert body[4].endswith("uncordon talostrk5")
    assert "wait --for=condition=Ready node/talostrk5 --timeout=20m" in body[5]
    assert sum("(read-only probe)" in line and "longhorn.io" in line for line in lines) == 4


def test_snapshot_dir_must_be_a_directory(env, tmp_path):
    from invoke.exceptions import Exit

    file = tmp_path / "a-file"
    file.write_text("x")
    with pytest.raises(Exit) as err:
        talos_tasks.upgrade_(task_context(), snapshot_dir=str(file))
    assert "--snapshot-dir" in err.value.message and "not a directory" in err.value.message
    assert env.argvs() == []


def test_server_versions_reads_the_nodes_tag_not_the_clients():
    assert upgrade.server_versions(version_output("192.168.50.11", OLD)) == [OLD]
    assert upgrade.server_versions("Client:\n\tTag:         v1.12.4\n") == []


@pytest.mark.parametrize(
    ("payload", "bad"),
    [
        (SPREAD, []),
        (SHARED, ["pvc-db (several replicas on talostrk2)"]),
        (replicas(("v", "a"), ("v", "a", "2026-01-01T00:00:00Z")), []),  # a failed copy
        (replicas(("v", ""), ("v", "")), []),  # not scheduled yet: the volume is degraded
        ("", []),
        ("[]", ["could not read Longhorn replicas (kubectl printed no JSON list)"]),
    ],
    ids=["spread", "shared", "failed-copy", "unscheduled", "none", "garbage"],
)
def test_colocated_replicas(payload, bad):
    assert upgrade.colocated_replicas(payload) == bad


@pytest.mark.parametrize(
    ("payload", "bad"),
    [
        (HEALTHY, []),
        (DEGRADED, ["pvc-db (attached, degraded)"]),
        (volumes(("v", "detached", "faulted")), ["v (detached, faulted)"]),
        (volumes(("v", "attaching", "")), ["v (attaching, no robustness)"]),
        ("", []),
        ("not json", ["could not read Longhorn volumes (kubectl printed no JSON list)"]),
    ],
    ids=["healthy", "degraded", "faulted", "attaching", "none", "garbage"],
)
def test_unhealthy_volumes(payload, bad):
    assert upgrade.unhealthy_volumes(payload) == bad


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("10m", 600), ("1h", 3600), ("45", 45), ("0s", 0)]
)
def test_parse_duration(text, seconds):
    assert upgrade.parse_duration(text) == seconds


def test_parse_duration_rejects_garbage():
    with pytest.raises(OneclusterError, match="expected a duration"):
        upgrade.parse_duration("ten minutes")


def test_poll_returns_last_problems_after_timeout():
    ticks = iter([0.0, 1.0, 2.0])  # deadline set at 0; checks end at 1 (retry) and 2 (give up)
    answers = iter([["a"], ["b"]])
    slept = []
    bad = upgrade.poll(lambda: next(answers), 2.0, 1.0, clock=lambda: next(ticks),
                       sleep=slept.append)  # fmt: skip
    assert bad == ["b"] and slept == [1.0]


def test_the_real_kubectl_accepts_the_upgrades_commands(tmp_path, monkeypatch):
    """drain, uncordon, wait and the Longhorn queries, parsed by the real kubectl: a flag it does
    not know fails before the connection to the unreachable API server (as in test_real_tools)."""
    import shutil

    from test_real_tools import assert_refused_only, unreachable_kubeconfig

    from tasks.engine.context import run_context

    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    kubeconfig = unreachable_kubeconfig(tmp_path)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("KUBECTL", raising=False)
    with run_context(INV, dry_run=True, fetch_kubeconfig=False) as ctx:
        commands = [
            c for c in upgrade.plan(ctx, [INV.node("talostrk2")], "1m") if c.tool == "kubectl"
        ]
    verbs = {
        next(a for a in c.args if not a.startswith("-") and a != str(kubeconfig)) for c in commands
    }
    assert verbs == {"get", "drain", "uncordon", "wait"}
    for command in commands:
        assert_refused_only(command, tmp_path, "--request-timeout=5s")


def test_longhorn_waits_out_one_nodes_upgrade_before_rebuilding_its_replicas():
    """``replicaReplenishmentWaitInterval`` (seconds, chart default 600) covers one node's
    upgrade: ``talosctl upgrade --wait`` and the node's Ready wait, each up to ``--timeout``."""
    import inspect

    from rendered import rendered_values

    default = inspect.signature(talos_tasks.upgrade_.body).parameters["timeout"].default
    interval = rendered_values("longhorn")["defaultSettings"]["replicaReplenishmentWaitInterval"]
    assert int(interval) >= 2 * upgrade.parse_duration(default)
