"""Every release of the stack rendered from its full chart, as ``charts.validate`` renders it.

One test per chart of the stack; each runs whenever that chart is in the cache ``invoke
charts.pull`` fills (``$ONECLUSTER_CACHE/charts``, default ``.cache/charts``), else skips saying
so. The render is the validation run's own (:func:`tasks.validate.validation.run`, done once for
the module): the values a deploy feeds helm (placeholders filled from the reference inventory,
overlays applied), ``--api-versions`` for the CRDs the stack installs, ``--include-crds``, every
object validated against the Kubernetes schemas of the inventory's minor and the CRDs; then the
kinds it renders must be served by CRDs its needs install.
"""

from __future__ import annotations

import shutil

import pytest

from tasks.engine.components import HelmRelease
from tasks.engine.inventory import load_inventory
from tasks.stack import STACK
from tasks.validate import validation
from tasks.validate.chartdata import REFERENCE, ChartSource, cache_path, shown

INVENTORY = load_inventory()
RELEASES = validation.helm_releases(STACK, INVENTORY)


def test_the_stack_has_the_twelve_charts_this_file_renders() -> None:
    assert len({(r.chart, r.version) for r in RELEASES}) == 12


def cached(release: HelmRelease) -> bool:
    return (cache_path(release) / "Chart.yaml").is_file()


@pytest.fixture(scope="module")
def report() -> validation.Report:
    """One validation run over the stack, rendering every cached chart."""
    if not any(map(cached, RELEASES)):
        pytest.skip("no chart in the cache (invoke charts.pull)")
    if shutil.which("helm") is None:
        pytest.skip("helm is not installed")
    return validation.run(STACK, INVENTORY, source=ChartSource(reference=REFERENCE))


@pytest.mark.parametrize("release", RELEASES, ids=lambda r: r.release)
def test_the_release_renders_and_validates_from_its_full_chart(
    release: HelmRelease, request: pytest.FixtureRequest
) -> None:
    if not cached(release):
        pytest.skip(f"{shown(cache_path(release))} is not cached (invoke charts.pull fetches it)")
    report: validation.Report = request.getfixturevalue("report")
    label = f"helm template {release.release}"
    assert any(line.startswith(f"{label}: ") for line in report.lines), report.lines
    assert report.rendered[release.id], f"{label} rendered no object"
    mine = {label, release.id, validation.values_label(release)}
    assert [str(e) for e in report.errors if e.file in mine] == []
