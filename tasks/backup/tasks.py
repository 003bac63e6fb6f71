"""Backups of the stack's volumes: list them, take one now, restore them into the cluster."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from ..engine.catalog import Catalog
from ..engine.cli import catalog_of, duration, one_of, onecluster_task
from ..engine.context import run_context
from ..engine.errors import FlagError, OneclusterError
from ..engine.execute import execute
from ..engine.inventory import Inventory
from ..engine.lock import LOCK_HELP
from ..engine.output import echo, table
from ..engine.poll import parse_duration
from . import listing, take
from .restore import RestoreRequest, only_restores, with_restore
from .volumes import DeclaredVolume, declared_volumes, of_apps

FORMATS = ("table", "json")
NAME_HELP = "only the volumes of this app (default: every declared volume)"


def declared(catalog: Catalog, cluster: str | None) -> tuple[Inventory, list[DeclaredVolume]]:
    """The inventory and every volume the catalogue's manifests declare."""
    inventory = catalog.load(cluster)
    steps = catalog.graph(inventory).steps(None)
    return inventory, declared_volumes(steps, inventory)


@onecluster_task(
    name="backups",
    help=dict(
        name=NAME_HELP,
        format=f"output format: {', '.join(FORMATS)}",
        dry_run="print the three read-only list calls, and run none",
    ),
    iterable=["name"],
    checks=dict(format=one_of(*FORMATS, what="format")),
)
def backups(c, cluster=None, name=None, format="table", dry_run=False):
    """List every declared volume with its latest backup in the backup target and its age.

    Volumes with no backup are named at the end. Read-only: three list calls (claims, Longhorn
    volumes, Longhorn backups), whatever the number of volumes.
    """
    inventory, volumes = declared(catalog_of(c), cluster)
    volumes = of_apps(volumes, name or ())
    with run_context(inventory, dry_run=True, fetch_kubeconfig=False) as ctx:
        if dry_run:
            for command in listing.reads(ctx):
                echo(command.display())
            echo(f"# dry-run: {len(volumes)} declared volumes, 3 reads printed, none run")
            return
        found = listing.rows(listing.read(ctx), volumes)
    if format == "json":
        echo(listing.as_json(found))
        return
    now = datetime.now(UTC)
    echo(
        table(
            ("APP", "NAMESPACE", "PVC", "CLAIM", "LONGHORN VOLUME", "LATEST BACKUP", "AGE", "N"),
            [
                (
                    r.volume.app, r.volume.namespace, r.volume.pvc, r.claim, r.longhorn_volume,
                    r.latest.name if r.latest else "-", r.age(now), r.count,
                )
                for r in found
            ],
        )
    )  # fmt: skip
    missing = [r for r in found if r.latest is None]
    if missing:
        echo(
            f"\nno backup: {len(missing)} volume(s): "
            + ", ".join(f"{r.volume.namespace}/{r.volume.pvc} ({r.volume.app})" for r in missing)
            + " (`invoke storage.backup --name APP` takes one now)"
        )


@onecluster_task(
    name="backup",
    help=dict(
        name=NAME_HELP,
        timeout="how long to wait for the backups to complete (default 30m)",
        dry_run="run the read-only list calls, then print the objects it would create",
    ),
    iterable=["name"],
    checks=dict(timeout=duration),
)
def backup_now(c, cluster=None, name=None, timeout="30m", dry_run=False):
    """Take a backup of the declared volumes now (a Longhorn Snapshot, then a Backup) and wait.

    Prints each backup's progress; fails naming the volume when one ends in Error or the wait
    times out. A declared volume with no Longhorn volume yet (its app not deployed) is skipped.
    """
    from ..engine import yamlio

    inventory, volumes = declared(catalog_of(c), cluster)
    volumes = of_apps(volumes, name or ())
    with run_context(inventory, dry_run=dry_run, fetch_kubeconfig=False) as ctx:
        if dry_run:
            for command in listing.reads(ctx):
                echo(f"# read-only, run in a dry-run too: {command.display()}")
        cluster_now = listing.read(ctx)
        pairs, absent = [], []
        for v in volumes:
            found = listing.longhorn_volumes_of(cluster_now, v)
            (pairs.append((v, found[0])) if found else absent.append(v))
        for v in absent:
            echo(f"skipped {v.namespace}/{v.pvc} ({v.app}): no Longhorn volume bound to it yet")
        if not pairs:
            raise OneclusterError(
                "no declared volume has a Longhorn volume to back up (are the apps deployed? "
                "`invoke storage.backups` shows each claim)"
            )
        plans = take.plans(pairs)
        if dry_run:
            snaps, backs = take.documents(plans)
            for command in take.commands(ctx, plans, timeout):
                echo(command.display())
            echo("# the objects it would create:")
            echo(yamlio.dump_all([*snaps, *backs], explicit_start=True))
            echo(f"# dry-run: {len(plans)} backup(s) printed, nothing was created")
            return
        done = take.take(
            ctx, plans, timeout=parse_duration(timeout, "--timeout"), interval=take.POLL_SECONDS
        )
    echo(f"{len(done)} backup(s) completed: " + ", ".join(b.name for b in done))


def named_backups(
    catalog: Catalog, cluster: str | None, names: Sequence[str], volumes: Sequence[DeclaredVolume]
) -> dict[tuple[str, str], str]:
    """Which volume each ``--backup NAME`` restores: read once (read-only), checked, mapped."""
    inventory = catalog.load(cluster)
    with run_context(inventory, dry_run=True, fetch_kubeconfig=False) as ctx:
        cluster_now = listing.read(ctx)
    chosen: dict[tuple[str, str], str] = {}
    for name in names:
        found = next((b for b in cluster_now.backups if b.name == name), None)
        if found is None:
            raise FlagError(
                f"--backup {name}: no such backup in the backup target (Longhorn lists "
                f"{len(cluster_now.backups)}; `invoke storage.backups` shows each volume's latest)"
            )
        if not found.completed:
            raise FlagError(f"--backup {name}: it is {found.state or 'New'}, not Completed")
        owner = [
            v
            for v in volumes
            if (found.pvc_namespace, found.pvc_name) == (v.namespace, v.pvc)
            or found.volume in listing.longhorn_volumes_of(cluster_now, v)
        ]
        if not owner:
            raise FlagError(
                f"--backup {name}: it is a backup of {found.pvc_namespace or '?'}/"
                f"{found.pvc_name or found.volume}, none of the volumes being restored ("
                + ", ".join(f"{v.namespace}/{v.pvc}" for v in volumes)
                + ")"
            )
        chosen[(owner[0].namespace, owner[0].pvc)] = name
    return chosen


@onecluster_task(
    name="restore",
    help=dict(
        name=NAME_HELP,
        backup="restore the volume this backup belongs to from it (default: each volume's "
        "latest; `invoke storage.backups` names them)",
        allow_empty="a volume with no backup is left for its app to create empty "
        "(default: it stops the run)",
        timeout="how long one volume's restore may take (default 2h)",
        **LOCK_HELP,
    ),
    iterable=["name", "backup"],
    checks=dict(timeout=duration),
)
def restore(
    c, cluster=None, name=None, backup=None, allow_empty=False, timeout="2h", dry_run=False,
    jobs=4, break_lock=False, yes=False,
):  # fmt: skip
    """Restore declared volumes from their backups into a running cluster, apps not yet deployed.

    Each volume: a Longhorn volume from its latest backup (or --backup NAME), then the PV and PVC
    its app's manifests expect, bound to it. Deploy the app afterwards; it finds its data.
    """
    catalog = catalog_of(c)
    _, volumes = declared(catalog, cluster)
    chosen_volumes = of_apps(volumes, name or ())
    chosen = named_backups(catalog, cluster, backup, chosen_volumes) if backup else {}
    request = RestoreRequest(
        apps=tuple(name or ()), backups=chosen, allow_empty=allow_empty, timeout=timeout
    )
    execute(
        only_restores(with_restore(catalog, request)), cluster=cluster, dry_run=dry_run,
        jobs=jobs, break_lock=break_lock, yes=yes,
    )  # fmt: skip


TASKS = ((backups, "backups"), (backup_now, "backup"), (restore, "restore"))
