"""Checks of exactly the selected steps' inputs, run before a run's first tool call.

Helm silently ignores an unknown values key and a broken ``((placeholder))`` otherwise fails
mid-run, so every task that runs steps first checks, for the steps it selected: each release's
values files (YAML, placeholders, a map, unknown keys and the chart's schema, against the chart
data :class:`~tasks.validate.chartdata.ChartSource` finds) and each manifest bundle's files
(YAML, placeholders, Kubernetes schemas and CRDs). The stack hands :func:`prechecks` to the
engine as ``Catalog.prechecks``; every problem comes back together, each naming the file, the key
or line, and the fix. One call parses each chart and the CRDs once; inputs that passed before,
unchanged to the byte, are not checked again (:mod:`tasks.validate.passed`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..engine import yamlio
from ..engine.components import Component, HelmRelease, ManifestBundle
from ..engine.context import RunContext
from ..engine.errors import FieldError, InputError
from ..engine.render import render_file
from . import passed
from .chartdata import REFERENCE, ChartSource, shown
from .kubeschema import (
    crd_directories,
    crd_index,
    kubernetes_schema_version,
    load_docs,
    validate_objects,
)
from .validation import values_errors, values_file_errors


def prechecks(
    ctx: RunContext,
    steps: Sequence[Component],
    *,
    source: ChartSource | None = None,
    reference: Path | None = REFERENCE,
) -> list[FieldError]:
    """Every problem in the values files and manifests of ``steps`` (empty: all clean)."""
    source = source or ChartSource(reference=reference)
    name = passed.key(ctx, steps, [source.cache, *crd_directories(reference)], reference)
    if passed.seen(name):
        return []
    errors = _all_problems(ctx, steps, source, reference)
    if not errors:
        passed.keep(name)
    return errors


def _all_problems(
    ctx: RunContext, steps: Sequence[Component], source: ChartSource, reference: Path | None
) -> list[FieldError]:
    version = kubernetes_schema_version(ctx.inventory)
    crds = crd_index(reference)
    errors: list[FieldError] = []
    bundles: list[ManifestBundle] = []
    for step in steps:
        if isinstance(step, HelmRelease):
            chart, _ = source.chart(step) if source.available() else (None, "")
            if chart is None:  # no chart data: the files themselves are still checked
                errors += values_file_errors(step, ctx)
                continue
            for crd in chart.crds:
                crds.add(crd, chart.origin, replace=False)
            errors += values_errors(step, chart, version, ctx)
        elif isinstance(step, ManifestBundle):
            bundles.append(step)
    for bundle in bundles:  # after the releases: their charts' CRDs validate the manifests
        errors += bundle_errors(bundle, ctx, version, crds)
    return _unique(errors)


def bundle_errors(bundle: ManifestBundle, ctx: RunContext, version: str, crds) -> list[FieldError]:
    """The problems of one manifest bundle's files, each named by its file."""
    errors: list[FieldError] = []
    own = bundle.placeholders()
    for path in bundle.files():
        label = shown(path)
        try:
            text = render_file(path, ctx.inventory, own)
        except InputError as exc:
            errors += exc.errors
            continue
        docs, found = load_docs(text, label)
        errors += found
        errors += [_with_fix(e) for e in validate_objects(docs, label, version, crds, notes=[])]
    if not errors:  # what is really applied (namespaces, generated objects, a profile's patch)
        try:
            docs = yamlio.load_all(bundle.applied(ctx))
        except InputError as exc:
            return list(exc.errors)
        errors += validate_objects(docs, shown(bundle.directory), version, crds, notes=[])
    return errors


def _with_fix(error: FieldError) -> FieldError:
    if error.fix:
        return error
    return FieldError(
        error.file,
        error.field,
        error.message,
        "fix or remove that field (`kubectl explain <kind>.<field>` shows the schema)",
    )


def _unique(errors: list[FieldError]) -> list[FieldError]:
    seen: set[str] = set()
    out = []
    for error in errors:
        if str(error) not in seen:
            seen.add(str(error))
            out.append(error)
    return out
