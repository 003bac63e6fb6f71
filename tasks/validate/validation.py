"""Validate values files and manifests offline: against chart data, Kubernetes schemas and CRDs.

Helm silently ignores a values key the chart does not know, so a typo quietly disables a setting.
Every ``HelmRelease`` of the catalogue has its values file (rendered with the inventory) checked
against its pinned chart: a key absent from the chart's default values (including keys the chart
documents as comments or reads in its templates) and from its ``values.schema.json`` is an error,
and the values merged onto the defaults must satisfy that schema. Chart data comes from the cache
``invoke charts.pull`` fills (``.cache/charts/<chart>-<version>/``, full charts) or else from
``../shared/reference/charts`` (values and schemas only). Every file under ``manifests/`` is
rendered and validated against the Kubernetes JSON schemas of the inventory's Kubernetes minor and
against the CRDs in ``../shared/reference/crds`` (and ``$ONECLUSTER_EXTRA_CRDS``); the database
templates (``manifests/databases/``) are validated as each declared database renders them. Where
a full chart is cached, ``helm template`` renders the release and its objects are validated the
same way.

Run ``invoke charts.validate`` (the lint session does): exit 1 on any error.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..engine import helm, yamlio
from ..engine.catalog import Catalog
from ..engine.command import Command, Executor, resolve_binary
from ..engine.components import HelmRelease
from ..engine.context import run_context
from ..engine.errors import FieldError, InputError, OneclusterError, ToolMissingError
from ..engine.inventory import REPO_ROOT, Inventory
from ..engine.output import echo
from ..engine.render import render_file
from ..workloads.workload import DATABASE_TEMPLATES, DatabaseBundle
from .chartdata import REFERENCE, Chart, ChartSource, cache_path, shown
from .kubeschema import (
    CrdIndex,
    crd_index,
    kubernetes_schema_version,
    load_docs,
    validate_objects,
)
from .valuescheck import check_values


@dataclass
class Report:
    """Everything one validation run found: errors, skips and what was checked."""

    errors: list[FieldError] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    def say(self, text: str) -> None:
        self.lines.append(text)


def helm_releases(catalog: Catalog, inv: Inventory) -> list[HelmRelease]:
    """Every Helm release of ``catalog`` for ``inv``."""
    return [c for c in catalog.components(inv) if isinstance(c, HelmRelease)]


def run(
    catalog: Catalog,
    inv: Inventory,
    *,
    source: ChartSource | None = None,
    manifests: Path | None = None,
    reference: Path | None = REFERENCE,
    executor: Executor | None = None,
) -> Report:
    """Check every values file, manifest and (where a chart is cached) rendered release."""
    report = Report()
    source = source or ChartSource(reference=reference)
    steps = catalog.components(inv)  # built once: the releases and the databases both come from it
    releases = [c for c in steps if isinstance(c, HelmRelease)]
    databases = [c for c in steps if isinstance(c, DatabaseBundle)]
    version = kubernetes_schema_version(inv)
    crds = crd_index(reference)
    if reference is None or not (reference / "crds").is_dir():
        report.say("skipped: CRD schemas: no ../shared/reference/crds beside this checkout")
    charts = check_values_files(releases, inv, source, version, crds, report)
    check_manifests(databases, inv, manifests or REPO_ROOT / "manifests", version, crds, report)
    check_helm_templates(releases, charts, inv, source, version, crds, report, executor)
    return report


# Values files against chart data ----------------------------------------------------------------


def check_values_files(
    releases: list[HelmRelease],
    inv: Inventory,
    source: ChartSource,
    version: str,
    crds: CrdIndex,
    report: Report,
) -> dict[str, Chart | None]:
    """Check each release's rendered values against its chart; the chart data found, by step id.

    The CRDs a chart ships are added to ``crds``, so manifests using them are validated too.
    """
    if not source.available():
        report.say(
            f"skipped: values check: no chart data ({shown(source.cache)} is empty: run "
            "`invoke charts.pull` where the network allows, or put ../shared/reference beside "
            "this checkout)"
        )
        return {}
    report.say(f"chart data: {source.describe()}")
    charts: dict[str, Chart | None] = {}
    for release in releases:
        chart, why = source.chart(release)
        charts[release.id] = chart
        if chart is None:
            report.say(f"skipped: {shown(release.values_path)}: {why}")
            continue
        for crd in chart.crds:
            crds.add(crd, chart.origin, replace=False)
        check_release_values(release, chart, inv, version, report)
    return charts


def check_release_values(
    release: HelmRelease, chart: Chart, inv: Inventory, version: str, report: Report
) -> None:
    """Check one release's rendered values file against its chart's defaults and schema."""
    rel = shown(release.values_path)
    if not release.values_path.exists():
        report.say(f"skipped: {rel}: no values file (chart defaults)")
        return
    try:
        values = yamlio.load(render_file(release.values_path, inv))
    except InputError as exc:  # an unknown ((placeholder)): keep checking the rest
        report.errors += exc.errors
        return
    except yamlio.YAMLError as exc:
        report.errors.append(FieldError(rel, "(yaml)", f"not valid YAML: {exc}"))
        return
    result = check_values(values, chart, rel, version)
    report.errors += result.errors
    report.lines += [f"note: {n}" for n in result.notes]
    status = f"{len(result.errors)} error(s)" if result.errors else "ok"
    report.say(
        f"values: {rel}: {result.keys} keys against {chart.name} {chart.version} "
        f"({chart.origin}): {status}"
    )


# Manifests against Kubernetes schemas and CRDs --------------------------------------------------


def check_manifests(
    databases: list[DatabaseBundle],
    inv: Inventory,
    root: Path,
    version: str,
    crds: CrdIndex,
    report: Report,
) -> None:
    """Validate every manifest that is deployed, as it is deployed.

    A plain file under ``root`` is rendered with the inventory alone. The database templates
    (``manifests/databases/``) are not: their ``((database.*))`` placeholders are filled per
    declared database, so each of ``databases`` is validated as a deploy renders it.
    """
    templates = REPO_ROOT / DATABASE_TEMPLATES
    files = [
        p
        for p in (sorted(root.rglob("*.y*ml")) if root.is_dir() else [])
        if p.is_file() and not p.is_relative_to(templates)
    ]
    notes: list[str] = []
    count = 0
    for label, text in _rendered_streams(files, databases, inv, report):
        docs, errors = load_docs(text, label)
        report.errors += errors
        report.errors += validate_objects(docs, label, version, crds, notes)
        count += sum(1 for d in docs if d is not None)
    used = {db.template for db in databases}
    notes += [
        f"{shown(t)}: no declared database uses this template, not validated"
        for t in sorted(templates.glob("*.y*ml"))
        if t not in used
    ]
    report.say(
        f"manifests: {len(files)} files, {len(databases)} database bundles from {len(used)} "
        f"templates; {count} objects against Kubernetes {version} schemas (strict) and "
        f"{len(crds.schemas)} CRD versions"
    )
    report.lines += [f"note: {n}" for n in notes]


def _rendered_streams(
    files: list[Path], databases: list[DatabaseBundle], inv: Inventory, report: Report
) -> Iterator[tuple[str, str]]:
    """(label, rendered YAML) of each file, then of each database bundle as a deploy renders it.

    One that cannot render (an unknown ``((placeholder))``, named by file and line) is reported
    and left out, so the others are still checked.
    """
    for path in files:
        try:
            yield shown(path), render_file(path, inv)
        except InputError as exc:
            report.errors += exc.errors
    with run_context(inv, dry_run=True, fetch_kubeconfig=False) as ctx:
        for db in databases:
            try:
                yield f"{shown(db.template)} for {db.id}", db.rendered(ctx)
            except InputError as exc:
                report.errors += exc.errors


# Releases rendered by helm template -------------------------------------------------------------


def check_helm_templates(
    releases: list[HelmRelease],
    charts: dict[str, Chart | None],
    inv: Inventory,
    source: ChartSource,
    version: str,
    crds: CrdIndex,
    report: Report,
    executor: Executor | None = None,
) -> None:
    """Render each release whose full chart is cached with ``helm template``; validate it."""
    helm_missing = _helm_missing()
    for release in releases:
        chart = charts.get(release.id)
        if chart is not None and chart.templates and helm_missing:
            report.say(f"skipped: helm template {release.release}: {helm_missing}")
            continue
        if chart is None or not chart.templates:
            report.say(
                f"skipped: helm template {release.release}: no full chart at "
                f"{shown(cache_path(release, source.cache))} (run `invoke charts.pull`)"
            )
            continue
        report.errors += template_release(release, inv, source, version, crds, report, executor)


def _helm_missing() -> str:
    """Why ``helm template`` cannot run here ("" when it can)."""
    try:
        resolve_binary("helm")
    except ToolMissingError as exc:
        return str(exc)
    return ""


# helm template has no API discovery; a live cluster reports these kind-qualified versions, which
# some charts test for (Traefik renders a policy/v1beta1 PodDisruptionBudget without it)
CLUSTER_APIS = ("policy/v1/PodDisruptionBudget",)


def template_command(
    release: HelmRelease,
    chart_dir: Path,
    kube_version: str,
    values: str,
    api_versions: Iterable[str] = (),
) -> Command:
    """``helm template`` of ``release`` from an unpacked chart, values on stdin."""
    return helm.template(
        release.release, chart_dir, release.namespace, kube_version, values, api_versions
    )


def template_release(
    release: HelmRelease,
    inv: Inventory,
    source: ChartSource,
    version: str,
    crds: CrdIndex,
    report: Report,
    executor: Executor | None = None,
) -> list[FieldError]:
    """Render ``release`` with ``helm template`` and validate every object it produces."""
    label = f"helm template {release.release}"
    values = render_file(release.values_path, inv) if release.values_path.exists() else ""
    command = template_command(
        release, cache_path(release, source.cache), version, values, CLUSTER_APIS
    )
    runner = executor or Executor()
    if runner.dry_run:
        runner.run(command, prefix="would run: $ ")
        return []
    try:
        out = runner.query(command).stdout
    except OneclusterError as exc:
        return [
            FieldError(
                label,
                "(render)",
                str(exc),
                "fix the values helm names; if it names missing dependencies, the cached chart "
                "is incomplete: `invoke charts.pull --force`",
            )
        ]
    docs, errors = load_docs(out, label)
    local = CrdIndex()
    local.schemas.update(crds.schemas)
    for doc in docs:
        if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
            local.add(doc, label, replace=False)
    notes: list[str] = []
    errors += validate_objects(docs, label, version, local, notes)
    report.say(f"{label}: {sum(1 for d in docs if d)} objects rendered and validated")
    report.lines += [f"note: {n}" for n in notes]
    return errors


def print_report(report: Report) -> int:
    """Print what was checked and every error; the exit code (1 on any error)."""
    for line in report.lines:
        echo(line)
    if report.errors:
        echo(f"{len(report.errors)} error(s):")
        for err in report.errors:
            echo(f"  - {err}")
        return 1
    echo("validation: ok")
    return 0
