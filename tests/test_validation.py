"""Offline validation: values against chart data, manifests against Kubernetes schemas and CRDs."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import call_task

from tasks.engine.command import Executor
from tasks.engine.components import HelmRelease
from tasks.engine.inventory import load_inventory
from tasks.engine.values import coalesce as merge
from tasks.stack import STACK
from tasks.validate import validation
from tasks.validate.chartdata import Chart, ChartSource, crd_docs, documented_paths, load_chart
from tasks.validate.kubeschema import (
    EXTRA_CRDS_ENV,
    CrdIndex,
    crd_index,
    kubernetes_schema_version,
    validate_object,
    validate_objects,
)
from tasks.validate.tasks import pull_charts, pull_command
from tasks.validate.valuescheck import check_values


def chart_files(tmp_path: Path, files: dict[str, str]) -> dict[str, bytes]:
    out = {}
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        out[name] = path.read_bytes()
    return out


VALUES = """\
    image:
      tag: "1.0"
    persistence:
      enabled: false
      # storageClassName: default
      ## Prose: with a colon in it
      annotations: {}
    config: |
      looks_like_a_key: true
    extraEnv: []
    # extraArgs:
    #   - --flag
    probes:
      - name: live
        periodSeconds: 10
    limits:
      rate: 4
    sub:
      enabled: true
"""


@pytest.fixture
def chart(tmp_path: Path) -> Any:
    files = chart_files(
        tmp_path,
        {
            "Chart.yaml": """\
                apiVersion: v2
                name: demo
                version: 1.2.3
                dependencies:
                  - {name: sub, version: 0.1.0, repository: https://example.invalid}
            """,
            "values.yaml": VALUES,
            "values.schema.json": """\
                {"$schema": "http://json-schema.org/draft-07/schema#",
                 "properties": {
                   "image": {"type": "object", "properties": {"tag": {"type": "string"}}},
                   "labels": {"type": "object", "additionalProperties": {"type": "string"}}}}
            """,
            "charts/sub/Chart.yaml": "apiVersion: v2\nname: sub\nversion: 0.1.0\n",
            "charts/sub/values.yaml": "replicas: 1\nservice:\n  port: 80\n",
        },
    )
    loaded = load_chart(files, "demo")
    loaded.verbatim.add(("limits",))
    return loaded


def errors_of(values: str, chart: Any) -> list[str]:
    return [
        f"{e.field}: {e.message}"
        for e in check_values(yaml.safe_load(values), chart, "v.yaml").errors
    ]


CASES = [
    ("known keys", "image: {tag: '2.0'}\npersistence: {enabled: true}", []),
    ("commented key is documented", "persistence: {storageClassName: longhorn}", []),
    ("free-form {} map", "persistence: {annotations: {any.thing/x: y}}", []),
    ("schema additionalProperties", "labels: {team: a}", []),
    ("rendered verbatim", "limits: {ingestion_rate_mb: 16}", []),
    ("subchart key", "sub: {service: {port: 8080}, enabled: false}", []),
    ("global", "global: {anything: 1}", []),
    ("null deletes a default", "image: {tag: null}", []),
    ("top-level typo", "imagee: {tag: x}", ["imagee: unknown key"]),
    ("nested typo", "persistence: {enabeld: true}", ["persistence.enabeld: unknown key"]),
    ("subchart typo", "sub: {service: {prot: 1}}", ["sub.service.prot: unknown key"]),
    (
        "block scalar content is not a key",
        "looks_like_a_key: true",
        ["looks_like_a_key: unknown key"],
    ),
    ("list item keys are not keys", "periodSeconds: 5", ["periodSeconds: unknown key"]),
    (
        "map where the chart has a scalar",
        "image: {tag: {a: 1}}",
        ["image.tag: expected a str", "image.tag: violates"],
    ),
    ("schema type", "image: {tag: 3}", ["image.tag: violates demo's values.schema.json"]),
    ("scalar where the chart has a map", "persistence: true", ["persistence: expected a map"]),
    ("null removes a map", "persistence: null", []),
]


@pytest.mark.parametrize(("values", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_values_against_chart(chart: Any, values: str, expected: list[str]) -> None:
    found = errors_of(values, chart)
    assert len(found) == len(expected), found
    for got, want in zip(found, expected, strict=True):
        assert got.startswith(want), got


def test_documented_paths_follow_the_real_structure() -> None:
    found = documented_paths(textwrap.dedent(VALUES))
    assert ("persistence", "storageClassName") in found
    assert ("extraArgs",) in found
    assert not [p for p in found if "looks_like_a_key" in p or "Prose" in p]


def test_merge_is_helms_coalescing() -> None:
    assert merge({"a": {"b": 1, "c": 2}}, {"a": {"b": None, "d": 3}}) == {"a": {"c": 2, "d": 3}}
    assert merge({"a": [1, 2]}, {"a": [3]}) == {"a": [3]}


def test_a_packaged_subchart_is_read_from_its_tgz(tmp_path: Path) -> None:
    import io
    import tarfile

    packed = io.BytesIO()
    with tarfile.open(fileobj=packed, mode="w:gz") as tar:
        for name, text in {
            "Chart.yaml": "name: store\nversion: 5.4.0\n",
            "values.yaml": "size: 5Gi\n",
        }.items():
            info = tarfile.TarInfo(f"store/{name}")
            info.size = len(text)
            tar.addfile(info, io.BytesIO(text.encode()))
    files = chart_files(
        tmp_path,
        {
            "Chart.yaml": "name: p\nversion: 1.0.0\n"
            "dependencies:\n  - {name: store, version: 5.4.0}\n",
            "values.yaml": "store:\n  enabled: false\n",
        },
    )
    files["charts/store-5.4.0.tgz"] = packed.getvalue()
    chart = load_chart(files, "p")
    assert errors_of("store: {size: 1Gi, enabled: true}", chart) == []
    assert errors_of("store: {sise: 1Gi}", chart) == [
        "store.sise: unknown key: store 5.4.0 has no such value (Helm would silently ignore it)"
    ]


def test_a_missing_subchart_is_reported_not_guessed(tmp_path: Path) -> None:
    files = chart_files(
        tmp_path,
        {
            "Chart.yaml": "apiVersion: v2\nname: p\nversion: 1.0.0\ndependencies:\n"
            "  - {name: gone, version: 1.0.0, repository: https://example.invalid}\n",
            "values.yaml": "gone:\n  enabled: true\n",
        },
    )
    result = check_values({"gone": {"x": 1, "enabled": False}}, load_chart(files, "p"), "v.yaml")
    assert not result.errors
    assert result.notes == ["v.yaml: gone: subchart gone has no chart data here, not checked: x"]


# Against the reference charts ----------------------------------------------------------------


def test_every_values_file_of_the_repo_is_clean(tmp_path: Path, reference: Path) -> None:
    # the reference data alone (tests/test_chart_renders.py renders the cached full charts)
    source = ChartSource(cache=tmp_path / "no-cache", reference=reference)
    report = validation.run(STACK, load_inventory(), reference=reference, source=source)
    assert report.errors == []
    checked = [line for line in report.lines if line.startswith("values: ")]
    skipped = [line for line in report.lines if line.startswith("skipped: helm-values/")]
    releases = validation.helm_releases(STACK, load_inventory())
    # every release is either checked or skipped with a reason (a chart the reference lacks)
    assert len(checked) + len(skipped) == len(releases)
    in_reference = {r.chart for r in releases if (reference / "charts" / r.chart).is_dir()}
    assert len(checked) >= len(in_reference)


TYPOS = [
    (
        "kube-prometheus-stack",
        {"prometheus": {"prometheusSpec": {"retension": "30d"}}},
        "prometheus.prometheusSpec.retension",
    ),
    (
        "kube-prometheus-stack",
        {"grafana": {"persistance": {"enabled": True}}},
        "grafana.persistance",
    ),
    (
        "kube-prometheus-stack",
        {"prometheus-node-exporter": {"prometheus": {"monitr": {}}}},
        "prometheus-node-exporter.prometheus.monitr",
    ),
    ("loki", {"loki": {"auth_enable": False}}, "loki.auth_enable"),
    (
        "loki",
        {"minio": {"persistence": {"storageclass": "longhorn"}}},
        "minio.persistence.storageclass",
    ),
    ("alloy", {"controller": {"tolerations": [], "typ": "daemonset"}}, "controller.typ"),
    ("scheduler-plugins", {"scheduler": {"nam": "x"}}, "scheduler.nam"),
    ("kyverno", {"admissionControler": {"replicas": 3}}, "admissionControler"),
    ("kubernetes-mcp-server", {"livenessProbe": {"initialDelaySecond": 3}}, "livenessProbe"),
    (
        "kube-prometheus-stack",
        {"prometheus": {"prometheusSpec": {"resources": {"limit": {"cpu": 1}}}}},
        "prometheus.prometheusSpec.resources",
    ),
]


def chart_data(reference: Path, release: str, data: str) -> Chart:
    """The chart of ``release`` from the reference data, or its full chart from the cache."""
    (rel,) = [r for r in validation.helm_releases(STACK, load_inventory()) if r.release == release]
    if data == "reference":
        chart, why = ChartSource(cache=Path("/nonexistent"), reference=reference).chart(rel)
        assert chart is not None, why
        return chart
    chart, _ = ChartSource(reference=reference).chart(rel)
    if chart is None or not chart.templates:
        pytest.skip(f"no full chart of {rel.chart} {rel.version} in the cache (invoke charts.pull)")
    return chart


# a full chart's templates loosen nothing: the same typos are caught with it
DATA = pytest.mark.parametrize("data", ["reference", "full chart"])


@DATA
@pytest.mark.parametrize(("release", "values", "path"), TYPOS, ids=[t[2] for t in TYPOS])
def test_a_typo_is_an_error_naming_file_and_key(
    reference: Path, release: str, values: dict, path: str, data: str
) -> None:
    chart = chart_data(reference, release, data)
    (error,) = check_values(values, chart, f"helm-values/{release}.yaml").errors
    assert (error.file, error.field) == (f"helm-values/{release}.yaml", path)


ACCEPTED = [
    ("kubernetes-mcp-server", {"config": {"log_level": 2}}),  # toToml .Values.config
    ("kubernetes-mcp-server", {"livenessProbe": {"initialDelaySeconds": 5, "periodSeconds": 10}}),
    (
        "kube-prometheus-stack",
        {"prometheus": {"prometheusSpec": {"resources": {"limits": {"memory": "4Gi"}}}}},
    ),
    (
        "loki",
        {"loki": {"limits_config": {"max_line_size": "256KB"}}},
    ),  # from loki.config's template
    ("loki", {"loki": {"compactor": {"compaction_interval": "10m"}}}),
    ("kube-prometheus-stack", {"grafana": {"persistence": {"storageClassName": "longhorn"}}}),
    (
        "kube-prometheus-stack",
        {"grafana": {"grafana.ini": {"auth": {"disable_login_form": False}}}},
    ),
    ("kube-vip", {"env": {"svc_election": "true"}}),
    (
        "kube-vip-cloud-provider",
        {"cm": {"data": {"range-global": "192.168.50.200-192.168.50.230"}}},
    ),
    ("traefik", {"gateway": {"listeners": {"websecure": {"port": 8443}}}}),
    ("traefik", {"ports": {"web": {"expose": {"lan": True}}}}),
    ("traefik", {"service": {"additionalServices": {"lan": {"spec": {"type": "LoadBalancer"}}}}}),
]


@DATA
@pytest.mark.parametrize(("release", "values"), ACCEPTED, ids=[str(v) for _, v in ACCEPTED])
def test_free_form_maps_accept_any_key(
    reference: Path, release: str, values: dict, data: str
) -> None:
    chart = chart_data(reference, release, data)
    assert check_values(values, chart, "v.yaml").errors == []


def test_main_says_which_source_it_used(
    tmp_path: Path, reference: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    call_task("charts.validate", reference=str(reference), cache=str(tmp_path / "no-cache"))
    out = capsys.readouterr().out
    assert "chart data: reference charts" in out
    assert "validation: ok" in out


def test_main_skips_without_chart_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    call_task("charts.validate", reference=str(tmp_path / "none"), cache=str(tmp_path / "c"))
    out = capsys.readouterr().out
    assert "skipped: values check: no chart data" in out


def test_manifest_problems_are_collected_per_file(tmp_path: Path, reference: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "bad.yaml").write_text(
        yaml.safe_dump(with_change(DEPLOYMENT, "spec.replica", 1))
    )
    (tmp_path / "a" / "placeholder.yaml").write_text("metadata:\n  name: ((no.such.key))\n")
    report = validation.run(STACK, load_inventory(), manifests=tmp_path, reference=reference)
    problems = {(e.file, e.field) for e in report.errors}
    assert (str(tmp_path / "a" / "bad.yaml"), "Deployment/web spec") in problems
    assert (str(tmp_path / "a" / "placeholder.yaml"), "line 2") in problems


# Kubernetes objects ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def crds() -> CrdIndex:
    index = CrdIndex()
    root = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "crds"
    if root.is_dir():
        index.add_tree(root)
    return index


DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web"},
    "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
        },
    },
}


def with_change(doc: dict, dotted: str, value: Any) -> dict:
    doc = yaml.safe_load(yaml.safe_dump(doc))
    node = doc
    *parents, last = dotted.split(".")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[last] = value
    return doc


OBJECTS = [
    ("valid Deployment", DEPLOYMENT, None),
    ("unknown field", with_change(DEPLOYMENT, "spec.replica", 2), "Deployment/web spec"),
    ("wrong type", with_change(DEPLOYMENT, "spec.replicas", "two"), "Deployment/web spec.replicas"),
    (
        "container typo",
        with_change(DEPLOYMENT, "spec.template.spec.containers.0.imagePullPolicyy", "Always"),
        "Deployment/web spec.template.spec.containers[0]",
    ),
    (
        "removed apiVersion",
        with_change(DEPLOYMENT, "apiVersion", "apps/v1beta1"),
        "Deployment/web apiVersion",
    ),
]


@pytest.mark.parametrize(("doc", "field"), [o[1:] for o in OBJECTS], ids=[o[0] for o in OBJECTS])
def test_kubernetes_objects(doc: dict, field: str | None) -> None:
    errors = validate_objects([doc], "m.yaml", "1.35.0", CrdIndex(), [])
    if field is None:
        assert errors == []
    else:
        assert [e.field for e in errors] == [field], [str(e) for e in errors]
        assert errors[0].file == "m.yaml"


POLICY = {
    "apiVersion": "kyverno.io/v1",
    "kind": "ClusterPolicy",
    "metadata": {"name": "p"},
    "spec": {
        "rules": [
            {
                "name": "r",
                "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
                "mutate": {"patchStrategicMerge": {"spec": {"schedulerName": "x"}}},
            }
        ]
    },
}

CUSTOM = [
    ("valid ClusterPolicy", POLICY, None),
    (
        "typo in a rule",
        with_change(POLICY, "spec.rules.0.mutat", {}),
        "ClusterPolicy/p spec.rules[0]",
    ),
    (
        "unserved version",
        with_change(POLICY, "apiVersion", "kyverno.io/v9"),
        "ClusterPolicy/p apiVersion",
    ),
]


@pytest.mark.parametrize(("doc", "field"), [c[1:] for c in CUSTOM], ids=[c[0] for c in CUSTOM])
def test_custom_resources_against_reference_crds(
    reference: Path, crds: CrdIndex, doc: dict, field: str | None
) -> None:
    errors = validate_objects([doc], "m.yaml", "1.35.0", crds, [])
    assert [e.field for e in errors] == ([] if field is None else [field]), [str(e) for e in errors]


def test_a_kind_without_any_schema_is_noted_not_passed_silently() -> None:
    notes: list[str] = []
    doc = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert validate_objects([doc], "m.yaml", "1.35.0", CrdIndex(), notes) == []
    assert notes == [
        "m.yaml: Widget/w: no schema for example.com/v1 "
        "(no CRD for it in ../shared/reference/crds or $ONECLUSTER_EXTRA_CRDS)"
    ]


def test_one_object_gives_its_errors_and_why_it_was_not_checked() -> None:
    typo = with_change(DEPLOYMENT, "spec.replica", 2)
    errors, note = validate_object(typo, "m.yaml", "1.35.0", CrdIndex())
    assert ([e.field for e in errors], note) == (["Deployment/web spec"], "")
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    errors, note = validate_object(widget, "m.yaml", "1.35.0", CrdIndex())
    assert errors == [] and "no schema for example.com/v1" in note


def widget_crd(version: str, field: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "names": {"kind": "Widget", "plural": "widgets"},
                "scope": "Namespaced",
                "versions": [
                    {
                        "name": version,
                        "served": True,
                        "storage": True,
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "properties": {
                                    "apiVersion": {"type": "string"},
                                    "kind": {"type": "string"},
                                    "metadata": {"type": "object"},
                                    "spec": {
                                        "type": "object",
                                        "properties": {field: {"type": "string"}},
                                    },
                                },
                            }
                        },
                    }
                ],
            },
        }
    )


def widget(field: str) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {field: "x"},
    }


def test_a_pinned_release_folder_wins_over_the_newest_beside_it(tmp_path: Path) -> None:
    for folder, field in (("widgets", "newField"), ("widgets-v1.2.3", "pinnedField")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "crd.yaml").write_text(widget_crd("v1", field))
    index = CrdIndex()
    index.add_tree(tmp_path)
    assert validate_objects([widget("pinnedField")], "m.yaml", "1.35.0", index, []) == []
    (error,) = validate_objects([widget("newField")], "m.yaml", "1.35.0", index, [])
    assert error.field == "Widget/w spec"


def test_extra_crd_directories_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "crd.yaml").write_text(widget_crd("v1", "size"))
    assert ("example.com", "Widget", "v1") not in crd_index(None).schemas
    monkeypatch.setenv(EXTRA_CRDS_ENV, f"{tmp_path / 'absent'}:{tmp_path}")
    index = crd_index(None)
    assert validate_objects([widget("size")], "m.yaml", "1.35.0", index, []) == []
    (error,) = validate_objects([widget("sise")], "m.yaml", "1.35.0", index, [])
    assert error.field == "Widget/w spec"


def test_template_command_passes_api_versions() -> None:
    release = HelmRelease(
        layer="apps", name="d", release="d", chart="d", version="1", namespace="n"
    )
    command = validation.template_command(
        release, Path("/c"), "1.35.0", "", ["monitoring.coreos.com/v1"]
    )
    assert command.argv[-2:] == ["--api-versions", "monitoring.coreos.com/v1"]
    assert (
        "--api-versions" not in validation.template_command(release, Path("/c"), "1.35.0", "").argv
    )


def test_schema_version_follows_the_inventory() -> None:
    inv = load_inventory()
    assert kubernetes_schema_version(inv).startswith(
        inv.cluster.kubernetes_version.lstrip("v").rsplit(".", 1)[0] + "."
    )


# helm template with a cached chart ------------------------------------------------------------


def test_helm_template_renders_and_validates_a_cached_chart(tmp_path: Path) -> None:
    if shutil.which("helm") is None:
        pytest.skip("helm is not installed")
    cache = tmp_path / "charts"
    chart_files(
        cache / "demo-1.0.0" / "demo",
        {
            "Chart.yaml": "apiVersion: v2\nname: demo\nversion: 1.0.0\n",
            "values.yaml": "field: data\n",
            "templates/cm.yaml": """\
                apiVersion: v1
                kind: ConfigMap
                metadata:
                  name: {{ .Release.Name }}
                {{ .Values.field }}:
                  key: value
            """,
        },
    )
    values = tmp_path / "demo.yaml"
    release = HelmRelease(
        layer="apps",
        name="demo",
        version="1.0.0",
        namespace="demo",
        values=str(values),
    )
    source = ChartSource(cache=cache, reference=None)
    inv = load_inventory()
    report = validation.Report()

    values.write_text("field: data\n")
    assert validation.template_release(release, inv, source, "1.35.0", CrdIndex(), report) == []
    assert report.lines == ["helm template demo: 1 objects rendered and validated"]

    values.write_text("field: dta\n")  # renders a ConfigMap with an unknown field
    (error,) = validation.template_release(release, inv, source, "1.35.0", CrdIndex(), report)
    assert (error.file, error.field) == ("helm template demo", "ConfigMap/demo (object)")
    assert "dta" in error.message


def test_a_release_rendering_a_service_monitor_needs_the_crds_step(
    tmp_path: Path, reference: Path
) -> None:
    """Through helm template: the chart renders its ServiceMonitor only when the API is there
    (as Loki's does), the run passes the stack's CRDs as --api-versions, and the needs check
    then names the step, the kind and the need to add."""
    import dataclasses

    if shutil.which("helm") is None:
        pytest.skip("helm is not installed")
    cache = tmp_path / "charts"
    chart_files(
        cache / "demo-1.0.0" / "demo",
        {
            "Chart.yaml": "apiVersion: v2\nname: demo\nversion: 1.0.0\n",
            "values.yaml": "{}\n",
            "templates/sm.yaml": """\
                {{- if .Capabilities.APIVersions.Has "monitoring.coreos.com/v1/ServiceMonitor" }}
                apiVersion: monitoring.coreos.com/v1
                kind: ServiceMonitor
                metadata:
                  name: demo
                spec:
                  selector: {}
                  endpoints: [{port: http}]
                {{- end }}
            """,
        },
    )
    demo = HelmRelease(
        layer="apps", name="demo", version="1.0.0", namespace="demo", needs=("talos/health",)
    )
    source = ChartSource(cache=cache, reference=reference)

    def report_for(release: HelmRelease) -> validation.Report:
        catalog = STACK.with_components(lambda inv: [*STACK.components(inv), release])
        return validation.run(catalog, load_inventory(), source=source, reference=reference)

    report = report_for(demo)
    assert report.rendered["apps/demo"][0]["kind"] == "ServiceMonitor"
    (error,) = [e for e in report.errors if e.file == "apps/demo"]
    assert error.field == "needs (monitoring.coreos.com ServiceMonitor)"
    assert error.fix == "add observability/prometheus-crds-established to the needs of apps/demo"
    fixed = dataclasses.replace(demo, needs=("observability/prometheus-crds-established",))
    assert [e for e in report_for(fixed).errors if e.file == "apps/demo"] == []


def test_a_plain_equals_sign_in_a_crd_is_a_string() -> None:
    """AlertmanagerConfig's CRD (prometheus-operator v0.93.1, example/prometheus-operator-crd/
    monitoring.coreos.com_alertmanagerconfigs.yaml) lists ``- =`` in an enum: YAML 1.2 reads a
    string, as kubectl does; PyYAML's 1.1 "value" tag must not make the whole CRD unreadable."""
    text = textwrap.dedent(
        """\
        apiVersion: apiextensions.k8s.io/v1
        kind: CustomResourceDefinition
        metadata: {name: widgets.example.io}
        spec:
          group: example.io
          names: {kind: Widget, plural: widgets}
          scope: Namespaced
          versions:
            - name: v1
              served: true
              storage: true
              schema:
                openAPIV3Schema:
                  type: object
                  properties:
                    matchType:
                      enum:
                      - =
                      - =~
        """
    )
    (crd,) = crd_docs([text.encode()])
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert schema["properties"]["matchType"]["enum"] == ["=", "=~"]


def test_a_crd_bundle_is_resolved_against_the_reference_crds(reference: Path) -> None:
    from tasks.engine.components import CrdBundle
    from tasks.validate.apikinds import CrdCatalogue, served_kinds

    catalogue = CrdCatalogue(reference)
    bundle = CrdBundle(
        layer="network",
        name="crds",
        sources=(
            # a release download: the pinned folder crds/gateway-api-v1.5.1
            "https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.5.1/"
            "standard-install.yaml",
            # <group>_<plural>.yaml: the CRD of that name
            "https://example.org/monitoring.coreos.com_servicemonitors.yaml",
            "https://example.org/unknown.yaml",
        ),
    )
    found, unresolved = catalogue.bundle(bundle)
    kinds = served_kinds(found)
    assert ("gateway.networking.k8s.io", "HTTPRoute") in kinds
    assert ("monitoring.coreos.com", "ServiceMonitor") in kinds
    assert ("gateway.networking.k8s.io", "TCPRoute") not in kinds  # only in the newer release
    assert unresolved == ["https://example.org/unknown.yaml"]


# charts.pull -----------------------------------------------------------------------------------


def test_pull_command_is_pinned_and_unpacks(tmp_path: Path) -> None:
    release = HelmRelease(
        layer="apps",
        name="x",
        chart="oci://ghcr.io/o/charts/x",
        version="0.1.0",
        namespace="x",
    )
    assert pull_command(release, tmp_path).argv == [
        "helm",
        "pull",
        "oci://ghcr.io/o/charts/x",
        "--version",
        "0.1.0",
        "--untar",
        "--untardir",
        str(tmp_path),
    ]


def test_pull_dry_run_prints_and_creates_nothing(
    fake_tools: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    releases = validation.helm_releases(STACK, load_inventory())
    assert pull_charts(releases, Executor(dry_run=True)) == []
    out = capsys.readouterr().out
    assert out.count("helm pull ") == len(releases)
    repo = "https://prometheus-community.github.io/helm-charts"
    assert f"kube-prometheus-stack --repo {repo} --version 88.5.3" in out
    assert fake_tools.calls() == []
    assert not validation.cache_path(releases[0]).parent.exists()


def test_pull_reports_each_failure_and_keeps_no_partial_chart(fake_tools: Any) -> None:
    fake_tools.rule("helm", "pull", exit=1, stderr="dial tcp: lookup charts: no such host")
    releases = validation.helm_releases(STACK, load_inventory())[:2]
    failures = pull_charts(releases, Executor())
    assert len(failures) == 2
    assert "no such host" in failures[0]
    for release in releases:
        assert not validation.cache_path(release).parent.exists()
        assert not list(validation.cache_path(release).parent.parent.glob("*.partial"))
