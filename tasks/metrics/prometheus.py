"""Prometheus' HTTP API, read through the Kubernetes API server's service proxy.

Nothing is port-forwarded and no address but the API server's is needed: ``kubectl get --raw
/api/v1/namespaces/NS/services/http:NAME:PORT/proxy/api/v1/query?query=...`` reaches the
Prometheus of kube-prometheus-stack with the run's kubeconfig (the API server proxies the request,
k8s.io/apiserver ``pkg/registry/core/service/proxy.go``). Answers are Prometheus' JSON envelope
(``{"status": "success", "data": {"resultType": "vector"|"matrix", "result": [...]}}``, see
prometheus/prometheus ``web/api/v1/api.go``); values are strings, ``"NaN"`` and ``"+Inf"`` too.

Every function here builds or parses; :class:`Prometheus` runs the reads through one executor
(``Executor.query``: they run even in a dry-run, which prints them instead when asked).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode

from ..engine.command import Command, Executor
from ..engine.errors import CommandError, OneclusterError
from ..engine.kubectl import Kubectl

# the Service kube-prometheus-stack creates for its Prometheus (release name kube-prometheus-stack)
NAMESPACE = "monitoring"
SERVICE = "kube-prometheus-stack-prometheus"
PORT = 9090
REQUEST_TIMEOUT = "10s"


class PrometheusError(OneclusterError):
    """Prometheus could not be reached through the API server, or did not answer a query."""


@dataclass(frozen=True)
class Sample:
    """One series' value at one instant (an instant vector's element)."""

    labels: dict[str, str]
    value: float
    time: float = 0.0


@dataclass(frozen=True)
class Series:
    """One series' values over a range (a range vector's element): ``(time, value)`` pairs."""

    labels: dict[str, str]
    points: list[tuple[float, float]] = field(default_factory=list)


@dataclass(frozen=True)
class Endpoint:
    """Where Prometheus' API is, as the API server's service proxy path."""

    namespace: str = NAMESPACE
    service: str = SERVICE
    port: int = PORT

    @property
    def base(self) -> str:
        """``/api/v1/namespaces/NS/services/http:NAME:PORT/proxy``."""
        return f"/api/v1/namespaces/{self.namespace}/services/http:{self.service}:{self.port}/proxy"

    def path(self, api: str, params: Sequence[tuple[str, str]]) -> str:
        """The raw URI of one API call, its parameters URL-encoded."""
        return f"{self.base}/api/v1/{api}?{urlencode(list(params))}"


def query_command(
    kubectl: Kubectl, promql: str, at: float | None = None, endpoint: Endpoint = Endpoint()
) -> Command:
    """``kubectl get --raw`` of one instant query (``/api/v1/query``), at ``at`` or now."""
    params = [("query", promql)] + ([("time", _num(at))] if at is not None else [])
    return kubectl(
        "get", "--raw", endpoint.path("query", params), f"--request-timeout={REQUEST_TIMEOUT}"
    )


def range_command(
    kubectl: Kubectl,
    promql: str,
    start: float,
    end: float,
    step: float,
    endpoint: Endpoint = Endpoint(),
) -> Command:
    """``kubectl get --raw`` of one range query (``/api/v1/query_range``), ``step`` in seconds."""
    params = [("query", promql), ("start", _num(start)), ("end", _num(end)), ("step", _num(step))]
    return kubectl(
        "get", "--raw", endpoint.path("query_range", params),
        f"--request-timeout={REQUEST_TIMEOUT}",
    )  # fmt: skip


def _num(value: float) -> str:
    """A time or step as Prometheus reads it: a whole number without ``.0``, else a decimal."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def parse_value(text: str) -> float:
    """One sample value: Prometheus writes every float as a string (``"1.5"``, ``"NaN"``)."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def _data(stdout: str, expected: str) -> list[dict]:
    """The ``result`` list of a successful answer of ``resultType`` ``expected``."""
    try:
        answer = json.loads(stdout)
    except ValueError as exc:
        raise PrometheusError(
            f"Prometheus answered with something that is not JSON: {exc}"
        ) from None
    if not isinstance(answer, dict) or answer.get("status") != "success":
        error = answer.get("error", "no error text") if isinstance(answer, dict) else answer
        raise PrometheusError(f"Prometheus refused the query: {error}")
    data = answer.get("data") or {}
    kind = data.get("resultType")
    if kind != expected:
        raise PrometheusError(f"Prometheus answered a {kind!r} where a {expected!r} was expected")
    return list(data.get("result") or [])


def parse_vector(stdout: str) -> list[Sample]:
    """An instant query's answer as samples."""
    samples = []
    for item in _data(stdout, "vector"):
        at, text = item.get("value") or (0, "NaN")
        samples.append(Sample(dict(item.get("metric") or {}), parse_value(text), float(at)))
    return samples


def parse_matrix(stdout: str) -> list[Series]:
    """A range query's answer as series."""
    return [
        Series(
            dict(item.get("metric") or {}),
            [(float(at), parse_value(text)) for at, text in item.get("values") or ()],
        )
        for item in _data(stdout, "matrix")
    ]


UNREACHABLE_FIX = (
    "is kube-prometheus-stack deployed and its Prometheus ready? "
    "(`invoke observability.deploy`; `kubectl -n monitoring get pods`)"
)


@dataclass
class Prometheus:
    """Prometheus' API through one kubeconfig; ``show`` prints each read instead of running it."""

    executor: Executor
    kubectl: Kubectl
    endpoint: Endpoint = field(default_factory=Endpoint)
    show: Callable[[Command], None] | None = None
    calls: int = 0

    def query(self, promql: str, at: float | None = None) -> list[Sample]:
        """An instant query's samples (``[]`` when only shown)."""
        command = query_command(self.kubectl, promql, at, self.endpoint)
        stdout = self._read(command)
        return parse_vector(stdout) if stdout is not None else []

    def range(self, promql: str, start: float, end: float, step: float) -> list[Series]:
        """A range query's series (``[]`` when only shown)."""
        command = range_command(self.kubectl, promql, start, end, step, self.endpoint)
        stdout = self._read(command)
        return parse_matrix(stdout) if stdout is not None else []

    def _read(self, command: Command) -> str | None:
        if self.show is not None:
            self.show(command)
            return None
        self.calls += 1
        try:
            return self.executor.query(command).stdout
        except CommandError as exc:
            raise PrometheusError(
                f"Prometheus at {self.endpoint.base} (through the API server) did not answer: "
                f"{exc.stderr.strip() or exc}; {UNREACHABLE_FIX}"
            ) from None
