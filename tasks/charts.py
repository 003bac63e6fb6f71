"""Charts: pull every pinned chart into a local cache; validate values and manifests offline."""

from __future__ import annotations

import shutil
from pathlib import Path

from invoke import Collection, task

from .engine.command import Command, Executor, check_tools
from .engine.components import HelmRelease
from .engine.context import helm_env
from .engine.deploy import help_for, user_errors
from .engine.errors import OneclusterError
from .engine.inventory import load_inventory
from .engine.output import echo


def pull_command(release: HelmRelease, into: Path) -> Command:
    """``helm pull`` of the pinned chart of ``release``, unpacked into ``into``."""
    return Command(
        "helm",
        (
            "pull",
            *release.chart_ref,
            "--version",
            release.version,
            "--untar",
            "--untardir",
            str(into),
        ),
        env=helm_env(),
        timeout=300,
    )


def _releases(cluster: str | None) -> list[HelmRelease]:
    from .stack import catalog  # lazy: keeps `invoke --list` fast

    return [c for c in catalog(load_inventory(cluster)) if isinstance(c, HelmRelease)]


def pull_charts(
    releases: list[HelmRelease], executor: Executor, *, force: bool = False
) -> list[str]:
    """Pull each chart not yet cached (all with ``force``); return the failures, one line each.

    A chart is unpacked beside its final place and moved there only once complete, so an
    interrupted pull never leaves a half chart that the checks would take for a full one.
    """
    from .engine.chartdata import cache_path, chart_name  # lazy: tarfile and friends

    failures: list[str] = []
    for release in releases:
        final = cache_path(release)
        if final.is_dir() and not force:
            echo(f"cached: {chart_name(release)} {release.version} ({final})")
            continue
        staging = final.parent.with_name(final.parent.name + ".partial")
        if not executor.dry_run:
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
        try:
            executor.run(pull_command(release, staging), prefix="$ ")
        except OneclusterError as exc:
            failures.append(f"{chart_name(release)} {release.version}: {exc}")
            shutil.rmtree(staging, ignore_errors=True)
            continue
        if not executor.dry_run:
            shutil.rmtree(final.parent, ignore_errors=True)
            staging.rename(final.parent)
    return failures


@task(
    help=help_for(
        "cluster",
        "dry_run",
        force="pull again even when a chart is already in the cache",
    )
)
@user_errors
def pull(c, cluster=None, dry_run=False, force=False):
    """Pull every pinned chart into .cache/charts for offline checks (needs network)."""
    releases = _releases(cluster)
    if not dry_run:
        check_tools(["helm"])
    failures = pull_charts(releases, Executor(dry_run=dry_run), force=force)
    if failures:
        raise OneclusterError(
            f"{len(failures)} chart(s) could not be pulled (is the network reachable?):\n"
            + "\n".join(f"  - {f}" for f in failures)
        )


@task(
    help=help_for(
        "cluster",
        dry_run="check values and manifests (local), but print the helm template commands and run none",
    )
)
@user_errors
def validate(c, cluster=None, dry_run=False):
    """Validate values files and manifests against charts, Kubernetes schemas and CRDs."""
    from invoke.exceptions import Exit

    from .engine.validation import main

    code = main([*(["--cluster", cluster] if cluster else []), *(["--dry-run"] if dry_run else [])])
    if code:
        raise Exit(code=code)


ns = Collection("charts")
ns.__doc__ = __doc__
ns.add_task(pull)
ns.add_task(validate)
