"""Longhorn volumes and replicas as kubectl reports them, and the rules for which are healthy.

``kubectl get volumes.longhorn.io -o json`` is read by two checks: the gate between the nodes of a
rolling Talos upgrade (``tasks/talos/upgrade.py``: never take down a node while a volume is not
healthy) and the post-deploy storage check (:func:`.verification.longhorn_volume_problems`, which
also wants the configured replica count). Both parse it here and judge health by
:attr:`Volume.healthy`, so the two cannot drift apart.

``kubectl get replicas.longhorn.io -o json`` says where each copy lives (``spec.volumeName``,
``spec.nodeID``; a failed replica has ``spec.failedAt`` set). With the chart's soft anti-affinity
(``replicaSoftAntiAffinity``) Longhorn may schedule two replicas of a volume on one node and the
volume still reports ``healthy``: losing that node loses both. :func:`colocated` finds them.
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


@dataclass(frozen=True)
class Replica:
    """One Longhorn replica: which volume it copies and which node holds it."""

    name: str
    volume: str
    node: str  # "" while unscheduled
    failed: bool  # spec.failedAt is set: Longhorn no longer counts it


def replicas(listing: Mapping[str, Any]) -> list[Replica]:
    """The replicas of a parsed ``kubectl get replicas.longhorn.io -o json`` listing."""
    found = []
    for item in listing.get("items") or []:
        spec = item.get("spec") or {}
        found.append(
            Replica(
                name=(item.get("metadata") or {}).get("name", "?"),
                volume=spec.get("volumeName") or "",
                node=spec.get("nodeID") or "",
                failed=bool(spec.get("failedAt")),
            )
        )
    return found


def read_replicas(payload: str) -> list[Replica]:
    """The replicas in kubectl's JSON output (no output: none); ``ValueError`` if it is no list."""
    listing = json.loads(payload or "{}")
    if not isinstance(listing, Mapping):
        raise ValueError(f"expected a kubectl List, got {type(listing).__name__}")
    return replicas(listing)


def colocated(found: list[Replica]) -> dict[str, list[str]]:
    """Volumes with two or more working replicas on one node: volume → the nodes holding several."""
    per_volume: dict[str, dict[str, int]] = {}
    for r in found:
        if r.failed or not r.node or not r.volume:
            continue
        nodes = per_volume.setdefault(r.volume, {})
        nodes[r.node] = nodes.get(r.node, 0) + 1
    shared = {
        volume: sorted(node for node, count in nodes.items() if count > 1)
        for volume, nodes in per_volume.items()
    }
    return {volume: nodes for volume, nodes in sorted(shared.items()) if nodes}
