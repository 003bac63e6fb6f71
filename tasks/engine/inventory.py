"""The cluster inventory: ``talos/cluster.yaml`` loaded into typed objects and validated.

Nothing touches a cluster until :func:`load_inventory` has returned: every problem in the file is
collected and reported together, each naming the file, the field path, what was expected and how
to fix it. Another cluster is another file (``--cluster PATH`` or ``$ONECLUSTER_CLUSTER``).

This module is the inventory's front door: it reads the file, and re-exports what callers use of
the types (:mod:`.inventory_model`) and the cross-field rules (:mod:`.inventory_rules`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from . import yamlio
from .errors import FieldError, InventoryError
from .inventory_model import Inventory, Node
from .inventory_rules import link_errors, validate
from .schema import load_typed

__all__ = [
    "DEFAULT_INVENTORY",
    "INVENTORY_ENV",
    "REPO_ROOT",
    "Inventory",
    "InventoryCheck",
    "Node",
    "inventory_path",
    "link_errors",
    "load_inventory",
    "parse_inventory",
    "validate",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_INVENTORY = REPO_ROOT / "talos" / "cluster.yaml"
INVENTORY_ENV = "ONECLUSTER_CLUSTER"

# a cross-field rule an area adds (the stack's catalogue passes them to load_inventory)
InventoryCheck = Callable[[Inventory], list[FieldError]]


def inventory_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The inventory to use: the argument, else ``$ONECLUSTER_CLUSTER``, else the reference."""
    chosen = path or os.environ.get(INVENTORY_ENV) or DEFAULT_INVENTORY
    return Path(chosen)


def load_inventory(
    path: str | os.PathLike[str] | None = None, checks: Sequence[InventoryCheck] = ()
) -> Inventory:
    """Read, type-check and validate an inventory file; raise one error listing every problem.

    ``checks`` are the cross-field rules the areas add (the stack's catalogue passes them).
    """
    file = inventory_path(path)
    shown = _display(file)
    try:
        data = yamlio.load(yamlio.read_text(file, shown), shown)
    except OSError as exc:
        raise InventoryError(
            [
                FieldError(
                    shown,
                    "(file)",
                    f"cannot read: {exc.strerror}",
                    f"pass --cluster PATH or set ${INVENTORY_ENV}",
                )
            ]
        ) from None
    except yamlio.YAMLInputError as exc:  # too large, not UTF-8, not YAML: with file and line
        raise InventoryError(exc.errors) from None
    return parse_inventory(data, shown, checks)


def parse_inventory(
    data: object, file: str = "<memory>", checks: Sequence[InventoryCheck] = ()
) -> Inventory:
    """Validate already-parsed inventory data: types, then every cross-field rule."""
    inv, errors = load_typed(Inventory, data, file)
    if inv is not None:
        inv = _with_source(inv, file)
        errors += validate(inv)
        for check in checks:
            errors += check(inv)
    if errors:
        raise InventoryError(errors)
    return inv


def _with_source(inv: Inventory, file: str) -> Inventory:
    object.__setattr__(inv, "source", file)
    return inv


def _display(file: Path) -> str:
    try:
        return str(file.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(file)
