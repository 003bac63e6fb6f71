"""Talos: machine configs, apply, bootstrap, kubeconfig and the cluster health gate."""

from __future__ import annotations

from .engine.command import Command
from .engine.components import Component, TalosStep
from .engine.context import RunContext
from .engine.deploy import layer_collection
from .engine.inventory import Inventory, Node

PATCHES = ("talos/patches/common.yaml", "talos/patches/controlplane.yaml")


def installer_image(inv: Inventory) -> str:
    """The installer image for the inventory's schematic and Talos version."""
    return f"{inv.talos.installer_registry}/{inv.talos.schematic.id}:{inv.cluster.talos_version}"


def _genconfig(ctx: RunContext) -> list[Command]:
    inv = ctx.inventory
    w = ctx.workdir
    return [
        ctx.talosctl(
            "gen",
            "config",
            inv.name,
            inv.cluster.endpoint,
            "--with-secrets",
            str(w / "secrets.yaml"),
            "--talos-version",
            inv.cluster.talos_version,
            "--kubernetes-version",
            inv.cluster.kubernetes_version.lstrip("v"),
            "--install-image",
            installer_image(inv),
            "--config-patch",
            f"@{PATCHES[0]}",
            "--config-patch-control-plane",
            f"@{PATCHES[1]}",
            "--output-types",
            "controlplane,worker,talosconfig",
            "--output",
            str(w),
            "--force",
        )
    ]


def _apply(node: Node):
    def build(ctx: RunContext) -> list[Command]:
        return [
            ctx.talosctl(
                "apply-config",
                "--insecure",
                "--nodes",
                str(node.ip),
                "--file",
                str(ctx.workdir / f"{node.role}.yaml"),
            )
        ]

    return build


def components(inv: Inventory) -> list[Component]:
    """The Talos steps: configs → apply to every node (in parallel) → bootstrap → kubeconfig → health."""
    first = inv.first_control_plane
    cps = ",".join(str(n.ip) for n in inv.control_planes)
    workers = ",".join(str(n.ip) for n in inv.workers)
    applies = [
        TalosStep(
            layer="talos", name=f"apply-{n.name}", needs=("talos/genconfig",), build=_apply(n)
        )
        for n in inv.nodes
    ]
    return [
        TalosStep(
            layer="talos",
            name="genconfig",
            build=_genconfig,
            summary="render and validate every node's machine config into the private workdir",
        ),
        *applies,
        TalosStep(
            layer="talos",
            name="bootstrap",
            needs=(f"talos/apply-{first.name}",),
            build=lambda ctx: [
                ctx.talosctl("bootstrap", "--nodes", str(first.ip), "--endpoints", str(first.ip))
            ],
        ),
        TalosStep(
            layer="talos",
            name="kubeconfig",
            needs=("talos/bootstrap",),
            build=lambda ctx: [
                ctx.talosctl(
                    "kubeconfig",
                    ctx.kubeconfig,
                    "--force",
                    "--nodes",
                    str(first.ip),
                    "--endpoints",
                    str(first.ip),
                )
            ],
        ),
        TalosStep(
            layer="talos",
            name="health",
            needs=("talos/kubeconfig", *(a.id for a in applies)),
            build=lambda ctx: [
                ctx.talosctl(
                    "health",
                    "--nodes",
                    str(first.ip),
                    "--endpoints",
                    str(first.ip),
                    "--control-plane-nodes",
                    cps,
                    "--worker-nodes",
                    workers,
                    "--wait-timeout",
                    "10m",
                )
            ],
            summary="gate: every node healthy, etcd and the API server up",
        ),
    ]


ns = layer_collection("talos", __doc__)
