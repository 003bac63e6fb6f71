"""The one path every task takes to run steps: load, select, check, then plan or run.

Plan → check → apply → report: the inventory is validated and the graph resolved before anything
runs; the selected steps' values files and manifests are checked (the catalogue's ``prechecks``);
missing binaries and preflight problems (e.g. secrets absent from Infisical) stop the run
before the first step; then the runner applies the steps and prints a summary table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .catalog import Catalog
from .command import check_tools
from .components import Component
from .context import RunContext, run_context
from .errors import InputError, OneclusterError
from .graph import Graph
from .inventory import Inventory
from .output import echo
from .plan import render_plan
from .runner import Report, RunFailed, Runner


@dataclass(frozen=True)
class Selection:
    """Which steps of the graph a task picked (see :meth:`Graph.select`)."""

    layers: Sequence[str] = ()
    targets: Sequence[str] = ()
    with_needs: bool = True
    from_step: str | None = None


def select(
    catalog: Catalog, cluster: str | None, selection: Selection
) -> tuple[Inventory, Graph, list[Component]]:
    """Load and validate the inventory, build the graph, and pick the selected steps."""
    inventory = catalog.load(cluster)
    graph = catalog.graph(inventory)
    ids = graph.select(
        layers=selection.layers,
        targets=selection.targets,
        with_needs=selection.with_needs,
        from_step=selection.from_step,
    )
    return inventory, graph, graph.steps(ids)


def execute(
    catalog: Catalog,
    *,
    cluster: str | None = None,
    layers: Sequence[str] = (),
    targets: Sequence[str] = (),
    from_step: str | None = None,
    dry_run: bool = False,
    jobs: int = 4,
    options: Sequence[object] = (),
    preflight: bool = True,
    with_needs: bool = True,
) -> Report:
    """Select steps and run them (or print them); raise :class:`RunFailed` if any step failed.

    ``with_needs=False`` runs exactly ``targets`` (callers that already dropped the needs found in
    place, e.g. ``apps.deploy``, pass the steps still missing). ``options`` are the areas' typed
    options objects (``ctx.option(kind)`` reads them).
    """
    inventory, graph, steps = select(
        catalog, cluster, Selection(layers, targets, with_needs, from_step)
    )
    if not dry_run:
        check_tools(sorted({t for s in steps for t in s.tools()}))
    with run_context(
        inventory,
        dry_run=dry_run,
        fetch_kubeconfig=any(s.fetches_configs for s in steps),
        options=options,
        open_store=catalog.open_store,
    ) as ctx:
        precheck(catalog, ctx, steps)
        if preflight:
            problems = [p for s in steps for p in s.preflight(ctx)]
            if problems:
                raise OneclusterError(
                    "preflight failed, nothing was changed:\n"
                    + "\n".join(f"  - {p}" for p in problems)
                )
        if dry_run:
            echo(f"# dry-run for cluster {inventory.name}: {len(steps)} steps, nothing is executed")
        report = Runner(graph, ctx, jobs=jobs).run([s.id for s in steps])
    echo("")
    if dry_run:
        echo(f"# dry-run: {len(report.results)} steps printed, nothing was executed")
    else:
        echo(report.summary())
    if not report.ok:
        raise RunFailed(report)
    return report


def precheck(catalog: Catalog, ctx: RunContext, steps: Sequence[Component]) -> None:
    """Check the selected steps' values files and manifests; raise with every problem found.

    It runs before the first tool call, ``--dry-run`` included.
    """
    if catalog.prechecks is None:
        return
    problems = catalog.prechecks(ctx, steps)
    if problems:
        raise InputError(
            problems, "the selected steps' values files and manifests; nothing was run"
        )


def plan(
    catalog: Catalog,
    *,
    cluster: str | None = None,
    layers: Sequence[str] = (),
    targets: Sequence[str] = (),
    from_step: str | None = None,
    fmt: str = "table",
) -> str:
    """Render the plan of the selected steps."""
    inventory, _, steps = select(catalog, cluster, Selection(layers, targets, from_step=from_step))
    fetches = any(s.fetches_configs for s in steps)
    with run_context(inventory, dry_run=True, fetch_kubeconfig=fetches) as ctx:
        return render_plan(ctx, steps, fmt)
