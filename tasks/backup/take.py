"""Backups taken now: a Longhorn Snapshot of each volume, then a Backup of it, waited for.

The CR path of Longhorn v1.11 (longhorn/website ``content/docs/1.11.3/snapshots-and-backups/``
``setup-a-snapshot.md`` and ``backup-and-restore/create-a-backup.md``): the Backup controller
backs up a snapshot only once it is ``status.readyToUse`` (longhorn-manager v1.11.3
``controller/backup_controller.go``, ``checkMonitor``), so the snapshots are waited for first;
then each Backup's ``status.state`` goes ``Pending`` → ``InProgress`` (``status.progress`` 0..100)
→ ``Completed`` or ``Error`` (``k8s/pkg/apis/longhorn/v1beta2/backup.go``).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from ..engine import yamlio
from ..engine.command import Command
from ..engine.context import RunContext
from ..engine.errors import OneclusterError
from ..engine.output import echo
from ..engine.poll import poll
from ..verify import longhorn
from .objects import LONGHORN_NAMESPACE, backup, snapshot
from .volumes import DeclaredVolume

# how often a backup's progress is read while waiting for it
POLL_SECONDS = 5.0


@dataclass(frozen=True)
class Plan:
    """One backup to take: the claim, its Longhorn volume, the names of the two objects."""

    claim: DeclaredVolume
    longhorn_volume: str
    snapshot: str
    backup: str

    @property
    def target(self) -> str:
        return f"{self.claim.namespace}/{self.claim.pvc}"


def names(longhorn_volume: str, now: datetime) -> tuple[str, str]:
    """The snapshot's and the backup's names: ``onecluster-<UTC time>-<volume hash>``."""
    digest = hashlib.sha256(longhorn_volume.encode()).hexdigest()[:8]
    stamp = now.strftime("%Y%m%d-%H%M%S")
    return f"onecluster-{stamp}-{digest}", f"onecluster-{stamp}-{digest}"


def plans(pairs: Sequence[tuple[DeclaredVolume, str]], now: datetime | None = None) -> list[Plan]:
    """A :class:`Plan` per (claim, Longhorn volume)."""
    now = now or datetime.now(UTC)
    return [Plan(claim, vol, *names(vol, now)) for claim, vol in pairs]


def documents(found: Sequence[Plan]) -> tuple[list[dict], list[dict]]:
    """The Snapshots, then the Backups, to create."""
    snaps = [snapshot(p.snapshot, p.longhorn_volume) for p in found]
    backs = [backup(p.backup, p.snapshot, p.longhorn_volume, p.claim) for p in found]
    return snaps, backs


def commands(ctx: RunContext, found: Sequence[Plan], timeout: str) -> list[Command]:
    """Apply the snapshots, wait until they are ready, apply the backups, read the backups."""
    snaps, backs = documents(found)
    ready = ctx.kubectl(
        "wait", "--for=jsonpath={.status.readyToUse}=true", f"--timeout={timeout}",
        *(f"snapshots.longhorn.io/{p.snapshot}" for p in found), "-n", LONGHORN_NAMESPACE,
    )  # fmt: skip
    return [
        ctx.kubectl.apply(stdin=yamlio.dump_all(snaps).encode()),
        ready,
        ctx.kubectl.apply(stdin=yamlio.dump_all(backs).encode()),
        read_backups(ctx, found),
    ]


def read_backups(ctx: RunContext, found: Sequence[Plan]) -> Command:
    return ctx.kubectl(
        "get", "backups.longhorn.io", *(p.backup for p in found), "-n", LONGHORN_NAMESPACE,
        "-o", "json",
    )  # fmt: skip


def take(
    ctx: RunContext,
    found: Sequence[Plan],
    *,
    timeout: float,
    interval: float = POLL_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> list[longhorn.Backup]:
    """Take the backups and wait for them, printing progress; raise when one fails or times out."""
    apply_snaps, wait_snaps, apply_backs, _ = commands(ctx, found, f"{int(timeout)}s")
    ctx.run(apply_snaps, prefix="$ ")
    ctx.run(wait_snaps, prefix="$ ")
    ctx.run(apply_backs, prefix="$ ")
    shown: dict[str, str] = {}
    by_name = {p.backup: p for p in found}

    def probe() -> list[longhorn.Backup]:
        text = ctx.executor.query(read_backups(ctx, found)).stdout
        data = json.loads(text or "{}")
        items = data.get("items") if data.get("kind") == "List" else [data]
        got = longhorn.backups({"items": items or []})
        for b in got:
            line = f"{b.state or 'New'} {b.progress}%"
            if shown.get(b.name) != line and b.name in by_name:
                echo(f"[backup] {by_name[b.name].target} ({b.name}): {line}")
                shown[b.name] = line
        failed = [b for b in got if b.state in ("Error", "Unknown")]
        if failed:
            raise OneclusterError(
                "backup failed: "
                + "; ".join(
                    f"{by_name[b.name].target} (backup {b.name} of Longhorn volume "
                    f"{by_name[b.name].longhorn_volume}): {b.state}"
                    + (f": {b.error}" if b.error else "")
                    for b in failed
                    if b.name in by_name
                )
                + " (fix: `kubectl -n longhorn-system describe backups.longhorn.io NAME` and the "
                "backup target's status, `kubectl -n longhorn-system get backuptargets`)"
            )
        return got

    try:
        got = poll(
            probe,
            timeout,
            interval,
            done=lambda bs: len(bs) == len(found) and all(b.completed for b in bs),
            clock=clock,
        )
    except ValueError as exc:
        raise OneclusterError(f"kubectl did not answer with JSON: {exc}") from None
    waiting = [p for p in found if not any(b.name == p.backup and b.completed for b in got)]
    if waiting:
        raise OneclusterError(
            f"backups not completed within {int(timeout)}s: "
            + ", ".join(f"{p.target} ({p.backup})" for p in waiting)
            + " (Longhorn goes on with them: `invoke storage.backups` shows when they land)"
        )
    return got
