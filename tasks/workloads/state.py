"""What is already deployed: read-only probes per step, and the steps a deploy still has to run.

``apps.deploy --name mealie`` runs Mealie's own steps plus only those of its needs that are not
in place yet. Each kind of step has a cheap read-only probe (a Helm release ``deployed``, every
object of a manifest bundle present, a Secret present, a gate's condition holding right now). An
in-place need is not probed further: what it needed was in place when it was deployed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..engine import yamlio
from ..engine.components import Component, ManifestBundle
from ..engine.context import RunContext
from ..engine.graph import Graph
from ..engine.probes import PROBE_TIMEOUT, Probe, api_probe, holds, quick

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")


@dataclass
class Selection:
    """What a targeted deploy runs, and what it found in place (both in graph order)."""

    run: list[str]
    in_place: list[str] = field(default_factory=list)
    # steps no deploy of an app may run (Talos): a missing one is a cluster to build first
    blocked: list[str] = field(default_factory=list)


def missing_steps(
    graph: Graph,
    targets: Sequence[str],
    ctx: RunContext,
    *,
    never_run_layers: Iterable[str],
) -> Selection:
    """``targets`` (always run) plus every need not in place, walking needs from the targets down.

    Layers in ``never_run_layers`` are probed once through the API: when the cluster answers they
    are in place; when it does not, they are reported as ``blocked`` and nothing else is probed.
    """
    never = set(never_run_layers)
    reachable = holds(api_probe(ctx), ctx)
    chosen = {graph.resolve(t) for t in targets}
    present: set[str] = set()
    blocked: set[str] = set()
    seen = set(chosen)
    queue = [n for t in chosen for n in graph[t].needs]
    while queue:
        cid = queue.pop(0)
        if cid in seen:
            continue
        seen.add(cid)
        step = graph[cid]
        if step.layer in never:
            (present if reachable else blocked).add(cid)
            continue
        if reachable and step.in_place(ctx):
            present.add(cid)
            continue
        chosen.add(cid)
        queue.extend(step.needs)
    order = graph.order
    return Selection(
        run=[i for i in order if i in chosen],
        in_place=[i for i in order if i in present],
        blocked=[i for i in order if i in blocked],
    )


def workloads(step: Component, ctx: RunContext) -> list[tuple[str, str, str]]:
    """``(kind, name, namespace)`` of every Deployment/StatefulSet/DaemonSet a bundle applies."""
    if not isinstance(step, ManifestBundle):
        return [tuple(w) for w in getattr(step, "workloads", ())]
    found = []
    for doc in yamlio.load_all(step.rendered(ctx)):
        if isinstance(doc, dict) and doc.get("kind") in WORKLOAD_KINDS:
            meta = doc.get("metadata", {})
            found.append((doc["kind"].lower(), meta["name"], meta.get("namespace", "default")))
    return found


def rollout_probe(kind: str, name: str, namespace: str, ctx: RunContext) -> Probe:
    """The read-only check that a workload has finished rolling out."""
    return Probe(
        f"{kind}/{name} rolled out",
        quick(ctx.kubectl.rollout_status(kind, name, namespace, PROBE_TIMEOUT)),
    )


def rolled_out_now(kind: str, name: str, namespace: str, ctx: RunContext) -> bool:
    """Whether a workload has finished rolling out (all replicas updated and available)."""
    return holds(rollout_probe(kind, name, namespace, ctx), ctx)
