"""Apps and assistants as one declaration each, and the tasks every such layer offers.

A :class:`Workload` is what a person means by "an app": its own steps (its databases, each gated
on its StatefulSet rolling out, then the app itself, from manifests or a pinned chart), in its own
namespace, with the platform steps it needs. :func:`workload_collection` gives a layer the tasks
``list``, ``deploy --name``, ``status --name`` and ``remove --name`` over its workloads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from .command import Command
from .components import (
    Component,
    Gate,
    HelmRelease,
    ManifestBundle,
    SecretSpec,
    rolled_out,
)
from .context import RunContext, run_context
from .deploy import Catalog, build_graph, default_catalog, execute, help_for, user_errors
from .errors import ConfirmationRequired, OneclusterError
from .graph import Graph
from .inventory import Inventory, load_inventory
from .output import echo, table
from .state import (
    api_probe,
    holds,
    in_place,
    missing_steps,
    object_refs,
    probes,
    rolled_out_now,
    rollout_probe,
    workloads,
)

# what every database step needs: Longhorn's RWO class
DATABASE_NEEDS = ("storage/longhorn-ready",)
# kinds ``remove`` keeps unless --purge: the data, and the namespace that holds it
KEPT_KINDS = ("Namespace", "PersistentVolumeClaim")


@dataclass(frozen=True, kw_only=True)
class WorkloadBundle(ManifestBundle):
    """A manifest bundle that applies its namespace too, so each bundle of an app stands alone."""

    namespace: str
    part_of: str = ""

    def namespace_doc(self) -> str:
        return yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": self.namespace,
                    "labels": {"app.kubernetes.io/part-of": self.part_of or self.name},
                },
            },
            sort_keys=False,
        )

    def rendered(self, ctx: RunContext) -> str:
        return "\n---\n".join([self.namespace_doc(), super().rendered(ctx)])


@dataclass(frozen=True)
class Chart:
    """A pinned upstream chart (values from ``helm-values/<release>.yaml``)."""

    chart: str
    version: str
    repo: str = ""  # empty for oci:// charts
    release: str = ""  # defaults to the workload's name
    # (kind, name) of what the chart runs, for health checks
    workloads: tuple[tuple[str, str], ...] = ()
    release_class: type[HelmRelease] = HelmRelease


@dataclass(frozen=True)
class Workload:
    """One app or assistant: its databases, then itself, in its own namespace."""

    layer: str
    name: str
    namespace: str
    needs: tuple[str, ...]
    summary: str
    # sub-folders of manifests/<layer>/<name>/ (e.g. "postgres"), each a StatefulSet called
    # <name>-<folder>, deployed and rolled out before the app
    databases: tuple[str, ...] = ()
    # Secrets synced from Infisical before the first of its steps
    secrets: tuple[SecretSpec, ...] = ()
    chart: Chart | None = None
    bundle: type[WorkloadBundle] = WorkloadBundle

    @property
    def id(self) -> str:
        return f"{self.layer}/{self.name}"

    def components(self) -> list[Component]:
        """The graph steps of this workload, the app itself last."""
        steps: list[Component] = []
        gates: list[str] = []
        secrets = self.secrets
        for db in self.databases:
            bundle = WorkloadBundle(
                layer=self.layer,
                name=f"{self.name}-{db}",
                needs=DATABASE_NEEDS,
                path=f"manifests/{self.layer}/{self.name}/{db}",
                namespace=self.namespace,
                part_of=self.name,
                secrets=secrets,
                summary=f"{db} for {self.name}",
            )
            secrets = ()  # the app needs its database, so one sync of them is enough
            gate = Gate(
                layer=self.layer,
                name=f"{self.name}-{db}-ready",
                needs=(bundle.id,),
                checks=(rolled_out("statefulset", f"{self.name}-{db}", self.namespace),),
            )
            steps += [bundle, gate]
            gates.append(gate.id)
        needs = (*self.needs, *gates)
        if self.chart is not None:
            c = self.chart
            steps.append(
                c.release_class(
                    layer=self.layer,
                    name=self.name,
                    needs=needs,
                    release=c.release or self.name,
                    chart=c.chart,
                    version=c.version,
                    repo=c.repo,
                    namespace=self.namespace,
                    secrets=secrets,
                    summary=self.summary,
                )
            )
        else:
            steps.append(
                self.bundle(
                    layer=self.layer,
                    name=self.name,
                    needs=needs,
                    namespace=self.namespace,
                    part_of=self.name,
                    secrets=secrets,
                    summary=self.summary,
                )
            )
        return steps

    def workload_refs(self, step: Component, ctx: RunContext) -> list[tuple[str, str, str]]:
        """What runs for ``step``: (kind, name, namespace) of its Deployments/StatefulSets."""
        if isinstance(step, HelmRelease) and self.chart is not None:
            return [(k, n, self.namespace) for k, n in self.chart.workloads]
        return workloads(step, ctx)


def removal_commands(
    workload: Workload, graph: Graph, ctx: RunContext, *, purge: bool
) -> list[Command]:
    """Delete the workload's objects, app first; keep its volumes unless ``purge``."""
    own = [graph[c.id] for c in workload.components()]
    commands: list[Command] = []
    for step in reversed(own):
        if isinstance(step, HelmRelease):
            commands.append(
                ctx.helm(
                    "uninstall",
                    step.release,
                    "--namespace",
                    step.namespace,
                    "--ignore-not-found",
                    "--wait",
                )
            )
        elif isinstance(step, ManifestBundle):
            docs = [
                d
                for d in yaml.safe_load_all(step.rendered(ctx))
                if isinstance(d, dict) and d.get("kind") not in KEPT_KINDS
            ]
            if docs:
                commands.append(
                    ctx.kubectl(
                        "delete",
                        "--ignore-not-found",
                        "--wait=true",
                        "-f",
                        "-",
                        stdin=yaml.safe_dump_all(docs, sort_keys=False).encode(),
                    )
                )
    if purge:
        # the namespace takes its PersistentVolumeClaims (and so the Longhorn volumes) with it
        commands.append(
            ctx.kubectl(
                "delete", "namespace", workload.namespace, "--ignore-not-found", "--wait=true"
            )
        )
    return commands


def workload_collection(
    layer: str,
    doc: str | None,
    declared: Callable[[Inventory], Sequence[Workload]],
    *,
    catalog: Catalog = default_catalog,
    noun: str = "app",
) -> Any:
    """The ``<layer>`` collection: list, deploy, status and remove, by workload name."""
    from invoke import Collection, task

    a_noun = f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"

    def find(inv: Inventory, names: Sequence[str]) -> list[Workload]:
        by_name = {w.name: w for w in declared(inv)}
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise OneclusterError(
                f"unknown {noun} {', '.join(map(repr, unknown))}; "
                f"known {noun}s: {', '.join(by_name)}"
            )
        return [by_name[n] for n in names] if names else list(by_name.values())

    def one(inv: Inventory, name: str | None) -> Workload:
        if not name:
            known = ", ".join(w.name for w in declared(inv))
            raise OneclusterError(f"--name is required; known {noun}s: {known}")
        return find(inv, [name])[0]

    def print_queries(inv: Inventory, graph: Graph, chosen: Sequence[Workload]) -> None:
        """--dry-run of the read-only tasks: the cluster queries they would make, none made."""
        with run_context(inv, dry_run=True, fetch_kubeconfig=False) as ctx:
            commands = [api_probe(ctx).command]
            for w in chosen:
                own = [graph[s.id] for s in w.components()]
                commands += [p.command for s in own for p in probes(s, ctx)]
                commands += [
                    rollout_probe(*ref, ctx).command for s in own for ref in w.workload_refs(s, ctx)
                ]
        commands = list(dict.fromkeys(commands))  # steps of one app share some checks
        echo(f"# dry-run: {len(commands)} read-only queries would run; none was run")
        for command in commands:
            echo(f"$ {command.display()}")

    def list_(c, cluster=None, dry_run=False):
        inv = load_inventory(cluster)
        graph = build_graph(catalog, inv)
        if dry_run:
            print_queries(inv, graph, find(inv, []))
            return
        rows = []
        with run_context(inv, dry_run=True, fetch_kubeconfig=False) as ctx:
            reachable = holds(api_probe(ctx), ctx)
            for w in find(inv, []):
                main = graph[w.id]
                own = {c.id for c in w.components()}
                outside = sorted(n for c in own for n in graph[c].needs if n not in own)
                deployed = healthy = "-"
                if reachable:
                    placed = all(in_place(graph[i], ctx) for i in own)
                    deployed = "yes" if placed else "no"
                    refs = [r for i in own for r in w.workload_refs(graph[i], ctx)]
                    healthy = (
                        "yes" if placed and all(rolled_out_now(*r, ctx) for r in refs) else "no"
                    )
                rows.append(
                    (w.name, w.namespace, ", ".join(outside), deployed, healthy, main.summary)
                )
        echo(table((noun, "namespace", "needs", "deployed", "healthy", "what"), rows))
        if not reachable:
            echo("\n(no cluster answered: deployed/healthy are unknown)")

    list_.__doc__ = f"List each {noun}, what it needs, and (with a cluster) whether it is healthy."

    def deploy(c, name=None, cluster=None, dry_run=False, jobs=4):
        inv = load_inventory(cluster)
        chosen = find(inv, name or [])
        graph = build_graph(catalog, inv)
        with run_context(inv, dry_run=True, fetch_kubeconfig=False) as ctx:
            sel = missing_steps(graph, [w.id for w in chosen], ctx)
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
            catalog,
            cluster=cluster,
            targets=sel.run,
            with_needs=False,
            dry_run=dry_run,
            jobs=int(jobs),
        )

    deploy.__doc__ = (
        f"Deploy {noun}s by name (all if none) plus whatever they need that is not in place."
    )

    def status(c, name=None, cluster=None, dry_run=False):
        inv = load_inventory(cluster)
        w = one(inv, name)
        graph = build_graph(catalog, inv)
        if dry_run:
            print_queries(inv, graph, [w])
            return
        with run_context(inv, dry_run=True, fetch_kubeconfig=False) as ctx:
            if not holds(api_probe(ctx), ctx):
                raise OneclusterError(
                    f"the cluster API does not answer, so {w.name}'s state is unknown "
                    "(fix: point $KUBECONFIG at the cluster)"
                )
            own = [graph[s.id] for s in w.components()]
            rows = [(s.id, s.kind, "yes" if in_place(s, ctx) else "no") for s in own]
            echo(table(("step", "kind", "in place"), rows))
            refs = [r for s in own for r in w.workload_refs(s, ctx)]
            ready = [
                (f"{k}/{n}", ns, "yes" if rolled_out_now(k, n, ns, ctx) else "no")
                for k, n, ns in refs
            ]
        echo("")
        echo(table(("workload", "namespace", "rolled out"), ready))
        if not all(r[2] == "yes" for r in rows) or not all(r[2] == "yes" for r in ready):
            raise OneclusterError(f"{w.name} is not fully deployed and healthy (see above)")

    status.__doc__ = f"Show whether {a_noun}'s steps are in place and its workloads rolled out."

    def remove(c, name=None, cluster=None, purge=False, yes=False, dry_run=False):
        inv = load_inventory(cluster)
        w = one(inv, name)
        if purge and not (yes or dry_run):
            raise ConfirmationRequired(
                f"--purge deletes {w.name}'s volumes and namespace {w.namespace} for good; "
                "re-run with --yes to confirm (or --dry-run to see the commands)"
            )
        graph = build_graph(catalog, inv)
        with run_context(inv, dry_run=dry_run, fetch_kubeconfig=False) as ctx:
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

    remove.__doc__ = f"Remove {a_noun}, keeping its volumes (--purge --yes deletes them too)."

    shared = help_for(
        "cluster", dry_run="print the read-only cluster queries it would make, and make none"
    )
    name_help = f"{noun} name (see `invoke {layer}.list`)"
    ns = Collection(layer)
    ns.__doc__ = doc
    ns.add_task(task(help=shared)(user_errors(list_)), name="list")
    ns.add_task(
        task(
            help=help_for(
                "cluster",
                "dry_run",
                "jobs",
                name=f"{name_help}; repeatable; none deploys every {noun}",
            ),
            iterable=["name"],
        )(user_errors(deploy)),
        name="deploy",
    )
    ns.add_task(task(help={**shared, "name": name_help})(user_errors(status)), name="status")
    ns.add_task(
        task(
            help=help_for(
                "cluster",
                "dry_run",
                name=name_help,
                purge="also delete its volumes and namespace (needs --yes)",
                yes="confirm --purge",
            )
        )(user_errors(remove)),
        name="remove",
    )
    return ns
