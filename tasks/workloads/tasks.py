"""The tasks every workload layer offers: ``list``, ``deploy``, ``status`` and ``remove``.

These are ordinary module-level tasks; each layer's collection configures them (Invoke's
``ns.configure``) with the layer they serve and what to call one of its workloads::

    {"layer": {"name": "apps", "noun": "app", "declared": apps.declared}}

(plus ``declared``: the layer's function from an inventory to its workloads), so ``invoke
apps.deploy`` and ``invoke ai.deploy`` are one task reading two configurations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from ..engine.catalog import Catalog
from ..engine.cli import catalog_of, layer_settings, onecluster_task
from ..engine.context import RunContext, run_context
from ..engine.errors import ConfirmationRequired, OneclusterError
from ..engine.execute import execute
from ..engine.graph import Graph
from ..engine.inventory import Inventory
from ..engine.lock import BREAK_LOCK_HELP, LOCK_HELP, RunLock
from ..engine.output import echo, table
from ..engine.probes import api_probe, holds, object_refs
from .state import missing_steps, rolled_out_now, rollout_probe
from .workload import Workload, removal_commands

# layers no deploy of a workload may run: a missing one is a cluster to build first
NEVER_RUN = ("talos",)
QUERIES_HELP = "print the read-only cluster queries it would make, and make none"


@dataclass(frozen=True)
class Layer:
    """The workload layer a task serves, from its collection's configuration."""

    name: str
    noun: str
    declared: Callable[[Inventory], Sequence[Workload]]
    catalog: Catalog

    @classmethod
    def of(cls, c: Any) -> Layer:
        found = layer_settings(c)
        if "name" not in found or "declared" not in found:
            raise OneclusterError(
                "internal: this task runs inside a workload collection (apps, ai), "
                "whose configuration names its layer and its declarations"
            )
        return cls(found["name"], found.get("noun", "workload"), found["declared"], catalog_of(c))

    def find(self, inv: Inventory, names: Sequence[str]) -> list[Workload]:
        """The workloads called ``names`` (all when none), or an error naming the known ones."""
        by_name = {w.name: w for w in self.declared(inv)}
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise OneclusterError(
                f"unknown {self.noun} {', '.join(map(repr, unknown))}; "
                f"known {self.noun}s: {', '.join(by_name)}"
            )
        return [by_name[n] for n in names] if names else list(by_name.values())

    def one(self, inv: Inventory, name: str | None) -> Workload:
        """The workload ``--name`` names (required)."""
        if not name:
            known = ", ".join(w.name for w in self.declared(inv))
            raise OneclusterError(f"--name is required; known {self.noun}s: {known}")
        return self.find(inv, [name])[0]


def _print_queries(inv: Inventory, graph: Graph, chosen: Sequence[Workload]) -> None:
    """--dry-run of the read-only tasks: the cluster queries they would make, none made."""
    with run_context(inv, dry_run=True, fetch_kubeconfig=False) as ctx:
        commands = [api_probe(ctx).command]
        for w in chosen:
            own = [graph[s.id] for s in w.components()]
            commands += [p.command for s in own for p in s.probes(ctx)]
            commands += [
                rollout_probe(*ref, ctx).command for s in own for ref in w.workload_refs(s, ctx)
            ]
    commands = list(dict.fromkeys(commands))  # steps of one app share some checks
    echo(f"# dry-run: {len(commands)} read-only queries would run; none was run")
    for command in commands:
        echo(f"$ {command.display()}")


def _row(w: Workload, graph: Graph, ctx: RunContext, reachable: bool) -> tuple[str, ...]:
    """One line of ``list``: name, namespace, outside needs, deployed, healthy, summary."""
    own = {c.id for c in w.components()}
    outside = sorted(n for c in own for n in graph[c].needs if n not in own)
    deployed = healthy = "-"
    if reachable:
        placed = all(graph[i].in_place(ctx) for i in own)
        deployed = "yes" if placed else "no"
        refs = [r for i in own for r in w.workload_refs(graph[i], ctx)]
        healthy = "yes" if placed and all(rolled_out_now(*r, ctx) for r in refs) else "no"
    return (w.name, w.namespace, ", ".join(outside), deployed, healthy, graph[w.id].summary)


@onecluster_task(name="list", help=dict(dry_run=QUERIES_HELP))
def list_(c, cluster=None, dry_run=False):
    """List each workload, what it needs, and (with a cluster) whether it is healthy."""
    layer = Layer.of(c)
    inv = layer.catalog.load(cluster)
    graph = layer.catalog.graph(inv)
    if dry_run:
        _print_queries(inv, graph, layer.find(inv, []))
        return
    with run_context(inv, dry_run=True, fetch_kubeconfig=False) as ctx:
        reachable = holds(api_probe(ctx), ctx)
        rows = [_row(w, graph, ctx, reachable) for w in layer.find(inv, [])]
    echo(table((layer.noun, "namespace", "needs", "deployed", "healthy", "what"), rows))
    if not reachable:
        echo("\n(no cluster answered: deployed/healthy are unknown)")


@onecluster_task(
    help=dict(name="deploy this one (see `list`); none: every one of the layer", **LOCK_HELP),
    iterable=["name"],
)
def deploy(c, name=None, cluster=None, dry_run=False, jobs=4, break_lock=False, yes=False):
    """Deploy workloads by name (all if none) plus whatever they need that is not in place."""
    layer = Layer.of(c)
    inv = layer.catalog.load(cluster)
    chosen = layer.find(inv, name or [])
    if not name:
        echo(
            f"# no --name given: every {layer.noun} of {layer.name}: {', '.join(w.name for w in chosen)}"
        )
    graph = layer.catalog.graph(inv)
    with run_context(inv, dry_run=True, fetch_kubeconfig=False) as ctx:
        sel = missing_steps(graph, [w.id for w in chosen], ctx, never_run_layers=NEVER_RUN)
    if sel.blocked and not dry_run:
        raise OneclusterError(
            f"the cluster API does not answer, so {', '.join(w.name for w in chosen)} cannot "
            "be deployed (fix: bring the cluster up with `invoke cluster.rebuild`, or point "
            "$KUBECONFIG at it)"
        )
    if sel.in_place:
        echo(f"# already in place, not redeployed: {', '.join(sel.in_place)}")
    if sel.blocked:
        echo("# no cluster answered: assuming only Talos is in place, so every need is shown")
    execute(
        layer.catalog,
        cluster=cluster,
        targets=sel.run,
        with_needs=False,
        dry_run=dry_run,
        jobs=jobs,
        break_lock=break_lock,
        yes=yes,
    )


@onecluster_task(help=dict(dry_run=QUERIES_HELP, name="name (see `list`)"))
def status(c, name=None, cluster=None, dry_run=False):
    """Show whether a workload's steps are in place and its workloads rolled out."""
    layer = Layer.of(c)
    inv = layer.catalog.load(cluster)
    w = layer.one(inv, name)
    graph = layer.catalog.graph(inv)
    if dry_run:
        _print_queries(inv, graph, [w])
        return
    with run_context(inv, dry_run=True, fetch_kubeconfig=False) as ctx:
        if not holds(api_probe(ctx), ctx):
            raise OneclusterError(
                f"the cluster API does not answer, so {w.name}'s state is unknown "
                "(fix: point $KUBECONFIG at the cluster)"
            )
        own = [graph[s.id] for s in w.components()]
        rows = [(s.id, s.kind, "yes" if s.in_place(ctx) else "no") for s in own]
        echo(table(("step", "kind", "in place"), rows))
        refs = [r for s in own for r in w.workload_refs(s, ctx)]
        ready = [
            (f"{k}/{n}", ns, "yes" if rolled_out_now(k, n, ns, ctx) else "no") for k, n, ns in refs
        ]
    echo("")
    echo(table(("workload", "namespace", "rolled out"), ready))
    if not all(r[2] == "yes" for r in rows) or not all(r[2] == "yes" for r in ready):
        raise OneclusterError(f"{w.name} is not fully deployed and healthy (see above)")


@onecluster_task(
    help=dict(
        name="name (see `list`)",
        purge="also delete its volumes and namespace (needs --yes)",
        yes="confirm --purge or --break-lock",
        break_lock=BREAK_LOCK_HELP,
    )
)  # fmt: skip
def remove(c, name=None, cluster=None, purge=False, yes=False, dry_run=False, break_lock=False):
    """Remove a workload, keeping its volumes (--purge --yes deletes them too)."""
    layer = Layer.of(c)
    inv = layer.catalog.load(cluster)
    w = layer.one(inv, name)
    if purge and not (yes or dry_run):
        raise ConfirmationRequired(
            f"--purge deletes {w.name}'s volumes and namespace {w.namespace} for good; "
            "re-run with --yes to confirm (or --dry-run to see the commands)"
        )
    graph = layer.catalog.graph(inv)
    lock = RunLock(inv.name, break_lock=break_lock, yes=yes)
    held = nullcontext() if dry_run else lock.held()
    with held, run_context(inv, dry_run=dry_run, fetch_kubeconfig=False) as ctx:
        if dry_run:
            lock.print_dry_run(ctx.kubeconfig)
        else:
            lock.attach(ctx.kubeconfig)
        for command in removal_commands(w, graph, ctx, purge=purge):
            if command.stdin:  # say what the manifest on stdin deletes
                refs = [r for rs in object_refs(command.stdin.decode()).values() for r in rs]
                echo(f"[{w.id}] # deletes {', '.join(refs)}")
            ctx.run(command, prefix=f"[{w.id}] $ ")
    if not purge and not dry_run:
        echo(
            f"{w.name} removed; its volumes in namespace {w.namespace} were kept "
            f"(`deploy --name {w.name}` brings it back with its data)"
        )


TASKS = ((list_, "list"), (deploy, "deploy"), (status, "status"), (remove, "remove"))
