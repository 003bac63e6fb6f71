"""The catalogue: what the engine runs, handed to it by the stack's composition root.

The engine knows steps, graphs, runs and commands, and nothing of the layers. ``tasks/stack.py``
builds the one :class:`Catalog` of the stack — every layer's components, the layer names, the
checks areas add to the inventory, how a run opens its secret store, and the checks of the selected
steps' values files and manifests before anything runs — and every task passes it
(or a narrower one made with :meth:`Catalog.only`) to :func:`~tasks.engine.execute.execute`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .components import Component
from .context import RunContext
from .errors import FieldError, GraphError
from .graph import Graph
from .inventory import Inventory, InventoryCheck, load_inventory


@dataclass(frozen=True)
class Catalog:
    """Every component for an inventory, and what a run of them needs from the areas."""

    components: Callable[[Inventory], list[Component]]
    # the stack's layers, in deployment order; a component of any other layer is an error
    layers: tuple[str, ...]
    # cross-field rules areas add to the inventory's own (e.g. the Talos schematic's extensions)
    inventory_checks: tuple[InventoryCheck, ...] = ()
    # opens the secret store a run reads (None: no step of this catalogue reads secrets)
    open_store: Callable[[Inventory], Any] | None = None
    # checks of the selected steps' inputs (values files, manifests) before a run's first tool
    # call: every problem found, as FieldErrors (the validate area provides it)
    prechecks: Callable[[RunContext, Sequence[Component]], list[FieldError]] | None = None

    def load(self, cluster: str | os.PathLike[str] | None = None) -> Inventory:
        """The inventory of ``cluster``, validated with every area's checks."""
        return load_inventory(cluster, checks=self.inventory_checks)

    def graph(self, inventory: Inventory) -> Graph:
        """The validated graph of every component for ``inventory``."""
        steps = self.components(inventory)
        unknown = [c for c in steps if c.layer not in self.layers]
        if unknown:
            raise GraphError(
                "; ".join(f"{c.id}: unknown layer {c.layer!r}" for c in unknown)
                + f" (use one of {', '.join(self.layers)})",
                [c.id for c in unknown],
            )
        return Graph.build(steps)

    def with_components(self, components: Callable[[Inventory], list[Component]]) -> Catalog:
        """The same catalogue with other components (a profile's, a test's)."""
        return dataclasses.replace(self, components=components)

    def only(self, steps: Callable[[Inventory], Sequence[Component]]) -> Catalog:
        """A catalogue of just ``steps``: their needs outside the list are taken as in place."""

        def components(inventory: Inventory) -> list[Component]:
            chosen = list(steps(inventory))
            ids = {c.id for c in chosen}
            return [
                dataclasses.replace(c, needs=tuple(n for n in c.needs if n in ids)) for c in chosen
            ]

        return self.with_components(components)
