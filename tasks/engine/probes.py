"""Read-only probes: the cheap questions that say whether a step is already in place.

A probe is a question, not a wait: every ``--timeout=`` of a gate's command is shortened, and the
command itself gets a deadline. Probes run even in a dry-run (they only read).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from . import yamlio
from .command import Command
from .context import RunContext
from .errors import OneclusterError

PROBE_TIMEOUT = "5s"
PROBE_SECONDS = 20.0
# `kubectl get` as a question: names only, answered fast (followed by what to look for)
GET_NAMES = ("get", f"--request-timeout={PROBE_TIMEOUT}", "-o", "name")


@dataclass(frozen=True)
class Probe:
    """One read-only command that succeeds (and whose output ``accept`` likes) when in place."""

    what: str
    command: Command
    accept: Callable[[str], bool] | None = None


def quick(command: Command) -> Command:
    """The same command with every ``--timeout=`` shortened, so a gate check becomes a question."""
    args = tuple(
        f"--timeout={PROBE_TIMEOUT}" if a.startswith("--timeout=") else a for a in command.args
    )
    return dataclasses.replace(command, args=args, timeout=PROBE_SECONDS)


def api_probe(ctx: RunContext) -> Probe:
    """The Kubernetes API answers (the cluster exists and the kubeconfig reaches it)."""
    return Probe(
        "Kubernetes API ready",
        quick(ctx.kubectl("get", "--raw", "/readyz", f"--request-timeout={PROBE_TIMEOUT}")),
    )


def holds(probe: Probe, ctx: RunContext) -> bool:
    """Run one probe (even in a dry-run: it only reads)."""
    try:
        result = ctx.executor.query(probe.command)
    except OneclusterError:
        return False
    return probe.accept is None or probe.accept(result.stdout)


def object_refs(stream: str) -> dict[str, list[str]]:
    """``kind.group/name`` of every object in a YAML stream, grouped by namespace ("" = cluster).

    Naming each object (rather than ``get -f -``) makes a probe say which objects it looks for.
    """
    grouped: dict[str, list[str]] = {}
    for doc in yamlio.load_all(stream):
        if not isinstance(doc, dict) or "kind" not in doc:
            continue
        group = doc.get("apiVersion", "v1").rpartition("/")[0]
        kind = doc["kind"].lower() + (f".{group}" if group else "")
        meta = doc.get("metadata", {})
        namespace = meta.get("namespace", "") if doc["kind"] != "Namespace" else ""
        grouped.setdefault(namespace, []).append(f"{kind}/{meta['name']}")
    return grouped
