"""Rolling Talos upgrades: one node at a time, drained first, proven upgraded and healthy after.

Talos's own drain during ``talosctl upgrade`` gives up after five minutes and only logs the
evictions a PodDisruptionBudget refused before it reboots anyway (siderolabs/talos#9882). So each
node goes through this sequence, and the first step that fails stops the whole run, leaving the
node cordoned and no further node touched (at most one node, so one control plane, is ever down):

1. ``kubectl drain`` with a bounded ``--timeout``: evictions honour PodDisruptionBudgets (no
   ``--disable-eviction``), and a drain that cannot finish exits non-zero before anything reboots;
2. on a control plane, an etcd snapshot (``talosctl etcd snapshot``) into the run's private
   workdir, or ``--snapshot-dir`` (kept, 0600 files in a 0700 directory);
3. ``talosctl upgrade --wait``;
4. the node reports the target Talos version: ``--wait`` only proves the node rebooted, and a node
   whose new image fails to boot comes back on the old one, which is a failure, not a success;
5. ``kubectl uncordon``, the node Ready, ``talosctl health``, and every Longhorn volume healthy
   with its replicas on distinct nodes (the chart's soft anti-affinity lets two replicas share a
   node while the volume still says ``healthy``); only then the next node.

The same gate (health, Longhorn) runs once before the first node.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..engine.command import Command
from ..engine.errors import CommandError, GateError, OneclusterError
from ..engine.inventory import Inventory, Node
from ..engine.output import echo
from ..engine.poll import parse_duration, poll
from ..verify import longhorn
from . import talosctl
from .options import TalosOptions

if TYPE_CHECKING:
    from ..engine.context import RunContext

PREFIX = "[talos/upgrade] "
STAMP_KEY = "talos.upgrade-stamp"
NOT_INSTALLED = "doesn't have a resource type"


def upgrade_order(inv: Inventory, only: str | None = None) -> list[Node]:
    """Control planes first, one at a time, then workers; or just the node named ``only``."""
    if only:
        return [inv.node(only)]
    return [*inv.control_planes, *inv.workers]


# Commands --------------------------------------------------------------------------------------


def drain(ctx: RunContext, node: Node, timeout: str) -> Command:
    """Cordon and drain ``node``, honouring PodDisruptionBudgets; non-zero after ``timeout``."""
    return ctx.kubectl(
        "drain", node.name, "--ignore-daemonsets", "--delete-emptydir-data", f"--timeout={timeout}"
    )


def uncordon(ctx: RunContext, node: Node) -> Command:
    """Let pods be scheduled on ``node`` again."""
    return ctx.kubectl("uncordon", node.name)


def node_ready(ctx: RunContext, node: Node, timeout: str) -> Command:
    """Wait for the Kubernetes node to report Ready."""
    return ctx.kubectl("wait", "--for=condition=Ready", f"node/{node.name}", f"--timeout={timeout}")


def longhorn_volumes(ctx: RunContext) -> Command:
    """The read-only query of every Longhorn volume."""
    return longhorn.list_command(ctx.kubectl, "volumes")


def longhorn_replicas(ctx: RunContext) -> Command:
    """The read-only query of every Longhorn replica (which node holds which volume's copy)."""
    return longhorn.list_command(ctx.kubectl, "replicas")


def snapshot_path(ctx: RunContext, node: Node) -> Path:
    """Where ``node``'s etcd snapshot goes: ``--snapshot-dir`` or the private workdir."""
    stamp = ctx.state.setdefault(STAMP_KEY, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
    folder = ctx.option(TalosOptions).snapshot_dir
    base = Path(folder) if folder else ctx.workdir
    return base / f"etcd-{ctx.inventory.name}-{node.name}-{stamp}.db"


def _gate_plan(ctx: RunContext, node: Node | None, timeout: str) -> list[tuple[bool, Command]]:
    cmds = [(False, node_ready(ctx, node, timeout))] if node is not None else []
    cmds.append((False, talosctl.health(ctx.talosconfig, ctx.inventory, timeout)))
    cmds += [(True, longhorn_volumes(ctx)), (True, longhorn_replicas(ctx))]
    return cmds


def plan_steps(ctx: RunContext, nodes: list[Node], timeout: str) -> list[tuple[bool, Command]]:
    """Every command of the rolling upgrade in order, each marked True when a read-only probe."""
    tc, inv = ctx.talosconfig, ctx.inventory
    cmds = _gate_plan(ctx, None, timeout)
    for node in nodes:
        cmds.append((False, drain(ctx, node, timeout)))
        if node.role == "controlplane":
            cmds.append((False, talosctl.etcd_snapshot(tc, node, str(snapshot_path(ctx, node)))))
        cmds.append((False, talosctl.upgrade(tc, inv, node, timeout)))
        cmds.append((True, talosctl.version(tc, node)))
        cmds.append((False, uncordon(ctx, node)))
        cmds += _gate_plan(ctx, node, timeout)
    return cmds


def plan(ctx: RunContext, nodes: list[Node], timeout: str) -> list[Command]:
    """Every command of the rolling upgrade, in order (what plans show)."""
    return [cmd for _, cmd in plan_steps(ctx, nodes, timeout)]


def print_plan(ctx: RunContext, nodes: list[Node], timeout: str) -> None:
    """``--dry-run``: every command, the read-only probes named as such."""
    for probe, cmd in plan_steps(ctx, nodes, timeout):
        echo(f"{PREFIX}{'(read-only probe) ' if probe else ''}$ {cmd.display()}")


# What the answers mean -------------------------------------------------------------------------


def server_versions(stdout: str) -> list[str]:
    """The ``Tag:`` of every node in ``talosctl version`` output (the block after ``Server:``)."""
    _, _, server = stdout.partition("Server:")
    return [
        line.split(":", 1)[1].strip()
        for line in server.splitlines()
        if line.strip().startswith("Tag:")
    ]


def unhealthy_volumes(payload: str) -> list[str]:
    """Longhorn volumes (``kubectl get volumes.longhorn.io -o json``) that are not healthy.

    Attached volumes must report robustness ``healthy``; detached volumes report ``unknown`` and
    are fine; a ``faulted`` volume is never fine (the rule is :attr:`longhorn.Volume.healthy`).
    """
    try:
        found = longhorn.read_volumes(payload)
    except ValueError:
        return ["could not read Longhorn volumes (kubectl printed no JSON list)"]
    return [
        f"{v.name} ({v.state or 'no state'}, {v.robustness or 'no robustness'})"
        for v in found
        if not v.healthy
    ]


def colocated_replicas(payload: str) -> list[str]:
    """Volumes whose replicas (``kubectl get replicas.longhorn.io -o json``) share a node."""
    try:
        found = longhorn.read_replicas(payload)
    except ValueError:
        return ["could not read Longhorn replicas (kubectl printed no JSON list)"]
    return [
        f"{volume} (several replicas on {', '.join(nodes)})"
        for volume, nodes in longhorn.colocated(found).items()
    ]


def _query_longhorn(ctx: RunContext, cmd: Command) -> str | None:
    """kubectl's output; None when Longhorn is not installed (no volumes to protect)."""
    try:
        return ctx.executor.query(cmd).stdout
    except CommandError as exc:
        if NOT_INSTALLED in exc.stderr:
            return None
        raise


def _longhorn_problems(ctx: RunContext) -> list[str]:
    try:
        volumes = _query_longhorn(ctx, longhorn_volumes(ctx))
        if volumes is None:
            return []
        replicas = _query_longhorn(ctx, longhorn_replicas(ctx))
    except CommandError as exc:
        return [f"kubectl failed: {exc}"]
    return unhealthy_volumes(volumes) + colocated_replicas(replicas or "")


# The run ---------------------------------------------------------------------------------------


def _stopped(node: Node, state: str) -> str:
    return f"stopped: {node.name} {state}; no further node was touched"


def _gate(ctx: RunContext, node: Node | None, timeout: str) -> None:
    where = f"after upgrading {node.name}" if node else "before the first upgrade"
    waits = [cmd for probe, cmd in _gate_plan(ctx, node, timeout) if not probe]
    for cmd in waits:
        try:
            ctx.run(cmd, prefix=f"{PREFIX}$ ")
        except OneclusterError as exc:
            raise GateError(f"{where}: {exc}\nstopped: no further node was touched") from None
    echo(f"{PREFIX}waiting for every Longhorn volume to be healthy, its replicas on distinct nodes")
    opts = ctx.option(TalosOptions)
    interval = 10.0 if opts.poll_interval is None else opts.poll_interval
    bad = poll(lambda: _longhorn_problems(ctx), parse_duration(timeout), interval)
    if bad:
        raise GateError(
            f"{where}: Longhorn volumes not safe within {timeout}: {', '.join(bad)}\n"
            "stopped: no further node was touched (wait for the rebuilds, or move a replica that "
            "shares a node, then re-run with --node)"
        )


def _drain(ctx: RunContext, node: Node, timeout: str) -> None:
    try:
        ctx.run(drain(ctx, node, timeout), prefix=f"{PREFIX}$ ")
    except OneclusterError as exc:
        raise GateError(
            f"drain of {node.name} did not finish within {timeout}: {exc}\n"
            f"{_stopped(node, 'is cordoned and was not rebooted')}. Find what blocks the "
            "evictions (often a PodDisruptionBudget: `kubectl get pdb -A`), then run "
            f"`invoke talos.upgrade --node {node.name}` again, or `kubectl uncordon {node.name}` "
            "to give up."
        ) from None


def _snapshot(ctx: RunContext, node: Node) -> Path:
    path = snapshot_path(ctx, node)
    if ctx.option(TalosOptions).snapshot_dir:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        ctx.run(talosctl.etcd_snapshot(ctx.talosconfig, node, str(path)), prefix=f"{PREFIX}$ ")
        if not path.is_file() or path.stat().st_size == 0:
            raise OneclusterError(f"talosctl wrote no snapshot to {path}")
        path.chmod(0o600)
    except OneclusterError as exc:
        raise GateError(
            f"etcd snapshot of {node.name} failed: {exc}\n"
            f"{_stopped(node, 'is drained and cordoned, and was not rebooted')}."
        ) from None
    return path


def _upgrade(ctx: RunContext, node: Node, timeout: str) -> None:
    cmd = talosctl.upgrade(ctx.talosconfig, ctx.inventory, node, timeout)
    try:
        ctx.run(cmd, prefix=f"{PREFIX}$ ")
    except OneclusterError as exc:
        raise OneclusterError(
            f"upgrade of {node.name} failed: {exc}\n{_stopped(node, 'is cordoned')}"
        ) from None


def _check_version(ctx: RunContext, node: Node, timeout: str) -> None:
    """The node answers with the inventory's Talos version, or the run stops."""
    want = ctx.inventory.cluster.talos_version
    answers: list[str] = []

    def no_answer() -> list[str]:
        try:
            out = ctx.executor.query(talosctl.version(ctx.talosconfig, node)).stdout
        except CommandError as exc:
            return [str(exc)]
        answers[:] = server_versions(out)
        return [] if answers else ["talosctl version printed no server Tag"]

    opts = ctx.option(TalosOptions)
    interval = 5.0 if opts.poll_interval is None else opts.poll_interval
    down = poll(no_answer, parse_duration(timeout), interval)
    if down:
        raise GateError(
            f"{node.name} did not report its Talos version within {timeout} after the upgrade: "
            f"{down[-1]}\n{_stopped(node, 'is cordoned')}"
        )
    if answers != [want]:
        raise GateError(
            f"{node.name} came back on Talos {', '.join(answers)}, not {want}: the new image did "
            "not boot and Talos fell back to the previous one. That is a failed upgrade.\n"
            f"{_stopped(node, 'is cordoned')}. Look at `talosctl dmesg --nodes {node.ip}` and "
            "the installer image (talos.schematic, cluster.talosVersion) before trying again."
        )
    echo(f"{PREFIX}{node.name} reports Talos {want}")


def rolling_upgrade(ctx: RunContext, nodes: list[Node], timeout: str) -> None:
    """Upgrade ``nodes`` one by one, each drained and proven upgraded; stop at the first failure."""
    _gate(ctx, None, timeout)
    for i, node in enumerate(nodes, 1):
        echo(f"{PREFIX}node {i}/{len(nodes)}: {node.name} ({node.role}, {node.ip})")
        _drain(ctx, node, timeout)
        if node.role == "controlplane":
            path = _snapshot(ctx, node)
            kept = (
                "kept"
                if ctx.option(TalosOptions).snapshot_dir
                else "in the private workdir, removed when the run ends; --snapshot-dir keeps it"
            )
            echo(f"{PREFIX}etcd snapshot of {node.name}: {path} ({kept})")
        _upgrade(ctx, node, timeout)
        _check_version(ctx, node, timeout)
        ctx.run(uncordon(ctx, node), prefix=f"{PREFIX}$ ")
        _gate(ctx, node, timeout)
    echo(f"{PREFIX}{len(nodes)} node(s) upgraded and healthy")
