"""cluster.status end to end: the declared units, the reads under one deadline, the findings, the
report (narrowed by layer or name) and whether it is healthy. Read-only: no lock, no record."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ..engine.catalog import Catalog
from ..engine.command import check_tools, resolve_binary
from ..engine.context import run_context
from ..engine.errors import FlagError, OneclusterError, ToolMissingError
from ..engine.output import echo
from ..engine.poll import parse_duration
from .assess import assess
from .declared import units
from .findings import Facts
from .reads import ETCD, DeadlineExecutor, reads, take
from .report import document, render_json, render_table
from .rules import find


@dataclass(frozen=True)
class Outcome:
    """What a status printed, and its exit code (1 when any finding shown is an error)."""

    text: str
    exit_code: int


def _select(
    names: Sequence[str], layers: Sequence[str], known: Sequence, catalog: Catalog
) -> set[str]:
    bad_layers = [x for x in layers if x not in catalog.layers]
    if bad_layers:
        raise FlagError(
            f"--layer {', '.join(bad_layers)}: not a layer; use one of {', '.join(catalog.layers)}"
        )
    by_name = {u.name: u for u in known} | {u.id: u for u in known}
    bad = [n for n in names if n not in by_name]
    if bad:
        raise FlagError(
            f"--name {', '.join(bad)}: not a release, bundle or app the stack declares; known: "
            + ", ".join(u.name for u in known)
        )
    chosen = {u.id for u in known if (not layers or u.layer in layers)}
    if names:
        chosen &= {by_name[n].id for n in names}
    return chosen


def status(
    catalog: Catalog,
    *,
    cluster: str | None = None,
    since: str = "9h",
    timeout: str = "30s",
    fmt: str = "table",
    layers: Sequence[str] = (),
    names: Sequence[str] = (),
    dry_run: bool = False,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Outcome:
    """Read the cluster once and report it against the stack (or, dry-run, the reads it would make)."""
    window = timedelta(seconds=parse_duration(since, "--since"))
    seconds = parse_duration(timeout, "--timeout")
    inventory = catalog.load(cluster)
    steps = catalog.graph(inventory).steps()
    with run_context(inventory, dry_run=True, fetch_kubeconfig=False) as ctx:
        declared = units(steps, ctx)
        chosen = _select(names, layers, declared, catalog)
        planned = reads(ctx, timeout)
        if dry_run:
            lines = [
                f"# dry-run: cluster.status would make {len(planned)} read-only reads "
                f"({sum(r.api_requests for r in planned)} API requests, all at once, within "
                f"{timeout}); none was made"
            ]
            lines += [f"$ {r.command.display()}" for r in planned]
            return Outcome("\n".join(lines), 0)
        if not Path(ctx.kubeconfig).is_file():
            raise OneclusterError(
                f"cluster.status reads the running cluster, and there is no kubeconfig at "
                f"{ctx.kubeconfig} (fix: `invoke talos.kubeconfig`, or point $KUBECONFIG at it)"
            )
        check_tools(["kubectl", "helm"])
        skipped: dict[str, str] = {}
        try:
            resolve_binary("talosctl")
        except ToolMissingError:
            skipped[ETCD] = "talosctl is not installed (or $TALOSCTL names no binary)"
        else:
            if not Path(ctx.talosconfig).is_file():
                skipped[ETCD] = f"no talosconfig at {ctx.talosconfig}"
        now = clock()
        snapshot = take(
            ctx, DeadlineExecutor(seconds), [r for r in planned if r.name not in skipped], now
        )
        snapshot.problems.update(skipped)
    states = assess(snapshot, declared)
    facts = Facts(
        snapshot, states, now - window,
        talos_version=inventory.cluster.talos_version,
        kubernetes_version=inventory.cluster.kubernetes_version,
        control_planes=len(inventory.control_planes),
    )  # fmt: skip
    found = find(facts)
    narrowed = bool(layers or names)
    if narrowed:
        states = [s for s in states if s.unit.id in chosen]
        # a finding about no component is about the cluster itself: Talos's layer
        found = [
            f for f in found
            if set(f.units) & chosen or (not f.units and "talos" in layers and not names)
        ]  # fmt: skip
    doc = document(facts, states, found, cluster=inventory.name, selected=narrowed)
    text = render_json(doc) if fmt == "json" else render_table(doc)
    return Outcome(text, 0 if doc["healthy"] else 1)


def print_status(**kwargs: object) -> int:
    """Print a status; its exit code."""
    outcome = status(**kwargs)  # type: ignore[arg-type]
    echo(outcome.text)
    return outcome.exit_code
