"""Cluster: rebuild everything from bare nodes, deploy parts of it, or print the plan."""

from __future__ import annotations

from .backup.restore import RestoreRequest, with_restore
from .engine.catalog import Catalog
from .engine.cli import catalog_of, duration, layer_settings, one_of, onecluster_task
from .engine.errors import FlagError, OneclusterError
from .engine.execute import diff, execute, plan
from .engine.lock import LOCK_HELP
from .engine.output import echo
from .engine.plan import FORMATS
from .status import FORMATS as STATUS_FORMATS
from .verify.profile import PROFILES

PROFILE_HELP = (
    f"deploy the stack as this profile adapts it ({', '.join(PROFILES)}: a kind cluster's "
    "stand-ins for Talos and Longhorn)"
)


RESTORE_HELP = (
    "restore every declared volume from its latest backup before the app that mounts it "
    "(steps storage/restore-<app>-<pvc>)"
)
ALLOW_EMPTY_HELP = (
    "with --restore: a volume with no backup is created empty (default: it stops the run)"
)


def _catalog(c, profile: str | None) -> Catalog:
    """The stack's catalogue, or that of a profile (``--profile kind``)."""
    stack = catalog_of(c)
    if profile is None:
        return stack
    return PROFILES[profile].catalog(stack)


def _restoring(
    catalog: Catalog, profile: str | None, restore: bool, allow_empty: bool = False
) -> Catalog:
    """``catalog`` with the restore steps when ``--restore`` (a catalogue transform, as a profile
    is: the steps exist only in a run or plan that asks for them)."""
    if allow_empty and not restore:
        raise FlagError("--allow-empty only means something with --restore")
    if not restore:
        return catalog
    if profile is not None:
        raise FlagError(
            f"--restore with --profile {profile}: that profile has no Longhorn to restore into"
        )
    return with_restore(catalog, RestoreRequest(allow_empty=allow_empty))


PROFILE_CHECK = one_of(*sorted(PROFILES), what="profile")


@onecluster_task(
    help=dict(
        profile=PROFILE_HELP, restore=RESTORE_HELP, allow_empty=ALLOW_EMPTY_HELP, **LOCK_HELP
    ),
    iterable=["force_step"],
    checks=dict(profile=PROFILE_CHECK),
)
def rebuild(
    c, cluster=None, dry_run=False, jobs=4, profile=None, break_lock=False, yes=False,
    force=False, force_step=None, restore=False, allow_empty=False,
):  # fmt: skip
    """Rebuild the whole cluster: Talos configs, apply, bootstrap, then every layer in order.

    A re-run converges: steps the cluster's record shows unchanged are skipped, so after a
    failure or an interrupt the same command resumes. ``--restore`` brings every declared
    volume back from its latest backup before its app starts.
    """
    catalog = _restoring(_catalog(c, profile), profile, restore, allow_empty)
    execute(
        catalog, cluster=cluster, dry_run=dry_run, jobs=jobs,
        break_lock=break_lock, yes=yes, force=force, force_steps=force_step or (),
    )  # fmt: skip


@onecluster_task(
    name="plan",
    help=dict(
        layer="only this layer",
        step="only this step and its needs",
        format=f"output format: {', '.join(FORMATS)}",
        dry_run="accepted like every task's; the plan itself never runs a command",
        profile=PROFILE_HELP,
        restore=RESTORE_HELP,
    ),
    iterable=["layer", "step"],
    checks=dict(format=one_of(*FORMATS, what="format"), profile=PROFILE_CHECK),
)
def plan_(
    c, cluster=None, layer=None, step=None, from_=None, format="table", dry_run=False,
    profile=None, restore=False,
):  # fmt: skip
    """Print the plan: every step in order with its needs and commands (table, json, mermaid)."""
    echo(
        plan(
            _restoring(_catalog(c, profile), profile, restore),
            cluster=cluster,
            layers=layer or (),
            targets=step or (),
            from_step=from_,
            fmt=format,
        )
    )


DIFF_FORMATS = ("table", "json")


@onecluster_task(
    name="diff",
    help=dict(
        layer="only this layer",
        step="only this step and its needs",
        live="also diff unchanged releases and bundles against the cluster (drift made by hand)",
        format=f"output format: {', '.join(DIFF_FORMATS)}",
        dry_run="accepted like every task's; the diff itself only reads",
        profile=PROFILE_HELP,
    ),
    iterable=["layer", "step"],
    checks=dict(format=one_of(*DIFF_FORMATS, what="format"), profile=PROFILE_CHECK),
)
def diff_(
    c, cluster=None, layer=None, step=None, live=False, format="table", dry_run=False,
    profile=None,
):  # fmt: skip
    """Show what a run would change (new, changed, unchanged per step); exit 2 if anything would.

    Read-only. Exit code 0: nothing would change; 2: something would; 1: an error (as
    ``terraform plan -detailed-exitcode``).
    """
    from invoke.exceptions import Exit

    text, changes = diff(
        _catalog(c, profile), cluster=cluster, layers=layer or (), targets=step or (),
        live=live, fmt=format,
    )  # fmt: skip
    echo(text)
    if changes:
        raise Exit(code=2)


@onecluster_task(
    help=dict(
        layer="deploy this layer",
        step="deploy this step and its needs",
        **LOCK_HELP,
    ),
    iterable=["layer", "step", "force_step"],
)
def deploy(
    c, cluster=None, layer=None, step=None, dry_run=False, jobs=4, break_lock=False,
    yes=False, force=False, force_step=None,
):  # fmt: skip
    """Deploy selected layers or steps (with their needs) onto a running cluster."""
    if not (layer or step):
        raise FlagError(
            "cluster.deploy deploys only what you select, and nothing was: give --layer LAYER "
            "or --step STEP (repeatable) (`invoke cluster.plan` lists them; "
            "`invoke cluster.rebuild` builds everything)"
        )
    execute(
        catalog_of(c),
        cluster=cluster,
        layers=layer or (),
        targets=step or (),
        dry_run=dry_run,
        jobs=jobs,
        break_lock=break_lock,
        yes=yes,
        force=force,
        force_steps=force_step or (),
    )


@onecluster_task(name="deploy", help=LOCK_HELP, iterable=["force_step"])
def deploy_layer(
    c, cluster=None, dry_run=False, jobs=4, break_lock=False, yes=False, force=False,
    force_step=None,
):  # fmt: skip
    """Deploy this layer in dependency order (needs outside it are assumed in place)."""
    layer = layer_settings(c).get("name")
    if not layer:
        raise OneclusterError("internal: a layer's deploy runs inside that layer's collection")
    execute(
        catalog_of(c), cluster=cluster, layers=[layer], dry_run=dry_run, jobs=jobs,
        break_lock=break_lock, yes=yes, force=force, force_steps=force_step or (),
    )  # fmt: skip


@onecluster_task(
    name="status",
    help=dict(
        since="report what happened within this long before now (default 9h)",
        timeout="the whole status ends within this (default 30s)",
        format=f"output format: {', '.join(STATUS_FORMATS)} (json: tasks/status/status.schema.json)",
        layer="only this layer's components and findings",
        name="only this release, bundle or app (e.g. mealie)",
        dry_run="print the read-only reads it would make, and make none",
    ),
    iterable=["layer", "name"],
    checks=dict(format=one_of(*STATUS_FORMATS, what="format"), since=duration, timeout=duration),
)
def status_(
    c, cluster=None, since="9h", timeout="30s", format="table", layer=None, name=None,
    dry_run=False,
):  # fmt: skip
    """Report the cluster's health against the stack, and what went wrong since --since.

    Read-only, no lock, bounded by --timeout. Exit code 0: healthy; 1: a finding is an error.
    """
    from invoke.exceptions import Exit

    from .status import run as status_run  # the report's reads and rules: only for this task

    code = status_run.print_status(
        catalog=catalog_of(c), cluster=cluster, since=since, timeout=timeout, fmt=format,
        layers=layer or (), names=name or (), dry_run=dry_run,
    )  # fmt: skip
    if code:
        raise Exit(code=code)


TASKS = (
    (rebuild, "rebuild"), (plan_, "plan"), (diff_, "diff"), (deploy, "deploy"),
    (status_, "status"),
)  # fmt: skip
