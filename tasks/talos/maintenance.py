"""Whether a node is in maintenance mode, asked once and never guessed; and the disks it reports.

``talosctl get disks --insecure`` is the question. A node in maintenance mode answers it; a
configured node refuses the client without a certificate (``tls: certificate required``). Any
other ending (no route, a timeout, an interrupt, an unknown error) says nothing about the node, so
it is an error, never read as either answer: reading it as "configured" once turned an interrupted
probe into an authenticated apply, and reading it as "maintenance" would let a new PKI be made
for a running cluster.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..engine.errors import CommandError, FieldError, OneclusterError
from ..engine.inventory import Node
from . import talosctl

if TYPE_CHECKING:
    from ..engine.context import RunContext

MAINTENANCE = "maintenance"
CONFIGURED = "configured"

# what a configured node's apid answers a client that shows no certificate (TLS 1.3 and 1.2)
REFUSALS = ("certificate required", "bad certificate")


class ProbeError(OneclusterError):
    """The maintenance-mode probe of a node ended without an answer either way."""


@dataclass(frozen=True)
class NodeMode:
    """What one probe found: ``mode`` is MAINTENANCE or CONFIGURED; ``disks`` only in maintenance."""

    node: Node
    mode: str
    disks: tuple[str, ...] = ()  # every path the node's disks answer to (/dev/sda, by-id links)


def disk_paths(payload: str) -> tuple[str, ...]:
    """The device paths and symlinks in ``talosctl get disks -o json`` (a stream of objects)."""
    decoder = json.JSONDecoder()
    text, pos, found = payload or "", 0, []
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return tuple(found)
        obj, pos = decoder.raw_decode(text, pos)  # a ValueError on garbage
        spec = obj.get("spec") or {} if isinstance(obj, dict) else {}
        if spec.get("dev_path"):
            found.append(spec["dev_path"])
        found += [s for s in spec.get("symlinks") or [] if isinstance(s, str)]


def probe(ctx: RunContext, node: Node) -> NodeMode:
    """Ask ``node`` whether it is in maintenance mode; :class:`ProbeError` when it cannot tell."""
    cmd = talosctl.maintenance_probe(node)
    try:
        result = ctx.executor.query(cmd)
    except CommandError as exc:
        if (
            exc.exit_code is not None
            and exc.exit_code > 0
            and any(r in exc.stderr for r in REFUSALS)
        ):
            return NodeMode(node, CONFIGURED)
        raise ProbeError(
            f"could not tell whether {node.name} ({node.ip}) is in maintenance mode: {exc}\n"
            "Nothing was applied or generated. Make sure the node is up and reachable "
            f"(`talosctl get disks --insecure --nodes {node.ip}` answers, or refuses with "
            "'certificate required' once configured), then run the task again."
        ) from None
    try:
        disks = disk_paths(result.stdout)
    except ValueError:
        raise ProbeError(
            f"{node.name} ({node.ip}) answered `talosctl get disks --insecure` with output that "
            "is not talosctl's JSON: cannot tell its disks. Check the talosctl version "
            "(cluster.talosVersion) and run the task again."
        ) from None
    return NodeMode(node, MAINTENANCE, disks)


def probe_all(ctx: RunContext, nodes: Iterable[Node]) -> list[NodeMode]:
    """Probe every node at once; the first node (inventory order) that cannot tell raises."""
    nodes = list(nodes)
    with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
        futures = [pool.submit(probe, ctx, n) for n in nodes]
    return [f.result() for f in futures]


def install_disk_problem(source: str, found: NodeMode) -> FieldError | None:
    """Why ``found.node``'s ``installDisk`` cannot be used, from the disks the node reported."""
    node = found.node
    if found.mode != MAINTENANCE or node.install_disk in found.disks:
        return None
    devices = sorted(d for d in found.disks if not d.startswith("/dev/disk/"))
    return FieldError(
        source,
        f"nodes[{node.name}].installDisk",
        f"{node.install_disk} does not exist on {node.name} ({node.ip}); `talosctl get disks` "
        f"reported {', '.join(devices) or 'no disks'}",
        "set installDisk to one of them (a /dev/disk/by-id/ link of one is accepted too)",
    )
