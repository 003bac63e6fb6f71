"""The reference stack on stateful fakes: shared by tests/test_converge.py and the benchmark.

The fakes keep state (``tests/fakes/fake_tool.py``): helm lists what it installed, kubectl returns
what was applied (the in-cluster record among it), a Talos node returns the config applied to it
and, once configured, refuses the maintenance-mode client; etcd answers once bootstrapped. The
secret syncs, which talk to the Kubernetes API through its Python client and keep their own
read-compare (tests/test_secrets_sync.py), stand in as one ``kubectl get`` per Secret.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from tasks.engine.components import Component
from tasks.engine.record import RECORD_MANAGER
from tasks.secrets.steps import SecretSync
from tasks.stack import STACK


@dataclasses.dataclass(frozen=True, kw_only=True)
class SyncStandIn(Component):
    """A secret sync's read (its Secrets looked up); the real one compares in memory."""

    kind: ClassVar[str] = "secret"
    binaries: ClassVar[tuple[str, ...]] = ("kubectl",)
    names: tuple[tuple[str, str], ...] = ()

    def commands(self, ctx):
        return [
            ctx.kubectl("get", "secret", name, "-n", ns, "-o", "name", "--ignore-not-found")
            for ns, name in self.names
        ]


def components(traefik_values: str = ""):
    """The stack's components, secret syncs stood in, Traefik's values file replaced if given."""

    def build(inventory):
        steps = []
        for comp in STACK.components(inventory):
            if isinstance(comp, SecretSync):
                comp = SyncStandIn(
                    layer=comp.layer, name=comp.name, needs=comp.needs,
                    names=tuple((s.namespace, s.name) for s in comp.secrets),
                )  # fmt: skip
            elif comp.id == "network/traefik" and traefik_values:
                comp = dataclasses.replace(comp, values=traefik_values)
            steps.append(comp)
        return steps

    return build


def stateful_nodes(fake_tools, ips) -> None:
    """etcd answers once bootstrapped; a node, once configured, refuses the maintenance client."""
    fake_tools.rule("talosctl", "etcd status", exit=1, stderr="etcd is not running",
                    when={"bootstrapped": None})  # fmt: skip
    fake_tools.rule("talosctl", "bootstrap", sets={"bootstrapped": True})
    for ip in ips:
        fake_tools.rule("talosctl", "get disks", "--insecure", ip, when={f"applied-{ip}": True},
                        exit=1, stderr="remote error: tls: certificate required")  # fmt: skip
        fake_tools.rule("talosctl", "apply-config", ip, sets={f"applied-{ip}": True})


MUTATING = {
    "helm": {"upgrade", "install", "uninstall"},
    "kubectl": {"apply", "create", "patch", "delete", "replace"},
    "talosctl": {"apply-config", "bootstrap", "upgrade", "reset"},
}


def mutating(call: dict) -> bool:
    """helm install/upgrade, kubectl apply/create/patch/delete/replace, talosctl apply/bootstrap."""
    return any(a in MUTATING.get(call["tool"], ()) for a in call["argv"])


def record_write(call: dict) -> bool:
    """A write of onecluster's in-cluster record (its own field manager)."""
    return call["tool"] == "kubectl" and f"--field-manager={RECORD_MANAGER}" in call["argv"]


def lease_call(call: dict) -> bool:
    """The run's own lock (tasks/engine/lock.py): its Lease read, taken, renewed, released.

    Its writes are onecluster's only ``kubectl create`` and ``replace`` (of a Lease, JSON on
    stdin); every other write is a server-side apply.
    """
    argv = set(call["argv"])
    return call["tool"] == "kubectl" and ("lease" in argv or bool({"create", "replace"} & argv))


def applied(calls: list[dict]) -> list[dict]:
    """The calls that changed the stack (the run's lock and the record left out)."""
    return [c for c in calls if mutating(c) and not record_write(c) and not lease_call(c)]
