"""Apps and assistants as one declaration each.

A :class:`Workload` is what a person means by "an app": its own steps (its databases, each gated
on its StatefulSet rolling out, then the app itself, from manifests or a pinned chart), in its own
namespace, with the platform steps it needs. ``tasks.py`` beside this gives a layer the tasks
``list``, ``deploy --name``, ``status --name`` and ``remove --name`` over its workloads.

A database is generated, not written per app: each kind has one template in the project,
``manifests/databases/<kind>.yaml`` (``postgres``, ``mysql``, ``redis``): its StatefulSet,
headless Service (and what else the kind needs, e.g. Redis's
NetworkPolicy), filled per app with ``((database.name))`` (``<app>-<kind>``, also its Secret's
name), ``((database.namespace))``, ``((database.app))`` (its database and user names, its
``part-of`` label) and ``((database.size))`` (its volume), beside the inventory's placeholders.
So adding an app with a PostgreSQL database is one declaration (``databases=("postgres",)``, and
among its ``secrets`` the Secret ``<app>-postgres`` with key ``password``) plus the app's own
manifests under ``manifests/<layer>/<app>/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..engine import yamlio
from ..engine.command import Command
from ..engine.components import Component, HelmRelease, ManifestBundle, SecretSpec
from ..engine.context import RunContext
from ..engine.errors import OneclusterError
from ..engine.gates import Gate, rolled_out
from ..engine.graph import Graph
from ..engine.inventory import REPO_ROOT
from ..engine.kubectl import namespace_manifest
from .state import workloads

# what every database step needs: Longhorn's RWO class
# a database's NetworkPolicy (Redis) holds only once kube-network-policies enforces it
DATABASE_NEEDS = ("storage/longhorn-ready", "network/network-policies-ready")
# the one template per database kind: <kind>.yaml (repo-relative)
DATABASE_TEMPLATES = "manifests/databases"
# a database's volume unless its declaration says otherwise
DEFAULT_DATABASE_SIZE = "10Gi"
# kinds ``remove`` keeps unless --purge: the data, and the namespace that holds it
KEPT_KINDS = ("Namespace", "PersistentVolumeClaim")


@dataclass(frozen=True, kw_only=True)
class WorkloadBundle(ManifestBundle):
    """A manifest bundle that applies its namespace too, so each bundle of an app stands alone."""

    namespace: str
    part_of: str = ""

    def namespace_doc(self) -> str:
        return yamlio.dump(
            namespace_manifest(
                self.namespace, {"app.kubernetes.io/part-of": self.part_of or self.name}
            )
        )

    def rendered(self, ctx: RunContext) -> str:
        return "\n---\n".join([self.namespace_doc(), super().rendered(ctx)])


@dataclass(frozen=True)
class Database:
    """One database of an app: a kind with a template in manifests/databases/, and its volume."""

    kind: str  # postgres, mysql, redis: manifests/databases/<kind>.yaml
    size: str = DEFAULT_DATABASE_SIZE


@dataclass(frozen=True, kw_only=True)
class DatabaseBundle(WorkloadBundle):
    """One database of an app: its kind's template filled with the app's names, then applied."""

    database: str  # the kind, e.g. postgres
    size: str = DEFAULT_DATABASE_SIZE
    path: str = DATABASE_TEMPLATES

    @property
    def template(self) -> Path:
        return self.directory / f"{self.database}.yaml"

    def files(self) -> list[Path]:
        return [self.template]

    def placeholders(self) -> dict[str, str]:
        """The template's own placeholders, filled beside the inventory's."""
        return {
            "database.name": self.name,
            "database.namespace": self.namespace,
            "database.app": self.part_of,
            "database.size": self.size,
        }


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
    # its databases, each from the template of its kind (a kind alone, e.g. "postgres", has the
    # default size): a StatefulSet called <name>-<kind>, deployed and rolled out before the app
    databases: tuple[str | Database, ...] = ()
    # Secrets synced from Infisical before the first of its steps
    secrets: tuple[SecretSpec, ...] = ()
    chart: Chart | None = None
    bundle: type[WorkloadBundle] = WorkloadBundle

    @property
    def id(self) -> str:
        return f"{self.layer}/{self.name}"

    def database_specs(self) -> list[Database]:
        """Its databases, a kind alone (``"postgres"``) standing for one of the default size."""
        specs = [Database(d) if isinstance(d, str) else d for d in self.databases]
        for db in specs:
            if not (REPO_ROOT / DATABASE_TEMPLATES / f"{db.kind}.yaml").is_file():
                kinds = sorted(p.stem for p in (REPO_ROOT / DATABASE_TEMPLATES).glob("*.yaml"))
                raise OneclusterError(
                    f"{self.id}: no database template for {db.kind!r} in {DATABASE_TEMPLATES}/ "
                    f"(use one of {', '.join(kinds)}, or add {db.kind}.yaml there)"
                )
        return specs

    def components(self) -> list[Component]:
        """The graph steps of this workload, the app itself last."""
        steps: list[Component] = []
        gates: list[str] = []
        specs = self.database_specs()
        names = {f"{self.name}-{db.kind}" for db in specs}
        # a database's own Secret (named like it) is synced before that database; the rest before
        # the app
        secrets = tuple(s for s in self.secrets if s.name not in names)
        for db in specs:
            name = f"{self.name}-{db.kind}"
            bundle = DatabaseBundle(
                layer=self.layer,
                name=name,
                needs=DATABASE_NEEDS,
                database=db.kind,
                size=db.size,
                namespace=self.namespace,
                part_of=self.name,
                secrets=tuple(s for s in self.secrets if s.name == name),
                summary=f"{db.kind} for {self.name}",
            )
            gate = Gate(
                layer=self.layer,
                name=f"{bundle.name}-ready",
                needs=(bundle.id,),
                checks=(rolled_out("statefulset", bundle.name, self.namespace),),
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
            commands.append(ctx.helm.uninstall(step.release, step.namespace))
        elif isinstance(step, ManifestBundle):
            docs = [
                d
                for d in yamlio.load_all(step.rendered(ctx))
                if isinstance(d, dict) and d.get("kind") not in KEPT_KINDS
            ]
            if docs:
                commands.append(ctx.kubectl.delete_stream(yamlio.dump_all(docs).encode()))
    if purge:
        # the namespace takes its PersistentVolumeClaims (and so the Longhorn volumes) with it
        commands.append(
            ctx.kubectl(
                "delete", "namespace", workload.namespace, "--ignore-not-found", "--wait=true"
            )
        )
    return commands
