"""The rules about the data the stack keeps: Longhorn volumes healthy with replicas on distinct
nodes, a recent backup of every claimed volume, certificates far from expiry. Each a pure function
of the facts."""

from __future__ import annotations

from datetime import timedelta

from ..verify.longhorn import colocated
from .assess import last_backups
from .findings import ERROR, INFO, WARNING, Facts, Finding, age, units_of, when
from .reads import CERTIFICATES

BACKUP_MAX_AGE = timedelta(days=2)
CERTIFICATE_MIN_LEFT = timedelta(days=14)  # cert-manager renews 30 days early (renewBefore 720h)


def _volume_owner(f: Facts) -> dict[str, str]:
    return {v.volume: s.unit.id for s in f.states for v in s.volumes if v.volume}


def volumes(f: Facts) -> list[Finding]:
    owners = _volume_owner(f)
    shared = colocated(f.snapshot.replicas)
    found = []
    for v in f.snapshot.volumes:
        unit = owners.get(v.name, "")
        claim = f"{v.pvc_namespace}/{v.pvc_name}" if v.pvc_name else "no claim"
        if not v.healthy:
            found.append(Finding(
                ERROR if v.robustness == "faulted" else WARNING, "volume", unit or v.name,
                f"Longhorn volume {v.name} ({claim}) is {v.robustness or 'unknown'}",
                (f"volumes.longhorn.io {v.name}: state {v.state}, robustness {v.robustness}, "
                 f"{v.replicas} replicas wanted",),
                "Longhorn's UI or `kubectl -n longhorn-system get replicas.longhorn.io` shows "
                "which replica is missing and why", units_of(unit),
            ))  # fmt: skip
        if v.name in shared:
            found.append(Finding(
                WARNING, "volume-replicas", unit or v.name,
                f"Longhorn volume {v.name} ({claim}) keeps two replicas on one node",
                (f"replicas of {v.name} share {', '.join(shared[v.name])}",),
                "losing that node loses both copies: add disk space elsewhere, then let Longhorn "
                "rebuild the replica on another node", units_of(unit),
            ))  # fmt: skip
    return found


def backups(f: Facts) -> list[Finding]:
    owners = _volume_owner(f)
    latest = last_backups(f.snapshot)
    claims = {(c.namespace, c.name): c for c in f.snapshot.claims}
    found = []
    for v in f.snapshot.volumes:
        if not v.pvc_name:
            continue
        unit = owners.get(v.name, "")
        last = latest.get(v.name)
        claim = claims.get((v.pvc_namespace, v.pvc_name))
        created = claim.created if claim else None
        if last is not None and f.now - last <= BACKUP_MAX_AGE:
            continue
        if last is None and created is not None and f.now - created <= BACKUP_MAX_AGE:
            found.append(Finding(
                INFO, "backup", unit or v.name,
                f"{v.pvc_namespace}/{v.pvc_name} has no backup yet (created {when(created)})",
                (f"volume {v.name}: no completed backup",),
                "the daily backup job (03:00) takes its first one", units_of(unit),
            ))  # fmt: skip
            continue
        seen = f"last {when(last)}, {age(f.now - last)} ago" if last else "none at all"
        found.append(Finding(
            ERROR, "backup", unit or v.name,
            f"{v.pvc_namespace}/{v.pvc_name}: no backup within {age(BACKUP_MAX_AGE)} ({seen})",
            (f"volume {v.name}: newest completed backup {when(last)}",),
            "check the backup target and the backup-daily RecurringJob in Longhorn's UI",
            units_of(unit),
        ))  # fmt: skip
    return found


def certificates(f: Facts) -> list[Finding]:
    owners = {(c.namespace, c.name): s.unit.id for s in f.states for c in s.certificates}
    found = []
    if CERTIFICATES not in f.snapshot.problems:
        found += [
            Finding(ERROR, "certificate", s.unit.id,
                    f"{s.unit.id}: certificate {c.namespace}/{c.name} is absent",
                    (f"certificates.cert-manager.io: no {c.name} in {c.namespace}",),
                    f"`invoke cluster.deploy --step {s.unit.id}`", (s.unit.id,))
            for s in f.states for c in s.certificates if not c.found
        ]  # fmt: skip
    for c in f.snapshot.certificates:
        unit = owners.get((c.namespace, c.name), "")
        left = c.not_after - f.now if c.not_after else None
        if left is not None and left <= CERTIFICATE_MIN_LEFT:
            state = "expired" if left.total_seconds() <= 0 else f"expires in {age(left)}"
            found.append(Finding(
                ERROR, "certificate", unit or f"{c.namespace}/{c.name}",
                f"certificate {c.namespace}/{c.name} {state} ({when(c.not_after)})",
                (f"Certificate {c.namespace}/{c.name}: status.notAfter {when(c.not_after)}, "
                 f"Ready {c.ready}{': ' + c.message if c.message else ''}",),
                f"renewal is failing: `kubectl -n {c.namespace} describe certificate {c.name}` "
                "and its CertificateRequest", units_of(unit),
            ))  # fmt: skip
        elif not c.ready:
            found.append(Finding(
                ERROR, "certificate", unit or f"{c.namespace}/{c.name}",
                f"certificate {c.namespace}/{c.name} is not Ready",
                (f"Certificate {c.namespace}/{c.name}: {c.message or 'Ready is not True'}",),
                f"`kubectl -n {c.namespace} describe certificate {c.name}`", units_of(unit),
            ))  # fmt: skip
    return found
