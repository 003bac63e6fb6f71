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
from pathlib import Path

import pytest

from tasks.engine.components import HelmRelease
from tasks.engine.inventory import load_inventory
from tasks.stack import STACK
from tasks.validate import validation
from tasks.validate.chartdata import REFERENCE, ChartSource, cache_path, shown

INVENTORY = load_inventory()
RELEASES = validation.helm_releases(STACK, INVENTORY)
README = Path(__file__).resolve().parents[1] / "README.md"


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


# What the full charts still render without requests and limits or without liveness and readiness
# probes, because the chart has no key for it: the README's table ("Requests, limits and probes of
# chart containers") lists each with its reason. A container missing more than this fails.
CHART_GAPS: dict[tuple[str, str], set[str]] = {
    ("network/kube-vip-cloud-provider", "Deployment/kube-vip-cloud-provider:kube-vip-cloud-provider"): {"probes"},
    ("network/kube-vip", "DaemonSet/kube-vip:kube-vip"): {"probes"},
    ("network/cert-manager", "Deployment/cert-manager-cainjector:cert-manager-cainjector"): {"probes"},
    ("network/cert-manager", "Deployment/cert-manager:cert-manager-controller"): {"readiness"},
    ("storage/longhorn", "DaemonSet/longhorn-manager:longhorn-manager"): {"liveness"},
    ("storage/longhorn", "DaemonSet/longhorn-manager:pre-pull-share-manager-image"): {"resources", "probes"},
    ("storage/longhorn", "Deployment/longhorn-driver-deployer:longhorn-driver-deployer"): {"resources", "probes"},
    ("storage/longhorn", "Deployment/longhorn-ui:longhorn-ui"): {"resources", "probes"},
    ("observability/kube-prometheus-stack", "Deployment/kube-prometheus-stack-grafana:grafana-sc-dashboard"): {"probes"},
    ("observability/kube-prometheus-stack", "Deployment/kube-prometheus-stack-grafana:grafana-sc-datasources"): {"probes"},
    ("observability/loki", "StatefulSet/loki-minio:minio"): {"probes"},
    ("observability/loki", "StatefulSet/loki:loki-sc-rules"): {"probes"},
    ("observability/alloy", "DaemonSet/alloy:config-reloader"): {"probes"},
    ("scheduling/kyverno", "Deployment/kyverno-background-controller:controller"): {"probes"},
    ("scheduling/kyverno", "Deployment/kyverno-reports-controller:controller"): {"probes"},
}  # fmt: skip


def _gaps(container: dict) -> set[str]:
    resources = container.get("resources") or {}
    gaps = set()
    if not (resources.get("requests") and resources.get("limits")):
        gaps.add("resources")
    probes = {"liveness": "livenessProbe", "readiness": "readinessProbe"}
    missing = {name for name, key in probes.items() if not container.get(key)}
    gaps |= {"probes"} if missing == set(probes) else missing
    return gaps


@pytest.mark.parametrize("release", RELEASES, ids=lambda r: r.release)
def test_every_long_running_chart_container_has_resources_and_probes_or_is_listed(
    release: HelmRelease, request: pytest.FixtureRequest
) -> None:
    if not cached(release):
        pytest.skip(f"{shown(cache_path(release))} is not cached (invoke charts.pull fetches it)")
    report: validation.Report = request.getfixturevalue("report")
    found: dict[str, set[str]] = {}
    for obj in report.rendered[release.id]:
        if not isinstance(obj, dict) or obj.get("kind") not in (
            "Deployment",
            "StatefulSet",
            "DaemonSet",
        ):
            continue
        if obj["spec"].get("replicas") == 0:  # scheduler-plugins' controller: nothing runs
            continue
        for container in obj["spec"]["template"]["spec"]["containers"]:
            gaps = _gaps(container)
            if gaps:
                found[f"{obj['kind']}/{obj['metadata']['name']}:{container['name']}"] = gaps
    listed = {name: gaps for (rid, name), gaps in CHART_GAPS.items() if rid == release.id}
    assert found == listed


def test_prometheus_and_alertmanager_objects_set_resources(request: pytest.FixtureRequest) -> None:
    (release,) = [r for r in RELEASES if r.release == "kube-prometheus-stack"]
    if not cached(release):
        pytest.skip(f"{shown(cache_path(release))} is not cached (invoke charts.pull fetches it)")
    report: validation.Report = request.getfixturevalue("report")
    objects = {o["kind"]: o for o in report.rendered[release.id] if isinstance(o, dict)}
    for kind in ("Prometheus", "Alertmanager"):
        resources = objects[kind]["spec"]["resources"]
        assert resources["requests"] and resources["limits"], kind


def test_the_readme_lists_every_chart_container_gap() -> None:
    table = README.read_text().split("| container | missing | why |", 1)[1].split("\n\n", 1)[0]
    for _, name in CHART_GAPS:
        container = name.rsplit(":", 1)[1]
        words = {"grafana-sc-dashboard": "Grafana", "grafana-sc-datasources": "Grafana",
                 "loki-sc-rules": "Loki", "config-reloader": "Alloy", "minio": "MinIO",
                 "controller": "Kyverno", "cert-manager-cainjector": "cainjector",
                 "cert-manager-controller": "cert-manager", "longhorn-manager": "Longhorn manager"}  # fmt: skip
        assert words.get(container, container) in table, container
