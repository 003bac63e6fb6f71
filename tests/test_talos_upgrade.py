"""Rolling upgrades: one node at a time, health and Longhorn gates between, stop at failure."""

from __future__ import annotations

import json

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


HEALTHY = volumes(("pvc-db", "attached", "healthy"), ("pvc-old", "detached", "unknown"))
DEGRADED = volumes(("pvc-db", "attached", "degraded"), ("pvc-old", "detached", "unknown"))


@pytest.fixture
def env(tmp_path, monkeypatch, fake_tools):
    env = make_talos_env(tmp_path, monkeypatch, fake_tools)
    env.store.write(SECRET_NAME, BUNDLE)
    return env


def run_upgrade(node=None, timeout="1m"):
    execute(
        STACK.only(talos_tasks.upgrade_steps(node, timeout)),
        options=(TalosOptions(timeout=timeout, poll_interval=0),),
    )


def events(env) -> list[str]:
    """The run as a readable trace: upgrade/ready/health/longhorn, in call order."""
    trace = []
    for argv in env.argvs():
        if "upgrade" in argv and argv[0] == "talosctl":
            node = argv[argv.index("--nodes") + 1]
            trace.append(f"upgrade {INV_BY_IP[node]}")
        elif "health" in argv:
            trace.append("health")
        elif "volumes.longhorn.io" in argv:
            trace.append("longhorn")
        elif argv[:1] == ["kubectl"] and "wait" in argv:
            trace.append(f"ready {argv[-2].removeprefix('node/')}")
    return trace


INV_BY_IP = {str(n.ip): n.name for n in INV.nodes}


def gated(names: list[str]) -> list[str]:
    trace = ["health", "longhorn"]
    for name in names:
        trace += [f"upgrade {name}", f"ready {name}", "health", "longhorn"]
    return trace


def test_upgrade_goes_one_node_at_a_time_with_gates_between(env, fake_tools):
    fake_tools.rule("kubectl", "volumes.longhorn.io", stdout=HEALTHY)
    run_upgrade()
    assert events(env) == gated(ORDER)
    upgrades = [a for a in env.talosctl() if "upgrade" in a]
    at_first = ["--nodes", "192.168.50.11", "--endpoints", "192.168.50.11"]
    assert upgrades[0][3:] == ["upgrade", "--image", IMAGE, "--wait", "--timeout", "1m", *at_first]
    assert not [a for a in env.talosctl() if a[1:3] == ["gen", "secrets"]]


def test_upgrade_stops_at_the_first_failed_node(env, fake_tools):
    fake_tools.rule("kubectl", "volumes.longhorn.io", stdout=HEALTHY)
    fake_tools.rule(
        "talosctl", "upgrade --image", "--nodes 192.168.50.15", exit=1, stderr="no pull"
    )
    with pytest.raises(RunFailed) as err:
        run_upgrade()
    assert "upgrade of talostrk5 failed" in str(err.value)
    assert "no further node was touched" in str(err.value)
    assert events(env) == [*gated(["talostrk1"]), "upgrade talostrk5"]


def test_upgrade_stops_when_the_cluster_is_unhealthy_after_a_node(env, fake_tools):
    fake_tools.rule("kubectl", "volumes.longhorn.io", stdout=HEALTHY)
    health = "health --control-plane-nodes"
    fake_tools.rule("talosctl", health, times=1)  # healthy before the first node
    fake_tools.rule("talosctl", health, exit=1, stderr="etcd member talostrk1 unhealthy")
    with pytest.raises(RunFailed) as err:
        run_upgrade()
    assert "after upgrading talostrk1" in str(err.value)
    assert events(env) == ["health", "longhorn", "upgrade talostrk1", "ready talostrk1", "health"]


def test_upgrade_waits_for_degraded_longhorn_volumes_to_heal(env, fake_tools):
    fake_tools.rule("kubectl", "volumes.longhorn.io", stdout=HEALTHY, times=1)
    fake_tools.rule("kubectl", "volumes.longhorn.io", stdout=DEGRADED, times=2)
    fake_tools.rule("kubectl", "volumes.longhorn.io", stdout=HEALTHY)
    run_upgrade()
    trace = events(env)
    after_first = trace[: trace.index("upgrade talostrk5")]
    assert after_first == [
        "health", "longhorn", "upgrade talostrk1", "ready talostrk1", "health",
        "longhorn", "longhorn", "longhorn",
    ]  # fmt: skip
    assert [t for t in trace if t.startswith("upgrade")] == [f"upgrade {n}" for n in ORDER]


def test_upgrade_stops_while_longhorn_stays_degraded(env, fake_tools):
    fake_tools.rule("kubectl", "volumes.longhorn.io", stdout=HEALTHY, times=1)
    fake_tools.rule("kubectl", "volumes.longhorn.io", stdout=DEGRADED)
    with pytest.raises(RunFailed) as err:
        run_upgrade(timeout="0s")
    assert "pvc-db (attached, degraded)" in str(err.value)
    assert [t for t in events(env) if t.startswith("upgrade")] == ["upgrade talostrk1"]


def test_upgrade_never_starts_on_a_degraded_cluster(env, fake_tools):
    fake_tools.rule("kubectl", "volumes.longhorn.io", stdout=DEGRADED)
    with pytest.raises(RunFailed) as err:
        run_upgrade(timeout="0s")
    assert "before the first upgrade" in str(err.value)
    assert [t for t in events(env) if t.startswith("upgrade")] == []


def test_upgrade_of_one_node(env, fake_tools):
    fake_tools.rule("kubectl", "volumes.longhorn.io", stdout=HEALTHY)
    run_upgrade(node="talostrk3")
    assert events(env) == gated(["talostrk3"])


def test_upgrade_without_longhorn_installed_skips_the_volume_wait(env, fake_tools):
    fake_tools.rule("kubectl", "volumes.longhorn.io", exit=1,
                    stderr='error: the server doesn\'t have a resource type "volumes"')  # fmt: skip
    run_upgrade(node="talostrk2")
    assert events(env) == gated(["talostrk2"])


def test_upgrade_task_dry_run_prints_every_step_and_runs_nothing(env, capsys):
    talos_tasks.upgrade_(task_context(), dry_run=True, node="talostrk2", timeout="20m")
    printed = capsys.readouterr().out
    assert env.argvs() == []
    assert f"upgrade --image {IMAGE} --wait --timeout 20m --nodes 192.168.50.12" in printed
    assert "wait --for=condition=Ready node/talostrk2 --timeout=20m" in printed
    assert printed.count("get volumes.longhorn.io -n longhorn-system -o json") == 2


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
