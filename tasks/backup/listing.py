"""Each declared volume beside what the cluster holds: its claim, its Longhorn volume, its backups.

Three list calls answer it for every volume at once (``kubectl get`` of the claims in every
namespace, of Longhorn's volumes, of Longhorn's backups), never one call per volume.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..engine.command import Command
from ..engine.context import RunContext
from ..engine.errors import OneclusterError
from ..verify import longhorn
from .volumes import DeclaredVolume


def reads(ctx: RunContext) -> list[Command]:
    """The three list calls: claims, Longhorn volumes, Longhorn backups."""
    return [
        ctx.kubectl("get", "persistentvolumeclaims", "--all-namespaces", "-o", "json"),
        longhorn.list_command(ctx.kubectl, "volumes"),
        longhorn.list_command(ctx.kubectl, "backups"),
    ]


@dataclass(frozen=True)
class Cluster:
    """What the three reads found."""

    claims: dict[tuple[str, str], dict[str, Any]]  # (namespace, name) → the claim
    volumes: list[longhorn.Volume]
    backups: list[longhorn.Backup]


def read(ctx: RunContext) -> Cluster:
    """Run the three reads (read-only) and parse them; a reply that is no List is an error."""
    texts = []
    for command in reads(ctx):
        texts.append(ctx.executor.query(command).stdout)
    try:
        claim_list = json.loads(texts[0] or "{}")
        claims = {
            (
                (c.get("metadata") or {}).get("namespace", ""),
                (c.get("metadata") or {}).get("name", ""),
            ): c
            for c in claim_list.get("items") or []
            if isinstance(c, dict)
        }
        return Cluster(claims, longhorn.read_volumes(texts[1]), longhorn.read_backups(texts[2]))
    except (ValueError, AttributeError) as exc:
        raise OneclusterError(f"kubectl did not answer with a List: {exc}") from None


def longhorn_volumes_of(cluster: Cluster, claim: DeclaredVolume) -> list[str]:
    """The Longhorn volumes bound to ``claim`` now (by Longhorn's own record, or the claim's)."""
    names = {
        v.name
        for v in cluster.volumes
        if (v.pvc_namespace, v.pvc_name) == (claim.namespace, claim.pvc)
    }
    bound = ((cluster.claims.get((claim.namespace, claim.pvc)) or {}).get("spec") or {}).get(
        "volumeName"
    )
    known = {v.name for v in cluster.volumes}
    if bound and bound in known:  # a Longhorn PV is named like its volume
        names.add(bound)
    return sorted(names)


@dataclass(frozen=True)
class Row:
    """One declared volume's line."""

    volume: DeclaredVolume
    claim: str  # Bound, Pending, or "absent"
    longhorn_volume: str
    latest: longhorn.Backup | None
    count: int  # completed backups of it in the target

    def age(self, now: datetime) -> str:
        if self.latest is None or self.latest.created_at is None:
            return "-"
        return human_age(now - self.latest.created_at)


def human_age(delta: Any) -> str:
    """``3d4h``, ``5h``, ``12m``: how long ago, to the unit that matters."""
    seconds = max(int(delta.total_seconds()), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    if days:
        return f"{days}d{hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h"
    return f"{max(rest // 60, 0)}m"


def rows(cluster: Cluster, volumes: Sequence[DeclaredVolume]) -> list[Row]:
    """Every declared volume with its claim's phase, its Longhorn volume and latest backup."""
    found = []
    for v in volumes:
        names = longhorn_volumes_of(cluster, v)
        claim = cluster.claims.get((v.namespace, v.pvc))
        phase = ((claim or {}).get("status") or {}).get("phase") or ("absent" if not claim else "?")
        mine = [
            b
            for b in cluster.backups
            if b.completed
            and ((b.pvc_namespace, b.pvc_name) == (v.namespace, v.pvc) or b.volume in names)
        ]
        latest = longhorn.latest_for_claim(mine, v.namespace, v.pvc, names)
        found.append(Row(v, phase, ", ".join(names) or "-", latest, len(mine)))
    return found


def as_json(found: Sequence[Row], now: datetime | None = None) -> str:
    """The rows as JSON: one object per volume, and the volumes with no backup."""
    now = now or datetime.now(UTC)
    items = []
    for r in found:
        b = r.latest
        items.append(
            {
                "app": r.volume.app,
                "namespace": r.volume.namespace,
                "pvc": r.volume.pvc,
                "step": r.volume.step,
                "claim": r.claim,
                "longhornVolume": r.longhorn_volume if r.longhorn_volume != "-" else None,
                "backups": r.count,
                "latest": None
                if b is None
                else {
                    "name": b.name,
                    "createdAt": b.created_at.isoformat() if b.created_at else None,
                    "ageSeconds": int((now - b.created_at).total_seconds())
                    if b.created_at
                    else None,
                    "url": b.url,
                },
            }
        )
    none = [f"{r.volume.namespace}/{r.volume.pvc}" for r in found if r.latest is None]
    return json.dumps({"volumes": items, "withoutBackup": none}, indent=2)
