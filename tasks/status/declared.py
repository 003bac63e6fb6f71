"""What the stack declares, as cluster.status checks it: one entry per release or bundle that runs
something, with the workloads, databases, claims and certificates that belong to it.

Read from the catalogue's components alone (no cluster): a Helm release's pinned chart; a manifest
bundle's rendered Deployments, StatefulSets, DaemonSets, PersistentVolumeClaims and Certificates;
the workloads its gates wait for (``rolled_out`` names them); an app's databases (its
``DatabaseBundle`` steps, each a StatefulSet). A Helm release's own workloads are found live, by the
release annotations Helm puts on every object it creates (:data:`.objects.HELM_RELEASE`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..engine import yamlio
from ..engine.components import Component, HelmRelease, ManifestBundle
from ..engine.context import RunContext
from ..engine.gates import Gate
from ..workloads.workload import DatabaseBundle, WorkloadBundle

Ref = tuple[str, str, str]  # (kind lowercased, name, namespace)
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")


@dataclass
class Unit:
    """One declared release or bundle the status reports on."""

    id: str
    layer: str
    name: str
    kind: str  # helm, manifests
    namespace: str = ""
    release: tuple[str, str] | None = None  # (namespace, release name)
    chart: str = ""  # the pinned chart as helm list writes it: <chart>-<version>
    workloads: list[Ref] = field(default_factory=list)
    databases: list[Ref] = field(default_factory=list)
    claims: list[tuple[str, str]] = field(default_factory=list)  # (namespace, name)
    certificates: list[tuple[str, str]] = field(default_factory=list)
    # the namespace is this unit's alone: what else lives there (volumes, certificates) is its
    owns_namespace: bool = False


def _rendered(step: ManifestBundle, ctx: RunContext) -> list[dict]:
    return [d for d in yamlio.load_all(step.rendered(ctx)) if isinstance(d, dict) and d.get("kind")]


def _add(found: list, item: object) -> None:
    if item not in found:
        found.append(item)


def units(steps: Sequence[Component], ctx: RunContext) -> list[Unit]:
    """The units of ``steps`` (a catalogue's, in plan order)."""
    by_id: dict[str, Unit] = {}
    databases: list[DatabaseBundle] = []
    for step in steps:
        if isinstance(step, DatabaseBundle):
            databases.append(step)
        elif isinstance(step, HelmRelease):
            by_id[step.id] = Unit(
                step.id, step.layer, step.name, "helm", step.namespace,
                release=(step.namespace, step.release),
                chart=f"{step.chart.rsplit('/', 1)[-1]}-{step.version}",
            )  # fmt: skip
        elif isinstance(step, ManifestBundle):
            unit = Unit(step.id, step.layer, step.name, "manifests")
            if isinstance(step, WorkloadBundle):
                unit.namespace = step.namespace
            for doc in _rendered(step, ctx):
                meta = doc.get("metadata") or {}
                ns, name = meta.get("namespace", unit.namespace or "default"), meta.get("name", "")
                if doc["kind"] in WORKLOAD_KINDS:
                    _add(unit.workloads, (doc["kind"].lower(), name, ns))
                elif doc["kind"] == "PersistentVolumeClaim":
                    _add(unit.claims, (ns, name))
                elif doc["kind"] == "Certificate":
                    _add(unit.certificates, (ns, name))
                if not unit.namespace and doc["kind"] in WORKLOAD_KINDS:
                    unit.namespace = ns
            by_id[step.id] = unit
    for db in databases:
        app = by_id.get(f"{db.layer}/{db.part_of}")
        if app is not None:
            _add(app.databases, ("statefulset", db.name, db.namespace))
    for step in steps:
        if isinstance(step, Gate):
            for check in step.checks:
                if check.workload is not None:
                    _attach(by_id, step, check.workload)
    found = [
        u for u in by_id.values()
        if u.release or u.workloads or u.databases or u.claims or u.certificates
    ]  # fmt: skip
    per_namespace: dict[str, int] = {}
    for u in found:
        per_namespace[u.namespace] = per_namespace.get(u.namespace, 0) + 1
    for u in found:
        u.owns_namespace = bool(u.namespace) and per_namespace[u.namespace] == 1
    return found


def _attach(by_id: dict[str, Unit], gate: Gate, ref: Ref) -> None:
    """A gate's workload belongs to the unit of its namespace among the gate's needs, else to the
    release of its layer in that namespace (Longhorn's CSI plugin, made by its driver deployer)."""
    _, name, namespace = ref
    if any(name == db[1] and namespace == db[2] for u in by_id.values() for db in u.databases):
        return  # a database's own gate: the database is reported as one
    needed = [by_id[n] for n in gate.needs if n in by_id]
    candidates = [u for u in needed if u.namespace == namespace] or [
        u for u in by_id.values() if u.layer == gate.layer and u.namespace == namespace
    ]
    if candidates:
        # the unit whose name the workload's starts with, the longest such (kube-vip-cloud-provider
        # is not kube-vip's), else a release before a bundle
        named = sorted(
            (u for u in candidates if name.startswith(u.name)), key=lambda u: -len(u.name)
        )
        helm = [u for u in candidates if u.kind == "helm"]
        _add((named or helm or candidates)[0].workloads, ref)
