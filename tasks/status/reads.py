"""What cluster.status reads, in a few list calls run at once under one deadline, as a snapshot.

One ``kubectl get`` lists the core kinds together (kubectl makes one list request per kind:
Nodes, Pods, Deployments, StatefulSets, DaemonSets, PersistentVolumeClaims, Events, CronJobs);
Longhorn's three kinds are one more call and cert-manager's Certificates another (custom kinds are
asked apart: a missing CRD fails its whole ``kubectl get``, and must not hide the core kinds);
one ``helm list`` gives every release; two Prometheus queries through the API server's service
proxy give the nodes' use; one ``talosctl etcd status`` asks every control plane's etcd. About 15
API requests for the reference cluster, whatever its number of objects.

Every read runs in its own thread under one deadline (``--timeout``): each command is given what
is left of it, so a status ends in time even when a read hangs. A read that fails or does not
answer in time is kept as a problem of the snapshot (the report says so); only the core read is
required, without it there is nothing to report.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..engine.command import Command, Executor, Result
from ..engine.context import RunContext
from ..engine.errors import CommandError, OneclusterError
from ..engine.record import helm_list_command
from ..metrics.prometheus import PrometheusError, parse_vector, query_command
from ..talos import talosctl
from ..verify import longhorn
from . import objects

CORE_KINDS = (
    "nodes", "pods", "deployments.apps", "statefulsets.apps", "daemonsets.apps",
    "persistentvolumeclaims", "events", "cronjobs.batch",
)  # fmt: skip
LONGHORN_KINDS = ("volumes.longhorn.io", "replicas.longhorn.io", "backups.longhorn.io")
CERTIFICATE_KINDS = ("certificates.cert-manager.io",)
# the nodes' use, keyed by `instance`, which the stack relabels to the node name
# (helm-values/kube-prometheus-stack.yaml): CPU seconds not idle per second, memory not available
CPU_QUERY = 'sum by (instance) (rate(node_cpu_seconds_total{mode!~"idle|iowait|steal"}[5m]))'
MEMORY_QUERY = "node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes"

CORE, LONGHORN, CERTIFICATES, HELM, CPU, MEMORY, ETCD = (
    "kubernetes", "longhorn", "certificates", "helm", "prometheus-cpu", "prometheus-memory", "etcd",
)  # fmt: skip


@dataclass(frozen=True)
class Read:
    """One command the status runs, and how many requests it makes of the API server."""

    name: str
    command: Command
    api_requests: int


def _list(ctx: RunContext, kinds: tuple[str, ...], timeout: str, namespace: str = "") -> Command:
    where = ("--namespace", namespace) if namespace else ("--all-namespaces",)
    return ctx.kubectl(
        "get", ",".join(kinds), *where, "--output", "json", f"--request-timeout={timeout}"
    )


def reads(ctx: RunContext, timeout: str) -> list[Read]:
    """Every read of one status, in the order they are shown."""
    return [
        Read(CORE, _list(ctx, CORE_KINDS, timeout), len(CORE_KINDS)),
        Read(LONGHORN, _list(ctx, LONGHORN_KINDS, timeout, longhorn.NAMESPACE), 3),
        Read(CERTIFICATES, _list(ctx, CERTIFICATE_KINDS, timeout), 1),
        # helm lists its release Secrets: one list request (pkg/storage/driver/secrets.go, List)
        Read(HELM, helm_list_command(ctx), 1),
        Read(CPU, query_command(ctx.kubectl, CPU_QUERY), 1),
        Read(MEMORY, query_command(ctx.kubectl, MEMORY_QUERY), 1),
        # the Talos API (apid), not the Kubernetes API server
        Read(ETCD, talosctl.etcd_members_status(ctx.talosconfig, ctx.inventory), 0),
    ]


class DeadlineExecutor(Executor):
    """An executor whose every command is given at most what is left of one deadline."""

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.clock = clock
        self.seconds = seconds
        self.deadline = clock() + seconds

    def query(self, command: Command) -> Result:
        left = self.deadline - self.clock()
        if left <= 0:
            raise OneclusterError(f"{command.tool}: not started, the status's time was up")
        bounded = min(left, command.timeout) if command.timeout else left
        try:
            return super().query(dataclasses.replace(command, timeout=bounded))
        except CommandError as exc:
            if exc.exit_code is not None:
                raise
            # said in the user's terms: the --timeout it ran out of, not the seconds left of it
            limit = f"{command.timeout:g}s" if bounded == command.timeout else f"{self.seconds:g}s"
            raise CommandError(exc.tool, exc.argv, None, f"no answer within {limit}") from None


@dataclass(frozen=True)
class EtcdMember:
    """One row of ``talosctl etcd status``: a member as its own node sees it."""

    node: str
    member: str
    leader: str
    learner: bool
    errors: str


def parse_etcd_status(stdout: str) -> list[EtcdMember]:
    """``talosctl etcd status`` with several ``--nodes``: a tabwriter table (columns at least three
    spaces apart) whose first column is ``NODE``; ``ERRORS`` is last and often empty
    (siderolabs/talos ``cmd/talosctl/cmd/talos/etcd.go``, ``etcdStatusCmd``, v1.12.4)."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("NODE"):
        return []
    header = re.split(r"\s{2,}", lines[0].strip())
    index = {name: i for i, name in enumerate(header)}
    found = []
    for line in lines[1:]:
        cells = re.split(r"\s{2,}", line.strip())
        cells += [""] * (len(header) - len(cells))
        found.append(
            EtcdMember(
                node=cells[index["NODE"]],
                member=cells[index["MEMBER"]],
                leader=cells[index["LEADER"]],
                learner=cells[index["LEARNER"]] == "true",
                errors=" ".join(cells[index["ERRORS"] :]).strip(),
            )
        )
    return found


@dataclass
class Snapshot:
    """Everything one status read, parsed; ``problems`` names each read that failed, and why."""

    now: datetime
    nodes: list[objects.Node] = field(default_factory=list)
    pods: list[objects.Pod] = field(default_factory=list)
    workloads: list[objects.Workload] = field(default_factory=list)
    claims: list[objects.Claim] = field(default_factory=list)
    events: list[objects.Event] = field(default_factory=list)
    cronjobs: list[objects.CronJob] = field(default_factory=list)
    volumes: list[longhorn.Volume] = field(default_factory=list)
    replicas: list[longhorn.Replica] = field(default_factory=list)
    backups: list[longhorn.Backup] = field(default_factory=list)
    certificates: list[objects.Certificate] = field(default_factory=list)
    releases: dict[tuple[str, str], dict] = field(default_factory=dict)
    # node → (cores, bytes) in use, from Prometheus; empty when it did not answer
    usage: dict[str, tuple[float, float]] = field(default_factory=dict)
    etcd: list[EtcdMember] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)
    commands: int = 0
    api_requests: int = 0
    seconds: float = 0.0


_PARSERS = {
    "Node": ("nodes", objects.node),
    "Pod": ("pods", objects.pod),
    "Deployment": ("workloads", objects.workload),
    "StatefulSet": ("workloads", objects.workload),
    "DaemonSet": ("workloads", objects.workload),
    "PersistentVolumeClaim": ("claims", objects.claim),
    "Event": ("events", objects.event),
    "CronJob": ("cronjobs", objects.cronjob),
    "Certificate": ("certificates", objects.certificate),
}


def _items(stdout: str) -> list[Mapping[str, Any]]:
    listing = json.loads(stdout or "{}")
    if not isinstance(listing, Mapping):
        raise ValueError("not a kubectl List")
    return [i for i in listing.get("items") or () if isinstance(i, Mapping)]


def fill(snapshot: Snapshot, name: str, stdout: str) -> None:
    """Parse one read's answer into the snapshot (``ValueError`` when it is not what was asked)."""
    if name in (CORE, CERTIFICATES):
        for item in _items(stdout):
            parser = _PARSERS.get(item.get("kind", ""))
            if parser is not None:
                getattr(snapshot, parser[0]).append(parser[1](item))
    elif name == LONGHORN:
        by_kind: dict[str, list] = {}
        for item in _items(stdout):
            by_kind.setdefault(item.get("kind", ""), []).append(item)
        snapshot.volumes = longhorn.volumes({"items": by_kind.get("Volume", [])})
        snapshot.replicas = longhorn.replicas({"items": by_kind.get("Replica", [])})
        snapshot.backups = longhorn.backups({"items": by_kind.get("Backup", [])})
    elif name == HELM:
        rows = json.loads(stdout or "[]") or []
        snapshot.releases = {(r.get("namespace", ""), r.get("name", "")): r for r in rows}
    elif name in (CPU, MEMORY):
        at = 0 if name == CPU else 1
        for sample in parse_vector(stdout):
            node = sample.labels.get("instance", "")
            held = list(snapshot.usage.get(node, (0.0, 0.0)))
            held[at] = sample.value
            snapshot.usage[node] = (held[0], held[1])
    elif name == ETCD:
        snapshot.etcd = parse_etcd_status(stdout)


def _first_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else "no answer"


def take(ctx: RunContext, executor: Executor, chosen: list[Read], now: datetime) -> Snapshot:
    """Run ``chosen`` at once and parse what answered; the core read must answer."""
    snapshot = Snapshot(now=now)
    started = time.monotonic()

    def run(read: Read) -> tuple[Read, str | None, str]:
        try:
            return read, executor.query(read.command).stdout, ""
        except OneclusterError as exc:
            return read, None, getattr(exc, "stderr", "") or str(exc)

    pool = ThreadPoolExecutor(max_workers=len(chosen))
    try:
        answers = list(pool.map(run, chosen))
    except BaseException:
        # Ctrl-C or SIGTERM (the task's KeyboardInterrupt): end every read's tool now (each in
        # its own process group), rather than wait for them until the deadline
        executor.stop.kill()
        raise
    finally:
        pool.shutdown(wait=True)
    snapshot.seconds = time.monotonic() - started
    snapshot.commands = len(chosen)
    snapshot.api_requests = sum(r.api_requests for r in chosen)
    for read, stdout, error in answers:
        if stdout is None:
            snapshot.problems[read.name] = _first_line(error)
            continue
        try:
            fill(snapshot, read.name, stdout)
        except (ValueError, TypeError, KeyError, PrometheusError) as exc:
            snapshot.problems[read.name] = f"unreadable answer: {_first_line(str(exc))}"
    names = {n.name for n in snapshot.nodes}
    if snapshot.usage and not names & set(snapshot.usage):
        # answered, but keyed by something else (node-exporter's default IP:9100)
        snapshot.problems[CPU] = (
            f"no sample's instance label is a node name ({', '.join(sorted(snapshot.usage)[:3])}"
            "...): relabel node-exporter's instance to the node name"
        )
        snapshot.usage = {}
    if CORE in snapshot.problems:
        raise OneclusterError(
            f"the cluster's API did not answer through {ctx.kubeconfig}: "
            f"{snapshot.problems[CORE]} (fix: is the cluster up and $KUBECONFIG pointing at it? "
            "`kubectl get nodes` should answer; `invoke talos.kubeconfig` fetches one)"
        )
    return snapshot
