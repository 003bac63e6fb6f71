"""What is already deployed: read-only probes per step, and the steps a deploy still has to run.

``apps.deploy --name mealie`` runs Mealie's own steps plus only those of its needs that are not
in place yet. Each kind of step has a cheap read-only probe (a Helm release ``deployed``, every
object of a manifest bundle present, a Secret present, a gate's condition holding right now). An
in-place need is not probed further: what it needed was in place when it was deployed.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import yaml

from .command import Command
from .components import (
    Component,
    CrdBundle,
    Gate,
    HelmRelease,
    ManifestBundle,
    SecretSync,
    TalosStep,
)
from .context import RunContext
from .errors import OneclusterError
from .graph import Graph

# A probe must answer fast: it is a question, not a wait.
PROBE_TIMEOUT = "5s"
PROBE_SECONDS = 20.0
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")


@dataclass(frozen=True)
class Probe:
    """One read-only command that succeeds (and whose output ``accept`` likes) when in place."""

    what: str
    command: Command
    accept: Callable[[str], bool] | None = None


def _quick(command: Command) -> Command:
    """The same command with every ``--timeout=`` shortened, so a gate check becomes a question."""
    args = tuple(
        f"--timeout={PROBE_TIMEOUT}" if a.startswith("--timeout=") else a for a in command.args
    )
    return dataclasses.replace(command, args=args, timeout=PROBE_SECONDS)


def _helm_deployed(stdout: str) -> bool:
    try:
        return json.loads(stdout)["info"]["status"] == "deployed"
    except (ValueError, KeyError, TypeError):
        return False


def api_probe(ctx: RunContext) -> Probe:
    """The Kubernetes API answers (the cluster exists and the kubeconfig reaches it)."""
    return Probe(
        "Kubernetes API ready",
        _quick(ctx.kubectl("get", "--raw", "/readyz", f"--request-timeout={PROBE_TIMEOUT}")),
    )


def probes(step: Component, ctx: RunContext) -> list[Probe]:
    """The read-only checks that together say ``step`` is in place (empty: cannot tell)."""
    custom = getattr(step, "probes", None)
    if callable(custom):
        return list(custom(ctx))
    get = ("get", f"--request-timeout={PROBE_TIMEOUT}", "-o", "name")
    if isinstance(step, TalosStep):
        return [api_probe(ctx)]
    if isinstance(step, SecretSync):
        return [
            Probe(
                f"Secret {s.namespace}/{s.name}",
                _quick(ctx.kubectl(*get, "secret", s.name, "-n", s.namespace)),
            )
            for s in step.secrets
        ]
    if isinstance(step, HelmRelease):
        return [
            Probe(
                f"helm release {step.namespace}/{step.release} deployed",
                _quick(
                    ctx.helm(
                        "status", step.release, "--namespace", step.namespace, "--output", "json"
                    )
                ),
                _helm_deployed,
            )
        ]
    if isinstance(step, ManifestBundle):
        return [
            Probe(
                f"{step.id}: {' '.join(refs)} in {ns or 'the cluster'}",
                _quick(ctx.kubectl(*get, *(("-n", ns) if ns else ()), *refs)),
            )
            for ns, refs in object_refs(step.rendered(ctx)).items()
        ]
    if isinstance(step, CrdBundle):
        return [
            Probe(f"CRDs from {src}", _quick(ctx.kubectl(*get, "-f", src))) for src in step.sources
        ]
    if isinstance(step, Gate):
        return [Probe(c.what, _quick(c.command(ctx))) for c in step.checks]
    return []


def object_refs(stream: str) -> dict[str, list[str]]:
    """``kind.group/name`` of every object in a YAML stream, grouped by namespace ("" = cluster).

    Naming each object (rather than ``get -f -``) makes a probe say which objects it looks for.
    """
    grouped: dict[str, list[str]] = {}
    for doc in yaml.safe_load_all(stream):
        if not isinstance(doc, dict) or "kind" not in doc:
            continue
        group = doc.get("apiVersion", "v1").rpartition("/")[0]
        kind = doc["kind"].lower() + (f".{group}" if group else "")
        meta = doc.get("metadata", {})
        namespace = meta.get("namespace", "") if doc["kind"] != "Namespace" else ""
        grouped.setdefault(namespace, []).append(f"{kind}/{meta['name']}")
    return grouped


def holds(probe: Probe, ctx: RunContext) -> bool:
    """Run one probe (even in a dry-run: it only reads)."""
    try:
        result = ctx.executor.query(probe.command)
    except OneclusterError:
        return False
    return probe.accept is None or probe.accept(result.stdout)


def in_place(step: Component, ctx: RunContext) -> bool:
    """Whether ``step`` is deployed already; a step with no probe never counts as in place."""
    found = probes(step, ctx)
    return bool(found) and all(holds(p, ctx) for p in found)


@dataclass
class Selection:
    """What a targeted deploy runs, and what it found in place (both in graph order)."""

    run: list[str]
    in_place: list[str] = field(default_factory=list)
    # steps no deploy of an app may run (Talos): a missing one is a cluster to build first
    blocked: list[str] = field(default_factory=list)
    cluster_reachable: bool = True


def missing_steps(
    graph: Graph,
    targets: Sequence[str],
    ctx: RunContext,
    *,
    check: Callable[[Component, RunContext], bool] = in_place,
    never_run_layers: Iterable[str] = ("talos",),
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
        if reachable and check(step, ctx):
            present.add(cid)
            continue
        chosen.add(cid)
        queue.extend(step.needs)
    order = graph.order
    return Selection(
        run=[i for i in order if i in chosen],
        in_place=[i for i in order if i in present],
        blocked=[i for i in order if i in blocked],
        cluster_reachable=reachable,
    )


def workloads(step: Component, ctx: RunContext) -> list[tuple[str, str, str]]:
    """``(kind, name, namespace)`` of every Deployment/StatefulSet/DaemonSet a bundle applies."""
    if not isinstance(step, ManifestBundle):
        return [tuple(w) for w in getattr(step, "workloads", ())]
    found = []
    for doc in yaml.safe_load_all(step.rendered(ctx)):
        if isinstance(doc, dict) and doc.get("kind") in WORKLOAD_KINDS:
            meta = doc.get("metadata", {})
            found.append((doc["kind"].lower(), meta["name"], meta.get("namespace", "default")))
    return found


def rollout_probe(kind: str, name: str, namespace: str, ctx: RunContext) -> Probe:
    """The read-only check that a workload has finished rolling out."""
    return Probe(
        f"{kind}/{name} rolled out",
        _quick(
            ctx.kubectl(
                "rollout", "status", f"{kind}/{name}", "-n", namespace, f"--timeout={PROBE_TIMEOUT}"
            )
        ),
    )


def rolled_out_now(kind: str, name: str, namespace: str, ctx: RunContext) -> bool:
    """Whether a workload has finished rolling out (all replicas updated and available)."""
    return holds(rollout_probe(kind, name, namespace, ctx), ctx)
