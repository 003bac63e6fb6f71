"""Secrets: Infisical values synced straight into Kubernetes Secrets, never on disk or printed."""

from __future__ import annotations

import json

from ..engine.cli import catalog_of, one_of, onecluster_task
from ..engine.execute import execute
from ..engine.lock import LOCK_HELP
from ..engine.output import echo, table
from .requirements import check_secrets, listing, selected

FORMATS = ("table", "json")

SELECT_HELP = {
    "component": "only this component's secrets, by id or name, e.g. network/traefik",
    "layer": "only secrets of components in this layer, e.g. network",
}


@onecluster_task(
    name="list",
    help=dict(
        format=f"output format: {', '.join(FORMATS)}",
        dry_run="accepted like every task's; listing reads only the declarations, never Infisical",
        **SELECT_HELP,
    ),
    iterable=["component", "layer"],
    checks=dict(format=one_of(*FORMATS, what="format")),
)
def list_(c, cluster=None, component=None, layer=None, format="table", dry_run=False):
    """List, per component, the Infisical secret names it needs (table or json)."""
    inventory, reqs = selected(catalog_of(c), cluster, component, layer)
    data = listing(inventory, reqs)
    if format == "json":
        echo(json.dumps(data, indent=2))
        return
    rows = [
        (comp["id"], f"{s['namespace']}/{s['name']}", key, source)
        for comp in data["components"]
        for s in comp["secrets"]
        for key, source in s["keys"].items()
    ]
    echo(f"Secrets for cluster {data['cluster']} (Infisical tag {data['tag']!r}):")
    echo(table(("component", "secret", "key", "infisical"), rows))


@onecluster_task(
    help=dict(
        dry_run="say what would be looked up in Infisical, and contact nothing",
        **SELECT_HELP,
    ),
    iterable=["component", "layer"],
)
def check(c, cluster=None, component=None, layer=None, dry_run=False):
    """Check Infisical holds every secret the selected components need (no cluster contact)."""
    if dry_run:
        inventory, reqs = selected(catalog_of(c), cluster, component, layer)
        names = sorted({n for r in reqs for n in r.names})
        spec = inventory.infisical
        echo(
            f"# dry-run: would log in to {spec.site_url} as $INFISICAL_CLIENT_ID and look for "
            f"{len(names)} secret name(s) tagged {inventory.name!r} in project {spec.project_id}, "
            f"environment {spec.environment!r}, path {spec.path!r}: {', '.join(names)}"
        )
        return
    check_secrets(catalog_of(c), cluster=cluster, components=component or (), layers=layer or ())


@onecluster_task(help=dict(**SELECT_HELP, **LOCK_HELP), iterable=["component", "layer"])
def sync(
    c, cluster=None, component=None, layer=None, dry_run=False, jobs=4, break_lock=False, yes=False
):
    """Sync the selected components' Secrets from Infisical into Kubernetes (server-side apply)."""
    _, reqs = selected(catalog_of(c), cluster, component, layer)
    if not reqs:
        echo("no component declares secrets: nothing to sync")
        return
    # only the sync steps: what they need (the API server) is assumed in place, as in a layer deploy
    execute(
        catalog_of(c),
        cluster=cluster,
        targets=[r.step for r in reqs],
        with_needs=False,
        dry_run=dry_run,
        jobs=jobs,
        break_lock=break_lock,
        yes=yes,
    )


TASKS = ((list_, "list"), (check, "check"), (sync, "sync"))
