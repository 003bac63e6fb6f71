"""AI layer: the Kubernetes MCP server, Nanobot (Slack, outbound only) and OpenClaw."""

from __future__ import annotations

from .engine.components import Component, HelmRelease, ManifestBundle, SecretSpec
from .engine.deploy import layer_collection
from .engine.inventory import Inventory


def components(inv: Inventory) -> list[Component]:
    """The MCP server first; both assistants talk to it."""
    return [
        HelmRelease(
            layer="ai",
            name="kubernetes-mcp-server",
            needs=("talos/health",),
            release="kubernetes-mcp-server",
            chart="oci://ghcr.io/containers/charts/kubernetes-mcp-server",
            version="0.1.0",
            namespace="mcp",
        ),
        ManifestBundle(
            layer="ai",
            name="nanobot",
            needs=("ai/kubernetes-mcp-server", "storage/longhorn-ready"),
            secrets=(
                SecretSpec(
                    "nanobot",
                    "nanobot-slack",
                    {
                        "SLACK_BOT_TOKEN": "NANOBOT_SLACK_BOT_TOKEN",
                        "SLACK_APP_TOKEN": "NANOBOT_SLACK_APP_TOKEN",
                    },
                ),
            ),
        ),
        ManifestBundle(
            layer="ai",
            name="openclaw",
            needs=("ai/kubernetes-mcp-server", "storage/longhorn-ready"),
        ),
    ]


ns = layer_collection("ai", __doc__)
