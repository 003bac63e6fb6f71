"""The Talos layer of a rebuild against a recording talosctl: sequence, PKI and disk hygiene."""

from __future__ import annotations

import hashlib
import threading

import pytest
from conftest import task_context
from invoke.exceptions import Exit
from test_talos_fixtures import BUNDLE, MARK, make_talos_env, normalise, workdir_of, write_inventory

from tasks.engine.errors import OneclusterError
from tasks.engine.execute import execute
from tasks.engine.inventory import load_inventory
from tasks.engine.runner import RunFailed
from tasks.secrets.store import MemoryStore
from tasks.stack import STACK
from tasks.talos import tasks as talos_tasks
from tasks.talos.options import TalosOptions
from tasks.talos.secretsbundle import SECRET_NAME

INV = load_inventory()
CPS = [n for n in INV.nodes if n.role == "controlplane"]
FIRST = "192.168.50.11"
TC = "$WD/talosconfig"
AT_FIRST = ["--nodes", FIRST, "--endpoints", FIRST]


@pytest.fixture
def env(tmp_path, monkeypatch, fake_tools):
    return make_talos_env(tmp_path, monkeypatch, fake_tools)


def rebuild(cluster=None, lock=True, **options):
    return execute(
        STACK, cluster=cluster, layers=["talos"], lock=lock,
        options=(TalosOptions(poll_interval=0, **options),),
    )  # fmt: skip


def live_read(node) -> list[str]:
    """The authenticated read of the config ``node`` runs (fails in maintenance mode)."""
    ip = str(node.ip)
    return ["talosctl", "--talosconfig", TC, "get", "machineconfig", "-o", "yaml",
            "--nodes", ip, "--endpoints", ip]  # fmt: skip


def live_read_all() -> list[str]:
    """One read of every node's config through the control planes (one call for a re-run)."""
    cps = ",".join(str(n.ip) for n in INV.control_planes)
    return ["talosctl", "--talosconfig", TC, "get", "machineconfig", "-o", "yaml",
            "--nodes", ",".join(str(n.ip) for n in INV.nodes), "--endpoints", cps]  # fmt: skip


def probe(node) -> list[str]:
    """The maintenance-mode probe of ``node``."""
    return ["talosctl", "get", "disks", "--insecure", "--nodes", str(node.ip), "-o", "json"]


def expected_configs() -> list[list[str]]:
    """gen config with the patches, then for each node: its patch applied, then validated."""
    calls = [
        ["talosctl", "gen", "config", "homelab", "https://192.168.50.10:6443",
         "--with-secrets", "$WD/secrets.yaml", "--talos-version", "v1.12.4",
         "--kubernetes-version", "1.35.0",
         "--config-patch", "@$WD/patches/common.yaml",
         "--config-patch-control-plane", "@$WD/patches/controlplane.yaml",
         "--with-docs=false", "--with-examples=false",
         "--output-types", "controlplane,worker,talosconfig", "--output", "$WD", "--force"],
    ]  # fmt: skip
    for n in INV.nodes:
        out = f"$WD/nodes/{n.name}.yaml"
        calls.append(["talosctl", "machineconfig", "patch", f"$WD/{n.role}.yaml",
                      "--patch", f"@$WD/patches/nodes/{n.name}.yaml", "--output", out])  # fmt: skip
        calls.append(["talosctl", "validate", "--config", out, "--mode", "metal"])
    return calls


def expected_tail() -> list[list[str]]:
    """After every apply: bootstrap once on talostrk1 (etcd asked first: a bootstrapped cluster
    answers at once; else the API waited for and etcd asked again), kubeconfig, health."""
    etcd = ["talosctl", "--talosconfig", TC, "etcd", "status", *AT_FIRST]
    return [
        etcd,
        ["talosctl", "--talosconfig", TC, "version", *AT_FIRST],
        etcd,
        ["talosctl", "--talosconfig", TC, "bootstrap", *AT_FIRST],
        ["talosctl", "--talosconfig", TC, "kubeconfig", "$WD/kubeconfig", "--force", *AT_FIRST],
        ["talosctl", "--talosconfig", TC, "health",
         "--control-plane-nodes", "192.168.50.11,192.168.50.15,192.168.50.16",
         "--worker-nodes", "192.168.50.12,192.168.50.13,192.168.50.14",
         "--wait-timeout", "10m", *AT_FIRST],
    ]  # fmt: skip


MAINTENANCE = "rpc error: code = Unimplemented desc = API is not implemented in maintenance mode"


def test_rebuild_of_reference_cluster_runs_exact_talosctl_sequence(env, fake_tools):
    fake_tools.rule("talosctl", "etcd status", exit=1, stderr="etcd is not running")
    # a node in maintenance mode serves no kubeconfig until its config is applied
    fake_tools.rule("talosctl", "kubeconfig", exit=1, stderr=MAINTENANCE, when={"applied": None})
    fake_tools.rule("talosctl", "apply-config", FIRST, sets={"applied": True})
    rebuild()
    calls = env.talosctl()
    wd = workdir_of(calls)
    got = normalise(calls, wd)
    configs = expected_configs()
    # before a bundle is generated, every node is asked whether it is in maintenance mode
    n = len(INV.nodes)
    assert sorted(got[:n]) == sorted(probe(node) for node in INV.nodes)
    got = got[n:]
    assert got[0] == ["talosctl", "gen", "secrets", "--talos-version", "v1.12.4",
                      "--output-file", "$WD/secrets.yaml"]  # fmt: skip
    # gen config first; then, side by side, each node's patch and the reads a re-run decides
    # by (every node's live config in one read, etcd, the kubeconfig: all refused by
    # maintenance mode; then each node's own read, refused too); then each config is validated
    # (none runs on its node yet)
    tail = expected_tail()
    early = [live_read_all(), *(live_read(n) for n in INV.nodes), tail[0], tail[4]]
    made = got[1 : 1 + len(configs) + len(early)]
    assert made[0] == configs[0]
    assert sorted(made[1:]) == sorted(configs[1:] + early)
    assert all(made.index(live_read_all()) < made.index(live_read(n)) for n in INV.nodes)
    for patch, validate in zip(configs[1::2], configs[2::2], strict=True):
        assert made.index(patch) < made.index(validate)
    assert max(made.index(p) for p in configs[1::2]) < min(made.index(v) for v in configs[2::2])
    rest = got[1 + len(configs) + len(early) :]
    # bootstrap needs only talostrk1's apply, so it may overlap the other applies
    applies = [a for a in rest if a not in tail]
    assert sorted(applies) == sorted(
        [call for n in INV.nodes for call in (
            probe(n),
            ["talosctl", "apply-config", "--insecure", "--nodes", str(n.ip),
             "--file", f"$WD/nodes/{n.name}.yaml"],
        )]
    )  # fmt: skip

    def at(*parts: str) -> int:
        return next(i for i, a in enumerate(rest) if all(p in a for p in parts))

    for n in INV.nodes:
        # the node's live config was read beside its patch; it had none, so maintenance mode
        # is asked before the apply
        assert at("get", "disks", str(n.ip)) < at("apply-config", str(n.ip))
    assert [a for a in rest if a in tail] == tail
    assert at("apply-config", FIRST) < rest.index(tail[0])
    assert rest[-1] == tail[-1]  # health last, after every apply
    assert [a for a in got if "bootstrap" in a] == [expected_tail()[3]]
    # the new bundle went to the store, nowhere else
    assert env.store.read([SECRET_NAME]) == {SECRET_NAME: BUNDLE}


def test_rerun_on_bootstrapped_cluster_keeps_pki_and_skips_bootstrap(env, fake_tools, tmp_path):
    env.store.write(SECRET_NAME, BUNDLE)
    cluster = write_inventory(tmp_path, lambda d: d["cluster"].update(bootstrapped=True))
    # configured nodes refuse --insecure; etcd answers
    fake_tools.rule("talosctl", "--insecure", exit=1, stderr="tls: certificate required")
    rebuild(cluster)
    got = normalise(env.talosctl(), workdir_of(env.talosctl()))
    assert not [a for a in got if a[1:3] == ["gen", "secrets"]]
    assert not [a for a in got if "bootstrap" in a]
    assert sorted(a for a in got if "apply-config" in a) == sorted(
        ["talosctl", "--talosconfig", TC, "apply-config", "--file", f"$WD/nodes/{n.name}.yaml",
         "--nodes", str(n.ip), "--endpoints", str(n.ip)]
        for n in INV.nodes
    )  # fmt: skip
    tail = expected_tail()
    # etcd and the kubeconfig are read beside the node configs (talos/genconfig); etcd
    # answers, so talos/bootstrap has nothing to do and waits for nothing, and talos/kubeconfig
    # uses the kubeconfig already fetched: neither calls talosctl again
    seen = [a for a in got if a in tail]
    assert sorted(seen[:2]) == sorted([tail[0], tail[4]]) and seen[2:] == [tail[5]]
    assert got.index(seen[0]) < min(i for i, a in enumerate(got) if "apply-config" in a)
    assert got[-1] == tail[-1]
    assert env.store.read([SECRET_NAME]) == {SECRET_NAME: BUNDLE}
    assert [r["matches"] for r in env.probe_records()] == [True]


def test_missing_bundle_for_bootstrapped_cluster_stops_before_talosctl(env, tmp_path):
    cluster = write_inventory(tmp_path, lambda d: d["cluster"].update(bootstrapped=True))
    with pytest.raises(OneclusterError) as err:
        rebuild(cluster)
    message = str(err.value)
    assert "cluster.bootstrapped is true" in message
    assert SECRET_NAME in message and "--new-pki --yes" in message
    assert env.talosctl() == []
    assert env.store.names() == set()


def test_new_pki_needs_yes(env, tmp_path):
    cluster = write_inventory(tmp_path, lambda d: d["cluster"].update(bootstrapped=True))
    with pytest.raises(Exit) as err:
        talos_tasks.genconfig(task_context(), cluster=cluster, new_pki=True)
    assert "--yes" in str(err.value.message)
    assert env.talosctl() == []


def test_new_pki_with_yes_replaces_the_bundle(env, tmp_path):
    env.store.write(SECRET_NAME, "old bundle, locked out")
    cluster = write_inventory(tmp_path, lambda d: d["cluster"].update(bootstrapped=True))
    talos_tasks.genconfig(task_context(), cluster=cluster, new_pki=True, yes=True)
    assert env.talosctl()[0][1:3] == ["gen", "secrets"]
    # genconfig alone applies nothing, so it asks no node anything (they may not be racked yet)
    asked = [a for a in env.talosctl() if {"etcd", "kubeconfig"} & set(a) or {"get"} & set(a)]
    assert asked == []
    assert env.store.read([SECRET_NAME]) == {SECRET_NAME: BUNDLE}


def test_bootstrap_reports_already_bootstrapped_etcd(env, fake_tools, capsys):
    env.store.write(SECRET_NAME, BUNDLE)
    fake_tools.rule("talosctl", "etcd status", exit=1, stderr="unavailable")
    exists = "rpc error: code = AlreadyExists desc = etcd data directory is not empty"
    fake_tools.rule("talosctl", "bootstrap --nodes", exit=1, stderr=exists)
    rebuild()
    assert [a[3] for a in env.talosctl() if "bootstrap" in a] == ["bootstrap"]
    assert "etcd is already bootstrapped on talostrk1: nothing to do" in capsys.readouterr().out


def assert_no_secret_material_left(env):
    # during `gen config` the bundle was a 0600 file in a 0700 directory...
    (record,) = env.probe_records()
    assert record["exists"] and record["matches"]
    assert (record["mode"], record["dir_mode"]) == (0o600, 0o700)
    # ...and now no file anywhere holds key material, and the private workdir is gone
    assert env.files_with_mark() == []
    assert list(env.tmp.iterdir()) == []
    assert all(MARK not in arg for argv in env.argvs() for arg in argv)


def test_no_secret_material_on_disk_after_success(env, fake_tools, capsys):
    fake_tools.rule("talosctl", "etcd status", exit=1)
    rebuild()
    assert_no_secret_material_left(env)
    out = capsys.readouterr()
    assert MARK not in out.out + out.err


def test_no_secret_material_on_disk_after_failure_in_the_middle_of_apply(env, fake_tools, capsys):
    fake_tools.rule("talosctl", "apply-config", "192.168.50.13", exit=1, stderr="connection reset")
    with pytest.raises(RunFailed) as err:
        rebuild()
    assert "talos/apply-talostrk3" in str(err.value)
    assert_no_secret_material_left(env)
    status = {r.id: r.status for r in err.value.report.results}
    assert status["talos/health"] == "skipped"
    # the gate never checked; the only health call is the early read made beside the node
    # reads (the fakes serve a kubeconfig), which waits a minute at most
    healths = [a for a in env.talosctl() if "health" in a]
    assert all(a[a.index("--wait-timeout") + 1] == "1m" for a in healths)
    out = capsys.readouterr()
    assert MARK not in out.out + out.err + str(err.value)


def test_genconfig_out_writes_private_copies_with_a_warning(env, tmp_path, capsys):
    out = tmp_path / "configs"
    talos_tasks.genconfig(task_context(), out=str(out))
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{n.name}.yaml" for n in INV.nodes] + ["talosconfig"]
    )
    assert out.stat().st_mode & 0o777 == 0o700
    assert {p.stat().st_mode & 0o777 for p in out.iterdir()} == {0o600}
    assert "hold" in capsys.readouterr().err
    wd = workdir_of(env.talosctl())
    assert normalise(env.talosctl(), wd)[-2:] == [
        ["talosctl", "--talosconfig", "$WD/talosconfig", "config", "endpoint",
         "192.168.50.11", "192.168.50.15", "192.168.50.16"],
        ["talosctl", "--talosconfig", "$WD/talosconfig", "config", "node", "192.168.50.11"],
    ]  # fmt: skip
    assert list(env.tmp.iterdir()) == []


def test_dry_run_prints_the_rebuild_and_runs_nothing(env, capsys):
    execute(STACK, layers=["talos"], dry_run=True)
    printed = capsys.readouterr().out
    assert env.argvs() == []
    assert "talosctl gen secrets" in printed
    for n in INV.nodes:
        assert f"--file '$ONECLUSTER_WORKDIR/nodes/{n.name}.yaml'" in printed
    assert printed.count(" bootstrap --nodes 192.168.50.11") == 1


# The PKI cannot be lost by accident ------------------------------------------------------------

REFUSED = (
    "rpc error: code = Unavailable desc = connection error: remote error: tls: certificate required"
)


def test_no_bundle_is_generated_while_a_node_runs_configured(env, fake_tools):
    # cluster.bootstrapped is false, the store is empty, but talostrk5 holds a config already
    fake_tools.rule("talosctl", "get disks --insecure --nodes 192.168.50.15", exit=1,
                    stderr=REFUSED)  # fmt: skip
    with pytest.raises(RunFailed) as err:
        rebuild()
    message = str(err.value)
    assert "talostrk5 (192.168.50.15) answer outside maintenance mode" in message
    assert f"Restore {SECRET_NAME} in Infisical" in message and "talos.reset --yes" in message
    assert not [a for a in env.talosctl() if a[1:3] == ["gen", "secrets"]]
    assert not [a for a in env.talosctl() if "apply-config" in a]
    assert env.store.names() == set()


@pytest.mark.parametrize(
    "failure",
    [{"signal": 2}, {"exit": 1, "stderr": "context deadline exceeded"}],
    ids=["interrupted", "timed-out"],
)
def test_a_probe_that_cannot_tell_stops_the_bundle_step(env, fake_tools, failure):
    fake_tools.rule("talosctl", "get disks --insecure --nodes 192.168.50.13", **failure)
    with pytest.raises(RunFailed) as err:
        rebuild()
    assert "could not tell whether talostrk3 (192.168.50.13) is in maintenance mode" in str(
        err.value
    )
    assert not [a for a in env.talosctl() if a[1:3] == ["gen", "secrets"]]
    assert env.store.names() == set()


def test_new_pki_yes_does_not_ask_the_nodes(env, tmp_path, fake_tools):
    fake_tools.rule("talosctl", "get disks --insecure", exit=1, stderr=REFUSED)
    talos_tasks.genconfig(task_context(), new_pki=True, yes=True)
    assert not [a for a in env.talosctl() if a[1:3] == ["get", "disks"]]
    assert env.store.read([SECRET_NAME]) == {SECRET_NAME: BUNDLE}


class RacingStore(MemoryStore):
    """A store where two runs race: a create waits until the other run is about to create too.

    Each run reads the store before it generates and creates, so both find it empty, both
    generate a bundle of their own, and only then do their creates meet.
    """

    def __init__(self) -> None:
        super().__init__()
        self.barrier = threading.Barrier(2, timeout=120)
        self.creates: list[str] = []

    def create(self, name, value):
        self.creates.append(value)
        self.barrier.wait()
        return super().create(name, value)


def test_two_racing_rebuilds_end_with_one_bundle_and_both_use_it(env, monkeypatch, capsys):
    from tasks.secrets import infisical

    monkeypatch.setenv("TALOS_TEST_UNIQUE_BUNDLES", "1")  # each gen secrets makes its own PKI
    store = RacingStore()
    monkeypatch.setattr(infisical, "open_store", lambda inventory: store)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            # two machines: on one, the second run would be refused by the local lock
            # (tests/test_lock.py), and a fresh cluster has no Lease yet; so between machines
            # the create-only store is what keeps one PKI
            rebuild(lock=False)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert errors == []
    # both generated a bundle, both tried to store theirs, one is in the store
    assert len([a for a in env.talosctl() if a[1:3] == ["gen", "secrets"]]) == 2
    assert len(store.creates) == 2 and store.creates[0] != store.creates[1]
    assert store.names() == {SECRET_NAME}
    (kept,) = store.read([SECRET_NAME]).values()
    assert kept in store.creates
    # and both runs rendered their configs from that one bundle
    used = {r["sha256"] for r in env.probe_records()}
    assert len(env.probe_records()) == 2
    assert used == {hashlib.sha256(kept.encode()).hexdigest()}
    assert "another run stored TALOS_SECRETS_BUNDLE meanwhile: using that one" in (
        capsys.readouterr().out
    )
