"""Restore steps: each declared volume recreated from its backup before the step that mounts it.

``with_restore(catalog, request)`` is a catalogue transform, as a profile is
(:mod:`tasks.verify.profile`): it adds one step ``storage/restore-<app>-<pvc>`` per declared
volume (:mod:`.volumes`), needing ``storage/longhorn-ready``, and makes the step that applies the
claim (the app's bundle, or its database's) need it. So the plan and the dry-run show the
restores, and the runner starts an app only after its volumes are restored and bound.

A restore step follows Longhorn v1.11's "Restore via Custom Resource" path (longhorn/website
``content/docs/1.11.3/snapshots-and-backups/backup-and-restore/restore-from-a-backup.md``):

1. read what the cluster knows of the backup target (``backuptargets``, ``backupvolumes``,
   ``backups``: one list call), until the target is synced, and pick the claim's latest completed
   backup (or the one asked for). No backup: an error naming the volume, unless
   ``--allow-empty`` (then the app creates it empty, as without a restore);
2. apply a Longhorn ``Volume`` with ``spec.fromBackup`` = the backup's URL and wait until
   ``status.restoreInitiated`` and not ``status.restoreRequired`` (the doc's step 4); a volume
   that turns ``faulted`` or reports a ``Restore`` condition ``RestoreFailure`` stops the run
   naming the volume, the backup and what to do;
3. apply the PersistentVolume and the claim the app's manifests expect, bound to it, and wait
   until the claim is ``Bound``.

Under converge (a re-run) a claim already bound to the restored volume is in place: the runner
skips the step as ``unchanged`` (its fingerprint recorded, :meth:`RestoreVolume.confirm` reads the
claim), and a run without the record finds the same and says ``unchanged`` itself. A claim that exists bound to another volume is never restored over: the step
says so and leaves it (remove the app with ``--purge`` first to restore it).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from ..engine import fingerprint as fingerprints
from ..engine import yamlio
from ..engine.catalog import Catalog
from ..engine.command import Command
from ..engine.components import Component
from ..engine.context import RunContext
from ..engine.errors import OneclusterError
from ..engine.inventory import Inventory
from ..engine.output import echo
from ..engine.poll import parse_duration, poll
from ..engine.probes import PROBE_TIMEOUT, Probe, holds
from ..engine.quantity import QuantityError, value
from ..verify import longhorn
from .objects import LONGHORN_NAMESPACE, claim_stream, restored_volume, volume_name
from .volumes import DeclaredVolume, declared_volumes, of_apps

LONGHORN_READY = "storage/longhorn-ready"
# restores write with a field manager of their own: the app's later apply (manager onecluster)
# shares the claim's fields without taking over, and never tries to drop its volumeName
RESTORE_MANAGER = "onecluster-restore"
STORE_KINDS = "backuptargets.longhorn.io,backupvolumes.longhorn.io,backups.longhorn.io"


@dataclass(frozen=True)
class RestoreRequest:
    """What to restore: which apps (all when empty), named backups, empty volumes allowed."""

    apps: tuple[str, ...] = ()
    # (namespace, pvc) → the backup to restore it from (default: its latest completed one)
    backups: Mapping[tuple[str, str], str] = field(default_factory=dict)
    allow_empty: bool = False
    # how long the backup target may take to be read, and a restore to finish
    sync_timeout: str = "10m"
    timeout: str = "2h"
    interval: float = 5.0


def step_name(volume: DeclaredVolume) -> str:
    """``restore-<app>-<pvc>``."""
    return f"restore-{volume.app}-{volume.pvc}"


@dataclass(frozen=True, kw_only=True)
class RestoreVolume(Component):
    """One declared volume recreated from a Longhorn backup, then bound to its claim."""

    kind: ClassVar[str] = "restore"
    binaries: ClassVar[tuple[str, ...]] = ("kubectl",)

    volume: DeclaredVolume
    backup: str = ""  # a named backup; default: the claim's latest completed one
    allow_empty: bool = False
    sync_timeout: str = "10m"
    timeout: str = "2h"
    interval: float = 5.0

    @property
    def target(self) -> str:
        return f"{self.volume.namespace}/{self.volume.pvc}"

    @property
    def longhorn_volume(self) -> str:
        return volume_name(self.volume)

    # -- the commands, as the plan and --dry-run show them ---------------------------------

    def read_store(self, ctx: RunContext) -> Command:
        return ctx.kubectl("get", STORE_KINDS, "-n", LONGHORN_NAMESPACE, "-o", "json")

    def read_claim(self, ctx: RunContext) -> Command:
        v = self.volume
        return ctx.kubectl(
            "get", "persistentvolumeclaim", v.pvc, "-n", v.namespace, "-o", "json",
            "--ignore-not-found",
        )  # fmt: skip

    def read_volume(self, ctx: RunContext) -> Command:
        return ctx.kubectl(
            "get", "volumes.longhorn.io", self.longhorn_volume, "-n", LONGHORN_NAMESPACE,
            "-o", "json", "--ignore-not-found",
        )  # fmt: skip

    def apply(self, ctx: RunContext, docs: Sequence[dict]) -> Command:
        return ctx.kubectl.apply(
            stdin=yamlio.dump_all(docs).encode(), field_manager=RESTORE_MANAGER
        )

    def wait_bound(self, ctx: RunContext) -> Command:
        v = self.volume
        return ctx.kubectl(
            "wait", "--for=jsonpath={.status.phase}=Bound", "--timeout=300s",
            f"persistentvolumeclaim/{v.pvc}", "-n", v.namespace,
        )  # fmt: skip

    def commands(self, ctx: RunContext) -> list[Command]:
        """The reads and writes of a restore (the Volume's backup URL and size come from the
        first read, so the plan shows them as ``<from the backup>``)."""
        which = f"backup {self.backup}" if self.backup else "the latest backup"
        shown = restored_volume(self.volume, f"<url of {which}>", "<its volumeSize>")
        return [
            self.read_claim(ctx),
            self.read_store(ctx),
            self.apply(ctx, [shown]),
            self.read_volume(ctx),
            self.apply(ctx, claim_stream(self.volume, "<its volumeSize>")),
            self.wait_bound(ctx),
        ]

    def describe(self, ctx: RunContext) -> str:
        which = f"backup {self.backup}" if self.backup else "its latest backup"
        empty = "; none: left empty (--allow-empty)" if self.allow_empty else ""
        return (
            f"restore {self.target} ({self.volume.app}) from {which} into Longhorn volume "
            f"{self.longhorn_volume}, then bind PV and PVC before {self.volume.step}{empty}"
        )

    # -- converge ----------------------------------------------------------------------------

    def fingerprint(self, ctx: RunContext) -> str | None:
        """What the restore makes (its Volume, PV and claim, and the backup asked for), so a
        re-run whose claim is still bound to the restored volume skips it (see :meth:`confirm`)."""
        paths = (ctx.kubeconfig, ctx.talosconfig, str(ctx.workdir))
        return fingerprints.of_commands(self.kind, self.commands(ctx), paths)

    def confirm(self, ctx: RunContext) -> bool:
        """The claim is bound to the restored volume (one read)."""
        return all(holds(p, ctx) for p in self.probes(ctx))

    def probes(self, ctx: RunContext) -> list[Probe]:
        v = self.volume
        return [
            Probe(
                f"claim {self.target} bound to restored volume {self.longhorn_volume}",
                ctx.kubectl(
                    "get",
                    "persistentvolumeclaim",
                    v.pvc,
                    "-n",
                    v.namespace,
                    f"--request-timeout={PROBE_TIMEOUT}",
                    "-o",
                    "jsonpath={.spec.volumeName}",
                    timeout=20.0,
                ),
                lambda out: out.strip() == self.longhorn_volume,
            )
        ]

    # -- the run -----------------------------------------------------------------------------

    def run(self, ctx: RunContext) -> str | None:
        if ctx.dry_run:  # the commands, printed; the reads that pick the backup need a cluster
            return super().run(ctx)
        prefix = f"[{self.id}] $ "
        claim = _json(ctx.executor.query(self.read_claim(ctx)).stdout, self.read_claim(ctx))
        if claim:
            bound = (claim.get("spec") or {}).get("volumeName") or ""
            if bound == self.longhorn_volume:
                echo(f"[{self.id}] claim {self.target} is bound to the restored volume already")
                return "unchanged"
            echo(
                f"[{self.id}] claim {self.target} exists (volume {bound or 'not bound yet'}): "
                "kept, a restore never replaces a live volume (to restore it: `invoke "
                f"{self.volume.step.split('/')[0]}.remove --name {self.volume.app} --purge`, then "
                f"`invoke storage.restore --name {self.volume.app}`)"
            )
            return "unchanged"
        made = _json(ctx.executor.query(self.read_volume(ctx)).stdout, self.read_volume(ctx))
        spec = made.get("spec") or {}
        if spec.get("fromBackup"):  # an earlier run created it: finish that restore, not another
            source = _backup_of_url(spec["fromBackup"])
            echo(f"[{self.id}] volume {self.longhorn_volume} exists, restoring from {source}")
            self.wait_restored(ctx, source)
            ctx.run(
                self.apply(ctx, claim_stream(self.volume, str(spec.get("size")))), prefix=prefix
            )
            ctx.run(self.wait_bound(ctx), prefix=prefix)
            return None
        chosen = self.choose_backup(ctx)
        if chosen is None:
            echo(
                f"[{self.id}] no backup of {self.target} in the backup target: "
                f"{self.volume.step} creates it empty (--allow-empty)"
            )
            return None
        size = chosen.volume_size
        if not size:
            raise OneclusterError(
                f"{self.id}: backup {chosen.name} of {self.target} reports no volumeSize "
                "(Longhorn has not read it from the backup target yet); run the same command "
                "again in a few minutes"
            )
        _check_fits(self, chosen.name, size)
        echo(f"[{self.id}] restoring {self.target} from backup {chosen.name} ({chosen.url})")
        ctx.run(self.apply(ctx, [restored_volume(self.volume, chosen.url, size)]), prefix=prefix)
        self.wait_restored(ctx, chosen.name)
        ctx.run(self.apply(ctx, claim_stream(self.volume, size)), prefix=prefix)
        ctx.run(self.wait_bound(ctx), prefix=prefix)
        return None

    def choose_backup(self, ctx: RunContext) -> longhorn.Backup | None:
        """The backup to restore from, once the backup target is read; None: none (allowed)."""
        clock = time.monotonic()
        store = poll(
            lambda: self._store(ctx),
            parse_duration(self.sync_timeout),
            self.interval,
            done=lambda s: s.synced or self._pick(s) is not None,
        )
        picked = self._pick(store)
        if picked is not None:
            return picked
        waited = f"{time.monotonic() - clock:.0f}s"
        if self.backup:
            names = sorted(b.name for b in store.backups)
            raise OneclusterError(
                f"{self.id}: backup {self.backup} is not in the backup target (or not Completed "
                f"after {waited}); backups Longhorn lists: {', '.join(names) or 'none'} "
                "(fix: `invoke storage.backups` lists each volume's backups; give one of them)"
            )
        if not store.synced:
            pending = ", ".join(store.pending) or "the backup target (not available)"
            raise OneclusterError(
                f"{self.id}: Longhorn has not finished reading the backup target after "
                f"{self.sync_timeout} (still reading: {pending}); check "
                "`kubectl -n longhorn-system get backuptargets` (credentials, B2 bucket) and run "
                "the same command again"
            )
        if self.allow_empty:
            return None
        raise OneclusterError(
            f"{self.id}: no completed backup of volume {self.target} (app {self.volume.app}) "
            "in the backup target; nothing was restored and the app was not deployed (fix: "
            "`invoke storage.backups` shows what the target holds; give --allow-empty to let "
            f"{self.volume.step} create it empty)"
        )

    def _store(self, ctx: RunContext) -> longhorn.BackupStore:
        command = self.read_store(ctx)
        result = ctx.executor.query(command)
        try:
            return longhorn.read_backup_store(result.stdout)
        except ValueError as exc:
            raise OneclusterError(f"{self.id}: {command.display()}: not a List: {exc}") from None

    def _pick(self, store: longhorn.BackupStore) -> longhorn.Backup | None:
        if self.backup:
            named = [b for b in store.backups if b.name == self.backup and b.completed]
            return named[0] if named else None
        v = self.volume
        return longhorn.latest_for_claim(store.backups, v.namespace, v.pvc)

    def wait_restored(self, ctx: RunContext, backup: str) -> None:
        """Until Longhorn says the volume is restored; a failed restore stops the run."""
        last = [""]

        def probe() -> longhorn.Volume | None:
            command = self.read_volume(ctx)
            found = longhorn.volumes(
                {"items": [_json(ctx.executor.query(command).stdout, command)]}
            )
            vol = found[0] if found else None
            if vol is not None:
                seen = f"{vol.state or 'creating'}, {vol.robustness or 'unknown'}"
                if seen != last[0]:
                    echo(f"[{self.id}] volume {self.longhorn_volume}: restoring ({seen})")
                    last[0] = seen
                if vol.restore_error or vol.robustness == "faulted":
                    raise OneclusterError(
                        f"{self.id}: restoring volume {self.target} from backup {backup} "
                        f"failed: Longhorn volume {self.longhorn_volume} is "
                        f"{vol.robustness or 'faulted'}"
                        + (f" ({vol.restore_error})" if vol.restore_error else "")
                        + "; the app was not deployed (fix: `kubectl -n longhorn-system describe "
                        f"volumes.longhorn.io {self.longhorn_volume}` says why; delete that "
                        "volume, then run again with --backup NAME of an older backup "
                        "(`invoke storage.backups`), or --allow-empty)"
                    )
            return vol

        vol = poll(
            probe,
            parse_duration(self.timeout),
            self.interval,
            done=lambda v: v is not None and v.restore_initiated and not v.restore_required,
        )
        if vol is None or not vol.restore_initiated or vol.restore_required:
            raise OneclusterError(
                f"{self.id}: volume {self.target} was not restored from backup {backup} "
                f"within {self.timeout} (Longhorn volume {self.longhorn_volume}); the restore "
                "goes on in Longhorn: run the same command again to wait for it"
            )
        echo(f"[{self.id}] volume {self.longhorn_volume}: restored from {backup}")


def _backup_of_url(url: str) -> str:
    """The backup's name in a backup URL (``...?backup=NAME&volume=...``: longhorn-manager
    v1.11.3 uses backupstore.DecodeBackupURL), else the URL itself."""
    from urllib.parse import parse_qs, urlsplit

    return (parse_qs(urlsplit(url).query).get("backup") or [url])[0]


def _json(text: str, command: Command) -> dict:
    if not text.strip():
        return {}
    try:
        found = json.loads(text)
    except ValueError as exc:
        raise OneclusterError(f"{command.display()}: not JSON: {exc}") from None
    return found if isinstance(found, dict) else {}


def quantity_bytes(text: str) -> int | None:
    """A storage quantity (``5Gi``, ``1073741824``) in bytes, as ``Quantity.Value()``; None when
    not one."""
    try:
        return value(text)
    except QuantityError:
        return None


def _check_fits(step: RestoreVolume, backup: str, size: str) -> None:
    """A claim binds only to a volume at least as large as it asks for."""
    wanted, held = quantity_bytes(step.volume.size), quantity_bytes(size)
    if wanted is not None and held is not None and held < wanted:
        raise OneclusterError(
            f"{step.id}: backup {backup} of {step.target} holds a {held}-byte volume, and the "
            f"claim in the manifests asks for {step.volume.size}: it could never bind (fix: "
            f"restore with the claim's size as it was, then grow it; or --allow-empty)"
        )


def restore_steps(
    components: Sequence[Component], inventory: Inventory, request: RestoreRequest
) -> list[RestoreVolume]:
    """One restore step per declared volume of the requested apps."""
    volumes = of_apps(declared_volumes(components, inventory), request.apps)
    return [
        RestoreVolume(
            layer="storage",
            name=step_name(v),
            needs=(LONGHORN_READY,),
            volume=v,
            backup=request.backups.get((v.namespace, v.pvc), ""),
            allow_empty=request.allow_empty,
            sync_timeout=request.sync_timeout,
            timeout=request.timeout,
            interval=request.interval,
        )
        for v in volumes
    ]


def with_restores(
    components: Sequence[Component], inventory: Inventory, request: RestoreRequest
) -> list[Component]:
    """``components`` with the restore steps added after Longhorn and before each consumer."""
    restores = restore_steps(components, inventory, request)
    before: dict[str, list[str]] = {}
    for r in restores:
        before.setdefault(r.volume.step, []).append(r.id)
    wired: list[Component] = []
    for comp in components:
        if comp.id in before:
            comp = dataclasses.replace(comp, needs=(*comp.needs, *before[comp.id]))
        wired.append(comp)
        if comp.id == LONGHORN_READY:
            wired += restores  # in the plan right after Longhorn (declaration breaks ties)
    if not any(c.id == LONGHORN_READY for c in components):
        wired += restores
    return wired


def with_restore(catalog: Catalog, request: RestoreRequest) -> Catalog:
    """``catalog`` with a restore step before every declared volume's consumer."""
    source: Callable[[Inventory], list[Component]] = catalog.components
    return catalog.with_components(
        lambda inventory: with_restores(source(inventory), inventory, request)
    )


def only_restores(catalog: Catalog) -> Catalog:
    """A catalogue of just the restore steps (their needs taken as in place: a running cluster)."""
    return catalog.only(
        lambda inventory: [c for c in catalog.components(inventory) if isinstance(c, RestoreVolume)]
    )
