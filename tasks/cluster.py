"""Cluster: rebuild everything from bare nodes, or print the plan of what that would do."""

from __future__ import annotations

from invoke import Collection, task

from .engine.deploy import default_catalog, execute, help_for, plan, user_errors
from .engine.output import echo
from .engine.plan import FORMATS


@task(help=help_for("cluster", "dry_run", "jobs", "from_"))
@user_errors
def rebuild(c, cluster=None, dry_run=False, jobs=4, from_=None):
    """Rebuild the whole cluster: Talos configs, apply, bootstrap, then every layer in order."""
    execute(default_catalog, cluster=cluster, from_step=from_, dry_run=dry_run, jobs=int(jobs))


@task(
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
@user_errors
def plan_(c, cluster=None, layer=None, step=None, from_=None, format="table", dry_run=False):
    """Print the plan: every step in order with its needs and commands (table, json, mermaid)."""
    echo(
        plan(
            default_catalog,
            cluster=cluster,
            layers=layer or (),
            targets=step or (),
            from_step=from_,
            fmt=format,
        )
    )


@task(
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
@user_errors
def deploy(c, cluster=None, layer=None, step=None, dry_run=False, jobs=4, from_=None):
    """Deploy selected layers or steps (with their needs) onto a running cluster."""
    execute(
        default_catalog,
        cluster=cluster,
        layers=layer or (),
        targets=step or (),
        from_step=from_,
        dry_run=dry_run,
        jobs=int(jobs),
    )


ns = Collection("cluster")
ns.__doc__ = __doc__
ns.add_task(rebuild)
ns.add_task(plan_, name="plan")
ns.add_task(deploy)
