"""AI layer: the Kubernetes MCP server, Nanobot (Slack, outbound only) and OpenClaw."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .engine import yamlio
from .engine.components import Component, HelmRelease, SecretSpec
from .engine.context import RunContext
from .engine.errors import FieldError, InventoryError
from .engine.inventory import REPO_ROOT, Inventory
from .workloads.workload import Chart, Workload, WorkloadBundle

MCP_NAMESPACE = "mcp"
# The assistants' namespaces deny all ingress, and the MCP server's admits only them
# (manifests/ai/*/network-policy.yaml): enforced once kube-network-policies runs.
POLICIES = "network/network-policies-ready"
MCP_POLICY = WorkloadBundle(
    layer="ai",
    name="kubernetes-mcp-server-policy",
    needs=("talos/health", POLICIES),
    namespace=MCP_NAMESPACE,
    part_of="kubernetes-mcp-server",
    path="manifests/ai/kubernetes-mcp-server",
    summary="NetworkPolicies of namespace mcp: only Nanobot and OpenClaw reach the MCP server",
)
# What the inventory switch settings.ai.mcpAccess does: the ClusterRole its ServiceAccount is
# bound to, and the server's own guards (config.toml). RBAC is what really holds; the server
# flags only hide tools, so read-only also drops to the built-in `view` role.
MCP_ACCESS: dict[str, dict[str, Any]] = {
    "cluster-admin": {"role": "cluster-admin", "read_only": False, "disable_destructive": False},
    "non-destructive": {"role": "cluster-admin", "read_only": False, "disable_destructive": True},
    "read-only": {"role": "view", "read_only": True, "disable_destructive": True},
}
SKILLS_DIR = REPO_ROOT / "manifests" / "ai" / "openclaw" / "skills"
SKILL_FILES = ("SOUL.md", "AGENTS.md", "TOOLS.md")


@dataclass(frozen=True, kw_only=True)
class McpServerRelease(HelmRelease):
    """The MCP server chart with the access mode of ``settings.ai.mcpAccess`` over its values."""

    def rendered_values(self, ctx: RunContext) -> str:
        values = yamlio.load(super().rendered_values(ctx)) or {}
        access = MCP_ACCESS[mcp_access(ctx.inventory)]
        config = values.setdefault("config", {})
        config["read_only"] = access["read_only"]
        config["disable_destructive"] = access["disable_destructive"]
        rbac = values.setdefault("rbac", {})
        rbac["extraClusterRoleBindings"] = [
            {"name": "access", "roleRef": {"name": access["role"], "external": True}}
        ]
        return yamlio.dump(values)


@dataclass(frozen=True, kw_only=True)
class OpenClawBundle(WorkloadBundle):
    """OpenClaw's manifests plus a ConfigMap generated from the skills files kept in the repo."""

    skills_dir: Path = SKILLS_DIR

    def skills_configmap(self) -> str:
        data = {name: (self.skills_dir / name).read_text() for name in SKILL_FILES}
        return yamlio.dump(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": "openclaw-skills",
                    "namespace": self.namespace,
                    "labels": {"app.kubernetes.io/part-of": "openclaw"},
                },
                "data": data,
            }
        )

    def rendered(self, ctx: RunContext) -> str:
        return "\n---\n".join([super().rendered(ctx), self.skills_configmap()])


def mcp_access(inv: Inventory) -> str:
    """The validated ``settings.ai.mcpAccess`` (cluster-admin when unset, as in the seed)."""
    value = inv.setting("ai", "mcpAccess", "cluster-admin")
    if value not in MCP_ACCESS:
        raise InventoryError(
            [
                FieldError(
                    inv.source,
                    "settings.ai.mcpAccess",
                    f"unknown access mode {value!r}",
                    f"use one of: {', '.join(MCP_ACCESS)}",
                )
            ]
        )
    return value


def nanobot_image(inv: Inventory) -> str:
    """The validated ``settings.ai.nanobotImage``: a pinned tag, never ``latest``."""
    image = inv.setting("ai", "nanobotImage")
    name, _, tag = image.rpartition(":")
    if not image or not name or "/" in tag or tag in ("", "latest"):
        raise InventoryError(
            [
                FieldError(
                    inv.source,
                    "settings.ai.nanobotImage",
                    f"expected an image pinned by tag, got {image!r}",
                    "build docker/nanobot, push it, and set e.g. ghcr.io/you/nanobot:0.1.4",
                )
            ]
        )
    return image


def declared(inv: Inventory) -> list[Workload]:
    """The MCP server first; both assistants talk to it."""
    mcp_access(inv)
    nanobot_image(inv)
    mcp = "ai/kubernetes-mcp-server"
    return [
        Workload(
            layer="ai",
            name="kubernetes-mcp-server",
            namespace=MCP_NAMESPACE,
            # the server is cluster-admin in the seed: its policy is in place before it starts
            needs=("talos/health", MCP_POLICY.id),
            summary="Kubernetes MCP server (HTTP, ClusterIP), access from settings.ai.mcpAccess",
            chart=Chart(
                chart="oci://ghcr.io/containers/charts/kubernetes-mcp-server",
                version="0.1.0",
                workloads=(("deployment", "kubernetes-mcp-server"),),
                release_class=McpServerRelease,
            ),
        ),
        Workload(
            layer="ai",
            name="nanobot",
            namespace="nanobot",
            needs=(mcp, "storage/longhorn-ready", POLICIES),
            summary="Jarvis: Slack Socket Mode, outbound only, memory on a volume",
            secrets=(
                SecretSpec(
                    "nanobot",
                    "nanobot",
                    {
                        "SLACK_BOT_TOKEN": "NANOBOT_SLACK_BOT_TOKEN",
                        "SLACK_APP_TOKEN": "NANOBOT_SLACK_APP_TOKEN",
                        "ANTHROPIC_API_KEY": "NANOBOT_ANTHROPIC_API_KEY",
                    },
                ),
            ),
        ),
        Workload(
            layer="ai",
            name="openclaw",
            namespace="openclaw",
            needs=(mcp, "storage/longhorn-ready", POLICIES),
            summary="OpenClaw gateway: skills from the repo, its own volume, the same MCP server",
            bundle=OpenClawBundle,
            secrets=(
                SecretSpec(
                    "openclaw",
                    "openclaw",
                    {
                        "OPENCLAW_GATEWAY_TOKEN": "OPENCLAW_GATEWAY_TOKEN",
                        "ANTHROPIC_API_KEY": "OPENCLAW_ANTHROPIC_API_KEY",
                    },
                ),
            ),
        ),
    ]


def components(inv: Inventory) -> list[Component]:
    """The MCP server's policies, then every AI workload's steps."""
    return [MCP_POLICY, *(c for w in declared(inv) for c in w.components())]
