"""Talos: from maintenance-mode nodes to a healthy cluster, then safe rolling upgrades.

Each task runs its own few steps (the stored bundle, a talosconfig made from it, then the task's
own) through the engine's one run path, with the Talos files in the run's private workdir: a
task's talosconfig, made from the stored bundle, never overwrites the user's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..engine.cli import catalog_of, onecluster_task
from ..engine.command import Command
from ..engine.components import Component
from ..engine.context import RunContext, user_kubeconfig, user_talosconfig
from ..engine.errors import ConfirmationRequired
from ..engine.execute import execute
from ..engine.inventory import Inventory, Node
from ..engine.lock import BREAK_LOCK_HELP, LOCK_HELP
from ..engine.output import echo
from ..engine.poll import parse_duration
from . import talosctl, upgrade
from .options import HEALTH_TIMEOUT, TalosOptions
from .steps import (
    TalosGate,
    bootstrap_action,
    bootstrap_commands,
    components,
    health_commands,
    kubeconfig_commands,
    step,
    with_talosconfig,
)


def _run(
    c: Any,
    steps: Callable[[Inventory], Sequence[Component]],
    *,
    cluster: str | None,
    dry_run: bool,
    options: TalosOptions | None = None,
    jobs: int = 4,
    break_lock: bool = False,
    yes: bool = False,
    lock: bool = True,
) -> None:
    """Run a task's own steps through the engine (needs outside them are taken as in place).

    The run holds the cluster's lock unless ``lock=False`` (a task that only reads).
    """
    execute(
        catalog_of(c).only(steps), cluster=cluster, dry_run=dry_run, jobs=jobs,
        options=(options or TalosOptions(),), break_lock=break_lock, yes=yes, lock=lock,
    )  # fmt: skip


@onecluster_task(
    help=dict(
        out="also write the node configs and talosconfig to this directory (they hold secrets)",
        new_pki="generate a new secrets bundle even for a bootstrapped cluster (needs --yes)",
        yes="confirm --new-pki or --break-lock",
        break_lock=BREAK_LOCK_HELP,
    )
)  # fmt: skip
def genconfig(c, cluster=None, dry_run=False, out=None, new_pki=False, yes=False, break_lock=False):
    """Render and validate every node's machine config (to a directory only with --out)."""
    if out:
        echo(
            f"WARNING: {out} {'would hold' if dry_run else 'will hold'} the machine configs and "
            "talosconfig: they contain the cluster's private keys. Keep the directory private "
            "and delete it when done.",
            err=True,
        )
    _run(
        c,
        lambda inv: [s for s in components(inv) if s.name in ("secrets-bundle", "genconfig")],
        cluster=cluster, dry_run=dry_run, options=TalosOptions(out=out, new_pki=new_pki, yes=yes),
        break_lock=break_lock, yes=yes,
    )  # fmt: skip


@onecluster_task(
    help=dict(
        node="apply to this node only (default: every node, in parallel)",
        insecure="treat the nodes as in maintenance mode (default: detected per node)",
        **LOCK_HELP,
    )
)  # fmt: skip
def apply(
    c, cluster=None, dry_run=False, jobs=4, node=None, insecure=False, break_lock=False, yes=False
):
    """Apply the machine configs: --insecure to maintenance-mode nodes, authenticated otherwise."""

    def steps(inv: Inventory) -> list[Component]:
        wanted = {inv.node(node).name} if node else {n.name for n in inv.nodes}
        keep = {"secrets-bundle", "genconfig", *(f"apply-{n}" for n in wanted)}
        return [s for s in components(inv) if s.name in keep]

    _run(
        c,
        steps,
        cluster=cluster,
        dry_run=dry_run,
        jobs=jobs,
        options=TalosOptions(insecure=insecure),
        break_lock=break_lock,
        yes=yes,
    )


@onecluster_task(help=LOCK_HELP)
def bootstrap(c, cluster=None, dry_run=False, break_lock=False, yes=False):
    """Bootstrap etcd on the first control plane, once (reports and stops if already done)."""
    _run(
        c,
        lambda inv: with_talosconfig(step("bootstrap", bootstrap_commands, bootstrap_action)),
        cluster=cluster, dry_run=dry_run, break_lock=break_lock, yes=yes,
    )  # fmt: skip


@onecluster_task(help=dict(output="write here instead of $KUBECONFIG or ~/.kube/config"))
def kubeconfig(c, cluster=None, dry_run=False, output=None):
    """Fetch the admin kubeconfig and merge it into your kubeconfig (or --output PATH)."""
    target = output or user_kubeconfig()
    _run(
        c,
        lambda inv: with_talosconfig(step("kubeconfig", kubeconfig_commands)),
        cluster=cluster, dry_run=dry_run, options=TalosOptions(kubeconfig_target=target),
        lock=False,  # reads the cluster; writes only the user's own kubeconfig
    )  # fmt: skip


def _export_talosconfig(ctx: RunContext) -> list[Command]:
    target = str(ctx.option(TalosOptions).talosconfig_target)
    return [
        *talosctl.config_endpoints(ctx.talosconfig, ctx.inventory),
        talosctl.config_merge(target, ctx.talosconfig),
    ]


@onecluster_task(help=dict(output="write here instead of $TALOSCONFIG or ~/.talos/config"))
def talosconfig(c, cluster=None, dry_run=False, output=None):
    """Generate the admin talosconfig and merge it into yours (or --output PATH)."""
    target = output or user_talosconfig()
    if not dry_run:
        Path(target).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    _run(
        c,
        lambda inv: with_talosconfig(step("export-talosconfig", _export_talosconfig)),
        cluster=cluster, dry_run=dry_run, options=TalosOptions(talosconfig_target=target),
        lock=False,  # made from the stored bundle; writes only the user's own talosconfig
    )  # fmt: skip


@onecluster_task(help=dict(timeout=f"how long to wait (default {HEALTH_TIMEOUT})"))
def health(c, cluster=None, dry_run=False, timeout=HEALTH_TIMEOUT):
    """Wait until every control plane and worker in the inventory is healthy."""
    _run(
        c,
        lambda inv: with_talosconfig(step("health", health_commands, kind=TalosGate)),
        cluster=cluster, dry_run=dry_run, options=TalosOptions(timeout=timeout), lock=False,
    )  # fmt: skip


def upgrade_steps(only: str | None, timeout: str) -> Callable[[Inventory], list[Component]]:
    def steps(inv: Inventory) -> list[Component]:
        nodes = upgrade.upgrade_order(inv, only)
        return with_talosconfig(
            step("kubeconfig", kubeconfig_commands),
            step(
                "upgrade",
                lambda ctx: upgrade.plan(ctx, nodes, timeout),
                lambda ctx: upgrade.rolling_upgrade(ctx, nodes, timeout),
                summary=f"upgrade {', '.join(n.name for n in nodes)} one at a time, gated",
                needs=("talos/kubeconfig",),
            ),
        )

    return steps


@onecluster_task(
    help=dict(
        node="upgrade this node only",
        timeout="per-node limit for the upgrade and for each gate (default 15m)",
        **LOCK_HELP,
    )
)  # fmt: skip
def upgrade_(c, cluster=None, dry_run=False, node=None, timeout="15m", break_lock=False, yes=False):
    """Upgrade Talos one node at a time, waiting for node, cluster and Longhorn health between."""
    parse_duration(timeout, "--timeout")
    _run(c, upgrade_steps(node, timeout), cluster=cluster, dry_run=dry_run,
              options=TalosOptions(timeout=timeout), break_lock=break_lock, yes=yes)  # fmt: skip


def _upgrade_k8s_commands(ctx: RunContext) -> list[Command]:
    return [
        talosctl.upgrade_k8s(ctx.talosconfig, ctx.inventory, dry_run=True),
        talosctl.upgrade_k8s(ctx.talosconfig, ctx.inventory, dry_run=False),
    ]


@onecluster_task(help=LOCK_HELP)
def upgrade_k8s(c, cluster=None, dry_run=False, break_lock=False, yes=False):
    """Upgrade Kubernetes to the inventory's version (talosctl's own dry-run runs first)."""
    _run(
        c,
        lambda inv: with_talosconfig(step("upgrade-k8s", _upgrade_k8s_commands)),
        cluster=cluster, dry_run=dry_run, break_lock=break_lock, yes=yes,
    )  # fmt: skip


def reset_order(inv: Inventory, only: str | None) -> list[Node]:
    """Workers first, then control planes (the first control plane last)."""
    if only:
        return [inv.node(only)]
    return [*inv.workers, *reversed(inv.control_planes)]


@onecluster_task(
    help=dict(
        node="reset this node only (gracefully: it leaves etcd first)",
        yes="confirm: wipes the nodes' STATE and EPHEMERAL partitions (and --break-lock)",
        break_lock=BREAK_LOCK_HELP,
    )
)  # fmt: skip
def reset(c, cluster=None, dry_run=False, node=None, yes=False, break_lock=False):
    """Wipe the nodes back to maintenance mode so cluster.rebuild can start over (needs --yes)."""
    if not (yes or dry_run):
        raise ConfirmationRequired(
            "talos.reset wipes the nodes' configuration and data (STATE and EPHEMERAL) and "
            "reboots them into maintenance mode. Add --yes to do it (--dry-run to see how)."
        )

    def build(ctx: RunContext) -> list[Command]:
        nodes = reset_order(ctx.inventory, node)
        return [talosctl.reset(ctx.talosconfig, n, graceful=bool(node)) for n in nodes]

    _run(
        c, lambda inv: with_talosconfig(step("reset", build)), cluster=cluster, dry_run=dry_run,
        break_lock=break_lock, yes=yes,
    )  # fmt: skip


TASKS = (
    (genconfig, "genconfig"),
    (apply, "apply"),
    (bootstrap, "bootstrap"),
    (kubeconfig, "kubeconfig"),
    (talosconfig, "talosconfig"),
    (health, "health"),
    (upgrade_, "upgrade"),
    (upgrade_k8s, "upgrade-k8s"),
    (reset, "reset"),
)
