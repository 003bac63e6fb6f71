"""The Talos steps: from maintenance-mode nodes to a healthy cluster.

``secrets-bundle → genconfig → apply-<node>`` (in parallel) ``→ bootstrap → kubeconfig → health``.
Every file a step writes lives in the run's private 0700 workdir; the PKI bundle exists on disk only
for the one talosctl call that reads it.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar

from ..engine import preflight, yamlio
from ..engine.command import Command
from ..engine.components import Component, LiveDiff
from ..engine.context import RunContext
from ..engine.errors import (
    CommandError,
    ConfirmationRequired,
    GateError,
    InventoryError,
    OneclusterError,
    SecretsError,
)
from ..engine.inventory import Inventory, Node
from ..engine.output import echo
from ..engine.poll import parse_duration, poll
from ..engine.probes import Probe, api_probe
from ..engine.record import CONVERGE, cached, forced
from ..engine.runner import UNCHANGED
from ..engine.signals import Interrupted
from . import applied, configdiff, machineconfig, maintenance, secretsbundle, talosctl, versions
from .options import HEALTH_TIMEOUT, TalosOptions


@dataclasses.dataclass(frozen=True, kw_only=True)
class TalosStep(Component):
    """A step that drives talosctl; ``build`` returns its commands, ``action`` may replace run()."""

    kind: ClassVar[str] = "talos"
    binaries: ClassVar[tuple[str, ...]] = ("talosctl",)

    build: Callable[[RunContext], list[Command]]
    # may return "unchanged" (the runner's state) when it found nothing to do
    action: Callable[[RunContext], str | None] | None = None
    # what --dry-run prints instead of the plain command list (e.g. marking read-only probes)
    dry_action: Callable[[RunContext], None] | None = None
    # cluster.diff's object-level diff of the step (a node's config), if it has one
    diff: Callable[[RunContext], LiveDiff | None] | None = None
    # its own read-compare, from what this run read already: True when there is nothing to do
    # (a re-run's early check; see Component.up_to_date)
    check: Callable[[RunContext], bool] | None = None
    # a gate's: whether a read this run made already shows it holding (Component.settled)
    settle: Callable[[RunContext], bool] | None = None

    @property
    def compares(self) -> bool:  # type: ignore[override]
        return self.check is not None

    def up_to_date(self, ctx: RunContext) -> bool:
        return not ctx.dry_run and self.check is not None and bool(self.check(ctx))

    def live_diff(self, ctx: RunContext) -> LiveDiff | None:
        return None if self.diff is None else self.diff(ctx)

    def settled(self, ctx: RunContext) -> bool:
        return not ctx.dry_run and self.settle is not None and bool(self.settle(ctx))

    def commands(self, ctx: RunContext) -> list[Command]:
        return self.build(ctx)

    def probes(self, ctx: RunContext) -> list[Probe]:
        # a Talos step is in place when the cluster it builds answers
        return [api_probe(ctx)]

    def preflight(self, ctx: RunContext) -> list[str]:
        # the talosctl client must be the pinned Talos release (asked once per run)
        return versions.client_problems(ctx)

    def run(self, ctx: RunContext) -> str | None:
        if ctx.dry_run and self.dry_action is not None:
            self.dry_action(ctx)
        elif self.action is not None and not ctx.dry_run:
            return self.action(ctx)
        else:
            super().run(ctx)
        return None


@dataclasses.dataclass(frozen=True, kw_only=True)
class BundleStep(TalosStep):
    """Load the Talos secrets bundle from the store (generating it only when allowed)."""

    generate: bool = True

    def run(self, ctx: RunContext) -> str | None:
        if ctx.dry_run:
            if not self.generate:
                then = "never generate one"
            elif ctx.option(TalosOptions).new_pki:
                then = "generate a new one and replace it (--new-pki)"
            else:
                then = (
                    "generate one only if it holds none and every node answers in maintenance "
                    "mode (the read-only probes below)"
                )
            echo(f"# read {secretsbundle.SECRET_NAME} from the secret store; {then}")
        return super().run(ctx)

    def preflight(self, ctx: RunContext) -> list[str]:
        problems = super().preflight(ctx)
        if ctx.dry_run:
            return problems
        try:
            secretsbundle.check_new_pki(ctx)
        except ConfirmationRequired as exc:
            return [*problems, str(exc)]
        if ctx.option(TalosOptions).new_pki or secretsbundle.stored_bundle(ctx) is not None:
            return problems
        problem = secretsbundle.missing_bundle_problem(ctx, generate=self.generate)
        return [*problems, problem] if problem else problems


@dataclasses.dataclass(frozen=True, kw_only=True)
class TalosGate(TalosStep):
    """A Talos health gate (shown as a gate in plans)."""

    kind: ClassVar[str] = "gate"
    reads_only: ClassVar[bool] = True


# Step bodies -----------------------------------------------------------------------------------


def _bundle_commands(generate: bool) -> Callable[[RunContext], list[Command]]:
    def build(ctx: RunContext) -> list[Command]:
        # dry-runs never open Infisical; a store already in the run's state (tests) is consulted
        store = ctx.state.get("store")
        stored = store is not None and secretsbundle.SECRET_NAME in store.names()
        new_pki = ctx.option(TalosOptions).new_pki
        if not generate or (stored and not new_pki):
            return []
        gen = talosctl.gen_secrets(ctx.inventory, ctx.workdir / secretsbundle.FILE_NAME)
        if new_pki:
            return [gen]
        # a bundle is generated only when no node answers outside maintenance mode
        return [*(talosctl.maintenance_probe(n) for n in ctx.inventory.nodes), gen]

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
    if ctx.option(TalosOptions).out:
        # an exported talosconfig should work as it is: point it at the control planes
        cmds += talosctl.config_endpoints(str(wd / "talosconfig"), inv)
    return cmds


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def _genconfig_action(ctx: RunContext) -> None:
    validated = render_configs(ctx, read_live=True)
    nodes = len(ctx.inventory.nodes)
    running = nodes - len(validated)
    kept = len(ctx.state.get(KEPT, ()))
    echo(
        f"[talos/genconfig] {nodes - kept} node configs rendered; {len(validated)} validated "
        "(metal)"
        + (
            f", {running} already running on their nodes (nothing to apply there)"
            if running
            else ""
        )
        + (f"; {kept} of them as the record names them (not rendered again)" if kept else "")
    )
    out = ctx.option(TalosOptions).out
    if out:
        preflight.passed(ctx)  # the configs leave the workdir only from the pinned client
        _export_configs(ctx, Path(out))


# the config each node runs, read beside the patches (None: it did not answer the read)
LIVE_CONFIGS = "talos.live-configs"
# the nodes whose recorded fingerprints showed them running what this run renders: their
# configs are not rendered at all (talos/apply-<node> is unchanged)
KEPT = "talos.kept"
# each node's inputs fingerprint (applied.inputs), recorded when its config is applied
INPUTS = "talos.inputs"


def render_configs(ctx: RunContext, *, read_live: bool = False) -> list[str]:
    """Every node's config rendered from the loaded bundle into the workdir, and validated;
    the names of the nodes validated.

    ``read_live``: every node's live config is read beside the patches (the authenticated read,
    read-only; kept for the apply steps), and only a config that will be applied is validated:
    a node that already runs exactly this config was validated by Talos when it took it, and
    nothing is applied to it (unless the run forces it). A node whose inputs and live config
    match the fingerprints the cluster's record holds for it (:mod:`tasks.talos.applied`) is not
    even rendered: the record is read with the kubeconfig fetched here, and only the nodes it
    cannot vouch for wait on it before their patch.
    """
    inv, wd, p = ctx.inventory, ctx.workdir, _paths(ctx)
    for d in p.values():
        d.mkdir(mode=0o700, exist_ok=True)
    for name, text in machineconfig.rendered_patches(inv).items():
        _write_private(p["patches"] / f"{name}.yaml", text)
    node_patches = {n.name: machineconfig.node_patch(inv, n) for n in inv.nodes}
    for node in inv.nodes:
        _write_private(p["node_patches"] / f"{node.name}.yaml", node_patches[node.name])
    gen, *rest = _genconfig_commands(ctx)
    patches, validates = rest[0 : 2 * len(inv.nodes) : 2], rest[1 : 2 * len(inv.nodes) : 2]
    prefix = "[talos/genconfig] $ "
    # the nodes are read only by a run that applies to them (`talos.genconfig --out` alone,
    # perhaps before the machines are racked, reads nothing)
    converge = ctx.state.get(CONVERGE)
    applies = converge is not None and converge.selects("talos/apply-")
    options = ctx.option(TalosOptions)
    read_live = read_live and applies and not options.insecure
    try:
        with secretsbundle.bundle_file(ctx):
            ctx.run(gen, prefix=prefix)
        templates = {role: applied.documents((wd / f"{role}.yaml").read_text())
                     for role in {n.role for n in inv.nodes}}  # fmt: skip
        made = {
            n.name: applied.inputs(ctx, templates[n.role], node_patches[n.name]) for n in inv.nodes
        }
        ctx.state[INPUTS] = made
        # each node's patch, and the reads a re-run decides by, side by side (independent
        # calls): the kubeconfig first (the cluster's reads wait for it, and a tool starts
        # slower the more start beside it), whether etcd answers, every node's live config
        with ThreadPoolExecutor(2 * len(inv.nodes) + 2, thread_name_prefix="genconfig") as pool:
            cluster = (
                [pool.submit(_early_kubeconfig, ctx), pool.submit(_etcd_answers, ctx)]
                if read_live
                else []
            )
            reads = pool.submit(live_configs, ctx) if read_live else None
            vouched: dict[str, str] = {}  # node → the config fingerprint its record expects
            if read_live and not options.out:  # --out exports every node's config
                cluster[0].result()  # the kubeconfig: the record is read once it is there
                for node in inv.nodes:
                    found = applied.recorded(ctx, node)
                    if found is not None and made[node.name] == found[0]:
                        vouched[node.name] = found[1]
            patched = [
                pool.submit(ctx.run, cmd, prefix=prefix)
                for node, cmd in zip(inv.nodes, patches, strict=True)
                if node.name not in vouched
            ]
            live = reads.result() if reads is not None else {}
            kept = {
                name for name, expected in vouched.items()
                if live.get(name) is not None and applied.config(ctx, live[name]) == expected
            }  # fmt: skip
            patched += [
                pool.submit(ctx.run, cmd, prefix=prefix)
                for node, cmd in zip(inv.nodes, patches, strict=True)
                if node.name in vouched and node.name not in kept
            ]
            for future in [*patched, *cluster]:
                future.result()
        if read_live:
            ctx.state[LIVE_CONFIGS] = live
            ctx.state[KEPT] = kept
        chosen = []
        for node, cmd in zip(inv.nodes, validates, strict=True):
            if node.name in kept:
                continue
            if (
                not read_live or forced(ctx, f"talos/apply-{node.name}")
                or live.get(node.name) is None
            ):  # fmt: skip
                chosen.append((node, cmd))
                continue
            rendered = _rendered_config(ctx, node)
            if live[node.name] != rendered:
                chosen.append((node, cmd))
            else:  # runs it, though the record did not say so: it will, with the next write
                applied.note(ctx, node, made[node.name], rendered, applied=False)
        if chosen:
            with ThreadPoolExecutor(len(chosen), thread_name_prefix="validate") as pool:
                for future in [pool.submit(ctx.run, cmd, prefix=prefix) for _, cmd in chosen]:
                    future.result()
        for cmd in rest[2 * len(inv.nodes) :]:
            ctx.run(cmd, prefix=prefix)
    finally:
        # the role templates hold the PKI too; only the finished node configs are needed later
        for role in ("controlplane", "worker"):
            (wd / f"{role}.yaml").unlink(missing_ok=True)
    return [node.name for node, _ in chosen]


def _export_configs(ctx: RunContext, out: Path) -> None:
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    out.chmod(0o700)
    sources = [*sorted(_paths(ctx)["nodes"].glob("*.yaml")), ctx.workdir / "talosconfig"]
    for src in sources:
        dest = out / src.name
        _write_private(dest, src.read_text())


def _node_config(ctx: RunContext, node: Node) -> Path:
    return _paths(ctx)["nodes"] / f"{node.name}.yaml"


def _apply_commands(node: Node) -> Callable[[RunContext], list[Command]]:
    def build(ctx: RunContext) -> list[Command]:
        file = _node_config(ctx, node)
        apply = talosctl.apply_config(ctx.talosconfig, node, file, insecure=True)
        if ctx.option(TalosOptions).insecure:
            return [apply]
        # the node's live config first (read-only: a node that runs this config is left alone);
        # when it does not answer that, maintenance mode is detected (a probe that cannot tell
        # stops the step); a configured node gets the authenticated form
        read = talosctl.machineconfig(ctx.talosconfig, node)
        return [read, talosctl.maintenance_probe(node), apply]

    return build


def _apply_check(node: Node) -> Callable[[RunContext], bool]:
    def check(ctx: RunContext) -> bool:
        """The node answered talos/genconfig's read with exactly its rendered config (or with
        the config its record vouches for: then it was not rendered at all)."""
        known = ctx.state.get(LIVE_CONFIGS, {})
        if ctx.option(TalosOptions).insecure or known.get(node.name) is None:
            return False
        if node.name in ctx.state.get(KEPT, ()):
            return True
        return bool(known[node.name] == _rendered_config(ctx, node))

    return check


def _apply_action(node: Node) -> Callable[[RunContext], str | None]:
    def action(ctx: RunContext) -> str | None:
        step_id = f"talos/apply-{node.name}"
        insecure = ctx.option(TalosOptions).insecure
        live = None
        if not insecure and not forced(ctx, step_id):
            if node.name in ctx.state.get(KEPT, ()):
                echo(f"[{step_id}] {node.name} runs the config its record names: nothing to apply")
                return UNCHANGED
            known = ctx.state.get(LIVE_CONFIGS, {})  # read by talos/genconfig in this run
            # one read: None when the node does not answer it
            live = known[node.name] if node.name in known else _live_config(ctx, node)
            if live is not None and live == _rendered_config(ctx, node):
                echo(f"[{step_id}] {node.name} runs this config already: nothing to apply")
                return UNCHANGED
        if not insecure and live is None:
            found = maintenance.probe(ctx, node)
            problem = maintenance.install_disk_problem(ctx.inventory.source, found)
            if problem:
                raise InventoryError([problem])
            insecure = found.mode == maintenance.MAINTENANCE
        mode = "maintenance mode (--insecure)" if insecure else "configured (authenticated)"
        echo(f"[{step_id}] {node.name} is {mode}")
        cmd = talosctl.apply_config(
            ctx.talosconfig, node, _node_config(ctx, node), insecure=insecure
        )
        ctx.run(cmd, prefix=f"[{step_id}] $ ")
        made = ctx.state.get(INPUTS, {}).get(node.name)
        applied.note(ctx, node, made, _rendered_config(ctx, node), applied=True)
        return None

    return action


def _rendered_config(ctx: RunContext, node: Node) -> list:
    return [d for d in yamlio.load_all(_node_config(ctx, node).read_text()) if d is not None]


def _live_config(ctx: RunContext, node: Node, talosconfig: str = "") -> list | None:
    """The config a configured node runs, as parsed YAML documents (compared in memory, never
    printed as it is: it holds the node's keys); None when the node does not answer the
    authenticated read (in maintenance mode it cannot: its certificate is not the cluster's)."""
    return live_config(
        _resources(ctx, talosctl.machineconfig(talosconfig or ctx.talosconfig, node))
    )


def _resources(ctx: RunContext, read: Command) -> list[dict]:
    """The resources a ``talosctl get -o yaml`` printed (none when it printed no YAML, or
    failed outside its ``ok_codes``)."""
    try:
        out = ctx.executor.query(read).stdout
        return [d for d in yamlio.load_all(out) if isinstance(d, dict)]
    except (OneclusterError, ValueError):
        return []


def live_configs(ctx: RunContext, talosconfig: str = "") -> dict[str, list | None]:
    """The config each node runs, by node name (None: the node did not answer): one read of
    every node through the control planes, then a read of its own for each node that one did
    not print (its proxy failed, or no endpoint answered: a cluster not configured yet)."""
    inv = ctx.inventory
    by_node: dict[str, list[dict]] = {}
    for res in _resources(ctx, talosctl.machineconfigs(talosconfig or ctx.talosconfig, inv)):
        by_node.setdefault(str(res.get("node", "")), []).append(res)
    found = {n.name: live_config(by_node.get(str(n.ip), [])) for n in inv.nodes}
    missing = [n for n in inv.nodes if found[n.name] is None]
    if missing:
        with ThreadPoolExecutor(len(missing), thread_name_prefix="live-config") as pool:
            alone = {n.name: pool.submit(_live_config, ctx, n, talosconfig) for n in missing}
            found |= {name: future.result() for name, future in alone.items()}
    return found


def live_config(resources: list[dict]) -> list | None:
    """The v1alpha1 MachineConfig's documents among ``talosctl get machineconfig -o yaml``'s
    resources (its ``spec`` is the config's raw YAML: machine_config.go)."""
    for res in resources:
        meta = res.get("metadata") or {}
        if meta.get("type") != "MachineConfigs.config.talos.dev" or meta.get("id") != "v1alpha1":
            continue
        spec = res.get("spec")
        try:
            live = yamlio.load_all(spec) if isinstance(spec, str) else [spec]
        except ValueError:
            return None
        return [d for d in live if d is not None]
    return None


# set by talos/genconfig: etcd answered on the first control plane / the kubeconfig was fetched
ETCD_ANSWERS = "talos.etcd-answers"
KUBECONFIG_FETCHED = "talos.kubeconfig-fetched"


def _etcd_answers(ctx: RunContext) -> None:
    """Whether etcd runs on the first control plane (read-only; for talos/bootstrap)."""
    first = ctx.inventory.first_control_plane
    try:
        ctx.executor.query(talosctl.etcd_status(ctx.talosconfig, first))
    except CommandError:
        return
    ctx.state[ETCD_ANSWERS] = True


def _early_kubeconfig(ctx: RunContext) -> None:
    """The run's kubeconfig, fetched beside the node configs when the cluster already serves
    one (a re-run): talos/kubeconfig then has nothing left to do. A cluster that does not
    answer yet (maintenance mode) is asked again by talos/kubeconfig, after the bootstrap."""
    if ctx.option(TalosOptions).kubeconfig_target or Path(ctx.kubeconfig).is_file():
        return
    (command,) = kubeconfig_commands(ctx)
    try:
        ctx.executor.query(command)
    except CommandError:
        Path(ctx.kubeconfig).unlink(missing_ok=True)  # nothing half-written is used
        return
    if Path(ctx.kubeconfig).is_file():
        ctx.state[KUBECONFIG_FETCHED] = True
        ctx.kubeconfig_written()
        _start_early_health(ctx)


# the health check a re-run makes beside its other reads once the cluster served its kubeconfig:
# talos/health, when nothing before it changed, is judged by it instead of a check of its own
EARLY_HEALTH = "talos.early-health"
# how long that early check waits (a healthy cluster answers in seconds; a failed early check
# only means the gate runs its own, with the full timeout)
EARLY_HEALTH_TIMEOUT = "1m"


def _start_early_health(ctx: RunContext) -> None:
    converge = ctx.state.get(CONVERGE)
    if converge is None or not converge.selects("talos/health"):
        return
    (command,) = health_commands(ctx, at_most=EARLY_HEALTH_TIMEOUT)
    answer: Future[bool] = Future()

    def read() -> None:
        try:
            ctx.executor.query(command)
        except (Exception, Interrupted):  # could not tell (or a bug): the gate checks itself
            answer.set_result(False)
        else:
            answer.set_result(True)

    ctx.state[EARLY_HEALTH] = answer
    threading.Thread(target=read, name="talos-health-read", daemon=True).start()


def _early_health_passed(ctx: RunContext) -> bool:
    """The early health check (if this run made one) passed; waits for its answer."""
    answer = ctx.state.get(EARLY_HEALTH)
    return answer is not None and bool(answer.result())


def _health_action(ctx: RunContext) -> None:
    """talos/health's own check; an early one still running is waited for first (two health
    checks never run at once, and the early one never outlives the run)."""
    answer = ctx.state.get(EARLY_HEALTH)
    if answer is not None:
        answer.result()
    for cmd in health_commands(ctx):
        ctx.run(cmd, prefix="[talos/health] $ ")


def kubeconfig_action(ctx: RunContext) -> str | None:
    if ctx.state.get(KUBECONFIG_FETCHED):
        echo(f"[talos/kubeconfig] fetched beside the node configs into {ctx.kubeconfig}")
        return UNCHANGED
    for cmd in kubeconfig_commands(ctx):
        ctx.run(cmd, prefix="[talos/kubeconfig] $ ")
    ctx.kubeconfig_written()
    return None


RENDERED_FOR_DIFF = "talos.rendered-for-diff"
LIVE_FOR_DIFF = "talos.live-for-diff"


def _render_for_diff(ctx: RunContext) -> str:
    """The stored bundle loaded (never generated) and every node's config rendered, once per
    ``cluster.diff``; the talosconfig made with them (the cluster's admin one)."""

    def load() -> str:
        bundle = secretsbundle.stored_bundle(ctx)
        if bundle is None:
            raise SecretsError(
                secretsbundle.missing_bundle_problem(ctx, generate=False) or "no bundle"
            )
        ctx.state[secretsbundle.STATE_KEY] = bundle
        render_configs(ctx)
        return str(ctx.workdir / "talosconfig")

    return cached(ctx, RENDERED_FOR_DIFF, load)


def _apply_diff(node: Node) -> Callable[[RunContext], LiveDiff]:
    def diff(ctx: RunContext) -> LiveDiff:
        talosconfig = _render_for_diff(ctx)
        how = "talosctl get machineconfig, secret fields masked"
        # every node's in one read, for whichever node's diff asks first
        live = cached(ctx, LIVE_FOR_DIFF, lambda: live_configs(ctx, talosconfig))[node.name]
        rendered = _rendered_config(ctx, node)
        if live is None:  # not configured yet (or not answering): the whole config is new
            _, text = configdiff.config_diff(node.name, [], rendered)
            return LiveDiff(True, text, how, exists=False)
        differs, text = configdiff.config_diff(node.name, live, rendered)
        return LiveDiff(differs, text, how)

    return diff


def bootstrap_commands(ctx: RunContext) -> list[Command]:
    """etcd asked first (bootstrapped: nothing to do), else the API waited for, etcd asked
    again, and the bootstrap."""
    first = ctx.inventory.first_control_plane
    etcd = talosctl.etcd_status(ctx.talosconfig, first)
    return [
        etcd,
        talosctl.version(ctx.talosconfig, first),
        etcd,
        talosctl.bootstrap(ctx.talosconfig, first),
    ]


def bootstrap_action(ctx: RunContext) -> str | None:
    inv = ctx.inventory
    first = inv.first_control_plane
    etcd, wait_api, _, boot = bootstrap_commands(ctx)
    prefix = "[talos/bootstrap] "
    opts = ctx.option(TalosOptions)
    timeout = opts.api_timeout
    if ctx.state.get(ETCD_ANSWERS):  # asked by talos/genconfig in this run
        echo(f"{prefix}etcd is already bootstrapped on {first.name}: nothing to do")
        return UNCHANGED

    def etcd_runs() -> bool:
        try:
            ctx.executor.query(etcd)
        except CommandError:
            return False
        echo(f"{prefix}etcd is already bootstrapped on {first.name}: nothing to do")
        return True

    # a bootstrapped cluster answers at once: one read, no wait
    if etcd_runs():
        return UNCHANGED

    def api_down() -> list[str]:
        try:
            ctx.executor.query(wait_api)
        except CommandError as exc:
            return [str(exc)]
        return []

    echo(f"{prefix}waiting for the Talos API of {first.name} ({first.ip})")
    interval = 5.0 if opts.poll_interval is None else opts.poll_interval
    down = poll(api_down, parse_duration(timeout), interval)
    if down:
        raise GateError(f"{first.name} did not answer within {timeout}: {down[-1]}")
    if etcd_runs():
        return UNCHANGED
    try:
        ctx.run(boot, prefix=f"{prefix}$ ")
    except CommandError as exc:
        # a bootstrapped etcd refuses a second bootstrap with AlreadyExists: that is success
        if "AlreadyExists" in exc.stderr:
            echo(f"{prefix}etcd is already bootstrapped on {first.name}: nothing to do")
            return UNCHANGED
        raise
    if not inv.cluster.bootstrapped:
        echo(
            f"{prefix}etcd bootstrapped. Set cluster.bootstrapped: true in {inv.source} so a lost "
            "secrets bundle is never silently replaced."
        )
    return None


def kubeconfig_commands(ctx: RunContext) -> list[Command]:
    target = ctx.option(TalosOptions).kubeconfig_target or ctx.kubeconfig
    return [talosctl.kubeconfig(ctx.talosconfig, ctx.inventory.first_control_plane, target)]


def health_commands(ctx: RunContext, at_most: str = "") -> list[Command]:
    """The health check with the run's timeout (``at_most``: no longer than that)."""
    timeout = ctx.option(TalosOptions).timeout or HEALTH_TIMEOUT
    if at_most and parse_duration(timeout) > parse_duration(at_most):
        timeout = at_most
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
        changes_cluster=False, before_preflight=True,
    )  # fmt: skip


def _apply(node: Node) -> TalosStep:
    return TalosStep(
        layer="talos", name=f"apply-{node.name}", needs=("talos/genconfig",),
        build=_apply_commands(node), action=_apply_action(node), diff=_apply_diff(node),
        check=_apply_check(node),
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
            build=_genconfig_commands, action=_genconfig_action, fetches_configs=True,
            changes_cluster=False, before_preflight=True,
            summary="render the patches and every node's config into the 0700 workdir; validate",
        ),
        *applies,
        TalosStep(
            layer="talos", name="bootstrap", needs=(f"talos/apply-{first.name}",),
            build=bootstrap_commands, action=bootstrap_action,
            check=lambda ctx: bool(ctx.state.get(ETCD_ANSWERS)),
            summary=f"bootstrap etcd once on {first.name} (does nothing when already bootstrapped)",
        ),
        TalosStep(
            layer="talos", name="kubeconfig", needs=("talos/bootstrap",),
            build=kubeconfig_commands, action=kubeconfig_action, fetches_configs=True,
            changes_cluster=False, check=lambda ctx: bool(ctx.state.get(KUBECONFIG_FETCHED)),
            summary="fetch the admin kubeconfig into the private workdir",
        ),
        TalosGate(
            layer="talos", name="health", needs=("talos/kubeconfig", *(a.id for a in applies)),
            build=health_commands, action=_health_action, settle=_early_health_passed,
            summary="gate: every control plane and worker healthy, etcd and the API server up",
        ),
    ]  # fmt: skip


def _talosconfig_step() -> TalosStep:
    return TalosStep(
        layer="talos", name="talosconfig", needs=("talos/secrets-bundle",),
        build=_talosconfig_commands, action=_talosconfig_action, fetches_configs=True,
        changes_cluster=False,
        summary="generate a talosconfig from the bundle into the private workdir",
    )  # fmt: skip


def with_talosconfig(*steps: Component) -> list[Component]:
    """The stored bundle, a talosconfig made from it, then ``steps`` (for a running cluster)."""
    return [_bundle(generate=False), _talosconfig_step(), *steps]


def step(
    name: str,
    build: Callable[[RunContext], list[Command]],
    # may return "unchanged" (the runner's state) when it found nothing to do
    action: Callable[[RunContext], str | None] | None = None,
    summary: str = "",
    needs: tuple[str, ...] = ("talos/talosconfig",),
    kind: type = TalosStep,
    dry_action: Callable[[RunContext], None] | None = None,
) -> Component:
    return kind(
        layer="talos", name=name, needs=needs, build=build, action=action, summary=summary,
        dry_action=dry_action,
    )  # fmt: skip
