"""Health gates: a step that waits for exactly what the next steps need, and the checks they use.

A gate's checks are kubectl waits with a timeout; when one fails, the gate reports what it waited
for and what the cluster showed (``observe``), so a failure says more than "timed out".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from .command import Command
from .components import Component
from .context import RunContext
from .errors import GateError, OneclusterError
from .probes import Probe, quick


@dataclass(frozen=True)
class Check:
    """One thing a gate waits for: a command that succeeds once it holds, and what it means."""

    what: str
    command: Callable[[RunContext], Command]
    observe: Callable[[RunContext], Command] | None = None
    # the workload it waits for, as (kind, name, namespace), when it is one (cluster.status)
    workload: tuple[str, str, str] | None = None


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
    )


def rolled_out(kind: str, name: str, namespace: str, timeout: str = "300s") -> Check:
    """A Deployment, DaemonSet or StatefulSet finished rolling out."""
    return Check(
        what=f"{kind}/{name} in {namespace} rolled out",
        command=lambda ctx: ctx.kubectl.rollout_status(kind, name, namespace, timeout),
        observe=lambda ctx: ctx.kubectl("get", kind, name, "-n", namespace, "-o", "wide"),
        workload=(kind, name, namespace),
    )


def resource_exists(kind: str, name: str, namespace: str = "", timeout: str = "120s") -> Check:
    """A resource exists (e.g. the StorageClass another component claims from)."""
    ns = ("-n", namespace) if namespace else ()
    return Check(
        what=f"{kind}/{name} present",
        command=lambda ctx: ctx.kubectl.wait("create", [f"{kind}/{name}"], timeout, *ns),
        observe=lambda ctx: ctx.kubectl("get", kind, *ns),
    )


def condition(kind: str, name: str, namespace: str, cond: str, timeout: str = "300s") -> Check:
    """A resource reports a status condition (e.g. a Gateway ``Programmed``)."""
    return Check(
        what=f"{kind}/{name} in {namespace} {cond}",
        command=lambda ctx: ctx.kubectl.wait(cond, [f"{kind}/{name}"], timeout, "-n", namespace),
        observe=lambda ctx: ctx.kubectl("get", kind, name, "-n", namespace, "-o", "yaml"),
    )
