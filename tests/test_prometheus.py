"""Prometheus through the API server's service proxy: the reads' argv and the answers' parsing."""

from __future__ import annotations

import json
import math
import shutil
from urllib.parse import parse_qs, urlsplit

import pytest

from tasks.engine.command import Executor
from tasks.engine.kubectl import Kubectl
from tasks.metrics.prometheus import (
    Endpoint,
    Prometheus,
    PrometheusError,
    parse_matrix,
    parse_vector,
    query_command,
    range_command,
)


def answer(kind: str, result: list) -> str:
    """Prometheus' JSON envelope (prometheus/prometheus web/api/v1/api.go)."""
    return json.dumps({"status": "success", "data": {"resultType": kind, "result": result}})


def test_an_instant_query_goes_through_the_service_proxy():
    command = query_command(Kubectl("/kc"), 'avg by (node) (rate(x{a="b"}[5m]))', at=1_700_000_000)
    assert command.argv[:5] == ["kubectl", "--kubeconfig", "/kc", "get", "--raw"]
    uri = urlsplit(command.argv[5])
    assert uri.path == (
        "/api/v1/namespaces/monitoring/services/http:kube-prometheus-stack-prometheus:9090"
        "/proxy/api/v1/query"
    )
    assert parse_qs(uri.query) == {
        "query": ['avg by (node) (rate(x{a="b"}[5m]))'],
        "time": ["1700000000"],
    }


def test_a_range_query_names_start_end_and_step_in_seconds():
    command = range_command(Kubectl(), "up", 100, 1000.5, 300, Endpoint("m", "p", 9091))
    uri = urlsplit(command.argv[3])
    assert uri.path == "/api/v1/namespaces/m/services/http:p:9091/proxy/api/v1/query_range"
    assert parse_qs(uri.query) == {
        "query": ["up"], "start": ["100"], "end": ["1000.5"], "step": ["300"],
    }  # fmt: skip


def test_values_are_strings_nan_included():
    samples = parse_vector(answer("vector", [
        {"metric": {"node": "cp-1"}, "value": [1.5, "42.25"]},
        {"metric": {"node": "cp-2"}, "value": [1.5, "NaN"]},
        {"metric": {}, "value": [1.5, "+Inf"]},
    ]))  # fmt: skip
    assert [s.labels for s in samples] == [{"node": "cp-1"}, {"node": "cp-2"}, {}]
    assert samples[0].value == 42.25 and samples[0].time == 1.5
    assert math.isnan(samples[1].value) and samples[2].value == math.inf


def test_a_matrix_keeps_every_point_in_order():
    series = parse_matrix(answer("matrix", [
        {"metric": {"node": "w-1"}, "values": [[10, "1"], [20, "2.5"]]},
    ]))  # fmt: skip
    assert series[0].labels == {"node": "w-1"}
    assert series[0].points == [(10.0, 1.0), (20.0, 2.5)]


@pytest.mark.parametrize(
    ("stdout", "words"),
    [
        ("<html>502</html>", "not JSON"),
        (json.dumps({"status": "error", "errorType": "bad_data", "error": "parse error"}),
         "refused the query: parse error"),
        (answer("matrix", []), "answered a 'matrix' where a 'vector' was expected"),
    ],
)  # fmt: skip
def test_a_bad_answer_is_an_error_that_says_what_came_back(stdout, words):
    with pytest.raises(PrometheusError, match=words.replace("(", r"\(")):
        parse_vector(stdout)


def test_show_prints_the_read_and_runs_nothing():
    shown = []
    prom = Prometheus(Executor(), Kubectl("/kc"), show=shown.append)
    assert prom.query("up") == [] and prom.range("up", 0, 60, 15) == []
    assert prom.calls == 0
    assert [c.argv[4] for c in shown] == ["--raw", "--raw"]


KUBECTL = shutil.which("kubectl")


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
def test_the_real_kubectl_takes_the_raw_uri(tmp_path):
    """Real kubectl parses the read and fails only at the connection (nothing listens on :1)."""
    from test_real_tools import assert_refused_only, unreachable_kubeconfig

    kubeconfig = unreachable_kubeconfig(tmp_path)
    command = query_command(Kubectl(str(kubeconfig)), 'sum by (node) (up{job="x"})', at=1)
    assert_refused_only(command, tmp_path)
