"""The snapshot joined to what the stack declares: each unit's release, workloads, databases,
volumes (with their last backup) and certificates, as found in the cluster. Pure: no reads."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from ..verify import longhorn
from . import objects
from .declared import Ref, Unit
from .reads import Snapshot


@dataclass(frozen=True)
class WorkloadState:
    """A declared workload as found: ``found`` False when the cluster has no such object."""

    kind: str
    name: str
    namespace: str
    ready: int
    desired: int
    found: bool

    @property
    def ok(self) -> bool:
        return self.found and self.ready >= self.desired


@dataclass(frozen=True)
class VolumeState:
    """A claim of the unit and its Longhorn volume, with its newest completed backup."""

    namespace: str
    claim: str
    volume: str  # "" when the claim is not bound to a Longhorn volume
    state: str
    robustness: str
    healthy: bool
    colocated: tuple[str, ...]  # nodes holding two or more of its replicas
    last_backup: datetime | None
    created: datetime | None = None


@dataclass(frozen=True)
class CertificateState:
    namespace: str
    name: str
    not_after: datetime | None
    ready: bool
    message: str
    found: bool


@dataclass
class UnitState:
    """One unit as the cluster shows it."""

    unit: Unit
    release_status: str = ""  # helm's status, "missing" when not installed, "" for a bundle
    release_chart: str = ""
    workloads: list[WorkloadState] = field(default_factory=list)
    databases: list[WorkloadState] = field(default_factory=list)
    volumes: list[VolumeState] = field(default_factory=list)
    certificates: list[CertificateState] = field(default_factory=list)


def workload_states(snapshot: Snapshot, refs: Iterable[Ref]) -> list[WorkloadState]:
    live = {w.key: w for w in snapshot.workloads}
    found = []
    for kind, name, namespace in refs:
        w = live.get((kind, name, namespace))
        found.append(
            WorkloadState(kind, name, namespace, w.ready if w else 0, w.desired if w else 0,
                          w is not None)
        )  # fmt: skip
    return found


def pod_workload(snapshot: Snapshot, namespace: str, pod: str) -> Ref | None:
    """The workload a Pod (alive, or deleted and named by an Event) belongs to.

    A live Pod says it (its owner); a gone one is matched by name against the namespace's
    workloads: ``<statefulset>-<ordinal>``, ``<deployment>-<template hash>-<5 chars>``,
    ``<daemonset>-<5 chars>`` (the names the controllers generate).
    """
    for p in snapshot.pods:
        if p.namespace == namespace and p.name == pod and p.owner[0]:
            return (p.owner[0].lower(), p.owner[1], namespace)
    best: Ref | None = None
    for w in snapshot.workloads:
        if w.namespace != namespace or not pod.startswith(w.name + "-"):
            continue
        rest = pod[len(w.name) + 1 :]
        shapes = {
            "StatefulSet": r"\d+",
            "Deployment": r"[a-z0-9]{1,10}-[a-z0-9]{5}",
            "DaemonSet": r"[a-z0-9]{5}",
        }
        if re.fullmatch(shapes.get(w.kind, "$^"), rest) and (
            best is None or len(w.name) > len(best[1])
        ):
            best = w.key
    return best


def _helm_workloads(snapshot: Snapshot, unit: Unit) -> list[Ref]:
    return [w.key for w in snapshot.workloads if unit.release and w.release == unit.release]


def _pods_of(snapshot: Snapshot, refs: Iterable[Ref]) -> list[objects.Pod]:
    wanted = set(refs)
    return [
        p for p in snapshot.pods
        if p.owner[0] and (p.owner[0].lower(), p.owner[1], p.namespace) in wanted
    ]  # fmt: skip


def _claims_of(snapshot: Snapshot, unit: Unit, refs: list[Ref]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = list(unit.claims)
    for p in _pods_of(snapshot, refs):
        found += [(p.namespace, c) for c in p.claims]
    live = {w.key: w for w in snapshot.workloads}
    for ref in refs:
        w = live.get(ref)
        if w is not None:
            found += [(w.namespace, c) for c in w.claims()]
    if unit.owns_namespace:
        found += [(c.namespace, c.name) for c in snapshot.claims if c.namespace == unit.namespace]
        found += [
            (v.pvc_namespace, v.pvc_name) for v in snapshot.volumes
            if v.pvc_namespace == unit.namespace and v.pvc_name
        ]  # fmt: skip
    existing = {(c.namespace, c.name) for c in snapshot.claims}
    existing |= {(v.pvc_namespace, v.pvc_name) for v in snapshot.volumes}
    return [c for c in dict.fromkeys(found) if c in existing]


def last_backups(snapshot: Snapshot) -> dict[str, datetime]:
    """Each volume's newest completed backup: its own Backup objects, or its claim's (a restored
    volume has a new name, and Longhorn labels every backup with the claim it served), else the
    Volume's own ``status.lastBackupAt``."""
    by_volume = longhorn.latest_completed(snapshot.backups)
    found: dict[str, datetime] = {}
    for v in snapshot.volumes:
        if v.pvc_name:
            backup = longhorn.latest_for_claim(
                snapshot.backups, v.pvc_namespace, v.pvc_name, (v.name,)
            )
        else:
            backup = by_volume.get(v.name)
        times = [t for t in (v.last_backup_at, backup.created_at if backup else None) if t]
        if times:
            found[v.name] = max(times)
    return found


def volume_states(snapshot: Snapshot, claims: Iterable[tuple[str, str]]) -> list[VolumeState]:
    by_claim = {(c.namespace, c.name): c for c in snapshot.claims}
    by_name = {v.name: v for v in snapshot.volumes}
    by_pvc = {(v.pvc_namespace, v.pvc_name): v for v in snapshot.volumes if v.pvc_name}
    shared = longhorn.colocated(snapshot.replicas)
    backups = last_backups(snapshot)
    found = []
    for namespace, name in claims:
        bound = by_claim.get((namespace, name))
        v = by_name.get(bound.volume) if bound and bound.volume else None
        v = v or by_pvc.get((namespace, name))
        found.append(
            VolumeState(
                namespace, name, v.name if v else "", v.state if v else "",
                v.robustness if v else "", v.healthy if v else True,
                tuple(shared.get(v.name, ())) if v else (),
                backups.get(v.name) if v else None,
                bound.created if bound else None,
            )
        )  # fmt: skip
    return found


def certificate_states(
    snapshot: Snapshot, unit: Unit, declared: frozenset[tuple[str, str]] = frozenset()
) -> list[CertificateState]:
    """The unit's Certificates: those it renders, and (when the namespace is its alone) the others
    there that no unit renders (e.g. made by cert-manager's ingress-shim for its chart)."""
    live = {(c.namespace, c.name): c for c in snapshot.certificates}
    wanted = list(unit.certificates)
    if unit.owns_namespace:
        wanted += [k for k in live if k[0] == unit.namespace and k not in declared]
    found = []
    for key in dict.fromkeys(wanted):
        c = live.get(key)
        found.append(
            CertificateState(key[0], key[1], c.not_after if c else None, bool(c and c.ready),
                             c.message if c else "", c is not None)
        )  # fmt: skip
    return found


def assess(snapshot: Snapshot, units: Iterable[Unit]) -> list[UnitState]:
    """Every unit as the snapshot shows it."""
    units = list(units)
    declared = frozenset(c for u in units for c in u.certificates)
    states = []
    for unit in units:
        state = UnitState(unit)
        if unit.release is not None:
            row = snapshot.releases.get(unit.release)
            state.release_status = row.get("status", "") if row else "missing"
            state.release_chart = row.get("chart", "") if row else ""
        refs = list(dict.fromkeys([*unit.workloads, *_helm_workloads(snapshot, unit)]))
        refs = [r for r in refs if r not in unit.databases]
        state.workloads = workload_states(snapshot, refs)
        state.databases = workload_states(snapshot, unit.databases)
        state.volumes = volume_states(snapshot, _claims_of(snapshot, unit, refs + unit.databases))
        state.certificates = certificate_states(snapshot, unit, declared)
        states.append(state)
    return states
