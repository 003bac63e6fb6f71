"""What the stack needs from Infisical: per component, the Secrets it declares and their names.

``secrets.list`` and ``secrets.check`` read these; no value is ever fetched to list or check.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..engine.catalog import Catalog
from ..engine.components import Component, SecretSpec
from ..engine.errors import SecretsError
from ..engine.inventory import Inventory
from ..engine.output import echo
from .steps import SecretSync


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


def selected(
    catalog: Catalog,
    cluster: str | None,
    component: Sequence[str] | None,
    layer: Sequence[str] | None,
) -> tuple[Inventory, list[Requirement]]:
    """The inventory, and the requirements of the selected components and layers."""
    inventory = catalog.load(cluster)
    reqs = select(requirements(catalog.components(inventory)), component or (), layer or ())
    return inventory, reqs


def check_secrets(
    catalog: Catalog,
    *,
    cluster: str | None = None,
    components: Sequence[str] = (),
    layers: Sequence[str] = (),
    store: Any = None,
) -> int:
    """Check Infisical for every name the selection needs; one error lists all that are missing."""
    inventory, reqs = selected(catalog, cluster, components, layers)
    if store is None:
        if catalog.open_store is None:
            raise SecretsError("internal: this catalogue has no secret store to check")
        store = catalog.open_store(inventory)
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
