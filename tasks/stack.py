"""The whole stack: every layer's components composed into the one catalogue the engine runs.

This is the composition root. It knows every layer and area; nothing below it imports it. Secrets a
component declares become a generated ``secrets/<name>`` step (a SecretSync) that the component
needs, so a component's secrets are always in place before it, and ``secrets.list`` can report
them per component.
"""

from __future__ import annotations

import dataclasses

from . import ai, apps, network, observability, scheduling, storage
from .engine.catalog import Catalog
from .engine.components import Component
from .engine.inventory import Inventory
from .secrets import infisical
from .secrets.steps import SecretSync
from .talos import machineconfig, versions
from .talos import steps as talos
from .validate.prechecks import prechecks

# the layers in deployment order (plans, --layer and the post-deploy checks use these names)
LAYERS = ("talos", "secrets", "network", "storage", "observability", "scheduling", "ai", "apps")
LAYER_MODULES = (talos, network, storage, observability, scheduling, ai, apps)
# the layers whose components are workloads (apps and assistants, with list/deploy/status/remove)
WORKLOAD_LAYERS = {"ai": ai.declared, "apps": apps.declared}

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


def open_secret_store(inventory: Inventory) -> object:
    """The run's secret store: Infisical, logged in with the machine identity from the environment."""
    return infisical.open_store(inventory)


STACK = Catalog(
    components=catalog,
    layers=LAYERS,
    inventory_checks=(
        machineconfig.schematic_errors,
        versions.kubernetes_version_errors,
        machineconfig.talos_rule_errors,
    ),
    open_store=open_secret_store,
    prechecks=prechecks,
)
