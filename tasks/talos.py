"""Talos: from maintenance-mode nodes to a healthy cluster, then safe rolling upgrades."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from invoke import task

from .engine import machineconfig, secretsbundle, talosctl, upgrade
from .engine.command import Command, check_tools
from .engine.components import Component, TalosStep
from .engine.context import RunContext, run_context, user_kubeconfig, user_talosconfig
from .engine.deploy import help_for, layer_collection, user_errors
from .engine.errors import CommandError, ConfirmationRequired, GateError, OneclusterError
from .engine.graph import Graph
from .engine.inventory import Inventory, Node, load_inventory
from .engine.output import echo
from .engine.runner import RunFailed, Runner

HEALTH_TIMEOUT = "10m"


@dataclasses.dataclass(frozen=True, kw_only=True)
class BundleStep(TalosStep):
    """Load the Talos secrets bundle from the store (generating it only when allowed)."""

    generate: bool = True

    def run(self, ctx: RunContext) -> None:
        if ctx.dry_run:
            then = "generate one only if it holds none" if self.generate else "never generate one"
            echo(f"# read {secretsbundle.SECRET_NAME} from the secret store; {then}")
        super().run(ctx)

    def preflight(self, ctx: RunContext) -> list[str]:
        if ctx.dry_run:
            return []
        try:
            secretsbundle.check_new_pki(ctx)
        except ConfirmationRequired as exc:
            return [str(exc)]
        if ctx.options.get("new_pki") or secretsbundle.stored_bundle(ctx) is not None:
            return []
        problem = secretsbundle.missing_bundle_problem(ctx, generate=self.generate)
        return [problem] if problem else []


@dataclasses.dataclass(frozen=True, kw_only=True)
class TalosGate(TalosStep):
    """A Talos health gate (shown as a gate in plans)."""

    kind: ClassVar[str] = "gate"


# Step bodies -----------------------------------------------------------------------------------


def _bundle_commands(generate: bool) -> Callable[[RunContext], list[Command]]:
    def build(ctx: RunContext) -> list[Command]:
        # dry-runs never open Infisical; a store already in the run's state (tests) is consulted
        store = ctx.state.get("store")
        stored = store is not None and secretsbundle.SECRET_NAME in store.names()
        if not generate or (stored and not ctx.options.get("new_pki")):
            return []
        return [talosctl.gen_secrets(ctx.inventory, ctx.workdir / secretsbundle.FILE_NAME)]

    return build


def _bundle_action(generate: bool) -> Callable[[RunContext], None]:
    def action(ctx: RunContext) -> None:
        secretsbundle.ensure_bundle(ctx, generate=generate)

    return action


def _paths(ctx: RunContext) -> dict[str, Path]:
    wd = ctx.workdir
    # node patches get their own folder: a node may well be called "common"
    return {
        "patches": wd / "patches",
        "node_patches": wd / "patches" / "nodes",
        "nodes": wd / "nodes",
    }


def _genconfig_commands(ctx: RunContext) -> list[Command]:
    inv, wd, p = ctx.inventory, ctx.workdir, _paths(ctx)
    machineconfig.rendered_patches(inv)  # an unknown placeholder fails here, before talosctl
    cmds = [
        talosctl.gen_config(
            inv, wd / secretsbundle.FILE_NAME, wd,
            common=p["patches"] / "common.yaml", controlplane=p["patches"] / "controlplane.yaml",
        )
    ]  # fmt: skip
    for node in inv.nodes:
        out = p["nodes"] / f"{node.name}.yaml"
        patch = p["node_patches"] / out.name
        cmds.append(talosctl.patch_config(wd / f"{node.role}.yaml", patch, out))
        cmds.append(talosctl.validate_config(out))
    if ctx.options.get("out"):
        # an exported talosconfig should work as it is: point it at the control planes
        cmds += talosctl.config_endpoints(str(wd / "talosconfig"), inv)
    return cmds


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def _genconfig_action(ctx: RunContext) -> None:
    inv, wd, p = ctx.inventory, ctx.workdir, _paths(ctx)
    for d in p.values():
        d.mkdir(mode=0o700, exist_ok=True)
    for name, text in machineconfig.rendered_patches(inv).items():
        _write_private(p["patches"] / f"{name}.yaml", text)
    for node in inv.nodes:
        _write_private(p["node_patches"] / f"{node.name}.yaml", machineconfig.node_patch(inv, node))
    gen, *per_node = _genconfig_commands(ctx)
    prefix = "[talos/genconfig] $ "
    try:
        with secretsbundle.bundle_file(ctx):
            ctx.run(gen, prefix=prefix)
        for cmd in per_node:
            ctx.run(cmd, prefix=prefix)
    finally:
        # the role templates hold the PKI too; only the finished node configs are needed later
        for role in ("controlplane", "worker"):
            (wd / f"{role}.yaml").unlink(missing_ok=True)
    echo(f"[talos/genconfig] {len(inv.nodes)} node configs rendered and validated (metal)")
    if ctx.options.get("out"):
        _export_configs(ctx, Path(ctx.options["out"]))


def _export_configs(ctx: RunContext, out: Path) -> None:
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    out.chmod(0o700)
    sources = [*sorted(_paths(ctx)["nodes"].glob("*.yaml")), ctx.workdir / "talosconfig"]
    for src in sources:
        dest = out / src.name
        _write_private(dest, src.read_text())


def _in_maintenance(ctx: RunContext, node: Node) -> bool:
    try:
        ctx.executor.query(talosctl.maintenance_probe(node))
    except CommandError:
        return False
    return True


def _node_config(ctx: RunContext, node: Node) -> Path:
    return _paths(ctx)["nodes"] / f"{node.name}.yaml"


def _apply_commands(node: Node) -> Callable[[RunContext], list[Command]]:
    def build(ctx: RunContext) -> list[Command]:
        file = _node_config(ctx, node)
        apply = talosctl.apply_config(ctx.talosconfig, node, file, insecure=True)
        if ctx.options.get("insecure"):
            return [apply]
        # maintenance mode is detected at run time; a configured node gets the authenticated form
        return [talosctl.maintenance_probe(node), apply]

    return build


def _apply_action(node: Node) -> Callable[[RunContext], None]:
    def action(ctx: RunContext) -> None:
        insecure = bool(ctx.options.get("insecure")) or _in_maintenance(ctx, node)
        mode = "maintenance mode (--insecure)" if insecure else "configured (authenticated)"
        echo(f"[talos/apply-{node.name}] {node.name} is {mode}")
        cmd = talosctl.apply_config(
            ctx.talosconfig, node, _node_config(ctx, node), insecure=insecure
        )
        ctx.run(cmd, prefix=f"[talos/apply-{node.name}] $ ")

    return action


def _bootstrap_commands(ctx: RunContext) -> list[Command]:
    first = ctx.inventory.first_control_plane
    return [
        talosctl.version(ctx.talosconfig, first),
        talosctl.etcd_status(ctx.talosconfig, first),
        talosctl.bootstrap(ctx.talosconfig, first),
    ]


def _bootstrap_action(ctx: RunContext) -> None:
    inv = ctx.inventory
    first = inv.first_control_plane
    wait_api, etcd, boot = _bootstrap_commands(ctx)
    prefix = "[talos/bootstrap] "
    timeout = str(ctx.options.get("api_timeout", HEALTH_TIMEOUT))

    def api_down() -> list[str]:
        try:
            ctx.executor.query(wait_api)
        except CommandError as exc:
            return [str(exc)]
        return []

    echo(f"{prefix}waiting for the Talos API of {first.name} ({first.ip})")
    down = upgrade.poll(
        api_down, upgrade.parse_duration(timeout), float(ctx.options.get("poll_interval", 5.0))
    )
    if down:
        raise GateError(f"{first.name} did not answer within {timeout}: {down[-1]}")
    try:
        ctx.executor.query(etcd)
    except CommandError:
        pass
    else:
        echo(f"{prefix}etcd is already bootstrapped on {first.name}: nothing to do")
        return
    try:
        ctx.run(boot, prefix=f"{prefix}$ ")
    except CommandError as exc:
        # a bootstrapped etcd refuses a second bootstrap with AlreadyExists: that is success
        if "AlreadyExists" in exc.stderr:
            echo(f"{prefix}etcd is already bootstrapped on {first.name}: nothing to do")
            return
        raise
    if not inv.cluster.bootstrapped:
        echo(
            f"{prefix}etcd bootstrapped. Set cluster.bootstrapped: true in {inv.source} so a lost "
            "secrets bundle is never silently replaced."
        )


def _kubeconfig_commands(ctx: RunContext) -> list[Command]:
    target = str(ctx.options.get("kubeconfig_target") or ctx.kubeconfig)
    return [talosctl.kubeconfig(ctx.talosconfig, ctx.inventory.first_control_plane, target)]


def _health_commands(ctx: RunContext) -> list[Command]:
    timeout = str(ctx.options.get("timeout") or HEALTH_TIMEOUT)
    return [talosctl.health(ctx.talosconfig, ctx.inventory, timeout)]


def _talosconfig_commands(ctx: RunContext) -> list[Command]:
    wd = ctx.workdir
    return [
        talosctl.gen_config(
            ctx.inventory,
            wd / secretsbundle.FILE_NAME,
            Path(ctx.talosconfig),
            types=("talosconfig",),
        )
    ]


def _talosconfig_action(ctx: RunContext) -> None:
    with secretsbundle.bundle_file(ctx):
        for cmd in _talosconfig_commands(ctx):
            ctx.run(cmd, prefix="[talos/talosconfig] $ ")


# Components ------------------------------------------------------------------------------------


def _bundle(generate: bool) -> BundleStep:
    summary = "read the Talos secrets bundle from the secret store; " + (
        "`talosctl gen secrets` only when it holds none" if generate else "never generate one"
    )
    return BundleStep(
        layer="talos", name="secrets-bundle", build=_bundle_commands(generate),
        action=_bundle_action(generate), generate=generate, summary=summary,
    )  # fmt: skip


def _apply(node: Node) -> TalosStep:
    return TalosStep(
        layer="talos", name=f"apply-{node.name}", needs=("talos/genconfig",),
        build=_apply_commands(node), action=_apply_action(node),
        summary=f"apply {node.name}'s config ({node.role}, {node.ip}); --insecure in maintenance",
    )  # fmt: skip


def components(inv: Inventory) -> list[Component]:
    """Bundle, configs, every node's apply (in parallel), bootstrap, kubeconfig, health gate."""
    first = inv.first_control_plane
    applies = [_apply(n) for n in inv.nodes]
    return [
        _bundle(generate=True),
        TalosStep(
            layer="talos", name="genconfig", needs=("talos/secrets-bundle",),
            build=_genconfig_commands, action=_genconfig_action,
            summary="render the patches and every node's config into the 0700 workdir; validate",
        ),
        *applies,
        TalosStep(
            layer="talos", name="bootstrap", needs=(f"talos/apply-{first.name}",),
            build=_bootstrap_commands, action=_bootstrap_action,
            summary=f"bootstrap etcd once on {first.name} (does nothing when already bootstrapped)",
        ),
        TalosStep(
            layer="talos", name="kubeconfig", needs=("talos/bootstrap",),
            build=_kubeconfig_commands,
            summary="fetch the admin kubeconfig into the private workdir",
        ),
        TalosGate(
            layer="talos", name="health", needs=("talos/kubeconfig", *(a.id for a in applies)),
            build=_health_commands,
            summary="gate: every control plane and worker healthy, etcd and the API server up",
        ),
    ]  # fmt: skip


def _talosconfig_step() -> TalosStep:
    return TalosStep(
        layer="talos", name="talosconfig", needs=("talos/secrets-bundle",),
        build=_talosconfig_commands, action=_talosconfig_action,
        summary="generate a talosconfig from the bundle into the private workdir",
    )  # fmt: skip


def _with_talosconfig(*steps: Component) -> list[Component]:
    """The stored bundle, a talosconfig made from it, then ``steps`` (for a running cluster)."""
    return [_bundle(generate=False), _talosconfig_step(), *steps]


def _step(
    name: str,
    build: Callable[[RunContext], list[Command]],
    action: Callable[[RunContext], None] | None = None,
    summary: str = "",
    needs: tuple[str, ...] = ("talos/talosconfig",),
    kind: type = TalosStep,
) -> Component:
    return kind(layer="talos", name=name, needs=needs, build=build, action=action, summary=summary)


# Running a task's own steps ----------------------------------------------------------------------


def run_steps(
    steps: Callable[[Inventory], list[Component]],
    *,
    cluster: str | None,
    dry_run: bool,
    options: dict[str, Any] | None = None,
    jobs: int = 4,
) -> None:
    """Run a task's steps in dependency order with the Talos files in the private workdir.

    Like ``deploy.execute`` for an explicit list of steps, except that talosconfig and kubeconfig
    always live in the private workdir (``execute`` decides that from ``talos/kubeconfig`` being
    selected): a task's talosconfig, made from the stored bundle, must never overwrite the user's.
    """
    inv = load_inventory(cluster)
    chosen = steps(inv)
    ids = {c.id for c in chosen}
    graph = Graph.build(
        dataclasses.replace(c, needs=tuple(n for n in c.needs if n in ids)) for c in chosen
    )
    if not dry_run:
        check_tools(sorted({t for c in chosen for t in c.tools()}))
    with run_context(inv, dry_run=dry_run, fetch_kubeconfig=True, options=options) as ctx:
        problems = [p for c in graph.steps() for p in c.preflight(ctx)]
        if problems:
            raise OneclusterError(
                "preflight failed, nothing was changed:\n" + "\n".join(f"  - {p}" for p in problems)
            )
        if dry_run:
            echo(f"# dry-run for cluster {inv.name}: nothing is executed")
        report = Runner(graph, ctx, jobs=jobs).run(list(graph.order))
    echo("")
    echo(report.summary())
    if not report.ok:
        raise RunFailed(report)


# Tasks -----------------------------------------------------------------------------------------


@task(
    help=help_for(
        "cluster", "dry_run",
        out="also write the node configs and talosconfig to this directory (they hold secrets)",
        new_pki="generate a new secrets bundle even for a bootstrapped cluster (needs --yes)",
        yes="confirm --new-pki",
    )
)  # fmt: skip
@user_errors
def genconfig(c, cluster=None, dry_run=False, out=None, new_pki=False, yes=False):
    """Render and validate every node's machine config (to a directory only with --out)."""
    if out:
        echo(
            f"WARNING: {out} {'would hold' if dry_run else 'will hold'} the machine configs and "
            "talosconfig: they contain the cluster's private keys. Keep the directory private "
            "and delete it when done.",
            err=True,
        )
    run_steps(
        lambda inv: [s for s in components(inv) if s.name in ("secrets-bundle", "genconfig")],
        cluster=cluster, dry_run=dry_run, options={"out": out, "new_pki": new_pki, "yes": yes},
    )  # fmt: skip


@task(
    help=help_for(
        "cluster", "dry_run", "jobs",
        node="apply to this node only (default: every node, in parallel)",
        insecure="treat the nodes as in maintenance mode (default: detected per node)",
    )
)  # fmt: skip
@user_errors
def apply(c, cluster=None, dry_run=False, jobs=4, node=None, insecure=False):
    """Apply the machine configs: --insecure to maintenance-mode nodes, authenticated otherwise."""

    def steps(inv: Inventory) -> list[Component]:
        wanted = {inv.node(node).name} if node else {n.name for n in inv.nodes}
        keep = {"secrets-bundle", "genconfig", *(f"apply-{n}" for n in wanted)}
        return [s for s in components(inv) if s.name in keep]

    run_steps(steps, cluster=cluster, dry_run=dry_run, jobs=int(jobs),
              options={"insecure": insecure})  # fmt: skip


@task(help=help_for("cluster", "dry_run"))
@user_errors
def bootstrap(c, cluster=None, dry_run=False):
    """Bootstrap etcd on the first control plane, once (reports and stops if already done)."""
    run_steps(
        lambda inv: _with_talosconfig(_step("bootstrap", _bootstrap_commands, _bootstrap_action)),
        cluster=cluster, dry_run=dry_run,
    )  # fmt: skip


@task(
    help=help_for(
        "cluster", "dry_run", output="write here instead of $KUBECONFIG or ~/.kube/config"
    )
)
@user_errors
def kubeconfig(c, cluster=None, dry_run=False, output=None):
    """Fetch the admin kubeconfig and merge it into your kubeconfig (or --output PATH)."""
    target = output or user_kubeconfig()
    run_steps(
        lambda inv: _with_talosconfig(_step("kubeconfig", _kubeconfig_commands)),
        cluster=cluster, dry_run=dry_run, options={"kubeconfig_target": target},
    )  # fmt: skip


def _export_talosconfig(ctx: RunContext) -> list[Command]:
    target = str(ctx.options["talosconfig_target"])
    return [
        *talosctl.config_endpoints(ctx.talosconfig, ctx.inventory),
        talosctl.config_merge(target, ctx.talosconfig),
    ]


@task(
    help=help_for(
        "cluster", "dry_run", output="write here instead of $TALOSCONFIG or ~/.talos/config"
    )
)
@user_errors
def talosconfig(c, cluster=None, dry_run=False, output=None):
    """Generate the admin talosconfig and merge it into yours (or --output PATH)."""
    target = output or user_talosconfig()
    if not dry_run:
        Path(target).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    run_steps(
        lambda inv: _with_talosconfig(_step("export-talosconfig", _export_talosconfig)),
        cluster=cluster, dry_run=dry_run, options={"talosconfig_target": target},
    )  # fmt: skip


@task(help=help_for("cluster", "dry_run", timeout=f"how long to wait (default {HEALTH_TIMEOUT})"))
@user_errors
def health(c, cluster=None, dry_run=False, timeout=HEALTH_TIMEOUT):
    """Wait until every control plane and worker in the inventory is healthy."""
    run_steps(
        lambda inv: _with_talosconfig(_step("health", _health_commands, kind=TalosGate)),
        cluster=cluster, dry_run=dry_run, options={"timeout": timeout},
    )  # fmt: skip


def upgrade_steps(only: str | None, timeout: str) -> Callable[[Inventory], list[Component]]:
    def steps(inv: Inventory) -> list[Component]:
        nodes = upgrade.upgrade_order(inv, only)
        return _with_talosconfig(
            _step("kubeconfig", _kubeconfig_commands),
            _step(
                "upgrade",
                lambda ctx: upgrade.plan(ctx, nodes, timeout),
                lambda ctx: upgrade.rolling_upgrade(ctx, nodes, timeout),
                summary=f"upgrade {', '.join(n.name for n in nodes)} one at a time, gated",
                needs=("talos/kubeconfig",),
            ),
        )

    return steps


@task(
    help=help_for(
        "cluster", "dry_run",
        node="upgrade this node only",
        timeout="per-node limit for the upgrade and for each gate (default 15m)",
    )
)  # fmt: skip
@user_errors
def upgrade_(c, cluster=None, dry_run=False, node=None, timeout="15m"):
    """Upgrade Talos one node at a time, waiting for node, cluster and Longhorn health between."""
    upgrade.parse_duration(timeout)
    run_steps(upgrade_steps(node, timeout), cluster=cluster, dry_run=dry_run,
              options={"timeout": timeout})  # fmt: skip


def _upgrade_k8s_commands(ctx: RunContext) -> list[Command]:
    return [
        talosctl.upgrade_k8s(ctx.talosconfig, ctx.inventory, dry_run=True),
        talosctl.upgrade_k8s(ctx.talosconfig, ctx.inventory, dry_run=False),
    ]


@task(help=help_for("cluster", "dry_run"))
@user_errors
def upgrade_k8s(c, cluster=None, dry_run=False):
    """Upgrade Kubernetes to the inventory's version (talosctl's own dry-run runs first)."""
    run_steps(
        lambda inv: _with_talosconfig(_step("upgrade-k8s", _upgrade_k8s_commands)),
        cluster=cluster, dry_run=dry_run,
    )  # fmt: skip


def reset_order(inv: Inventory, only: str | None) -> list[Node]:
    """Workers first, then control planes (the first control plane last)."""
    if only:
        return [inv.node(only)]
    return [*inv.workers, *reversed(inv.control_planes)]


@task(
    help=help_for(
        "cluster", "dry_run",
        node="reset this node only (gracefully: it leaves etcd first)",
        yes="confirm: wipes the nodes' STATE and EPHEMERAL partitions",
    )
)  # fmt: skip
@user_errors
def reset(c, cluster=None, dry_run=False, node=None, yes=False):
    """Wipe the nodes back to maintenance mode so cluster.rebuild can start over (needs --yes)."""
    if not (yes or dry_run):
        raise ConfirmationRequired(
            "talos.reset wipes the nodes' configuration and data (STATE and EPHEMERAL) and "
            "reboots them into maintenance mode. Add --yes to do it (--dry-run to see how)."
        )

    def build(ctx: RunContext) -> list[Command]:
        nodes = reset_order(ctx.inventory, node)
        return [talosctl.reset(ctx.talosconfig, n, graceful=bool(node)) for n in nodes]

    run_steps(
        lambda inv: _with_talosconfig(_step("reset", build)), cluster=cluster, dry_run=dry_run
    )


ns = layer_collection("talos", __doc__)
for _task, _name in (
    (genconfig, "genconfig"),
    (apply, "apply"),
    (bootstrap, "bootstrap"),
    (kubeconfig, "kubeconfig"),
    (talosconfig, "talosconfig"),
    (health, "health"),
    (upgrade_, "upgrade"),
    (upgrade_k8s, "upgrade-k8s"),
    (reset, "reset"),
):
    ns.add_task(_task, name=_name)
