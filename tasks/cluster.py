"""Cluster: rebuild everything from bare nodes, deploy parts of it, or print the plan."""

from __future__ import annotations

from .engine.cli import help_for, onecluster_task
from .engine.errors import OneclusterError
from .engine.execute import execute, plan
from .engine.output import echo
from .engine.plan import FORMATS
from .stack import STACK


@onecluster_task(help=help_for("cluster", "dry_run", "jobs", "from_"))
def rebuild(c, cluster=None, dry_run=False, jobs=4, from_=None):
    """Rebuild the whole cluster: Talos configs, apply, bootstrap, then every layer in order."""
    execute(STACK, cluster=cluster, from_step=from_, dry_run=dry_run, jobs=jobs)


@onecluster_task(
    name="plan",
    help=help_for(
        "cluster",
        "from_",
        layer="only this layer (repeatable)",
        step="only this step and its needs (repeatable)",
        format=f"output format: {', '.join(FORMATS)}",
        dry_run="accepted like every task's; the plan itself never runs a command",
    ),
    iterable=["layer", "step"],
)
def plan_(c, cluster=None, layer=None, step=None, from_=None, format="table", dry_run=False):
    """Print the plan: every step in order with its needs and commands (table, json, mermaid)."""
    echo(
        plan(
            STACK,
            cluster=cluster,
            layers=layer or (),
            targets=step or (),
            from_step=from_,
            fmt=format,
        )
    )


@onecluster_task(
    help=help_for(
        "cluster",
        "dry_run",
        "jobs",
        "from_",
        layer="deploy this layer (repeatable)",
        step="deploy this step and its needs (repeatable)",
    ),
    iterable=["layer", "step"],
)
def deploy(c, cluster=None, layer=None, step=None, dry_run=False, jobs=4, from_=None):
    """Deploy selected layers or steps (with their needs) onto a running cluster."""
    execute(
        STACK,
        cluster=cluster,
        layers=layer or (),
        targets=step or (),
        from_step=from_,
        dry_run=dry_run,
        jobs=jobs,
    )


@onecluster_task(name="deploy", help=help_for("cluster", "dry_run", "jobs", "from_"))
def deploy_layer(c, cluster=None, dry_run=False, jobs=4, from_=None):
    """Deploy this layer in dependency order (needs outside it are assumed in place)."""
    layer = c.config.get("onecluster", {}).get("layer")
    if not layer:
        raise OneclusterError("internal: a layer's deploy runs inside that layer's collection")
    execute(STACK, cluster=cluster, layers=[layer], from_step=from_, dry_run=dry_run, jobs=jobs)


TASKS = ((rebuild, "rebuild"), (plan_, "plan"), (deploy, "deploy"))
