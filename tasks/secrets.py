"""Secrets: Infisical values synced straight into Kubernetes Secrets, never on disk or printed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from invoke import task

from .engine.components import Component, SecretSpec, SecretSync
from .engine.deploy import (
    Catalog,
    default_catalog,
    execute,
    help_for,
    layer_collection,
    user_errors,
)
from .engine.errors import SecretsError
from .engine.inventory import Inventory, load_inventory
from .engine.output import echo, table

FORMATS = ("table", "json")


@dataclass(frozen=True)
class Requirement:
    """The Secrets one component declares, and the step that syncs them."""

    component: Component
    step: str

    @property
    def secrets(self) -> tuple[SecretSpec, ...]:
        return self.component.secrets

    @property
    def names(self) -> list[str]:
        """The Infisical secret names this component needs, sorted."""
        return sorted({n for s in self.secrets for n in s.keys.values()})


def requirements(components: Sequence[Component]) -> list[Requirement]:
    """Every component declaring Secrets (in catalogue order), with its sync step."""
    by_id = {c.id: c for c in components}
    found = []
    for comp in components:
        if isinstance(comp, SecretSync):
            # a hand-declared sync is its own requirement; generated ones are found below
            if not any(
                comp.id in c.needs and c.secrets == comp.secrets
                for c in components
                if not isinstance(c, SecretSync)
            ):
                found.append(Requirement(comp, comp.id))
            continue
        if not comp.secrets:
            continue
        step = next(
            (
                n
                for n in comp.needs
                if isinstance(by_id.get(n), SecretSync) and by_id[n].secrets == comp.secrets
            ),
            None,
        )
        if step is None:
            raise SecretsError(
                f"{comp.id} declares secrets but no secrets/ step syncs them "
                "(is it built through tasks/stack.py's catalog?)"
            )
        found.append(Requirement(comp, step))
    return found


def select(
    reqs: Sequence[Requirement], components: Sequence[str] = (), layers: Sequence[str] = ()
) -> list[Requirement]:
    """The requirements of ``components`` (ids or unique names) and ``layers``; all if neither."""
    if not components and not layers:
        return list(reqs)
    chosen: set[str] = set()
    for ref in components:
        hits = [r for r in reqs if ref in (r.component.id, r.component.name, r.step)]
        if len(hits) != 1:
            known = ", ".join(r.component.id for r in reqs)
            what = "is ambiguous" if hits else "declares no secrets or does not exist"
            raise SecretsError(f"--component {ref}: {what}; components with secrets: {known}")
        chosen.add(hits[0].step)
    known_layers = sorted({r.component.layer for r in reqs})
    for layer in layers:
        if layer not in known_layers:
            raise SecretsError(
                f"--layer {layer}: no component of that layer declares secrets; "
                f"layers with secrets: {', '.join(known_layers)}"
            )
        chosen |= {r.step for r in reqs if r.component.layer == layer}
    return [r for r in reqs if r.step in chosen]


def listing(inventory: Inventory, reqs: Sequence[Requirement]) -> dict[str, Any]:
    """The ``secrets.list --format json`` contract: per component, the Infisical names it needs.

    ``{"cluster", "tag", "components": [{"id", "step", "infisical": [NAME...],
    "secrets": [{"namespace", "name", "type", "keys": {k8s key: NAME}}]}]}``
    """
    return {
        "cluster": inventory.name,
        "tag": inventory.name,
        "components": [
            {
                "id": r.component.id,
                "step": r.step,
                "infisical": r.names,
                "secrets": [
                    {
                        "namespace": s.namespace,
                        "name": s.name,
                        "type": s.type,
                        "keys": dict(sorted(s.keys.items())),
                    }
                    for s in r.secrets
                ],
            }
            for r in reqs
        ],
    }


def missing_by_component(store: Any, reqs: Sequence[Requirement]) -> dict[str, list[str]]:
    """For each selected component, the Infisical names ``store`` lacks (names only)."""
    have = store.names()
    gaps = {r.component.id: [n for n in r.names if n not in have] for r in reqs}
    return {cid: names for cid, names in gaps.items() if names}


def _selected(
    catalog: Catalog,
    cluster: str | None,
    component: Sequence[str] | None,
    layer: Sequence[str] | None,
) -> tuple[Inventory, list[Requirement]]:
    inventory = load_inventory(cluster)
    reqs = select(requirements(catalog(inventory)), component or (), layer or ())
    return inventory, reqs


def check_secrets(
    catalog: Catalog = default_catalog,
    *,
    cluster: str | None = None,
    components: Sequence[str] = (),
    layers: Sequence[str] = (),
    store: Any = None,
) -> int:
    """Check Infisical for every name the selection needs; one error lists all that are missing."""
    inventory, reqs = _selected(catalog, cluster, components, layers)
    if store is None:
        from .engine.infisical import open_store

        store = open_store(inventory)
    gaps = missing_by_component(store, reqs)
    where = getattr(store, "where", "the secret store")
    if gaps:
        count = sum(len(v) for v in gaps.values())
        lines = [
            f"{count} secret(s) the selected components need are missing in Infisical ({where}):"
        ]
        lines += [f"  - {cid}: {', '.join(names)}" for cid, names in gaps.items()]
        lines.append(f"Add them in Infisical tagged {inventory.name!r}, then run again.")
        raise SecretsError("\n".join(lines))
    total = len({n for r in reqs for n in r.names})
    echo(f"ok: all {total} secret(s) for {len(reqs)} component(s) present in Infisical ({where})")
    return total


SELECT_HELP = {
    "component": "only this component's secrets, by id or name, e.g. network/traefik (repeatable)",
    "layer": "only secrets of components in this layer, e.g. network (repeatable)",
}


@task(
    name="list",
    help=help_for(
        "cluster",
        format=f"output format: {', '.join(FORMATS)}",
        dry_run="accepted like every task's; listing reads only the declarations, never Infisical",
        **SELECT_HELP,
    ),
    iterable=["component", "layer"],
)
@user_errors
def list_(c, cluster=None, component=None, layer=None, format="table", dry_run=False):
    """List, per component, the Infisical secret names it needs (table or json)."""
    if format not in FORMATS:
        raise SecretsError(f"--format {format}: unknown; use one of {', '.join(FORMATS)}")
    inventory, reqs = _selected(default_catalog, cluster, component, layer)
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


@task(
    help=help_for(
        "cluster",
        dry_run="say what would be looked up in Infisical, and contact nothing",
        **SELECT_HELP,
    ),
    iterable=["component", "layer"],
)
@user_errors
def check(c, cluster=None, component=None, layer=None, dry_run=False):
    """Check Infisical holds every secret the selected components need (no cluster contact)."""
    if dry_run:
        inventory, reqs = _selected(default_catalog, cluster, component or (), layer or ())
        names = sorted({n for r in reqs for n in r.names})
        spec = inventory.infisical
        echo(
            f"# dry-run: would log in to {spec.site_url} as $INFISICAL_CLIENT_ID and look for "
            f"{len(names)} secret name(s) tagged {inventory.name!r} in project {spec.project_id}, "
            f"environment {spec.environment!r}, path {spec.path!r}: {', '.join(names)}"
        )
        return
    check_secrets(cluster=cluster, components=component or (), layers=layer or ())


@task(help=help_for("cluster", "dry_run", "jobs", **SELECT_HELP), iterable=["component", "layer"])
@user_errors
def sync(c, cluster=None, component=None, layer=None, dry_run=False, jobs=4):
    """Sync the selected components' Secrets from Infisical into Kubernetes (server-side apply)."""
    _, reqs = _selected(default_catalog, cluster, component, layer)
    if not reqs:
        echo("no component declares secrets: nothing to sync")
        return
    # only the sync steps: what they need (the API server) is assumed in place, as in a layer deploy
    execute(
        default_catalog,
        cluster=cluster,
        targets=[r.step for r in reqs],
        with_needs=False,
        dry_run=dry_run,
        jobs=int(jobs),
    )


ns = layer_collection("secrets", __doc__)
ns.add_task(list_)
ns.add_task(check)
ns.add_task(sync)
