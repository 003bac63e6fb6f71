"""The plan: the selected steps with their needs and exact commands, as table, JSON or Mermaid.

``cluster.plan --format json`` is a contract other tools and CI read:
``{"cluster": NAME, "steps": [{"id", "layer", "kind", "needs", "commands", "description"}]}``,
where ``commands`` are the argument vectors ``--dry-run`` prints (secret values redacted).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .components import Component
from .context import RunContext
from .errors import choice
from .output import redact_argv, table

FORMATS = ("table", "json", "mermaid")


def plan_data(ctx: RunContext, steps: Sequence[Component]) -> dict[str, Any]:
    """The plan as plain data (the JSON contract)."""
    selected = {s.id for s in steps}
    return {
        "cluster": ctx.inventory.name,
        "steps": [
            {
                "id": s.id,
                "layer": s.layer,
                "kind": s.kind,
                "needs": [n for n in s.needs if n in selected],
                "commands": [redact_argv(c.argv) for c in s.commands(ctx)],
                "description": s.describe(ctx),
            }
            for s in steps
        ],
    }


def render_plan(ctx: RunContext, steps: Sequence[Component], fmt: str = "table") -> str:
    """Render the plan in one of :data:`FORMATS`."""
    choice("--format", fmt, FORMATS, "format")
    data = plan_data(ctx, steps)
    if fmt == "json":
        return json.dumps(data, indent=2)
    if fmt == "mermaid":
        return _mermaid(data)
    rows = [
        (i + 1, s["id"], s["kind"], ", ".join(s["needs"]) or "-", len(s["commands"]))
        for i, s in enumerate(data["steps"])
    ]
    head = f"Plan for cluster {data['cluster']}: {len(rows)} steps\n"
    return head + table(("#", "step", "kind", "needs", "cmds"), rows)


def _mermaid(data: dict[str, Any]) -> str:
    def node(cid: str) -> str:
        return cid.replace("/", "__").replace("-", "_")

    lines = ["flowchart TD"]
    layers: dict[str, list[dict[str, Any]]] = {}
    for s in data["steps"]:
        layers.setdefault(s["layer"], []).append(s)
    for layer, steps in layers.items():
        lines.append(f"  subgraph {layer}")
        lines += [f'    {node(s["id"])}["{s["id"]} ({s["kind"]})"]' for s in steps]
        lines.append("  end")
    for s in data["steps"]:
        lines += [f"  {node(n)} --> {node(s['id'])}" for n in s["needs"]]
    return "\n".join(lines)
