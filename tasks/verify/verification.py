"""What the post-deploy and kind checks read from a cluster, as pure functions over kubectl JSON.

The testinfra suites (``tests/postdeploy``, ``tests/integration``) ask kubectl for ``-o json`` and
hand the result to these functions, which return the problems found (empty when healthy), so each
check's logic is unit-tested offline and a failing check names what is wrong. Also here: the
``--layer`` selection of checks, and one HTTP request sent to a gateway with a chosen Host/SNI.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..engine.errors import OneclusterError
from . import longhorn

SCHEDULER_NAME = "scheduler-plugins-scheduler"
NODE_EXPORTER_JOB = "node-exporter"


def select_layers(
    marked: Mapping[str, Iterable[str]], wanted: Sequence[str], layers: Sequence[str]
) -> tuple[list[str], list[str]]:
    """Split check ids into (kept, deselected) by the layers they are marked with.

    ``marked`` maps each check id to its layers; ``layers`` are the stack's. With no ``wanted`` layers every check is kept. A
    wanted layer that does not exist, or a check marked with none, is an error (a typo must not
    select nothing and pass).
    """
    unknown = sorted(set(wanted) - set(layers))
    if unknown:
        raise OneclusterError(
            f"--layer {', '.join(unknown)}: unknown layer; use one of {', '.join(layers)}"
        )
    unmarked = sorted(i for i, layers in marked.items() if not set(layers))
    if unmarked:
        raise OneclusterError(
            "checks without a layer (add @pytest.mark.layer(...)): " + ", ".join(unmarked)
        )
    if not wanted:
        return list(marked), []
    kept = [i for i, layers in marked.items() if set(layers) & set(wanted)]
    dropped = [i for i in marked if i not in kept]
    return kept, dropped


def condition(obj: Mapping[str, Any], kind: str) -> str:
    """The status (``True``/``False``/``Unknown``) of condition ``kind``, or ``""`` if absent."""
    status = obj.get("status") or {}
    for cond in status.get("conditions") or []:
        if cond.get("type") == kind:
            return str(cond.get("status", ""))
    return ""


def items(listing: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The objects of a kubectl ``List``."""
    return list(listing.get("items") or [])


def node_names(nodes: Mapping[str, Any]) -> list[str]:
    """Names of the nodes in ``kubectl get nodes -o json``."""
    return [n["metadata"]["name"] for n in items(nodes)]


def unready_nodes(nodes: Mapping[str, Any]) -> list[str]:
    """Nodes whose Ready condition is not True, with what it is."""
    return [
        f"{n['metadata']['name']}: Ready={condition(n, 'Ready') or 'missing'}"
        for n in items(nodes)
        if condition(n, "Ready") != "True"
    ]


def unready_pods(pods: Mapping[str, Any]) -> list[str]:
    """Pods neither Ready nor Succeeded (finished Jobs), with their phase."""
    out = []
    for pod in items(pods):
        phase = (pod.get("status") or {}).get("phase", "")
        if phase == "Succeeded" or condition(pod, "Ready") == "True":
            continue
        meta = pod["metadata"]
        out.append(f"{meta.get('namespace', '')}/{meta['name']}: phase={phase or '?'}, not Ready")
    return out


def longhorn_volume_problems(volumes: Mapping[str, Any], replicas: int = 2) -> list[str]:
    """Longhorn volumes not set to ``replicas`` replicas, or not healthy.

    Health is the upgrade gate's rule (:attr:`.longhorn.Volume.healthy`): an attached volume must
    be ``healthy``; a detached one reports ``unknown`` by design and is fine unless ``faulted``.
    """
    out = []
    for vol in longhorn.volumes(volumes):
        if vol.replicas != replicas:
            out.append(f"{vol.name}: numberOfReplicas={vol.replicas}, expected {replicas}")
        if not vol.healthy:
            out.append(
                f"{vol.name}: {vol.state or 'no state'} but robustness={vol.robustness or 'none'}"
            )
    return out


def down_targets(targets: Mapping[str, Any]) -> list[str]:
    """Active Prometheus targets whose health is not ``up`` (from ``/api/v1/targets``)."""
    active = (targets.get("data") or {}).get("activeTargets") or []
    return [
        f"{t.get('labels', {}).get('job', '?')} {t.get('scrapeUrl', '?')}: "
        f"{t.get('health')} ({t.get('lastError', '')})"
        for t in active
        if t.get("health") != "up"
    ]


def exporter_instances(targets: Mapping[str, Any], job: str = NODE_EXPORTER_JOB) -> set[str]:
    """The ``instance`` labels of the active targets of ``job``."""
    active = (targets.get("data") or {}).get("activeTargets") or []
    return {t["labels"]["instance"] for t in active if (t.get("labels") or {}).get("job") == job}


def policy_ready(policy: Mapping[str, Any]) -> bool:
    """A Kyverno policy reports itself ready (ClusterPolicy or the newer policy kinds)."""
    status = policy.get("status") or {}
    if condition(policy, "Ready") == "True" or status.get("ready") is True:
        return True
    cond_status = status.get("conditionStatus") or {}
    if cond_status.get("ready") is True:
        return True
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in cond_status.get("conditions") or []
    )


def injection_policies(policies: Iterable[Mapping[str, Any]], scheduler: str = SCHEDULER_NAME):
    """The policies whose rules set ``schedulerName`` to ``scheduler``."""
    return [p for p in policies if scheduler in repr(p.get("spec"))]


def scheduled_by(events: Mapping[str, Any], pod: str) -> set[str]:
    """Which schedulers reported ``Scheduled`` for ``pod`` (from ``kubectl get events -o json``)."""
    found = set()
    for ev in items(events):
        if ev.get("reason") != "Scheduled" or (ev.get("involvedObject") or {}).get("name") != pod:
            continue
        source = (ev.get("source") or {}).get("component") or ""
        found.add(ev.get("reportingComponent") or source)
    return found - {""}


def http_status(
    address: str, host: str, *, path: str = "/", tls: bool = False, timeout: float = 15.0
) -> int:
    """Send GET ``path`` to ``address`` (``ip:port``) as ``host`` (Host header and TLS SNI).

    Returns the HTTP status. Certificates are not verified: the question is whether the route
    answers, and a kind cluster or a fresh ACME setup may still serve a self-signed one.
    """
    ip, _, port = address.rpartition(":")
    conn: http.client.HTTPConnection
    if tls:
        conn = _SniConnection(ip, int(port), server_name=host, timeout=timeout)
    else:
        conn = http.client.HTTPConnection(ip, int(port), timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host, "User-Agent": "onecluster-verify"})
        return conn.getresponse().status
    finally:
        conn.close()


class _SniConnection(http.client.HTTPSConnection):
    """HTTPS to an address while presenting another name in SNI (as a DNS name would)."""

    def __init__(self, ip: str, port: int, *, server_name: str, timeout: float) -> None:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        super().__init__(ip, port, timeout=timeout, context=ctx)
        self._server_name = server_name
        self._ctx = ctx

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._ctx.wrap_socket(sock, server_hostname=self._server_name)


def mount_propagation(mountinfo: str, mount_point: str) -> list[str] | None:
    """The propagation fields (e.g. ``["shared:12"]``) of ``mount_point`` in a mountinfo text.

    ``None`` when it is not a mount point there. When it is mounted more than once, the last
    (topmost) mount counts.
    """
    found = None
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 6 and fields[4] == mount_point and "-" in fields[6:]:
            found = fields[6 : fields.index("-", 6)]
    return found


def module_present(name: str, loaded: str, modules_dep: str, builtin: str = "") -> bool:
    """Kernel module ``name`` is loaded, built in, or installed (so modprobe can load it).

    ``loaded`` is ``/proc/modules``, ``modules_dep`` and ``builtin`` the ``modules.dep`` and
    ``modules.builtin`` files of the running kernel. Dashes and underscores are the same to the
    kernel.
    """
    wanted = name.replace("-", "_")

    def norm(path: str) -> str:
        return path.rsplit("/", 1)[-1].split(".ko", 1)[0].replace("-", "_")

    if any(line.split(" ", 1)[0] == wanted for line in loaded.splitlines()):
        return True
    for text in (modules_dep, builtin):
        for line in text.splitlines():
            if line.strip() and norm(line.split(":", 1)[0]) == wanted:
                return True
    return False
