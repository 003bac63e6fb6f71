"""Longhorn volumes as kubectl reports them, and the one rule for which of them are healthy.

``kubectl get volumes.longhorn.io -o json`` is read by two checks: the gate between the nodes of a
rolling Talos upgrade (``tasks/talos/upgrade.py``: never take down a node while a volume is not
healthy) and the post-deploy storage check (:func:`.verification.longhorn_volume_problems`, which
also wants the configured replica count). Both parse it here and judge health by
:attr:`Volume.healthy`, so the two cannot drift apart.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Volume:
    """One Longhorn volume: its name, where it stands, and how many replicas it should have."""

    name: str
    state: str  # attached, detached, attaching, ...; "" when Longhorn has not said yet
    robustness: str  # healthy, degraded, faulted, or unknown (what a detached volume reports)
    replicas: int | None  # spec.numberOfReplicas

    @property
    def healthy(self) -> bool:
        """Attached volumes must be ``healthy``; detached ones are fine; ``faulted`` never is."""
        if self.robustness == "faulted":
            return False
        return self.state == "detached" or self.robustness == "healthy"


def volumes(listing: Mapping[str, Any]) -> list[Volume]:
    """The volumes of a parsed ``kubectl get volumes.longhorn.io -o json`` listing."""
    found = []
    for item in listing.get("items") or []:
        status = item.get("status") or {}
        found.append(
            Volume(
                name=(item.get("metadata") or {}).get("name", "?"),
                state=status.get("state") or "",
                robustness=status.get("robustness") or "",
                replicas=(item.get("spec") or {}).get("numberOfReplicas"),
            )
        )
    return found


def read_volumes(payload: str) -> list[Volume]:
    """The volumes in kubectl's JSON output (no output: none); ``ValueError`` if it is no list."""
    listing = json.loads(payload or "{}")  # json.JSONDecodeError is a ValueError
    if not isinstance(listing, Mapping):
        raise ValueError(f"expected a kubectl List, got {type(listing).__name__}")
    return volumes(listing)
