"""Probe Pods: a short-lived shell on a node that has none (Talos), for testinfra's kubectl backend.

Talos has no SSH and no shell. One probe Pod per node gives testinfra somewhere to run commands:
pinned with ``nodeName`` (no scheduler, so no admission-injected ``schedulerName`` is involved),
privileged, in the host's PID and network namespaces, with the host root filesystem mounted
read-only at ``/host``. The pods live in ``kube-system``, which Talos exempts from Pod Security
admission. :func:`probe_pods` deletes them when its block ends, failed or not, and each carries an
``activeDeadlineSeconds`` so even a run killed outright does not leave a privileged pod behind.
"""

from __future__ import annotations

import json
import re
import secrets
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..engine import yamlio
from ..engine.command import Executor, Result
from ..engine.errors import OneclusterError
from ..engine.kubectl import Kubectl
from ..engine.output import echo

PROBE_IMAGE = "busybox:1.37.0"
PROBE_NAMESPACE = "kube-system"
PROBE_CONTAINER = "probe"
HOST_ROOT = "/host"
# upper bound on a probe's life if nothing deletes it (a whole postdeploy run fits in it)
PROBE_DEADLINE_SECONDS = 1800
PROBE_LABELS = {
    "app.kubernetes.io/name": "onecluster-probe",
    "app.kubernetes.io/managed-by": "onecluster",
}


class ProbeError(OneclusterError):
    """A probe Pod did not become Ready (the message holds what the cluster showed)."""


@dataclass(frozen=True)
class Kube:
    """A cluster to check: kubectl bound to it (which builds every argv) and the executor."""

    kubectl: Kubectl = field(default_factory=Kubectl)
    executor: Executor = field(default_factory=Executor)

    def run(self, *args: str, **options: Any) -> Result:
        """Run kubectl; raise :class:`~tasks.engine.errors.CommandError` on failure."""
        return self.executor.run(self.kubectl(*args, **options))

    def query(self, *args: str, **options: Any) -> Result:
        """Run a read-only kubectl command for its output (even when dry-running)."""
        return self.executor.query(self.kubectl(*args, **options))

    def json(self, *args: str) -> Any:
        """Run a read-only kubectl command with ``-o json`` and return the parsed output."""
        return json.loads(self.query(*args, "-o", "json").stdout)


def pod_name(node: str, run_id: str) -> str:
    """A DNS-1123 pod name for ``node``'s probe in one run (at most 63 characters)."""
    safe = re.sub(r"[^a-z0-9-]", "-", node.lower()).strip("-")
    return f"onecluster-probe-{run_id}-{safe}"[:63].rstrip("-")


def probe_manifest(
    node: str,
    name: str,
    *,
    namespace: str = PROBE_NAMESPACE,
    image: str = PROBE_IMAGE,
    deadline: int = PROBE_DEADLINE_SECONDS,
) -> dict[str, Any]:
    """The Pod that probes ``node``: privileged, pinned to it, host root read-only at /host."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(PROBE_LABELS)},
        "spec": {
            "nodeName": node,
            "hostPID": True,
            "hostNetwork": True,
            "restartPolicy": "Never",
            "activeDeadlineSeconds": deadline,
            "terminationGracePeriodSeconds": 0,
            "automountServiceAccountToken": False,
            # control planes are tainted; a probe must reach every node
            "tolerations": [{"operator": "Exists"}],
            "containers": [
                {
                    "name": PROBE_CONTAINER,
                    "image": image,
                    "command": ["sleep", str(deadline)],
                    "securityContext": {"privileged": True},
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                    "volumeMounts": [
                        {
                            "name": "host",
                            "mountPath": HOST_ROOT,
                            "readOnly": True,
                            # mounts made on the host later (e.g. Longhorn volumes) show up too
                            "mountPropagation": "HostToContainer",
                        }
                    ],
                }
            ],
            "volumes": [{"name": "host", "hostPath": {"path": "/", "type": "Directory"}}],
        },
    }


def host_spec(kube: Kube, name: str, namespace: str = PROBE_NAMESPACE) -> str:
    """The testinfra host for a probe Pod: ``kubectl://POD?namespace=…&container=…``."""
    query = {"namespace": namespace, "container": PROBE_CONTAINER}
    if kube.kubectl.kubeconfig:
        query["kubeconfig"] = kube.kubectl.kubeconfig
    if kube.kubectl.context:
        query["context"] = kube.kubectl.context
    return f"kubectl://{name}?{urllib.parse.urlencode(query)}"


@contextmanager
def probe_pods(
    kube: Kube,
    nodes: Sequence[str],
    *,
    namespace: str = PROBE_NAMESPACE,
    image: str = PROBE_IMAGE,
    timeout: str = "180s",
    run_id: str | None = None,
) -> Iterator[dict[str, str]]:
    """Start one probe Pod per node, wait until all are Ready, yield ``{node: testinfra host}``.

    The pods are deleted when the block ends, whether it (or starting them) failed or not.
    """
    run_id = run_id or secrets.token_hex(3)
    names = {node: pod_name(node, run_id) for node in nodes}
    stream = yamlio.dump_all(
        probe_manifest(n, p, namespace=namespace, image=image) for n, p in names.items()
    )
    pods = [f"pod/{p}" for p in names.values()]
    failed = True
    try:
        kube.run("apply", "-f", "-", stdin=stream.encode())
        try:
            kube.run(
                "wait", "--for=condition=Ready", f"--timeout={timeout}", "-n", namespace, *pods
            )
        except OneclusterError as exc:
            seen = kube.query("get", "-n", namespace, *pods, "-o", "wide", ok_codes=(0, 1)).stdout
            raise ProbeError(f"probe Pods not Ready within {timeout}: {exc}\n{seen}") from None
        yield {node: host_spec(kube, p, namespace) for node, p in names.items()}
        failed = False
    finally:
        try:
            kube.run("delete", "-n", namespace, "--ignore-not-found", "--wait=false", *pods)
        except OneclusterError as exc:
            if not failed:
                raise
            # the failure that brought us here is the one to report; the deadline ends the pods
            echo(
                f"warning: could not delete probe Pods ({exc}); they stop after "
                f"{PROBE_DEADLINE_SECONDS}s",
                err=True,
            )
