"""Test conveniences: the reference inventory's rendered values and manifests, and the engine's
checks of them wrapped as assertions.

Plain manifests are read from their files; what declarations generate (a database from its kind's
template in ``manifests/databases/``, a bundle's namespace) only exists as the catalogue renders
it, so :func:`catalogue_objects` reads that.

The checks themselves live in the engine (``tasks/engine/kubeschema.py`` for objects,
``tasks/engine/valuescheck.py`` for values keys): tests call them, never re-implement them.
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tasks.engine.command import Executor
from tasks.engine.components import HelmRelease, ManifestBundle
from tasks.engine.context import run_context
from tasks.engine.inventory import REPO_ROOT, load_inventory
from tasks.engine.render import render_file
from tasks.stack import STACK
from tasks.validate.chartdata import REFERENCE, Chart, ChartSource, cache_dir
from tasks.validate.kubeschema import (
    CrdIndex,
    crd_index,
    kubernetes_schema_version,
    validate_object,
)
from tasks.validate.validation import CLUSTER_APIS, template_command
from tasks.validate.valuescheck import ValuesCheck
from tasks.workloads.workload import DATABASE_TEMPLATES

INVENTORY = load_inventory(None)  # the reference cluster, talos/cluster.yaml
KUBERNETES_VERSION = kubernetes_schema_version(INVENTORY)
MISSING = object()


def rendered(path: Path) -> str:
    """A values file or manifest with the reference inventory's placeholders filled in."""
    return render_file(path, INVENTORY)


def rendered_values(release: str) -> dict[str, Any]:
    """``helm-values/<release>.yaml``, rendered and parsed."""
    return yaml.safe_load(rendered(REPO_ROOT / "helm-values" / f"{release}.yaml")) or {}


def manifest_docs(directory: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every object of every ``*.yaml`` under ``directory``, rendered, with its file."""
    for path in sorted(directory.rglob("*.yaml")):
        # a template's placeholders are filled per declaration, not from the inventory alone
        assert not path.is_relative_to(REPO_ROOT / DATABASE_TEMPLATES), (
            f"{path} is a template: read its objects with catalogue_objects()"
        )
        for doc in yaml.safe_load_all(rendered(path)):
            if doc:
                yield path, doc


def catalogue_objects(layers: Iterable[str]) -> list[tuple[str, dict[str, Any]]]:
    """(step id, object) for every object the steps of ``layers`` apply, as a deploy renders them.

    Manifest bundles (generated databases and namespaces included), and the ``extraManifests``
    of a Helm release's rendered values.
    """
    wanted = set(layers)
    found: list[tuple[str, dict[str, Any]]] = []
    with run_context(INVENTORY, dry_run=True, fetch_kubeconfig=False) as ctx:
        for step in STACK.graph(INVENTORY).steps():
            if step.layer not in wanted:
                continue
            if isinstance(step, ManifestBundle):
                docs = list(yaml.safe_load_all(step.rendered(ctx)))
            elif isinstance(step, HelmRelease):
                values = yaml.safe_load(step.rendered_values(ctx)) or {}
                docs = [yaml.safe_load(m) for m in values.get("extraManifests", [])]
            else:
                continue
            found += [(step.id, d) for d in docs if isinstance(d, dict)]
    return found


def find_object(directory: Path, kind: str, name: str) -> dict[str, Any]:
    """The one object of ``kind`` called ``name`` under ``directory``."""
    found = [
        d
        for _, d in manifest_docs(directory)
        if d["kind"] == kind and d["metadata"]["name"] == name
    ]
    assert len(found) == 1, f"expected one {kind}/{name} under {directory}, found {len(found)}"
    return found[0]


def lookup(data: Any, dotted: str) -> Any:
    """``data`` at ``dotted`` (``a.b.0.c``; a key may hold dots when written ``a.[b.c].d``)."""
    for part in _split(dotted):
        if isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        elif isinstance(data, dict) and part in data:
            data = data[part]
        else:
            return MISSING
    return data


def _split(dotted: str) -> list[str]:
    parts: list[str] = []
    buf = ""
    bracket = False
    for ch in dotted:
        if ch == "[" and not buf:
            bracket = True
        elif ch == "]" and bracket:
            bracket = False
        elif ch == "." and not bracket:
            parts.append(buf)
            buf = ""
        else:
            buf += ch
    parts.append(buf)
    return parts


# The engine's checks, as assertions ------------------------------------------------------------


@functools.cache
def crds() -> CrdIndex:
    """The CRDs the engine validates against (reference data, then ``$ONECLUSTER_EXTRA_CRDS``)."""
    return crd_index(REFERENCE if REFERENCE.is_dir() else None)


def check_object(doc: dict[str, Any], source: str) -> str:
    """Fail on any schema error of ``doc``; return why it could not be checked ("" if it was)."""
    errors, unchecked = validate_object(doc, source, KUBERNETES_VERSION, crds())
    assert not errors, "\n".join(str(e) for e in errors)
    return unchecked


def check_all(docs: Iterable[dict[str, Any]], source: str) -> None:
    """Fail on any schema error of ``docs`` and on any object no schema is at hand for."""
    unchecked = [reason for doc in docs if (reason := check_object(doc, source))]
    assert not unchecked, unchecked


def manifest_cases(directory: Path) -> list[Any]:
    """A ``pytest.param(path, doc)`` per object under ``directory``, named folder/kind/name."""
    return [
        pytest.param(p, d, id=f"{p.parent.name}/{d['kind']}/{d['metadata']['name']}")
        for p, d in manifest_docs(directory)
    ]


def check_manifest(path: Path, doc: dict[str, Any]) -> None:
    """Fail on any schema error of one object of ``path``; skip when its CRD is not at hand."""
    unchecked = check_object(doc, str(path.relative_to(REPO_ROOT)))
    if unchecked:
        pytest.skip(unchecked)


def chart_of(release: HelmRelease, reference: Path) -> Chart:
    """The chart data the engine checks ``release``'s values against (cache, else reference)."""
    chart, why = ChartSource(reference=reference).chart(release)
    assert chart is not None, why
    return chart


def unknown_keys(result: ValuesCheck) -> list[str]:
    """The key paths the engine's values check found unknown to the chart."""
    return [e.field for e in result.errors if e.message.startswith("unknown key")]


# helm template with a full chart, when one is at hand ------------------------------------------


def full_chart(chart: str, version: str) -> Path:
    """The unpacked chart ``invoke charts.pull`` cached (``$ONECLUSTER_CACHE/charts``), or skip."""
    folder = cache_dir() / f"{chart}-{version}" / chart
    if not (folder / "Chart.yaml").exists():
        pytest.skip(f"{folder} is not cached (invoke charts.pull fetches it)")
    if shutil.which("helm") is None:
        pytest.skip("helm is not installed")
    return folder


def helm_template(
    release: HelmRelease, folder: Path, api_versions: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """Objects the engine's ``helm template`` renders for ``release``'s rendered values."""
    apis = (*CLUSTER_APIS, *api_versions)
    command = template_command(
        release, folder, KUBERNETES_VERSION, rendered(release.values_path), apis
    )
    out = Executor().query(command).stdout
    return [d for d in yaml.safe_load_all(out) if d]
