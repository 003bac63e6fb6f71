"""The whole stack: every layer's components, composed into one catalogue.

Secrets a component declares become a generated ``secrets/<name>`` step (a SecretSync) that the
component needs, so a component's secrets are always in place before it, and ``secrets.list`` can
report them per component.
"""

from __future__ import annotations

import dataclasses

from . import ai, apps, network, observability, scheduling, storage, talos
from .engine.components import Component, SecretSync
from .engine.inventory import Inventory

LAYER_MODULES = (talos, network, storage, observability, scheduling, ai, apps)

# the gate every secret sync waits for: the API server must answer
SECRETS_NEED = "talos/health"


def catalog(inventory: Inventory) -> list[Component]:
    """Every component for ``inventory``, with generated secret-sync steps wired in."""
    declared = [c for module in LAYER_MODULES for c in module.components(inventory)]
    syncs: list[Component] = []
    wired: list[Component] = []
    for comp in declared:
        if comp.secrets and not isinstance(comp, SecretSync):
            sync = SecretSync(
                layer="secrets",
                name=comp.name,
                needs=(SECRETS_NEED,),
                secrets=comp.secrets,
                summary=f"Secrets for {comp.id}",
            )
            syncs.append(sync)
            comp = dataclasses.replace(comp, needs=(*comp.needs, sync.id))
        wired.append(comp)
    talos_steps = [c for c in wired if c.layer == "talos"]
    rest = [c for c in wired if c.layer != "talos"]
    # declaration order breaks ties in the plan: Talos, then secrets, then the other layers
    return [*talos_steps, *syncs, *rest]
