"""The reference stack on stateful fakes: shared by tests/test_converge.py and the benchmark.

The fakes keep state (``tests/fakes/fake_tool.py``): helm lists what it installed, kubectl returns
what was applied (the in-cluster record among it) and what its waits saw ready, a Talos node
returns the config applied to it and, once configured, refuses the maintenance-mode client; etcd
answers once bootstrapped. The secret syncs talk to the Kubernetes API through its Python client
and keep their own read-compare (``tasks/secrets/sync.py``, tested against a fake API server in
tests/test_secrets_sync.py): one list of onecluster's Secrets per run, a write only for a Secret
that differs. Here they stand in with the same shape in kubectl calls: the one list (``kubectl
get secret --all-namespaces -l ...``), shared by every sync, and one apply of the Secrets a sync
finds missing (without values: the stand-in has none).
"""

from __future__ import annotations

import dataclasses
import json
from typing import ClassVar

from tasks.engine.components import Component
from tasks.engine.errors import OneclusterError
from tasks.engine.record import RECORD_MANAGER, cached
from tasks.engine.runner import UNCHANGED
from tasks.secrets.steps import SecretSync
from tasks.stack import STACK

MANAGED = "app.kubernetes.io/managed-by=onecluster"
LIVE = "stand-in.secrets"


def _live(ctx) -> set[tuple[str, str]]:
    """(namespace, name) of every Secret onecluster manages: one list per run."""

    def load():
        read = ctx.kubectl("get", "secret", "--all-namespaces", "-l", MANAGED, "-o", "json")
        items = json.loads(ctx.executor.query(read).stdout or "{}").get("items") or []
        return {(i["metadata"].get("namespace", ""), i["metadata"]["name"]) for i in items}

    return cached(ctx, LIVE, load)


@dataclasses.dataclass(frozen=True, kw_only=True)
class SyncStandIn(Component):
    """A secret sync in kubectl calls: the run's one list of onecluster's Secrets, and an apply
    of those missing (the real one compares values in memory and writes only what differs)."""

    kind: ClassVar[str] = "secret"
    compares: ClassVar[bool] = True
    binaries: ClassVar[tuple[str, ...]] = ("kubectl",)
    names: tuple[tuple[str, str], ...] = ()

    def commands(self, ctx):
        items = [
            {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
             "metadata": {"name": name, "namespace": ns,
                          "labels": {"app.kubernetes.io/managed-by": "onecluster"}}}
            for ns, name in self.names
        ]  # fmt: skip
        body = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
        return [ctx.kubectl.apply(stdin=body.encode())]

    @classmethod
    def confirm_reads(cls, ctx, steps):
        if not ctx.dry_run:
            _live(ctx)

    def up_to_date(self, ctx):
        try:
            return not ctx.dry_run and set(self.names) <= _live(ctx)
        except OneclusterError:
            return False

    def run(self, ctx):
        if self.up_to_date(ctx):
            return UNCHANGED
        return super().run(ctx)


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


MAINTENANCE = "rpc error: code = Unimplemented desc = API is not implemented in maintenance mode"


def stateful_nodes(fake_tools, ips) -> None:
    """etcd answers once bootstrapped; a node, once configured, refuses the maintenance client;
    the first control plane (``ips[0]``) serves a kubeconfig once configured."""
    fake_tools.rule("talosctl", "etcd status", exit=1, stderr="etcd is not running",
                    when={"bootstrapped": None})  # fmt: skip
    fake_tools.rule("talosctl", "kubeconfig", exit=1, stderr=MAINTENANCE,
                    when={f"applied-{ips[0]}": None})  # fmt: skip
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
