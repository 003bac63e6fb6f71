"""One run per cluster: the local file lock, the cluster's Lease, and which tasks take them.

The Lease tests drive the recording kubectl, which keeps Lease state with the real API's
semantics for what onecluster uses (``get --ignore-not-found -o json``; ``create`` fails with
AlreadyExists; ``replace`` fails with Conflict on a stale resourceVersion). Two concurrent
rebuilds run as real subprocesses.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import pytest
from conftest import call_task
from invoke.exceptions import Exit
from test_interrupts import PHASES, alive, launch, wait_until  # noqa: F401 - launch: fixture
from test_real_tools import PARSE_ERRORS, UNREACHABLE

from tasks.engine.catalog import Catalog
from tasks.engine.command import Executor
from tasks.engine.components import Component
from tasks.engine.context import RunContext
from tasks.engine.errors import ConfirmationRequired
from tasks.engine.execute import execute
from tasks.engine.kubectl import Kubectl
from tasks.engine.lock import (
    LEASE_NAMESPACE,
    MICROTIME,
    ClusterLease,
    Holder,
    LocalLock,
    LockHeld,
    RunLock,
    lock_path,
)
from tasks.engine.runner import RunFailed

HOST = socket.gethostname()
LEASE = f"{LEASE_NAMESPACE}/onecluster-run-homelab"


def other(pid: int = 4242, host: str = "elsewhere") -> Holder:
    return Holder(host, pid, "2026-12-01T22:00:00Z", "invoke cluster.rebuild")


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# the local lock -----------------------------------------------------------------------------


def test_second_local_lock_fails_at_once_naming_the_holder(fake_tools):
    first = LocalLock("homelab", other(os.getpid(), HOST))
    first.acquire()
    assert json.loads(lock_path("homelab").read_text())["pid"] == os.getpid()
    with pytest.raises(LockHeld) as err:
        LocalLock("homelab", Holder.me()).acquire()
    text = str(err.value)
    assert (
        f"`invoke cluster.rebuild` (pid {os.getpid()} on {HOST}, started 2026-12-01T22:00:00Z)"
        in text
    )
    assert str(lock_path("homelab")) in text and "--break-lock --yes" in text
    assert "looks gone" not in text  # that pid runs
    first.release()
    again = LocalLock("homelab", Holder.me())
    again.acquire()  # free once released
    again.release()


def test_a_run_refused_before_the_holder_wrote_its_details_waits_for_them(fake_tools):
    # the holder's flock succeeds a moment before its details are in the file (CI caught a
    # second run reading the empty file in that moment)
    path = lock_path("homelab")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    late = threading.Timer(0.2, lambda: os.write(fd, other(os.getpid(), HOST).to_json().encode()))
    late.start()
    try:
        with pytest.raises(LockHeld) as err:
            LocalLock("homelab", Holder.me()).acquire()
    finally:
        late.join()
        os.close(fd)
    assert f"(pid {os.getpid()} on {HOST}, started 2026-12-01T22:00:00Z)" in str(err.value)


def test_a_holder_that_never_writes_its_details_is_still_refusing(fake_tools):
    path = lock_path("homelab")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        with pytest.raises(LockHeld, match="a run whose details could not be read"):
            LocalLock("homelab", Holder.me()).acquire()
    finally:
        os.close(fd)


def test_lock_of_a_gone_holder_is_named_stale_and_can_be_broken(fake_tools):
    gone = dead_pid()
    stuck = LocalLock(
        "homelab", Holder(HOST, gone, "2026-12-01T22:00:00Z", "invoke cluster.rebuild")
    )
    stuck.acquire()  # the flock is held (here by this process), the recorded pid is gone
    with pytest.raises(LockHeld, match=f"looks gone \\(pid {gone} is not running on this host\\)"):
        LocalLock("homelab", Holder.me()).acquire()
    mine = LocalLock("homelab", Holder.me())
    mine.acquire(force=True)
    assert json.loads(lock_path("homelab").read_text())["pid"] == os.getpid()
    with pytest.raises(LockHeld):  # the broken lock's new file is held by the new run
        LocalLock("homelab", other()).acquire()
    mine.release()
    stuck.release()


def test_break_lock_needs_yes():
    with pytest.raises(ConfirmationRequired, match="add --yes"):
        RunLock("homelab", break_lock=True)
    RunLock("homelab", break_lock=True, yes=True)


def test_break_lock_with_yes_takes_a_stuck_runs_lock(fake_tools, capsys):
    stuck = LocalLock("homelab", other(dead_pid(), HOST))
    stuck.acquire()
    call_task("network.deploy", break_lock=True, yes=True)
    assert "--break-lock: taking cluster homelab's lock from `invoke cluster.rebuild`" in (
        capsys.readouterr().err
    )
    assert [a for a in fake_tools.argvs("helm") if "upgrade" in a]
    stuck.release()


def test_break_lock_without_yes_refuses_before_any_call(fake_tools):
    with pytest.raises(Exit, match="--break-lock takes cluster homelab's lock") as err:
        call_task("network.deploy", break_lock=True)
    assert err.value.code == 1
    assert fake_tools.calls() == []


# the Lease ----------------------------------------------------------------------------------


def lease_for(holder: Holder, **options) -> ClusterLease:
    return ClusterLease("homelab", holder, Executor(), Kubectl("/some/kubeconfig"), **options)


def test_lease_is_created_then_refused_to_another_run(fake_tools):
    mine = lease_for(Holder.me())
    assert mine.try_acquire() is True
    stored = fake_tools.leases()[LEASE]
    assert stored["spec"]["holderIdentity"] == f"{HOST}:{os.getpid()}"
    assert stored["spec"]["leaseDurationSeconds"] == 60
    noted = Holder.parse(stored["metadata"]["annotations"]["onecluster/run"])
    assert noted is not None and noted.identity == f"{HOST}:{os.getpid()}"
    assert noted.command == Holder.me().command and noted.started.endswith("Z")
    create = [a for a in fake_tools.argvs("kubectl") if "create" in a]
    assert create == [["kubectl", "--kubeconfig", "/some/kubeconfig", "create", "--output", "json",
                       "--request-timeout=10s", "-f", "-"]]  # fmt: skip
    with pytest.raises(LockHeld) as err:
        lease_for(other()).try_acquire()
    assert f"Lease {LEASE}" in str(err.value)
    assert f"pid {os.getpid()} on {HOST}" in str(err.value)


def test_lease_renewal_keeps_it_and_release_frees_it(fake_tools):
    mine = lease_for(Holder.me())
    mine.try_acquire()
    version = fake_tools.leases()[LEASE]["metadata"]["resourceVersion"]
    assert mine.renew() == ""
    assert fake_tools.leases()[LEASE]["metadata"]["resourceVersion"] != version
    mine.release()
    assert "holderIdentity" not in fake_tools.leases()[LEASE]["spec"]
    nxt = lease_for(other())
    assert nxt.try_acquire() is True  # free after release
    assert fake_tools.leases()[LEASE]["spec"]["holderIdentity"] == "elsewhere:4242"
    assert fake_tools.leases()[LEASE]["spec"]["leaseTransitions"] == 1


def test_an_expired_lease_is_taken_over(fake_tools):
    then = datetime.now(UTC) - timedelta(minutes=5)
    lease_for(other(), clock=lambda: then).try_acquire()
    assert lease_for(Holder.me()).try_acquire() is True
    assert fake_tools.leases()[LEASE]["spec"]["holderIdentity"] == f"{HOST}:{os.getpid()}"


def test_a_lease_taken_by_another_run_is_reported_at_renewal(fake_tools):
    mine = lease_for(Holder.me())
    mine.try_acquire()
    lease_for(other(), force=True).try_acquire()  # someone broke it
    why = mine.renew()
    assert "taken by another run" in why and "pid 4242 on elsewhere" in why
    assert mine.held is False


def test_break_lock_takes_a_live_lease(fake_tools):
    lease_for(other()).try_acquire()
    assert lease_for(Holder.me(), force=True).try_acquire() is True
    assert fake_tools.leases()[LEASE]["spec"]["holderIdentity"] == f"{HOST}:{os.getpid()}"


def test_no_lease_while_the_api_does_not_answer(fake_tools):
    fake_tools.rule(
        "kubectl", "get", "lease", exit=1,
        stderr="The connection to the server 192.168.50.10:6443 was refused\n",
    )  # fmt: skip
    assert lease_for(Holder.me()).try_acquire() is False
    assert fake_tools.leases() == {}


# the lock in a run --------------------------------------------------------------------------


@pytest.fixture
def kubeconfig(tmp_path):
    """The user's kubeconfig exists (fake_tools points $KUBECONFIG here): the cluster answers."""
    path = tmp_path / "kubeconfig"
    path.write_text("apiVersion: v1\nkind: Config\n")
    return path


def started_order(fake_tools) -> list[list[str]]:
    return [[c["tool"], *c["argv"]] for c in fake_tools.started()]


def test_deploy_holds_the_lock_and_the_lease_and_releases_both(fake_tools, kubeconfig, capsys):
    call_task("network.deploy")
    calls = started_order(fake_tools)
    create = next(i for i, a in enumerate(calls) if "create" in a)
    first_helm = next(i for i, a in enumerate(calls) if a[0] == "helm" and "upgrade" in a)
    assert create < first_helm  # the Lease was held before the first change (reads go first)
    assert f"holding Lease {LEASE} as {HOST}:{os.getpid()}" in capsys.readouterr().out
    assert "holderIdentity" not in fake_tools.leases()[LEASE]["spec"]  # released
    assert not lock_path("homelab").exists()


def test_a_live_lease_of_another_run_refuses_the_deploy(fake_tools, kubeconfig):
    lease_for(other()).try_acquire()
    with pytest.raises(Exit) as err:
        call_task("network.deploy")
    assert "cluster homelab is being changed by another run: `invoke cluster.rebuild` " in str(
        err.value.message
    )
    assert "pid 4242 on elsewhere" in str(err.value.message)
    # it read (the converge reads: `helm list`), and changed nothing
    assert [a for a in fake_tools.argvs("helm") if "list" not in a] == []
    assert not lock_path("homelab").exists()  # the local lock was given back


def test_a_held_local_lock_refuses_every_mutating_task(fake_tools):
    holder = LocalLock("homelab", other(os.getpid(), HOST))
    holder.acquire()
    for task in ("cluster.rebuild", "network.deploy", "talos.apply", "apps.deploy", "secrets.sync"):
        with pytest.raises(Exit, match="is being changed by another run"):
            call_task(task)
    with pytest.raises(Exit, match="is being changed by another run"):
        call_task("apps.remove", name="headlamp")
    # apps.deploy asks what is in place first (helm status: read-only); nothing changed anything
    assert fake_tools.argvs("talosctl") == []
    assert [a for a in fake_tools.argvs("helm") if "status" not in a] == []
    assert not [a for a in fake_tools.argvs("kubectl") if {"apply", "create", "delete"} & set(a)]
    holder.release()


def test_read_only_tasks_take_no_lock(fake_tools, capsys):
    holder = LocalLock("homelab", other(os.getpid(), HOST))
    holder.acquire()
    call_task("cluster.plan")
    call_task("apps.list")
    call_task("cluster.rebuild", dry_run=True)
    call_task("network.deploy", dry_run=True)
    out = capsys.readouterr().out
    assert "Plan for cluster homelab" in out and "dry-run for cluster homelab" in out
    assert Holder.parse(lock_path("homelab").read_text()) == other(os.getpid(), HOST)  # untouched
    holder.release()


def test_dry_run_prints_the_lock_and_lease_commands_and_takes_none(fake_tools, capsys):
    call_task("network.deploy", dry_run=True)
    out = capsys.readouterr().out
    assert f"# lock: a run would hold {lock_path('homelab')} (flock)" in out
    assert (
        "kubectl --kubeconfig " in out
        and "get lease onecluster-run-homelab --namespace kube-system --ignore-not-found" in out
    )
    assert "create --output json --request-timeout=10s -f -" in out
    assert fake_tools.calls() == [] and fake_tools.leases() == {}
    assert not lock_path("homelab").parent.exists()


def test_lease_time_format_is_the_apis_microtime():
    stamp = datetime(2026, 12, 1, 23, 0, 0, 123456, tzinfo=UTC).strftime(MICROTIME)
    assert stamp == "2026-12-01T23:00:00.123456Z"


# two rebuilds at once -----------------------------------------------------------------------


def test_two_rebuilds_started_together_the_second_is_refused_at_once(launch):  # noqa: F811
    task, slow, _ = PHASES["talos"]
    first = launch(*task, slow=slow, sleep=600, ONECLUSTER_GRACE="0")
    second = launch(*task)
    runs = (first, second)
    wait_until(lambda: any(r.proc.poll() is not None for r in runs), "one of the runs to end")
    refused = next(r for r in runs if r.proc.poll() is not None)
    winner = next(r for r in runs if r is not refused)
    assert winner.proc.poll() is None  # refused while the winner still runs: at once
    assert refused.wait() == 1
    err = refused.stderr()
    assert "error: cluster homelab is being changed by another run: " in err
    assert f"(pid {winner.proc.pid} on {HOST}, started " in err
    assert "`invoke cluster.rebuild --jobs 4`" in err and "--break-lock --yes" in err
    assert "Traceback" not in err
    # the refused run changed nothing: one PKI bundle, one gen config, from the winner alone
    wait_until(lambda: winner.started(*slow), "the winner's first apply-config")
    assert len(winner.started("gen", "secrets")) == 1
    assert len(winner.started("gen", "config")) == 1
    winner.interrupt(signal.SIGTERM)
    assert winner.wait() == 143
    for call in winner.fakes.started():
        assert not alive(call["pid"])
    assert not Path(lock_path("homelab")).exists()


# the Lease of a rebuild: taken once the run's own kubeconfig exists --------------------------


@dataclass(frozen=True, kw_only=True)
class Scripted(Component):
    """A step that runs a test's function (no tool)."""

    kind: ClassVar[str] = "test"
    action: Callable[[RunContext], None] = field(compare=False, repr=False)

    def run(self, ctx: RunContext) -> None:
        self.action(ctx)


def test_a_rebuild_takes_the_lease_once_its_kubeconfig_exists(fake_tools, monkeypatch):
    monkeypatch.setenv("ONECLUSTER_LEASE_RENEW", "0.05")
    seen: dict[str, object] = {}

    def fetch(ctx: RunContext) -> None:  # as talos/kubeconfig writes it into the work directory
        seen["before"] = dict(fake_tools.leases())
        Path(ctx.kubeconfig).write_text("apiVersion: v1\nkind: Config\n")

    def held(ctx: RunContext) -> None:
        me = f"{HOST}:{os.getpid()}"
        wait_until(
            lambda: fake_tools.leases().get(LEASE, {}).get("spec", {}).get("holderIdentity") == me,
            "the run to take its Lease",
        )
        version = fake_tools.leases()[LEASE]["metadata"]["resourceVersion"]
        wait_until(
            lambda: fake_tools.leases()[LEASE]["metadata"]["resourceVersion"] != version,
            "the Lease to be renewed",
        )
        seen["kubeconfig"] = ctx.kubeconfig

    steps = [
        Scripted(layer="talos", name="kubeconfig", action=fetch, fetches_configs=True),
        Scripted(layer="talos", name="health", needs=("talos/kubeconfig",), action=held),
    ]
    catalog = Catalog(components=lambda inv: steps, layers=("talos",))
    execute(catalog)
    assert seen["before"] == {}  # no kubeconfig yet: no Lease asked for
    lease = fake_tools.leases()[LEASE]
    assert "holderIdentity" not in lease["spec"]  # released at the end
    gets = [a for a in fake_tools.argvs("kubectl") if "get" in a]
    assert gets and all(a[:3] == ["kubectl", "--kubeconfig", seen["kubeconfig"]] for a in gets)


def test_the_real_kubectl_accepts_the_lease_commands(tmp_path):
    """Each Lease command fails only at the unreachable API server, never on a flag or verb."""
    real = shutil.which("kubectl", path=os.defpath + os.pathsep + "/usr/local/bin:/usr/bin")
    if real is None:
        pytest.skip("kubectl is not installed")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(UNREACHABLE)
    lease = ClusterLease("homelab", Holder.me(), Executor(), Kubectl(str(kubeconfig)))
    commands = [
        lease.get_command(),
        lease.write_command("create", lease.body()),
        lease.write_command("replace", lease.body(holding=False)),
    ]
    for command in commands:
        done = subprocess.run(
            [real, *command.args], input=command.stdin, capture_output=True, timeout=60,
            env={**os.environ, "HOME": str(tmp_path)}, check=False,
        )  # fmt: skip
        err = done.stderr.decode("utf-8", "replace")
        assert done.returncode != 0 and "127.0.0.1:1" in err, err
        assert not [p for p in PARSE_ERRORS if p in err], err


def test_a_rebuild_meeting_another_runs_lease_stops_before_its_next_step(fake_tools):
    lease_for(other()).try_acquire()  # a run from another machine holds the cluster
    ran: list[str] = []

    def fetch(ctx: RunContext) -> None:
        Path(ctx.kubeconfig).write_text("apiVersion: v1\nkind: Config\n")

    steps = [
        Scripted(layer="talos", name="kubeconfig", action=fetch, fetches_configs=True),
        Scripted(
            layer="talos", name="health", needs=("talos/kubeconfig",),
            action=lambda ctx: ran.append("health"),
        ),
    ]  # fmt: skip
    with pytest.raises(RunFailed) as err:
        execute(Catalog(components=lambda inv: steps, layers=("talos",)))
    text = str(err.value)
    assert text.startswith("cluster homelab is being changed by another run: ")
    assert "pid 4242 on elsewhere" in text and "resume with: " in text
    assert "--from" not in text
    assert ran == []
    assert fake_tools.leases()[LEASE]["spec"]["holderIdentity"] == "elsewhere:4242"  # untouched
