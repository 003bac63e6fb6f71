"""The one path every task takes to run steps: load, select, check, then plan or run.

Plan → check → apply → report: the inventory is validated and the graph resolved before anything
runs; missing binaries and preflight problems (e.g. secrets absent from Infisical) stop the run
before the first step; then the runner applies the steps and prints a summary table.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from .command import check_tools
from .components import Component
from .context import run_context
from .errors import OneclusterError
from .graph import Graph
from .inventory import Inventory, load_inventory
from .output import echo, redact
from .plan import render_plan
from .runner import Report, RunFailed, Runner

Catalog = Callable[[Inventory], list[Component]]

# Flag help shared by the tasks: pick what a task takes with help_for()
HELP = {
    "cluster": "inventory file (default: $ONECLUSTER_CLUSTER or talos/cluster.yaml)",
    "dry_run": "print the exact commands each step would run, and run none",
    "jobs": "how many steps may run at once (default 4)",
    "from_": "resume: start at this step id and run everything after it",
}


def help_for(*names: str, **extra: str) -> dict[str, str]:
    """``help=`` for a task taking the shared flags ``names`` plus its own ``extra`` ones."""
    return {**{n: HELP[n] for n in names}, **extra}


def build_graph(catalog: Catalog, inventory: Inventory) -> Graph:
    """The validated graph of every component for ``inventory``."""
    return Graph.build(catalog(inventory))


# when a run fetches the kubeconfig itself, kube-facing steps use that one (in the private workdir)
KUBECONFIG_STEP = "talos/kubeconfig"


def _selection(
    catalog: Catalog, cluster: str | None, **select: Any
) -> tuple[Inventory, Graph, list[str]]:
    """Load and validate the inventory, build the graph, and pick the selected step ids."""
    inventory = load_inventory(cluster)
    graph = build_graph(catalog, inventory)
    return inventory, graph, graph.select(**select)


def execute(
    catalog: Catalog,
    *,
    cluster: str | None = None,
    layers: Sequence[str] = (),
    targets: Sequence[str] = (),
    from_step: str | None = None,
    dry_run: bool = False,
    jobs: int = 4,
    options: dict[str, Any] | None = None,
    preflight: bool = True,
    with_needs: bool = True,
) -> Report:
    """Select steps and run them (or print them); raise :class:`RunFailed` if any step failed.

    ``with_needs=False`` runs exactly ``targets`` (callers that already dropped the needs found in
    place, e.g. ``apps.deploy``, pass the steps still missing).
    """
    inventory, graph, ids = _selection(
        catalog, cluster, layers=layers, targets=targets, with_needs=with_needs, from_step=from_step
    )
    steps = graph.steps(ids)
    if not dry_run:
        check_tools(sorted({t for s in steps for t in s.tools()}))
    with run_context(
        inventory,
        dry_run=dry_run,
        fetch_kubeconfig=KUBECONFIG_STEP in ids,
        options=options,
    ) as ctx:
        if preflight:
            problems = [p for s in steps for p in s.preflight(ctx)]
            if problems:
                raise OneclusterError(
                    "preflight failed, nothing was changed:\n"
                    + "\n".join(f"  - {p}" for p in problems)
                )
        if dry_run:
            echo(f"# dry-run for cluster {inventory.name}: {len(steps)} steps, nothing is executed")
        report = Runner(graph, ctx, jobs=jobs).run(ids)
    echo("")
    if dry_run:
        echo(f"# dry-run: {len(report.results)} steps printed, nothing was executed")
    else:
        echo(report.summary())
    if not report.ok:
        raise RunFailed(report)
    return report


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
    inventory, graph, ids = _selection(
        catalog, cluster, layers=layers, targets=targets, from_step=from_step
    )
    with run_context(inventory, dry_run=True, fetch_kubeconfig=KUBECONFIG_STEP in ids) as ctx:
        return render_plan(ctx, graph.steps(ids), fmt)


def user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn onecluster errors into a clean message and exit code 1 instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from invoke.exceptions import Exit

        try:
            return func(*args, **kwargs)
        except OneclusterError as exc:
            raise Exit(redact(f"error: {exc}"), code=1) from None

    return wrapper


def default_catalog(inventory: Inventory) -> list[Component]:
    """Every component of the stack (the layer modules, composed by tasks/stack.py)."""
    from ..stack import catalog  # lazy: the layer modules import this module

    return catalog(inventory)


def layer_collection(layer: str, doc: str | None) -> Any:
    """An Invoke collection for ``layer`` holding its ``deploy`` task."""
    from invoke import Collection, task

    def deploy(c, cluster=None, dry_run=False, jobs=4, from_=None):
        execute(
            default_catalog,
            cluster=cluster,
            layers=[layer],
            from_step=from_,
            dry_run=dry_run,
            jobs=int(jobs),
        )

    deploy.__doc__ = (
        f"Deploy the {layer} layer in dependency order (needs outside it are assumed in place)."
    )
    ns = Collection(layer)
    ns.__doc__ = doc
    ns.add_task(
        task(help=help_for("cluster", "dry_run", "jobs", "from_"))(user_errors(deploy)),
        name="deploy",
    )
    return ns
