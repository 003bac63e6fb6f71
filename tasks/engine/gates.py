"""Health gates: a step that waits for exactly what the next steps need, and the checks they use.

A gate's checks are kubectl waits with a timeout; when one fails, the gate reports what it waited
for and what the cluster showed (``observe``), so a failure says more than "timed out".

A gate whose steps a run left unchanged need not wait on each object in turn: every gate's
targets are read in one ``kubectl get`` (:meth:`Gate.confirm_reads`, issued with the run's other
converge reads) and judged by kubectl's own rules (:mod:`tasks.engine.readiness`); a check that
does not hold there, or has no targets, runs its real wait (:meth:`Gate.settled`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from . import readiness
from .command import Command
from .components import Component, existing_objects_command
from .context import RunContext
from .errors import GateError, OneclusterError
from .probes import Probe, quick
from .record import cached
from .record import probe as converge_read

GATE_OBJECTS = "converge.gate-objects"


@dataclass(frozen=True)
class Target:
    """One object a check waits for, and what one read of it must show (``holds``)."""

    kind: str  # as kubectl names it: deployment, crd, ... (readiness.KINDS)
    name: str
    namespace: str = ""
    holds: Callable[[dict], bool] = readiness.exists

    @property
    def key(self) -> tuple[str, str, str]:
        return (readiness.KINDS[self.kind][1], self.namespace, self.name)

    def stub(self) -> dict:
        """The object as ``kubectl get -f -`` takes it: apiVersion, kind, name, namespace."""
        api_version, kind = readiness.KINDS[self.kind]
        meta = {"name": self.name, **({"namespace": self.namespace} if self.namespace else {})}
        return {"apiVersion": api_version, "kind": kind, "metadata": meta}


@dataclass(frozen=True)
class Check:
    """One thing a gate waits for: a command that succeeds once it holds, and what it means."""

    what: str
    command: Callable[[RunContext], Command]
    observe: Callable[[RunContext], Command] | None = None
    # the workload it waits for, as (kind, name, namespace), when it is one (cluster.status)
    workload: tuple[str, str, str] | None = None
    # the objects it waits for, judged from one read (empty: only its command can tell)
    targets: tuple[Target, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Gate(Component):
    """A health gate: waits for exactly what the next components need, with a timeout."""

    kind: ClassVar[str] = "gate"
    binaries: ClassVar[tuple[str, ...]] = ("kubectl",)
    reads_only: ClassVar[bool] = True

    checks: tuple[Check, ...]

    def commands(self, ctx: RunContext) -> list[Command]:
        return [c.command(ctx) for c in self.checks]

    def describe(self, ctx: RunContext) -> str:
        return self.summary or "wait for " + "; ".join(c.what for c in self.checks)

    def probes(self, ctx: RunContext) -> list[Probe]:
        return [Probe(c.what, quick(c.command(ctx))) for c in self.checks]

    @classmethod
    def confirm_reads(cls, ctx: RunContext, steps: Sequence[Component]) -> None:
        """Every gate's targets, in one ``kubectl get`` (not in a dry-run: its gates print)."""
        if ctx.dry_run:
            return
        gates = [s for s in steps if isinstance(s, Gate)]
        cached(ctx, GATE_OBJECTS, lambda: _read_targets(ctx, gates))

    def settled(self, ctx: RunContext) -> bool:
        """Whether the run's one read of every gate's targets shows each check holding (read
        now if no converge read made it); False when a check has no targets or cannot tell."""
        if ctx.dry_run or not self.checks or not all(c.targets for c in self.checks):
            return False
        try:
            found = cached(ctx, GATE_OBJECTS, lambda: _read_targets(ctx, [self]))
        except (OneclusterError, ValueError, AttributeError):
            return False
        return all(t.key in found and t.holds(found[t.key]) for c in self.checks for t in c.targets)

    def run(self, ctx: RunContext) -> None:
        for check in self.checks:
            try:
                ctx.run(check.command(ctx), prefix=f"[{self.id}] $ ")
            except OneclusterError as exc:
                seen = str(exc)
                if check.observe is not None:
                    try:
                        seen += "\n" + ctx.executor.query(check.observe(ctx)).stdout
                    except OneclusterError as inner:
                        seen += f"\n(could not observe: {inner})"
                raise GateError(f"{self.id}: waited for {check.what}; saw:\n{seen}") from None


def targets_command(ctx: RunContext, gates: Sequence[Gate]) -> Command | None:
    """``kubectl get --ignore-not-found -o json -f -`` of every target of ``gates`` (one JSON
    List of stubs: apiVersion, kind, name, namespace); None when they have none."""
    stubs = {t.key: t.stub() for g in gates for c in g.checks for t in c.targets}
    if not stubs:
        return None
    body = json.dumps({"apiVersion": "v1", "kind": "List", "items": list(stubs.values())})
    return existing_objects_command(ctx, body)


def _read_targets(ctx: RunContext, gates: Sequence[Gate]) -> dict[tuple[str, str, str], dict]:
    """The targets of ``gates`` that exist, by (kind, namespace, name), in one read."""
    command = targets_command(ctx, gates)
    if command is None:
        return {}
    out = converge_read(ctx, command).stdout
    if not out.strip():
        return {}
    found = json.loads(out)
    items = found.get("items", []) if found.get("kind") == "List" else [found]
    objects = {}
    for obj in items:
        meta = (obj.get("metadata") or {}) if isinstance(obj, dict) else {}
        if meta.get("name"):
            objects[(str(obj.get("kind")), str(meta.get("namespace") or ""), meta["name"])] = obj
    return objects


def gate_after(
    steps: Component | Sequence[Component], *checks: Check, name: str = "", summary: str = ""
) -> Gate:
    """The gate that follows ``steps``: it needs them and waits for ``checks``.

    Named ``<first step>-ready`` unless ``name`` says otherwise, in the first step's layer.
    """
    before = (steps,) if isinstance(steps, Component) else tuple(steps)
    first = before[0]
    return Gate(
        layer=first.layer,
        name=name or f"{first.name}-ready",
        needs=tuple(s.id for s in before),
        checks=checks,
        summary=summary,
    )


def crds_established(names: Sequence[str], timeout: str = "120s") -> Check:
    """Every named CRD reports condition Established."""
    return Check(
        what=f"CRDs Established: {', '.join(names)}",
        command=lambda ctx: ctx.kubectl.wait("Established", [f"crd/{n}" for n in names], timeout),
        observe=lambda ctx: ctx.kubectl("get", "crd", *names, "-o", "wide"),
        targets=tuple(Target("crd", n, holds=_condition("Established")) for n in names),
    )


def rolled_out(kind: str, name: str, namespace: str, timeout: str = "300s") -> Check:
    """A Deployment, DaemonSet or StatefulSet finished rolling out."""
    return Check(
        what=f"{kind}/{name} in {namespace} rolled out",
        command=lambda ctx: ctx.kubectl.rollout_status(kind, name, namespace, timeout),
        observe=lambda ctx: ctx.kubectl("get", kind, name, "-n", namespace, "-o", "wide"),
        workload=(kind, name, namespace),
        targets=_targets(kind, name, namespace, readiness.rolled_out),
    )


def resource_exists(kind: str, name: str, namespace: str = "", timeout: str = "120s") -> Check:
    """A resource exists (e.g. the StorageClass another component claims from)."""
    ns = ("-n", namespace) if namespace else ()
    return Check(
        what=f"{kind}/{name} present",
        command=lambda ctx: ctx.kubectl.wait("create", [f"{kind}/{name}"], timeout, *ns),
        observe=lambda ctx: ctx.kubectl("get", kind, *ns),
        targets=_targets(kind, name, namespace, readiness.exists),
    )


def condition(kind: str, name: str, namespace: str, cond: str, timeout: str = "300s") -> Check:
    """A resource reports a status condition (e.g. a Gateway ``Programmed``)."""
    return Check(
        what=f"{kind}/{name} in {namespace} {cond}",
        command=lambda ctx: ctx.kubectl.wait(cond, [f"{kind}/{name}"], timeout, "-n", namespace),
        observe=lambda ctx: ctx.kubectl("get", kind, name, "-n", namespace, "-o", "yaml"),
        targets=_targets(kind, name, namespace, _condition(cond)),
    )


def _targets(
    kind: str, name: str, namespace: str, holds: Callable[[dict], bool]
) -> tuple[Target, ...]:
    """The check's one target, when its kind is one whose apiVersion onecluster knows."""
    return (Target(kind, name, namespace, holds),) if kind in readiness.KINDS else ()


def _condition(name: str) -> Callable[[dict], bool]:
    return lambda obj: readiness.condition_met(obj, name)
