"""Talos: from maintenance-mode nodes to a healthy cluster, then safe rolling upgrades.

Each task runs its own few steps (the stored bundle, a talosconfig made from it, then the task's
own) through the engine's one run path, with the Talos files in the run's private workdir: a
task's talosconfig, made from the stored bundle, never overwrites the user's.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..engine import yamlio
from ..engine.cli import catalog_of, duration, file_to_write, new_directory, onecluster_task
from ..engine.command import Command
from ..engine.components import Component
from ..engine.context import RunContext, user_kubeconfig, user_talosconfig
from ..engine.errors import ConfirmationRequired, OneclusterError
from ..engine.execute import execute
from ..engine.inventory import Inventory, Node
from ..engine.lock import BREAK_LOCK_HELP, LOCK_HELP
from ..engine.output import echo
from . import machineconfig, talosctl, upgrade
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
    force: bool = False,
) -> None:
    """Run a task's own steps through the engine (needs outside them are taken as in place).

    The run holds the cluster's lock unless ``lock=False`` (a task that only reads). ``force``:
    steps that leave alone what is in place (a node running its rendered config) apply anyway.
    """
    execute(
        catalog_of(c).only(steps), cluster=cluster, dry_run=dry_run, jobs=jobs,
        options=(options or TalosOptions(),), break_lock=break_lock, yes=yes, lock=lock,
        force=force,
    )  # fmt: skip


@onecluster_task(
    help=dict(
        out="also write the node configs and talosconfig to this directory (they hold secrets)",
        new_pki="generate a new secrets bundle even for a bootstrapped cluster (needs --yes)",
        yes="confirm --new-pki or --break-lock",
        break_lock=BREAK_LOCK_HELP,
    ),
    checks=dict(out=new_directory),
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
        force="apply even to a node that runs its rendered config already (default: left alone)",
        **LOCK_HELP,
    )
)  # fmt: skip
def apply(
    c, cluster=None, dry_run=False, jobs=4, node=None, insecure=False, break_lock=False, yes=False,
    force=False,
):  # fmt: skip
    """Apply the machine configs: --insecure to maintenance-mode nodes, authenticated otherwise.

    The configs are rendered first, in the run's private workdir, from the stored bundle; a node
    that runs its rendered config already is left alone (--force applies anyway).
    """

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
        force=force,
    )


@onecluster_task(help=LOCK_HELP)
def bootstrap(c, cluster=None, dry_run=False, break_lock=False, yes=False):
    """Bootstrap etcd on the first control plane, once (reports and stops if already done)."""
    _run(
        c,
        lambda inv: with_talosconfig(step("bootstrap", bootstrap_commands, bootstrap_action)),
        cluster=cluster, dry_run=dry_run, break_lock=break_lock, yes=yes,
    )  # fmt: skip


@onecluster_task(
    help=dict(output="write here instead of $KUBECONFIG or ~/.kube/config"),
    checks=dict(output=file_to_write),
)
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
    return talosctl.config_endpoints(ctx.talosconfig, ctx.inventory)


def replace_context(target: Path, generated: str) -> list[str]:
    """Put the contexts of ``generated`` into the talosconfig ``target``, replacing same-named ones.

    ``talosctl config merge`` renames a context that exists already (``homelab-1``,
    ``homelab-2``, ...: ``pkg/machinery/client/config/config.go``, ``Config.Merge``), so every
    export would add one. Here the cluster's context is replaced, every other context is kept,
    the current context becomes the cluster's, and the file is written 0600 in one rename.
    Returns the names of the contexts replaced.
    """
    new = yamlio.load(generated) or {}
    try:
        old = (yamlio.load(target.read_text()) if target.exists() else None) or {}
    except yamlio.YAMLError as exc:
        old = exc
    if not isinstance(old, dict) or not isinstance(old.get("contexts") or {}, dict):
        raise OneclusterError(
            f"{target} is not a talosconfig (a YAML mapping with `contexts`): nothing was "
            "changed. Move it away, or write the talosconfig elsewhere with --output PATH."
        )
    contexts = dict(old.get("contexts") or {})
    replaced = sorted(name for name in new.get("contexts") or {} if name in contexts)
    contexts.update(new.get("contexts") or {})
    merged = {**old, "context": new.get("context") or old.get("context"), "contexts": contexts}
    tmp = target.with_name(f".{target.name}.onecluster-tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(yamlio.dump(merged))
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return replaced


def _export_talosconfig_action(ctx: RunContext) -> None:
    target = Path(str(ctx.option(TalosOptions).talosconfig_target))
    for cmd in _export_talosconfig(ctx):
        ctx.run(cmd, prefix="[talos/export-talosconfig] $ ")
    replaced = replace_context(target, Path(ctx.talosconfig).read_text())
    what = f"replaced context {', '.join(replaced)}" if replaced else "added the context"
    echo(f"[talos/export-talosconfig] {what} of cluster {ctx.inventory.name} in {target}")


def _export_talosconfig_dry(ctx: RunContext) -> None:
    for cmd in _export_talosconfig(ctx):
        ctx.run(cmd, prefix="[talos/export-talosconfig] $ ")
    target = ctx.option(TalosOptions).talosconfig_target
    echo(
        f"# put context {ctx.inventory.name} of {ctx.talosconfig} into {target}, replacing a "
        "context of that name (other contexts are kept)"
    )


@onecluster_task(
    help=dict(output="write here instead of $TALOSCONFIG or ~/.talos/config"),
    checks=dict(output=file_to_write),
)
def talosconfig(c, cluster=None, dry_run=False, output=None):
    """Generate the admin talosconfig and put its context into yours (or --output PATH)."""
    target = output or user_talosconfig()
    if not dry_run:
        Path(target).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    export = step(
        "export-talosconfig", _export_talosconfig, _export_talosconfig_action,
        dry_action=_export_talosconfig_dry,
    )  # fmt: skip
    _run(
        c,
        lambda inv: with_talosconfig(export),
        cluster=cluster, dry_run=dry_run, options=TalosOptions(talosconfig_target=target),
        lock=False,  # made from the stored bundle; writes only the user's own talosconfig
    )  # fmt: skip


@onecluster_task(
    help=dict(timeout=f"how long to wait (default {HEALTH_TIMEOUT})"), checks=dict(timeout=duration)
)
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
                summary=(
                    f"upgrade {', '.join(n.name for n in nodes)} one at a time: drained, "
                    "snapshotted (control planes), version checked, gated"
                ),
                needs=("talos/kubeconfig",),
                dry_action=lambda ctx: upgrade.print_plan(ctx, nodes, timeout),
            ),
        )

    return steps


@onecluster_task(
    help=dict(
        node="upgrade this node only",
        timeout="per-node limit for the drain, the upgrade and each gate (default 15m)",
        snapshot_dir="keep the etcd snapshots here (0600 files; default: the private workdir, "
        "removed when the run ends)",
        **LOCK_HELP,
    ),
    checks=dict(timeout=duration, snapshot_dir=new_directory),
)  # fmt: skip
def upgrade_(
    c, cluster=None, dry_run=False, node=None, timeout="15m", snapshot_dir=None, break_lock=False,
    yes=False,
):  # fmt: skip
    """Upgrade Talos one node at a time: drain, snapshot, upgrade, check version and health."""
    options = TalosOptions(timeout=timeout, snapshot_dir=snapshot_dir)
    _run(c, upgrade_steps(node, timeout), cluster=cluster, dry_run=dry_run, options=options,
         break_lock=break_lock, yes=yes)  # fmt: skip


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


def user_volume_labels(inv: Inventory) -> list[str]:
    """The wipe labels (``u-<name>``) of the user volumes the Talos patches declare."""
    docs = [
        d for text in machineconfig.rendered_patches(inv).values() for d in yamlio.documents(text)
    ]
    return [
        f"u-{d['name']}"
        for d in docs
        if isinstance(d, dict) and d.get("kind") == "UserVolumeConfig" and d.get("name")
    ]


@onecluster_task(
    help=dict(
        node="reset this node only (gracefully: it leaves etcd first)",
        yes="confirm: wipes the nodes' STATE and EPHEMERAL partitions (and --break-lock)",
        wipe_volumes="also wipe the user volumes (u-longhorn: every Longhorn replica on the node)",
        break_lock=BREAK_LOCK_HELP,
    )
)  # fmt: skip
def reset(
    c, cluster=None, dry_run=False, node=None, yes=False, wipe_volumes=False, break_lock=False
):
    """Wipe the nodes back to maintenance mode so cluster.rebuild can start over (needs --yes)."""
    if not (yes or dry_run):
        also = " and the user volumes (the Longhorn data)" if wipe_volumes else ""
        raise ConfirmationRequired(
            f"talos.reset wipes the nodes' configuration and data (STATE and EPHEMERAL){also} "
            "and reboots them into maintenance mode. Add --yes to do it (--dry-run to see how)."
        )

    def steps(inv: Inventory) -> list[Component]:
        nodes = reset_order(inv, node)  # an unknown --node is an error before any step runs
        volumes = user_volume_labels(inv) if wipe_volumes else []

        def build(ctx: RunContext) -> list[Command]:
            return [
                talosctl.reset(ctx.talosconfig, n, graceful=bool(node), volumes=volumes)
                for n in nodes
            ]

        def run(ctx: RunContext) -> None:  # the same for a run and a dry-run (which prints)
            for cmd in build(ctx):
                ctx.run(cmd, prefix="[talos/reset] $ ")
            _say_what_reset_leaves(ctx)

        return with_talosconfig(step("reset", build, run, dry_action=run))

    _run(
        c, steps, cluster=cluster, dry_run=dry_run, options=TalosOptions(wipe_volumes=wipe_volumes),
        break_lock=break_lock, yes=yes,
    )  # fmt: skip


def _say_what_reset_leaves(ctx: RunContext) -> None:
    labels = ", ".join(user_volume_labels(ctx.inventory)) or "none declared"
    if ctx.option(TalosOptions).wipe_volumes:
        echo(
            f"[talos/reset] the user volumes ({labels}) are wiped too: their Longhorn data is gone"
        )
    else:
        echo(
            f"[talos/reset] left untouched: the user volumes ({labels}; Longhorn's replicas under "
            "/var/mnt/longhorn) and every disk that is not the system disk. A rebuild's Longhorn "
            "finds the old replicas there; add --wipe-volumes --yes to wipe them too."
        )


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
