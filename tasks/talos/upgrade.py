"""Rolling Talos upgrades: one node at a time, with health and Longhorn gates between nodes.

Before the first node and after every node the cluster must be healthy (``talosctl health``), the
upgraded node Ready, and every attached Longhorn volume ``healthy`` again: upgrading the next node
while a volume is still degraded is a known way to lose data. The first failure stops the run, so
at most one node (and so at most one control plane) is ever down.
"""

from __future__ import annotations

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

LONGHORN_NAMESPACE = "longhorn-system"


def upgrade_order(inv: Inventory, only: str | None = None) -> list[Node]:
    """Control planes first, one at a time, then workers; or just the node named ``only``."""
    if only:
        return [inv.node(only)]
    return [*inv.control_planes, *inv.workers]


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


def longhorn_volumes(ctx: RunContext) -> Command:
    """The read-only query of every Longhorn volume."""
    return ctx.kubectl("get", "volumes.longhorn.io", "-n", LONGHORN_NAMESPACE, "-o", "json")


def node_ready(ctx: RunContext, node: Node, timeout: str) -> Command:
    """Wait for the Kubernetes node to report Ready."""
    return ctx.kubectl("wait", "--for=condition=Ready", f"node/{node.name}", f"--timeout={timeout}")


def _longhorn_problems(ctx: RunContext) -> list[str]:
    try:
        result = ctx.executor.query(longhorn_volumes(ctx))
    except CommandError as exc:
        if "doesn't have a resource type" in exc.stderr:
            return []  # Longhorn is not installed yet: there are no volumes to protect
        return [f"kubectl failed: {exc}"]
    return unhealthy_volumes(result.stdout)


def gate_commands(ctx: RunContext, node: Node | None, timeout: str) -> list[Command]:
    """The checks run before the next node: that node Ready, the cluster, the Longhorn volumes."""
    cmds = [node_ready(ctx, node, timeout)] if node is not None else []
    cmds.append(talosctl.health(ctx.talosconfig, ctx.inventory, timeout))
    cmds.append(longhorn_volumes(ctx))
    return cmds


def plan(ctx: RunContext, nodes: list[Node], timeout: str) -> list[Command]:
    """Every command of the rolling upgrade, in order (what ``--dry-run`` prints)."""
    cmds = gate_commands(ctx, None, timeout)
    for node in nodes:
        cmds.append(talosctl.upgrade(ctx.talosconfig, ctx.inventory, node, timeout))
        cmds += gate_commands(ctx, node, timeout)
    return cmds


def _gate(ctx: RunContext, node: Node | None, timeout: str, prefix: str) -> None:
    where = f"after upgrading {node.name}" if node else "before the first upgrade"
    *waits, _ = gate_commands(ctx, node, timeout)
    for cmd in waits:
        try:
            ctx.run(cmd, prefix=prefix)
        except OneclusterError as exc:
            raise GateError(f"{where}: {exc}\nstopped: no further node was touched") from None
    echo(f"{prefix}waiting for every attached Longhorn volume to be healthy")
    opts = ctx.option(TalosOptions)
    interval = 10.0 if opts.poll_interval is None else opts.poll_interval
    bad = poll(lambda: _longhorn_problems(ctx), parse_duration(timeout), interval)
    if bad:
        raise GateError(
            f"{where}: Longhorn volumes not healthy within {timeout}: {', '.join(bad)}\n"
            "stopped: no further node was touched (wait for the rebuilds, then re-run with --node)"
        )


def rolling_upgrade(ctx: RunContext, nodes: list[Node], timeout: str) -> None:
    """Upgrade ``nodes`` one by one, gated before and between them; stop at the first failure."""
    prefix = "[talos/upgrade] $ "
    _gate(ctx, None, timeout, prefix)
    for i, node in enumerate(nodes, 1):
        echo(f"[talos/upgrade] node {i}/{len(nodes)}: {node.name} ({node.role}, {node.ip})")
        try:
            ctx.run(talosctl.upgrade(ctx.talosconfig, ctx.inventory, node, timeout), prefix=prefix)
        except OneclusterError as exc:
            raise OneclusterError(
                f"upgrade of {node.name} failed: {exc}\nstopped: no further node was touched"
            ) from None
        _gate(ctx, node, timeout, prefix)
    echo(f"[talos/upgrade] {len(nodes)} node(s) upgraded and healthy")
