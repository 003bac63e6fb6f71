"""cluster.status against the recording fakes serving canned API answers (tests/fixtures/status/).

The fixtures are the upstream objects' shapes (each file says where each shape comes from), with
every time written around 2026-12-01T12:00:00Z; :func:`serve` shifts them so that instant is now,
and makes the fake kubectl, helm and talosctl answer each of the status's reads with them.
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
import yaml
from invoke.exceptions import Exit

from tasks.engine.context import run_context
from tasks.stack import STACK
from tasks.status import reads
from tasks.status.declared import units
from tasks.status.report import SCHEMA_FILE
from tests.conftest import FakeTools, call_task

FIXTURES = Path(__file__).parent / "fixtures" / "status"
REFERENCE = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
_TIME = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?Z")
API_BOUND = 25  # the bound for a status of the reference cluster


def shifted(text: str, now: datetime) -> str:
    """Every RFC 3339 time in ``text`` moved by (now - the fixtures' reference instant)."""
    delta = now - REFERENCE

    def move(m: re.Match) -> str:
        at = datetime.fromisoformat(m.group(1)).replace(tzinfo=UTC) + delta
        return at.strftime("%Y-%m-%dT%H:%M:%S") + (m.group(2) or "") + "Z"

    return _TIME.sub(move, text)


def fixture(*names: str) -> dict:
    """healthy.yaml, with each named overlay's items replacing or joining its items."""
    data = yaml.safe_load((FIXTURES / "healthy.yaml").read_text())
    for name in names:
        overlay = yaml.safe_load((FIXTURES / f"{name}.yaml").read_text())
        for read, listing in overlay.items():
            items = data[read]["items"]
            for item in listing["items"]:
                meta = item["metadata"]
                key = (item["kind"], meta.get("namespace"), meta["name"])
                at = next(
                    (i for i, x in enumerate(items)
                     if (x["kind"], x["metadata"].get("namespace"), x["metadata"]["name"]) == key),
                    None,
                )  # fmt: skip
                if at is None:
                    items.append(item)
                else:
                    items[at] = item
    return data


def pinned_releases() -> list[dict]:
    """helm list's JSON of every release the stack pins, deployed at its pinned chart (the fields
    helm v4 prints: pkg/cmd/list.go, releaseElement)."""
    inv = STACK.load()
    with run_context(inv, dry_run=True, fetch_kubeconfig=False) as ctx:
        found = units(STACK.graph(inv).steps(), ctx)
    return [
        {"name": u.release[1], "namespace": u.release[0], "revision": "3",
         "updated": "2026-11-20 08:30:00.000000000 +0000 UTC", "status": "deployed",
         "chart": u.chart, "app_version": ""}
        for u in found if u.release
    ]  # fmt: skip


MATCH = {
    reads.CORE: ("kubectl", "get", "nodes,pods,"),
    reads.LONGHORN: ("kubectl", "get", "volumes.longhorn.io"),
    reads.CERTIFICATES: ("kubectl", "get", "certificates.cert-manager.io"),
    reads.CPU: ("kubectl", "--raw", "node_cpu_seconds_total"),
    reads.MEMORY: ("kubectl", "--raw", "node_memory_MemTotal_bytes"),
    reads.ETCD: ("talosctl", "etcd", "status"),
    reads.HELM: ("helm", "list", "--all-namespaces"),
}


def serve(
    fakes: FakeTools, tmp_path: Path, data: dict, *, now: datetime | None = None, **rules: dict
) -> None:
    """Make the fakes answer each read with ``data`` (times shifted to now); ``rules`` replace
    a read's answer (e.g. ``{"exit": 1, "stderr": ...}``)."""
    now = now or datetime.now(UTC)
    (tmp_path / "kubeconfig").write_text("apiVersion: v1\nkind: Config\n")
    (tmp_path / "talosconfig").write_text("context: homelab\n")
    answers = {name: data[name] for name in data} | {reads.HELM: pinned_releases()}
    for name, (tool, *match) in MATCH.items():
        override = rules.get(name.replace("-", "_"))
        if override is not None:
            fakes.rule(tool, *match, **override)
            continue
        body = answers[name]
        text = body if isinstance(body, str) else json.dumps(body, indent=4)
        fakes.rule(tool, *match, stdout=shifted(text, now) + ("" if text.endswith("\n") else "\n"))


def fails(path: str, **flags) -> str:
    """The ``error: ...`` a task ends with (Invoke's Exit, exit code 1)."""
    with pytest.raises(Exit) as err:
        call_task(path, **flags)
    assert err.value.code == 1
    return str(err.value.message)


def run_json(capsys, **flags) -> tuple[dict, int]:
    """cluster.status --format json: the document and the exit code."""
    code = 0
    try:
        call_task("cluster.status", format="json", **flags)
    except Exit as exc:
        code = exc.code
    out = capsys.readouterr().out
    doc = json.loads(out)
    jsonschema.validate(doc, json.loads(SCHEMA_FILE.read_text()))
    return doc, code


def api_requests(fakes: FakeTools) -> int:
    """Requests the fakes' calls would make of the API server: one list per kind of a ``kubectl
    get`` (a comma list is one per kind), one per ``get --raw``, one for ``helm list``."""
    total = 0
    for call in fakes.calls():
        argv = call["argv"]
        if call["tool"] == "kubectl" and "get" in argv:
            what = argv[argv.index("get") + 1]
            total += 1 if what == "--raw" else len(what.split(","))
        elif call["tool"] == "helm" and "list" in argv:
            total += 1
    return total


def test_a_healthy_cluster_is_healthy(fake_tools, tmp_path, capsys):
    serve(fake_tools, tmp_path, fixture())
    doc, code = run_json(capsys)
    assert code == 0 and doc["healthy"], doc["findings"]
    assert doc["counts"] == {"error": 0, "warning": 0, "info": 0}, doc["findings"]
    assert doc["usage"]["source"] == "prometheus"
    assert doc["usage"]["nodes_ready"] == 6
    assert doc["usage"]["cpu"]["used_cores"] == 9.5  # the six samples' sum
    assert doc["talos"]["etcd"]["healthy"] is True
    assert doc["talos"]["nodes_on_version"] == 6
    assert doc["talos"]["etcd_snapshots"]["configured"] is True
    assert doc["talos"]["etcd_snapshots"]["age_hours"] == 6.0
    mealie = next(c for c in doc["components"] if c["id"] == "apps/mealie")
    assert mealie["databases"] == [
        {
            "kind": "statefulset",
            "name": "mealie-postgres",
            "namespace": "mealie",
            "ready": 1,
            "desired": 1,
            "found": True,
        }
    ]
    assert {v["claim"]: v["backup_age_hours"] for v in mealie["volumes"]} == {
        "mealie-data": 9.0, "data-mealie-postgres-0": 9.0,
    }  # fmt: skip
    certs = next(c for c in doc["components"] if c["id"] == "network/certificates")
    assert certs["certificates"][0]["name"] == "wildcard-tls"
    assert certs["certificates"][0]["days_left"] == 68.5
    longhorn = next(c for c in doc["components"] if c["id"] == "storage/longhorn")
    assert ("daemonset", "longhorn-csi-plugin") in {
        (w["kind"], w["name"]) for w in longhorn["workloads"]
    }
    # the table is the same report
    call_task("cluster.status")
    table = capsys.readouterr().out
    assert "6/6 nodes Ready" in table and "findings since" in table and ": none" in table
    assert "apps/mealie" in table and "healthy" in table.splitlines()[-1]


def test_an_eviction_storm_is_an_error_naming_the_descheduler_and_the_workloads_hit(
    fake_tools, tmp_path, capsys
):
    serve(fake_tools, tmp_path, fixture("storm"))
    doc, code = run_json(capsys)
    assert code == 1 and not doc["healthy"]
    storm = [f for f in doc["findings"] if f["rule"] == "evictions"]
    assert len(storm) == 1
    finding = storm[0]
    assert finding["severity"] == "error"
    assert finding["subject"] == "apps/mealie" and finding["components"] == ["apps/mealie"]
    summary = finding["summary"]
    assert "statefulset/mealie-postgres in mealie evicted 4 times" in summary
    assert "by sigs.k8s.io.descheduler from talostrk3, talostrk4" in summary
    assert "workloads hit: statefulset/mealie-postgres, deployment/mealie" in summary
    assert len([e for e in finding["evidence"] if "evicted from" in e]) == 4
    assert "descheduler" in finding["suggestion"]
    probes = [f for f in doc["findings"] if f["rule"] == "probes-after-database-restart"]
    assert [f["severity"] for f in probes] == ["error"]
    assert (
        "deployment/mealie failed probes after its database mealie-postgres" in probes[0]["summary"]
    )
    assert any("Readiness probe failed" in e for e in probes[0]["evidence"])
    mealie = next(c for c in doc["components"] if c["id"] == "apps/mealie")
    assert mealie["healthy"] is False
    assert next(c for c in doc["components"] if c["id"] == "apps/wordpress")["healthy"] is True


@pytest.mark.parametrize(
    ("since", "expected"),
    [("9h", ["error"]), ("40m", ["warning"]), ("10m", [])],
    ids=["all-four", "two-in-window", "one-is-not-repeated"],
)
def test_since_windows_the_evictions(fake_tools, tmp_path, capsys, since, expected):
    now = datetime.now(UTC)
    serve(fake_tools, tmp_path, fixture("storm"), now=now)
    doc, _ = run_json(capsys, since=since)
    assert [f["severity"] for f in doc["findings"] if f["rule"] == "evictions"] == expected


def test_the_api_calls_are_bounded_and_counted(fake_tools, tmp_path, capsys):
    serve(fake_tools, tmp_path, fixture("storm"))
    doc, _ = run_json(capsys)
    made = api_requests(fake_tools)
    print(f"cluster.status of the reference cluster: {made} API requests "
          f"in {len(fake_tools.calls())} commands")  # fmt: skip
    assert made == doc["reads"]["api_requests"] <= API_BOUND
    assert doc["reads"]["commands"] == len(fake_tools.calls()) == 7
    # one list per kind: no command names a single object
    gets = [c["argv"] for c in fake_tools.calls("kubectl") if "--raw" not in c["argv"]]
    assert all("--all-namespaces" in a or "--namespace" in a for a in gets)


def test_without_prometheus_the_use_is_the_pods_requests(fake_tools, tmp_path, capsys):
    down = {"exit": 1, "stderr": 'Error from server (ServiceUnavailable): no endpoints available '
            'for service "http:kube-prometheus-stack-prometheus:9090"\n'}  # fmt: skip
    serve(fake_tools, tmp_path, fixture(), prometheus_cpu=down, prometheus_memory=down)
    doc, code = run_json(capsys)
    assert code == 0  # a warning, not an error
    assert doc["usage"]["source"] == "requests"
    per_node = {n["name"]: n for n in doc["usage"]["per_node"]}
    # talostrk2: one mealie pod (250m, 512Mi); talostrk4: the other; talostrk3: postgres (100m)
    assert per_node["talostrk2"]["cpu"]["used_cores"] == 0.25
    assert per_node["talostrk3"]["cpu"]["used_cores"] == 0.1
    assert per_node["talostrk1"]["memory"]["used_gb"] == round(128 * 2**20 / 1e9, 2)
    warning = [f for f in doc["findings"] if f["rule"] == "prometheus-unreachable"]
    assert warning and "no endpoints available" in warning[0]["evidence"][0]
    call_task("cluster.status")
    assert "from Pod requests (Prometheus unreachable)" in capsys.readouterr().out


def test_samples_not_keyed_by_node_name_fall_back_to_requests(fake_tools, tmp_path, capsys):
    """node-exporter's default ``instance`` is ``IP:9100``: such samples name no node."""
    data = fixture()
    for series in data[reads.CPU]["data"]["result"] + data[reads.MEMORY]["data"]["result"]:
        series["metric"]["instance"] = "192.168.50.12:9100"
    serve(fake_tools, tmp_path, data)
    doc, _ = run_json(capsys)
    assert doc["usage"]["source"] == "requests"
    assert "relabel node-exporter's instance" in doc["reads"]["failed"]["prometheus-cpu"]


def test_narrowing_by_name_and_layer(fake_tools, tmp_path, capsys):
    serve(fake_tools, tmp_path, fixture("storm"))
    doc, code = run_json(capsys, name=["mealie"])
    assert [c["id"] for c in doc["components"]] == ["apps/mealie"]
    assert doc["narrowed"] and code == 1
    assert {f["rule"] for f in doc["findings"]} == {"evictions", "probes-after-database-restart"}
    doc, code = run_json(capsys, layer=["network"])
    assert {c["layer"] for c in doc["components"]} == {"network"}
    assert doc["findings"] == [] and code == 0
    # the cluster's own findings (no component's) belong to the talos layer
    (tmp_path / "talosconfig").unlink()
    doc, _ = run_json(capsys, layer=["talos"])
    assert doc["components"] == [] and [f["rule"] for f in doc["findings"]] == ["etcd-unknown"]
    assert fails("cluster.status", name=["nope"]).startswith(
        "error: --name nope: not a release, bundle or app the stack declares; known: "
    )
    assert fails("cluster.status", layer=["nope"]).startswith("error: --layer nope: not a layer")


def test_the_dry_run_prints_the_reads_and_makes_none(fake_tools, tmp_path, capsys):
    call_task("cluster.status", dry_run=True)
    out = capsys.readouterr().out
    assert fake_tools.calls() == []
    assert "7 read-only reads (15 API requests" in out
    assert re.search(r"\$ kubectl .* get nodes,pods,.*,cronjobs.batch --all-namespaces", out)
    # one talosctl call asks every control plane (apid fans it out): the inventory's three
    assert re.search(
        r"\$ talosctl --talosconfig \S+ etcd status --nodes 192.168.50.11,192.168.50.15,"
        r"192.168.50.16 --endpoints 192.168.50.11,192.168.50.15,192.168.50.16$",
        out,
        re.M,
    )


def test_a_read_that_does_not_answer_in_time_is_said_and_the_rest_reported(
    fake_tools, tmp_path, capsys
):
    serve(fake_tools, tmp_path, fixture(), longhorn={"sleep": 20, "stdout": "{}"})
    doc, code = run_json(capsys, timeout="3s")
    assert "no answer within" in doc["reads"]["failed"]["longhorn"]
    assert [f["rule"] for f in doc["findings"]] == ["read-failed"]
    assert code == 0


def test_a_cluster_that_does_not_answer_is_an_error_naming_the_fix(fake_tools, tmp_path):
    serve(fake_tools, tmp_path, fixture(), kubernetes={"sleep": 20})
    message = fails("cluster.status", timeout="2s")
    assert re.match(
        r"error: the cluster's API did not answer .*no answer within 2s.*\(fix: ", message
    )


def test_without_a_kubeconfig_it_says_how_to_get_one(fake_tools, tmp_path):
    message = fails("cluster.status")
    assert re.match(
        r"error: cluster.status reads .* no kubeconfig at .*invoke talos.kubeconfig", message
    )
    assert fake_tools.calls() == []


def test_without_a_talosconfig_etcd_is_unknown_not_an_error(fake_tools, tmp_path, capsys):
    serve(fake_tools, tmp_path, fixture())
    (tmp_path / "talosconfig").unlink()
    doc, code = run_json(capsys)
    assert code == 0 and doc["talos"]["etcd"]["healthy"] is None
    assert [f["rule"] for f in doc["findings"]] == ["etcd-unknown"]
    assert fake_tools.calls("talosctl") == []


@pytest.mark.parametrize("flag", ["since", "timeout"])
def test_a_bad_duration_is_refused_before_any_read(fake_tools, flag):
    assert "expected a duration such as 30s" in fails("cluster.status", **{flag: "soon"})
    assert fake_tools.calls() == []


def test_the_real_kubectl_and_helm_accept_every_read(tmp_path, monkeypatch):
    """Each read's argv, run by the real tool against an API server where nothing listens: it
    fails at the connection, never at parsing (see tests/test_real_tools.py)."""
    from tests.test_real_tools import assert_refused_only, unreachable_kubeconfig

    monkeypatch.setenv("KUBECONFIG", str(unreachable_kubeconfig(tmp_path)))
    inv = STACK.load()
    with run_context(inv, dry_run=True, fetch_kubeconfig=False) as ctx:
        planned = [r for r in reads.reads(ctx, "5s") if r.command.tool in ("kubectl", "helm")]
    ran = 0
    for read in planned:
        if shutil.which(read.command.tool) is None:
            continue
        assert_refused_only(read.command, tmp_path)
        ran += 1
    if ran == 0:
        pytest.skip("neither kubectl nor helm is installed")
