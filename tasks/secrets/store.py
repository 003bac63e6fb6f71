"""Where secret values come from: the store interface, and an in-memory store for tests.

The real store is Infisical (``tasks/engine/infisical.py``), reached with a machine identity and
filtered by the cluster's tag. Everything that reads or writes secret values goes through
:class:`SecretStore`, and every value read is registered for redaction at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from ..engine.output import register_secret


class SecretStore(Protocol):
    """A store of named secret values scoped to one cluster."""

    def read(self, names: Iterable[str]) -> dict[str, str]:
        """Return the values of ``names`` that exist (missing names are simply absent)."""
        ...

    def names(self) -> set[str]:
        """Every secret name the store holds for this cluster."""
        ...

    def write(self, name: str, value: str) -> None:
        """Create or update one secret (tagged with the cluster's name)."""
        ...


class MemoryStore:
    """A dict-backed :class:`SecretStore` (tests, and dry-runs that must not reach Infisical)."""

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self._values = dict(values or {})
        for v in self._values.values():
            register_secret(v)

    def read(self, names: Iterable[str]) -> dict[str, str]:
        return {n: self._values[n] for n in names if n in self._values}

    def names(self) -> set[str]:
        return set(self._values)

    def write(self, name: str, value: str) -> None:
        register_secret(value)
        self._values[name] = value
