"""The kubectl commands onecluster runs, as pure argv builders bound to one kubeconfig.

Every kubectl command starts ``kubectl --kubeconfig K [--context C]`` (global flags first, as for
helm and talosctl), so what a command acts on is visible at its start. Objects are applied
server-side with one field manager, so a later apply prunes what onecluster no longer sets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .command import Command

FIELD_MANAGER = "onecluster"


@dataclass(frozen=True)
class Kubectl:
    """kubectl bound to one kubeconfig (and context); calling it builds a command."""

    kubeconfig: str = ""
    context: str = ""

    def __call__(self, *args: str, **options: Any) -> Command:
        """``kubectl --kubeconfig K [--context C] ARGS``."""
        bound: list[str] = []
        if self.kubeconfig:
            bound += ["--kubeconfig", self.kubeconfig]
        if self.context:
            bound += ["--context", self.context]
        return Command("kubectl", (*bound, *args), **options)

    def apply(
        self,
        source: str = "-",
        *,
        stdin: bytes | None = None,
        force_conflicts: bool = False,
        field_manager: str = FIELD_MANAGER,
    ) -> Command:
        """Server-side apply of ``source`` (``-``: the YAML stream on stdin) as onecluster (or as
        ``field_manager``: a writer whose fields the stack's own applies must not take over)."""
        force = ("--force-conflicts",) if force_conflicts else ()
        return self(
            "apply", "--server-side", *force, f"--field-manager={field_manager}", "-f", source,
            stdin=stdin,
        )  # fmt: skip

    def delete_stream(self, stdin: bytes) -> Command:
        """Delete every object of the YAML stream on stdin, waiting until they are gone."""
        return self("delete", "--ignore-not-found", "--wait=true", "-f", "-", stdin=stdin)

    def wait(self, condition: str, targets: Sequence[str], timeout: str, *args: str) -> Command:
        """``kubectl wait --for=CONDITION --timeout=T TARGETS`` (``create`` waits for existence)."""
        wanted = "--for=create" if condition == "create" else f"--for=condition={condition}"
        return self("wait", wanted, f"--timeout={timeout}", *targets, *args)

    def rollout_status(self, kind: str, name: str, namespace: str, timeout: str) -> Command:
        """Wait until a Deployment, DaemonSet or StatefulSet has rolled out."""
        return self(
            "rollout", "status", f"{kind}/{name}", "-n", namespace, f"--timeout={timeout}"
        )  # fmt: skip


def namespace_manifest(name: str, labels: dict[str, str] | None = None) -> dict[str, object]:
    """A Namespace object: the one place onecluster builds one."""
    metadata: dict[str, object] = {"name": name}
    if labels:
        metadata["labels"] = dict(labels)
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}
