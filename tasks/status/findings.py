"""What cluster.status finds: a :class:`Finding` (how bad, which rule, about what, the evidence,
what to do), the :class:`Facts` every rule reads, and how findings write times and ages.

Severities: ``error`` (something the stack promises does not hold now: cluster.status exits 1),
``warning`` (it holds, but is at risk or cannot be checked), ``info``. The rules are in
``cluster_rules.py``, ``pod_rules.py`` and ``data_rules.py``, each a pure function of the facts;
``rules.py`` runs them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .assess import UnitState
from .declared import Ref
from .reads import Snapshot

ERROR, WARNING, INFO = "error", "warning", "info"
SEVERITIES = (ERROR, WARNING, INFO)


@dataclass(frozen=True)
class Finding:
    """One thing found: how bad, which rule, about what, the evidence, and what to do."""

    severity: str
    rule: str
    subject: str  # a unit id (layer/name), a node, or "cluster"
    summary: str
    evidence: tuple[str, ...] = ()
    suggestion: str = ""
    units: tuple[str, ...] = ()  # the declared units it concerns (--layer/--name keep these)


@dataclass
class Facts:
    """What the rules read."""

    snapshot: Snapshot
    states: list[UnitState]
    since: datetime
    talos_version: str = ""
    kubernetes_version: str = ""
    control_planes: int = 0
    _owners: dict[Ref, str] = field(default_factory=dict)

    @property
    def now(self) -> datetime:
        return self.snapshot.now

    def owner(self, ref: Ref | None) -> str:
        """The id of the unit a workload belongs to ("" when none)."""
        if not self._owners:
            for s in self.states:
                for w in (*s.workloads, *s.databases):
                    self._owners[(w.kind, w.name, w.namespace)] = s.unit.id
        return self._owners.get(ref, "") if ref else ""

    def in_window(self, at: datetime | None) -> bool:
        return at is not None and at >= self.since


def when(at: datetime | None) -> str:
    """A time in evidence: ``2026-12-01 03:15Z``."""
    return at.strftime("%Y-%m-%d %H:%M") + "Z" if at else "?"


def age(delta: timedelta) -> str:
    """``3d 4h``, ``5h 2m``, ``12m``."""
    minutes = int(delta.total_seconds() // 60)
    days, hours, mins = minutes // 1440, minutes % 1440 // 60, minutes % 60
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {mins}m" if hours else f"{mins}m"


def units_of(*ids: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(i for i in ids if i))


def ref_name(ref: Ref | None, fallback: str) -> str:
    return f"{ref[0]}/{ref[1]}" if ref else f"pod/{fallback}"
