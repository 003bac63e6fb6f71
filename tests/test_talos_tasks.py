"""The talos.* tasks: dry-runs print exact argv and run nothing; the rest run what they print."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml
from conftest import call_task, task_context
from invoke.exceptions import Exit
from test_talos_fixtures import BUNDLE, MARK, make_talos_env, normalise, workdir_of

from tasks.engine.execute import plan
from tasks.engine.inventory import load_inventory
from tasks.stack import STACK
from tasks.talos import talosctl
from tasks.talos import tasks as talos_tasks
from tasks.talos.options import TalosOptions
from tasks.talos.secretsbundle import SECRET_NAME

INV = load_inventory()
WD = "'$ONECLUSTER_WORKDIR"
TC = "--talosconfig '$ONECLUSTER_WORKDIR/talosconfig'"


@pytest.fixture
def env(tmp_path, monkeypatch, fake_tools):
    env = make_talos_env(tmp_path, monkeypatch, fake_tools)
    env.store.write(SECRET_NAME, BUNDLE)
    return env


DRY_RUNS = {
    "genconfig": (talos_tasks.genconfig, {}, [
        "talosctl gen config homelab https://192.168.50.10:6443 --with-secrets",
        f"talosctl validate --config {WD}/nodes/talostrk4.yaml' --mode metal",
    ]),
    "apply-one-node-insecure": (talos_tasks.apply, {"node": "talostrk2", "insecure": True}, [
        f"talosctl apply-config --insecure --nodes 192.168.50.12 --file {WD}/nodes/talostrk2.yaml'",
    ]),
    "bootstrap": (talos_tasks.bootstrap, {}, [
        f"talosctl {TC} etcd status --nodes 192.168.50.11 --endpoints 192.168.50.11",
        f"talosctl {TC} bootstrap --nodes 192.168.50.11 --endpoints 192.168.50.11",
    ]),
    "kubeconfig": (talos_tasks.kubeconfig, {"output": "/tmp/k"}, [
        f"talosctl {TC} kubeconfig /tmp/k --force --nodes 192.168.50.11",
    ]),
    "talosconfig": (talos_tasks.talosconfig, {"output": "/tmp/t"}, [
        f"talosctl {TC} config endpoint 192.168.50.11 192.168.50.15 192.168.50.16",
        "# put context homelab of $ONECLUSTER_WORKDIR/talosconfig into /tmp/t, replacing a "
        "context of that name (other contexts are kept)",
    ]),
    "health": (talos_tasks.health, {"timeout": "3m"}, [
        f"talosctl {TC} health --control-plane-nodes 192.168.50.11,192.168.50.15,192.168.50.16 "
        "--worker-nodes 192.168.50.12,192.168.50.13,192.168.50.14 --wait-timeout 3m",
    ]),
    "upgrade-k8s": (talos_tasks.upgrade_k8s, {}, [
        f"talosctl {TC} upgrade-k8s --to 1.35.0 --dry-run --nodes 192.168.50.11",
    ]),
    "reset": (talos_tasks.reset, {}, [
        f"talosctl {TC} reset --graceful=false --reboot --system-labels-to-wipe STATE "
        "--system-labels-to-wipe EPHEMERAL --wait=false --nodes 192.168.50.12",
        "left untouched: the user volumes (u-longhorn;",
    ]),
    "reset-wipe-volumes": (talos_tasks.reset, {"wipe_volumes": True}, [
        f"talosctl {TC} reset --graceful=false --reboot --system-labels-to-wipe STATE "
        "--system-labels-to-wipe EPHEMERAL --system-labels-to-wipe u-longhorn --wait=false "
        "--nodes 192.168.50.12",
        "the user volumes (u-longhorn) are wiped too",
    ]),
}  # fmt: skip


@pytest.mark.parametrize("name", list(DRY_RUNS))
def test_dry_run_prints_exact_commands_and_runs_nothing(name, env, capsys):
    task, kwargs, expected = DRY_RUNS[name]
    task(task_context(), dry_run=True, **kwargs)
    printed = capsys.readouterr().out
    for line in expected:
        assert line in printed
    assert env.argvs() == []


def test_dry_run_says_the_bundle_is_generated_only_when_missing(env, capsys):
    talos_tasks.genconfig(task_context(), dry_run=True)
    printed = capsys.readouterr().out
    assert (
        f"read {SECRET_NAME} from the secret store; generate one only if it holds none" in printed
    )
    assert env.store.read([SECRET_NAME]) == {SECRET_NAME: BUNDLE}


def test_genconfig_out_dry_run_warns_that_the_directory_holds_secrets(env, capsys, tmp_path):
    talos_tasks.genconfig(task_context(), dry_run=True, out=str(tmp_path / "cfg"))
    assert "private keys" in capsys.readouterr().err
    assert not (tmp_path / "cfg").exists()


def test_reset_requires_yes(env):
    with pytest.raises(Exit) as err:
        talos_tasks.reset(task_context())
    assert "--yes" in err.value.message
    assert env.argvs() == []


def test_reset_with_yes_wipes_workers_then_control_planes(env):
    talos_tasks.reset(task_context(), yes=True)
    resets = [a for a in env.talosctl() if "reset" in a]
    order = [a[a.index("--nodes") + 1] for a in resets]
    assert order == ["192.168.50.12", "192.168.50.13", "192.168.50.14",
                     "192.168.50.16", "192.168.50.15", "192.168.50.11"]  # fmt: skip
    assert all("--graceful=false" in a and "--reboot" in a for a in resets)


def test_upgrade_k8s_runs_its_own_dry_run_first(env):
    talos_tasks.upgrade_k8s(task_context())
    got = [a[3:] for a in env.talosctl() if "upgrade-k8s" in a]
    at_first = ["--nodes", "192.168.50.11", "--endpoints", "192.168.50.11"]
    assert got == [
        ["upgrade-k8s", "--to", "1.35.0", "--dry-run", *at_first],
        ["upgrade-k8s", "--to", "1.35.0", *at_first],
    ]


def test_upgrade_k8s_stops_when_its_dry_run_fails(env, fake_tools):
    fake_tools.rule("talosctl", "upgrade-k8s", "--dry-run", exit=1, stderr="version skew")
    with pytest.raises(Exit):
        talos_tasks.upgrade_k8s(task_context())
    assert [a for a in env.talosctl() if "upgrade-k8s" in a and "--dry-run" not in a] == []


def test_kubeconfig_merges_into_the_users_kubeconfig_only_when_asked(env, tmp_path):
    talos_tasks.kubeconfig(task_context())
    (fetch,) = [a for a in env.talosctl() if "kubeconfig" in a]
    assert fetch[fetch.index("kubeconfig") + 1] == str(tmp_path / "kubeconfig")  # $KUBECONFIG


def test_rebuild_never_touches_the_users_kubeconfig_or_talosconfig(env, fake_tools, tmp_path):
    from tasks.engine.execute import execute

    fake_tools.rule("talosctl", "etcd status", exit=1)
    execute(STACK, layers=["talos"], options=(TalosOptions(poll_interval=0),))
    wd = workdir_of(env.talosctl())
    for argv in normalise(env.talosctl(), wd):
        assert str(tmp_path / "kubeconfig") not in argv
        assert str(tmp_path / "talosconfig") not in argv


def test_talosconfig_replaces_the_clusters_context_and_keeps_the_others(env, tmp_path, capsys):
    target = tmp_path / "talosconfig"  # $TALOSCONFIG
    old = {"endpoints": ["10.0.0.1"], "ca": "b2xk", "crt": "b2xk", "key": "old-key"}
    other = {"endpoints": ["10.9.9.9"], "ca": "eA==", "crt": "eA==", "key": "other-key"}
    target.write_text(
        yaml.safe_dump({"context": "lab", "contexts": {"homelab": old, "lab": other}})
    )
    talos_tasks.talosconfig(task_context())
    talos_tasks.talosconfig(task_context())  # a second export replaces again: no homelab-1
    data = yaml.safe_load(target.read_text())
    assert sorted(data["contexts"]) == ["homelab", "lab"]
    assert data["contexts"]["lab"] == other
    assert data["contexts"]["homelab"]["key"] == f"{MARK}-client-key"
    assert data["context"] == "homelab"
    assert target.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir() if "onecluster-tmp" in p.name] == []
    assert not [a for a in env.talosctl() if "merge" in a]
    assert "replaced context homelab of cluster homelab" in capsys.readouterr().out


@pytest.mark.parametrize("text", ["- not\n- a mapping\n", "contexts: [a]\n", "{unclosed: [\n"])
def test_talosconfig_never_overwrites_a_file_that_is_no_talosconfig(env, tmp_path, text):
    target = tmp_path / "talosconfig"
    target.write_text(text)
    with pytest.raises(Exit) as err:
        talos_tasks.talosconfig(task_context())
    assert "is not a talosconfig" in err.value.message and "--output PATH" in err.value.message
    assert target.read_text() == text


def test_talosconfig_into_a_new_file(env, tmp_path):
    target = tmp_path / "new" / "config"
    talos_tasks.talosconfig(task_context(), output=str(target))
    data = yaml.safe_load(target.read_text())
    assert (data["context"], list(data["contexts"])) == ("homelab", ["homelab"])
    assert target.stat().st_mode & 0o777 == 0o600


REFUSED = (
    "rpc error: code = Unavailable desc = connection error: remote error: tls: certificate required"
)


def test_apply_detects_maintenance_per_node(env, fake_tools):
    fake_tools.rule(
        "talosctl", "get disks --insecure --nodes 192.168.50.13", exit=1, stderr=REFUSED
    )
    talos_tasks.apply(task_context())
    applies = {a[a.index("--nodes") + 1]: a for a in env.talosctl() if "apply-config" in a}
    assert "--insecure" not in applies["192.168.50.13"]
    assert "--talosconfig" in applies["192.168.50.13"]
    assert all("--insecure" in a for ip, a in applies.items() if ip != "192.168.50.13")


@pytest.mark.parametrize(
    "failure",
    [
        {"exit": 1, "stderr": "dial tcp 192.168.50.13:50000: connect: no route to host"},
        {"signal": 2},  # an interrupted probe (Ctrl-C)
        {"exit": 1, "stderr": ""},
    ],
    ids=["unreachable", "interrupted", "silent"],
)
def test_apply_stops_when_the_maintenance_probe_cannot_tell(env, fake_tools, failure):
    fake_tools.rule("talosctl", "get disks --insecure --nodes 192.168.50.13", **failure)
    with pytest.raises(Exit) as err:
        talos_tasks.apply(task_context(), node="talostrk3")
    assert "could not tell whether talostrk3 (192.168.50.13) is in maintenance mode" in (
        err.value.message
    )
    assert not [a for a in env.talosctl() if "apply-config" in a]


def test_apply_checks_the_install_disk_against_the_disks_the_node_reports(env, monkeypatch):
    monkeypatch.setenv("TALOS_TEST_DISKS", json.dumps({"192.168.50.12": ["/dev/nvme0n1"]}))
    with pytest.raises(Exit) as err:
        talos_tasks.apply(task_context(), node="talostrk2")
    message = err.value.message
    assert "nodes[talostrk2].installDisk: /dev/sda does not exist on talostrk2" in message
    assert "reported /dev/nvme0n1" in message and "set installDisk to one of them" in message
    assert not [a for a in env.talosctl() if "apply-config" in a]


def test_apply_accepts_an_install_disk_named_by_a_by_id_link(env, tmp_path, monkeypatch):
    from test_talos_fixtures import write_inventory

    link = "/dev/disk/by-id/wwn-" + hashlib.md5(b"/dev/sda").hexdigest()[:8]
    cluster = write_inventory(tmp_path, lambda d: d["nodes"][3].update(installDisk=link))
    talos_tasks.apply(task_context(), cluster=cluster, node="talostrk2")
    assert [a for a in env.talosctl() if "apply-config" in a]


def test_health_timeout_is_validated_before_anything_runs(env):
    with pytest.raises(Exit) as err:
        talos_tasks.health(task_context(), timeout="ten minutes")
    assert "--timeout expected a duration" in err.value.message
    assert env.argvs() == []


def test_reset_without_wipe_volumes_says_what_it_leaves(env, capsys):
    talos_tasks.reset(task_context(), yes=True, node="talostrk2")
    (cmd,) = [a for a in env.talosctl() if "reset" in a]
    assert "u-longhorn" not in cmd
    assert "left untouched: the user volumes (u-longhorn;" in capsys.readouterr().out


def test_reset_wipe_volumes_needs_yes_and_wipes_the_longhorn_volume(env, capsys):
    with pytest.raises(Exit) as err:
        talos_tasks.reset(task_context(), wipe_volumes=True)
    assert "the user volumes (the Longhorn data)" in err.value.message
    assert env.argvs() == []
    talos_tasks.reset(task_context(), wipe_volumes=True, yes=True)
    resets = [a for a in env.talosctl() if "reset" in a]
    assert len(resets) == len(INV.nodes)
    for argv in resets:
        labels = [argv[i + 1] for i, a in enumerate(argv) if a == "--system-labels-to-wipe"]
        assert labels == ["STATE", "EPHEMERAL", "u-longhorn"]


def test_tasks_on_a_running_cluster_never_generate_a_bundle(env, monkeypatch):
    from tasks.secrets import infisical
    from tasks.secrets.store import MemoryStore

    empty = MemoryStore()
    monkeypatch.setattr(infisical, "open_store", lambda inventory: empty)
    with pytest.raises(Exit) as err:
        talos_tasks.health(task_context())
    assert f"holds no {SECRET_NAME}" in err.value.message
    assert empty.names() == set()
    assert env.argvs() == []


def test_plan_shows_the_talos_layer_with_health_as_a_gate():
    data = json.loads(plan(STACK, layers=["talos"], fmt="json"))
    steps = {s["id"]: s for s in data["steps"]}
    assert list(steps)[:2] == ["talos/secrets-bundle", "talos/genconfig"]
    assert steps["talos/health"]["kind"] == "gate"
    assert set(steps["talos/health"]["needs"]) >= {f"talos/apply-{n.name}" for n in INV.nodes}
    assert steps["talos/bootstrap"]["needs"] == ["talos/apply-talostrk1"]
    assert steps["talos/kubeconfig"]["needs"] == ["talos/bootstrap"]


# argv builders ----------------------------------------------------------------------------------

NODE = INV.node("talostrk2")


def test_insecure_apply_has_no_talosconfig():
    cmd = talosctl.apply_config("/wd/tc", NODE, Path("/wd/n.yaml"), insecure=True)
    assert cmd.argv == ["talosctl", "apply-config", "--insecure", "--nodes", "192.168.50.12",
                        "--file", "/wd/n.yaml"]  # fmt: skip


def test_authenticated_apply_names_talosconfig_nodes_and_endpoints():
    cmd = talosctl.apply_config("/wd/tc", NODE, Path("/wd/n.yaml"), insecure=False)
    at = ["--nodes", "192.168.50.12", "--endpoints", "192.168.50.12"]
    assert cmd.argv == ["talosctl", "--talosconfig", "/wd/tc", "apply-config", "--file",
                        "/wd/n.yaml", *at]  # fmt: skip


def test_gen_config_for_a_talosconfig_only():
    cmd = talosctl.gen_config(INV, Path("/wd/s.yaml"), Path("/wd/tc"), types=("talosconfig",))
    assert "--config-patch" not in cmd.argv
    assert cmd.argv[-5:] == ["--output-types", "talosconfig", "--output", "/wd/tc", "--force"]


def test_graceful_reset_of_a_single_node():
    cmd = talosctl.reset("/wd/tc", NODE, graceful=True)
    assert "--graceful=true" in cmd.argv


def test_layer_deploy_task_still_runs_the_talos_layer(env, capsys):
    call_task("talos.deploy", dry_run=True)
    printed = capsys.readouterr().out
    assert "# talos/health (gate)" in printed
    assert env.argvs() == []


def test_apply_to_an_unknown_node_names_the_known_ones(env):
    with pytest.raises(Exit) as err:
        talos_tasks.apply(task_context(), node="talostrk9")
    assert "no node named 'talostrk9'" in err.value.message
    assert "talostrk1" in err.value.message
    assert env.argvs() == []


def test_plan_leaves_out_gen_secrets_when_the_runs_store_holds_a_bundle(env):
    from tasks.engine.context import run_context

    (bundle,) = [c for c in talos_tasks.components(INV) if c.name == "secrets-bundle"]
    with run_context(INV, dry_run=True, fetch_kubeconfig=True) as ctx:
        # every node is asked whether it runs already, then the bundle is generated
        assert [c.argv[1:3] for c in bundle.commands(ctx)] == [
            *[["get", "disks"]] * len(INV.nodes),
            ["gen", "secrets"],
        ]
        ctx.state["store"] = env.store
        assert bundle.commands(ctx) == []


def test_apply_alone_renders_its_configs_from_the_stored_bundle_then_skips_what_runs_them(
    env, fake_tools
):
    """talos.apply on its own (a resumed Talos step) makes the configs it applies in its own
    run, from the stored bundle, then leaves alone a node that runs its config; --force not."""
    from stateful import stateful_nodes

    stateful_nodes(fake_tools, [str(n.ip) for n in INV.nodes])
    talos_tasks.apply(task_context())
    calls = env.talosctl()
    wd = workdir_of(calls)
    got = normalise(calls, wd)
    gen = next(i for i, a in enumerate(got) if a[1:3] == ["gen", "config"])
    assert got[gen][got[gen].index("--with-secrets") + 1] == "$WD/secrets.yaml"
    assert [r["matches"] for r in env.probe_records()] == [True]  # the stored bundle, on disk
    applies = [a for a in got if "apply-config" in a]
    assert sorted(a[a.index("--file") + 1] for a in applies) == sorted(
        f"$WD/nodes/{n.name}.yaml" for n in INV.nodes
    )
    assert all(got.index(a) > gen for a in applies)  # rendered first, in the same workdir
    nodes = json.loads((fake_tools.log.parent / "machineconfigs.json").read_text())
    assert sorted(nodes) == sorted(str(n.ip) for n in INV.nodes)  # each file existed then
    assert list(env.tmp.iterdir()) == []

    before = len(fake_tools.calls())
    talos_tasks.apply(task_context())  # every node runs its config: nothing is applied
    again = fake_tools.argvs("talosctl")[before:]
    assert [a for a in again if "apply-config" in a] == []
    (read,) = [a for a in again if "machineconfig" in a and "get" in a]  # every node in one
    assert read[read.index("--nodes") + 1] == ",".join(str(n.ip) for n in INV.nodes)

    before = len(fake_tools.calls())
    talos_tasks.apply(task_context(), force=True, node="talostrk2")
    forced = [a for a in fake_tools.argvs("talosctl")[before:] if "apply-config" in a]
    assert len(forced) == 1 and "192.168.50.12" in forced[0] and "--insecure" not in forced[0]
