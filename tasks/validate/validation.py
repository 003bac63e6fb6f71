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
same way, with ``--api-versions`` for every CRD the stack installs (what the cluster serves once
it is built). The values checked and rendered are those a deploy feeds helm: placeholders filled,
overlays applied (:meth:`HelmRelease.rendered_values`). Last, every step's custom kinds must be
served by a CRD one of its needs installs (:func:`~tasks.engine.graph.missing_crd_needs`).

Run ``invoke charts.validate`` (the lint session does): exit 1 on any error.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine import helm, yamlio
from ..engine.catalog import Catalog
from ..engine.command import Command, Executor, resolve_binary
from ..engine.components import Component, CrdBundle, HelmRelease, ManifestBundle
from ..engine.context import RunContext, run_context
from ..engine.errors import FieldError, InputError, OneclusterError, ToolMissingError
from ..engine.graph import StepKinds, missing_crd_needs
from ..engine.inventory import REPO_ROOT, Inventory
from ..engine.output import echo
from ..engine.render import render_file
from ..workloads.workload import DATABASE_TEMPLATES, DatabaseBundle
from .apikinds import CrdCatalogue, api_versions, crds_in, custom_kinds, served_kinds
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
    # what each release rendered with helm template (by step id), for the needs check
    rendered: dict[str, list] = field(default_factory=dict)

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
    """Check every values file, manifest, rendered release (where cached) and the needs of kinds."""
    report = Report()
    source = source or ChartSource(reference=reference)
    graph = catalog.graph(inv)  # built once: the releases and the databases both come from it
    steps = graph.steps()
    releases = [c for c in steps if isinstance(c, HelmRelease)]
    databases = [c for c in steps if isinstance(c, DatabaseBundle)]
    version = kubernetes_schema_version(inv)
    crds = crd_index(reference)
    if reference is None or not (reference / "crds").is_dir():
        report.say("skipped: CRD schemas: no ../shared/reference/crds beside this checkout")
    with run_context(inv, dry_run=True, fetch_kubeconfig=False) as ctx:
        charts = check_values_files(releases, inv, source, version, crds, report, ctx)
        catalogue = CrdCatalogue(reference)
        for chart in charts.values():
            for crd in chart.crds if chart else ():
                catalogue.add(crd)
        kinds = step_kinds(steps, charts, catalogue, version, ctx)
        check_helm_templates(
            releases, charts, inv, source, version, crds, report, executor, ctx, kinds, catalogue
        )
        for release in releases:
            if release.id in report.rendered:
                kinds[release.id] = release_kinds(
                    charts.get(release.id), report.rendered[release.id], version
                )
        # after the renders: the CRDs releases render (cert-manager's) validate manifests too
        check_manifests(databases, inv, manifests or REPO_ROOT / "manifests", version, crds, report)
    check_kinds(graph, kinds, report)
    return report


# Values files against chart data ----------------------------------------------------------------


def check_values_files(
    releases: list[HelmRelease],
    inv: Inventory,
    source: ChartSource,
    version: str,
    crds: CrdIndex,
    report: Report,
    ctx: RunContext | None = None,
) -> dict[str, Chart | None]:
    """Check each release's deployed values against its chart; the chart data found, by step id.

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
        check_release_values(release, chart, inv, version, report, ctx)
    return charts


def values_label(release: HelmRelease) -> str:
    """The values file(s) of ``release`` as messages name them (overlays after a ``+``)."""
    return " + ".join([shown(release.values_path), *release.overlays])


def deployed_values(release: HelmRelease, ctx: RunContext) -> str:
    """What a deploy feeds helm: the values file rendered, overlays merged, the step's own edits."""
    return release.rendered_values(ctx)


def check_release_values(
    release: HelmRelease,
    chart: Chart,
    inv: Inventory,
    version: str,
    report: Report,
    ctx: RunContext | None = None,
) -> None:
    """Check one release's deployed values (rendered, overlays applied) against its chart."""
    rel = values_label(release)
    if not release.values_path.exists() and not release.overlays:
        report.say(f"skipped: {rel}: no values file (chart defaults)")
        return
    errors = values_errors(release, chart, version, ctx, report) if ctx else None
    if errors is None:
        with run_context(inv, dry_run=True, fetch_kubeconfig=False) as own:
            errors = values_errors(release, chart, version, own, report)
    report.errors += errors


def values_file_errors(release: HelmRelease, ctx: RunContext) -> list[FieldError]:
    """The problems of ``release``'s values files on their own: YAML, placeholders, not a map.

    Each file is read alone first, so a problem names the file and its line.
    """
    files = [release.values_path] if release.values_path.exists() else []
    files += [REPO_ROOT / o for o in release.overlays]
    errors: list[FieldError] = []
    for path in files:
        try:
            data = yamlio.load(render_file(path, ctx.inventory))
        except InputError as exc:  # an unknown ((placeholder)): keep checking the rest
            errors += exc.errors
            continue
        except yamlio.YAMLError as exc:
            errors.append(
                FieldError(shown(path), "(yaml)", f"not valid YAML: {exc}", "fix the YAML syntax")
            )
            continue
        if data is not None and not isinstance(data, dict):
            errors.append(
                FieldError(
                    shown(path),
                    "(top level)",
                    f"a values file must be a map of values, got a {type(data).__name__}",
                    "write it as `key: value` lines (helm reads a map)",
                )
            )
    return errors


def values_errors(
    release: HelmRelease, chart: Chart, version: str, ctx: RunContext, report: Report | None = None
) -> list[FieldError]:
    """The problems of ``release``'s deployed values: YAML, placeholders, keys and schema."""
    rel = values_label(release)
    errors = values_file_errors(release, ctx)
    if errors:
        return errors
    values = yamlio.load(deployed_values(release, ctx))
    result = check_values(values, chart, rel, version)
    if report is not None:
        report.lines += [f"note: {n}" for n in result.notes]
        status = f"{len(result.errors)} error(s)" if result.errors else "ok"
        report.say(
            f"values: {rel}: {result.keys} keys against {chart.name} {chart.version} "
            f"({chart.origin}): {status}"
        )
    return result.errors


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
    ctx: RunContext | None = None,
    kinds: dict[str, StepKinds] | None = None,
    catalogue: CrdCatalogue | None = None,
) -> None:
    """Render each release whose full chart is cached with ``helm template``; validate it.

    Every release renders with ``--api-versions`` for each CRD the stack installs (CRD bundles,
    charts' ``crds/``, and the CRDs of releases rendered before it): the APIs a rebuilt cluster
    serves. Rendering with fewer would hide the objects a chart renders only when their API is
    there (Loki's ServiceMonitor), and the needs check could not see that they need the CRDs.
    """
    helm_missing = _helm_missing()
    # what the other steps install; a release's own CRDs are known once it is rendered (below)
    ids = {r.id for r in releases}
    served = set().union(*(k.installs for cid, k in (kinds or {}).items() if cid not in ids))
    installed = [
        crd
        for crd in (catalogue.by_name.values() if catalogue else ())
        if served_kinds([crd]) <= served
    ]
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
        apis = api_versions(installed)
        report.errors += template_release(
            release, inv, source, version, crds, report, executor, apis, ctx
        )
        installed += crds_in(report.rendered.get(release.id, []))


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
    include_crds: bool = False,
) -> Command:
    """``helm template`` of ``release`` from an unpacked chart, values on stdin."""
    return helm.template(
        release.release, chart_dir, release.namespace, kube_version, values, api_versions,
        include_crds,
    )  # fmt: skip


def template_release(
    release: HelmRelease,
    inv: Inventory,
    source: ChartSource,
    version: str,
    crds: CrdIndex,
    report: Report,
    executor: Executor | None = None,
    apis: Iterable[str] = (),
    ctx: RunContext | None = None,
) -> list[FieldError]:
    """Render ``release``'s deployed values with ``helm template``; validate every object.

    ``apis`` are the ``--api-versions`` beside :data:`CLUSTER_APIS` (the CRDs the cluster serves).
    """
    if ctx is None:
        with run_context(inv, dry_run=True, fetch_kubeconfig=False) as own:
            return template_release(
                release, inv, source, version, crds, report, executor, apis, own
            )
    label = f"helm template {release.release}"
    has_values = release.values_path.exists() or bool(release.overlays)
    values = deployed_values(release, ctx) if has_values else ""
    command = template_command(
        release,
        cache_path(release, source.cache),
        version,
        values,
        (*CLUSTER_APIS, *apis),
        include_crds=True,  # what the install applies: the needs check sees every CRD it installs
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
    report.rendered[release.id] = [d for d in docs if d]
    for crd in crds_in(docs):  # the manifests validated next may use them (cert-manager's)
        crds.add(crd, label, replace=False)
    local = crds
    notes: list[str] = []
    errors += validate_objects(docs, label, version, local, notes)
    report.say(f"{label}: {sum(1 for d in docs if d)} objects rendered and validated")
    report.lines += [f"note: {n}" for n in notes]
    return errors


# Needs that follow from the kinds each step renders ---------------------------------------------


def step_kinds(
    steps: list[Component],
    charts: dict[str, Chart | None],
    catalogue: CrdCatalogue,
    version: str,
    ctx: RunContext,
) -> dict[str, StepKinds]:
    """What each step renders and installs, as far as it is known before ``helm template``."""
    kinds: dict[str, StepKinds] = {}
    for step in steps:
        if isinstance(step, CrdBundle):
            found, unresolved = catalogue.bundle(step)
            unknown = f"CRDs of {', '.join(unresolved)} not known offline" if unresolved else ""
            kinds[step.id] = StepKinds(installs=served_kinds(found), unknown=unknown)
        elif isinstance(step, ManifestBundle):
            try:
                docs = yamlio.load_all(step.applied(ctx))
            except (InputError, yamlio.YAMLError) as exc:  # reported by the manifests check
                kinds[step.id] = StepKinds(unknown=f"its manifests do not render: {exc}")
                continue
            kinds[step.id] = StepKinds(
                renders=custom_kinds(docs, version), installs=served_kinds(crds_in(docs))
            )
        elif isinstance(step, HelmRelease):
            kinds[step.id] = release_kinds(charts.get(step.id), None, version)
    return kinds


def release_kinds(chart: Chart | None, rendered: list | None, version: str) -> StepKinds:
    """A release's kinds: from its ``helm template`` output, else only the CRDs its chart ships."""
    shipped = served_kinds(chart.crds) if chart else frozenset()
    if rendered is None:
        return StepKinds(installs=shipped, unknown="its chart is not cached: not rendered")
    # rendered with --include-crds: exactly the CRDs the install applies (enabled subcharts' only)
    return StepKinds(
        renders=custom_kinds(rendered, version), installs=served_kinds(crds_in(rendered))
    )


def check_kinds(graph: Any, kinds: dict[str, StepKinds], report: Report) -> None:
    """Fail a step whose custom kinds no CRD of its needs serves; say what was not known."""
    unknown = {cid: k.unknown for cid, k in kinds.items() if k.unknown}
    for miss in missing_crd_needs(graph, kinds):
        group, kind = miss.kind
        if not miss.installers and unknown:  # perhaps installed by what is not known
            report.say(
                f"note: {miss.step}: renders {group} {kind}, which no step is known to install "
                f"({len(unknown)} step(s) not fully known)"
            )
            continue
        fix = (
            f"add {miss.suggest} to the needs of {miss.step}"
            if miss.suggest
            else "add the step that installs its CRD, and need it"
        )
        report.errors.append(FieldError(miss.step, f"needs ({group} {kind})", str(miss), fix))
    checked = len(kinds) - len(unknown)
    report.say(
        f"needs: kinds of {checked} steps checked against the CRDs their needs install"
        + (f"; not fully known: {len(unknown)} ({', '.join(sorted(unknown))})" if unknown else "")
    )
    report.lines += [f"note: {cid}: {why}" for cid, why in sorted(unknown.items())]


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
