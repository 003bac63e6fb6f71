"""Charts: pull every pinned chart into a local cache; validate values and manifests offline."""

from __future__ import annotations

import shutil
from pathlib import Path

from invoke.exceptions import Exit

from ..engine import helm
from ..engine.cli import catalog_of, new_directory, onecluster_task
from ..engine.command import Command, Executor, check_tools
from ..engine.components import HelmRelease
from ..engine.errors import OneclusterError
from ..engine.output import echo
from .chartdata import REFERENCE, ChartSource, cache_path, chart_name
from .validation import helm_releases, print_report, run


def pull_command(release: HelmRelease, into: Path) -> Command:
    """``helm pull`` of the pinned chart of ``release``, unpacked into ``into``."""
    return helm.pull(release.chart, release.repo, release.version, into)


def pull_charts(
    releases: list[HelmRelease], executor: Executor, *, force: bool = False
) -> list[str]:
    """Pull each chart not yet cached (all with ``force``); return the failures, one line each.

    A chart is unpacked beside its final place and moved there only once complete, so an
    interrupted pull never leaves a half chart that the checks would take for a full one.
    """
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


@onecluster_task(
    help=dict(
        force="pull again even when a chart is already in the cache",
    )
)
def pull(c, cluster=None, dry_run=False, force=False):
    """Pull every pinned chart into .cache/charts for offline checks (needs network)."""
    catalog = catalog_of(c)
    releases = helm_releases(catalog, catalog.load(cluster))
    if not dry_run:
        check_tools(["helm"])
    failures = pull_charts(releases, Executor(dry_run=dry_run), force=force)
    if failures:
        raise OneclusterError(
            f"{len(failures)} chart(s) could not be pulled (is the network reachable?):\n"
            + "\n".join(f"  - {f}" for f in failures)
        )


@onecluster_task(
    help=dict(
        dry_run="check values and manifests (local), but print the helm template commands and run none",
        cache="chart cache directory (default: .cache/charts, what charts.pull fills)",
        reference="reference data directory (default: ../shared/reference)",
    ),
    checks=dict(reference=new_directory, cache=new_directory),
)
def validate(c, cluster=None, dry_run=False, cache=None, reference=None):
    """Validate values files and manifests against charts, Kubernetes schemas and CRDs."""
    catalog = catalog_of(c)
    ref = Path(reference) if reference else REFERENCE
    report = run(
        catalog,
        catalog.load(cluster),
        source=ChartSource(Path(cache) if cache else None, ref),
        reference=ref,
        executor=Executor(dry_run=dry_run),
    )
    code = print_report(report)
    if code:
        raise Exit(code=code)


TASKS = ((pull, "pull"), (validate, "validate"))
