"""Where secret values come from: the store interface, and an in-memory store for tests.

The real store is Infisical (``tasks/engine/infisical.py``), reached with a machine identity and
filtered by the cluster's tag. Everything that reads or writes secret values goes through
:class:`SecretStore`, and every value read is registered for redaction at once.
"""

from __future__ import annotations

import threading
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

    def create(self, name: str, value: str) -> str:
        """Create ``name`` only if it does not exist; return the value the store now holds.

        When another run created it first, that value is returned and ``value`` is dropped:
        nothing is ever overwritten.
        """
        ...


class MemoryStore:
    """A dict-backed :class:`SecretStore` (tests, and dry-runs that must not reach Infisical)."""

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self._values = dict(values or {})
        self._lock = threading.Lock()
        for v in self._values.values():
            register_secret(v)

    def read(self, names: Iterable[str]) -> dict[str, str]:
        return {n: self._values[n] for n in names if n in self._values}

    def names(self) -> set[str]:
        return set(self._values)

    def write(self, name: str, value: str) -> None:
        register_secret(value)
        with self._lock:
            self._values[name] = value

    def create(self, name: str, value: str) -> str:
        register_secret(value)
        with self._lock:
            return self._values.setdefault(name, value)
