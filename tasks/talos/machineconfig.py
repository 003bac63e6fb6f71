"""Talos machine configuration: the repo's patches, per-node patches, and schema validation.

Three layers of patches make each node's config (all Talos v1.12, multi-document):

- ``talos/patches/common.yaml``: every node (installer image, kubelet mount and user volume for
  Longhorn, sysctls), with ``((placeholders))`` filled from the inventory;
- ``talos/patches/controlplane.yaml``: control planes only;
- a per-node patch generated here: install disk, ``HostnameConfig``, ``LinkConfig`` with the static
  address and default route, ``ResolverConfig``, and on control planes the ``Layer2VIPConfig`` that
  holds the API VIP on that node's link (links may differ between nodes, hence per node).

:func:`schema_errors` checks documents against the Talos JSON schema (``config.schema.json``), the
first gate; :func:`talos_rule_errors` then checks every node's merged layers against Talos's own
``Validate`` rules (:mod:`.rules`), as an inventory check that runs before anything touches a
cluster; :func:`node_patch_stack` merges one node's layers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..engine import yamlio
from ..engine.errors import FieldError, InputError
from ..engine.inventory import REPO_ROOT, Inventory, Node
from ..engine.render import render_file
from . import rules

PATCH_DIR = REPO_ROOT / "talos" / "patches"
COMMON_PATCH = PATCH_DIR / "common.yaml"
CONTROLPLANE_PATCH = PATCH_DIR / "controlplane.yaml"

# Longhorn's V1 data engine needs these on the host (Longhorn's Talos guide).
REQUIRED_EXTENSIONS = ("siderolabs/iscsi-tools", "siderolabs/util-linux-tools")


def installer_image(inv: Inventory) -> str:
    """The installer image for the inventory's schematic and Talos version."""
    t = inv.talos
    return f"{t.installer_registry}/{t.schematic.id}:{inv.cluster.talos_version}"


def kubernetes_version(inv: Inventory) -> str:
    """The Kubernetes version as talosctl's flags take it (no leading ``v``)."""
    return inv.cluster.kubernetes_version.removeprefix("v")


def rendered_patches(inv: Inventory) -> dict[str, str]:
    """The repo's patch files with placeholders filled, by name (``common``, ``controlplane``)."""
    return {
        "common": render_file(COMMON_PATCH, inv),
        "controlplane": render_file(CONTROLPLANE_PATCH, inv),
    }


def node_documents(inv: Inventory, node: Node) -> list[dict[str, Any]]:
    """The per-node patch of ``node``, as a list of config documents."""
    prefix = inv.network.subnet.prefixlen
    docs: list[dict[str, Any]] = [
        {"machine": {"install": {"disk": node.install_disk}}},
        # auto: off is what makes a static hostname win over the `auto: stable` document that
        # `talosctl gen config` emits in v1.12 (a patch without it keeps both and fails validation)
        {"apiVersion": "v1alpha1", "kind": "HostnameConfig", "auto": "off", "hostname": node.name},
        {
            "apiVersion": "v1alpha1",
            "kind": "LinkConfig",
            "name": node.link,
            "up": True,
            "addresses": [{"address": f"{node.ip}/{prefix}"}],
            # the default route is a gateway without a destination: Talos v1.12 rejects 0.0.0.0/0
            # ("route 0 destination must be a valid IP prefix", network/link.go)
            "routes": [{"gateway": str(inv.network.gateway)}],
        },
        {
            "apiVersion": "v1alpha1",
            "kind": "ResolverConfig",
            "nameservers": [{"address": str(ip)} for ip in inv.network.nameservers],
        },
    ]
    if node.role == "controlplane":
        docs.append(
            {
                "apiVersion": "v1alpha1",
                "kind": "Layer2VIPConfig",
                "name": str(inv.cluster.vip),
                "link": node.link,
            }
        )
    return docs


def dump_documents(docs: Iterable[dict[str, Any]], header: str = "") -> str:
    """A multi-document YAML stream of ``docs``."""
    body = yamlio.dump_all(docs, explicit_start=True)
    return (f"# {header}\n" if header else "") + body


def node_patch(inv: Inventory, node: Node) -> str:
    """The per-node patch of ``node`` as YAML text (what ``talosctl machineconfig patch`` reads)."""
    return dump_documents(
        node_documents(inv, node), header=f"generated from {inv.source or 'the inventory'}"
    )


def _patch_document(base: Any, patch: Any) -> Any:
    """One Talos config document patched by another: maps merge, anything else is replaced.

    Not Helm's values merge (``tasks/engine/values.py``): Talos has no ``null``-deletes rule.
    """
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            out[key] = _patch_document(base[key], value) if key in base else value
        return out
    return patch


def merge_documents(*layers: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stack patch layers like ``talosctl``: documents of one kind and name merge, others append.

    Maps merge key by key (later layers win); other values are replaced. Good enough to check that
    the layers of one node fit together; the real merge is talosctl's.
    """
    merged: dict[tuple[Any, Any], dict[str, Any]] = {}
    for layer in layers:
        for doc in layer:
            key = (doc.get("kind"), doc.get("name"))
            merged[key] = _patch_document(merged[key], doc) if key in merged else doc
    return list(merged.values())


def node_layers(
    inv: Inventory, node: Node, rendered: dict[str, str] | None = None
) -> list[tuple[str, list[dict[str, Any]]]]:
    """The patch layers of ``node`` in the order talosctl applies them, each with its source."""
    rendered = rendered if rendered is not None else rendered_patches(inv)
    layers = [(_shown(COMMON_PATCH), parse_documents(rendered["common"]))]
    if node.role == "controlplane":
        layers.append((_shown(CONTROLPLANE_PATCH), parse_documents(rendered["controlplane"])))
    layers.append((inv.source, node_documents(inv, node)))
    return layers


def node_patch_stack(inv: Inventory, node: Node) -> list[dict[str, Any]]:
    """Every patch ``node`` gets (common, control plane when it is one, its own), merged."""
    return merge_documents(*(docs for _, docs in node_layers(inv, node)))


def _shown(path: Path) -> str:
    """A patch file as errors name it: relative to the repository when it is in it."""
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


# the inventory field each generated document (and field) comes from; {i} is the node's index
GENERATED_FROM = {
    ("LinkConfig", "name"): "nodes[{i}].link",
    ("LinkConfig", "addresses"): "nodes[{i}].ip",
    ("LinkConfig", "routes"): "network.gateway",
    ("HostnameConfig", ""): "nodes[{i}].name",
    ("ResolverConfig", ""): "network.nameservers",
    ("Layer2VIPConfig", "name"): "cluster.vip",
    ("Layer2VIPConfig", ""): "nodes[{i}].link",
    (None, "machine"): "nodes[{i}].installDisk",
}


def talos_rule_errors(inv: Inventory) -> list[FieldError]:
    """Every node's documents against Talos's own ``Validate`` rules (an inventory check).

    Each problem names the file that emits the offending document (a patch file, or the
    inventory field a generated document comes from), what Talos says, and the fix.
    """
    if not _complete(inv):
        return []  # the type errors of the inventory are reported already
    try:
        rendered = rendered_patches(inv)
    except InputError as exc:
        return exc.errors
    errors: list[FieldError] = []
    for i, node in enumerate(inv.nodes):
        layers = node_layers(inv, node, rendered)
        docs = merge_documents(*(d for _, d in layers))
        machine = rules.Node(node.role == "controlplane", (str(node.ip),))
        for v in rules.violations(docs, machine):
            error = _located(v, layers, inv.source, i)
            if error not in errors:
                errors.append(error)
    return errors


def _located(
    v: rules.Violation, layers: list[tuple[str, list[dict[str, Any]]]], inventory: str, i: int
) -> FieldError:
    """``v`` as an error of the layer whose document set the field (the last such layer)."""
    source = _origin(v, layers)
    if source == inventory:
        kind = v.document.split("/")[0] if v.document != "v1alpha1.Config" else None
        top = str(v.path[0]) if v.path else ""
        template = GENERATED_FROM.get((kind, top)) or GENERATED_FROM.get((kind, ""), "nodes[{i}]")
        field = f"{template.format(i=i)} ({v.document} {v.field})"
    else:
        field = f"{v.document} {v.field}"
    return FieldError(source, field, v.message, v.fix)


def _origin(v: rules.Violation, layers: list[tuple[str, list[dict[str, Any]]]]) -> str:
    found = ""
    for source, docs in layers:
        for doc in docs:
            if rules.doc_id(doc) != v.document:
                continue
            if rules.has_path(doc, v.path) or not found:
                found = source
    return found or layers[-1][0]


def _complete(inv: Inventory) -> bool:
    """Whether the inventory has every field the generated documents are made of."""
    c, net, t = inv.cluster, inv.network, inv.talos
    if None in (c, net, t, inv.nodes) or t.schematic is None:
        return False
    if None in (c.vip, c.talos_version, net.subnet, net.gateway, net.nameservers):
        return False
    return all(
        n is not None and None not in (n.name, n.role, n.ip, n.install_disk, n.link)
        for n in inv.nodes
    )


def parse_documents(text: str) -> list[dict[str, Any]]:
    """Every non-empty document of a YAML stream."""
    return yamlio.documents(text)


@lru_cache(maxsize=4)
def load_schema(path: str) -> dict[str, Any]:
    """The Talos machine-config JSON schema at ``path``."""
    return json.loads(Path(path).read_text())


def schema_errors(docs: Sequence[dict[str, Any]], schema: dict[str, Any], source: str) -> list[str]:
    """Problems of each document against the Talos schema (empty when all are valid).

    The schema's top level is a ``oneOf`` over document kinds, whose errors name every kind that
    did not match; each document is therefore checked against its own kind's definition, which
    gives messages that point at the offending field.
    """
    from jsonschema import Draft202012Validator  # lazy: a dev dependency, only tests need it

    defs = schema["$defs"]
    by_kind = {
        d["properties"]["kind"]["enum"][0]: name
        for name, d in defs.items()
        if "kind" in d.get("properties", {}) and "enum" in d["properties"]["kind"]
    }
    problems: list[str] = []
    for i, doc in enumerate(docs):
        kind = doc.get("kind") if isinstance(doc, dict) else None
        name = "v1alpha1.Config" if kind is None else by_kind.get(kind)
        if name is None:
            problems.append(f"{source}: document {i}: unknown kind {kind!r}")
            continue
        sub = {"$schema": schema.get("$schema"), "$defs": defs, "$ref": f"#/$defs/{name}"}
        for err in sorted(Draft202012Validator(sub).iter_errors(doc), key=lambda e: e.path):
            where = ".".join(str(p) for p in err.absolute_path) or "(document)"
            problems.append(
                f"{source}: document {i} ({kind or 'v1alpha1'}): {where}: {err.message}"
            )
    return problems


def schematic_errors(inv: Inventory) -> list[FieldError]:
    """Problems with the Image Factory schematic the inventory names (file and extensions)."""
    spec = inv.talos.schematic if inv.talos is not None else None
    if spec is None or spec.file is None:
        return []
    path = Path(spec.file)
    if not path.is_absolute():
        path = REPO_ROOT / path
    field = "talos.schematic.file"
    try:
        data = yamlio.load(yamlio.read_text(path, spec.file), spec.file)
    except OSError:
        return [
            FieldError(
                inv.source,
                field,
                f"cannot read {spec.file}",
                "point it at the schematic YAML, e.g. talos/schematic.yaml",
            )
        ]
    except yamlio.YAMLInputError as exc:  # too large, not UTF-8, not YAML: file and line
        return [
            FieldError(inv.source, field, f"{spec.file} cannot be used: {e}") for e in exc.errors
        ]
    ext = ((data or {}).get("customization") or {}).get("systemExtensions") or {}
    listed = ext.get("officialExtensions") or [] if isinstance(ext, dict) else []
    missing = [e for e in REQUIRED_EXTENSIONS if e not in listed]
    if not missing:
        return []
    return [
        FieldError(
            inv.source,
            field,
            f"{spec.file}: customization.systemExtensions.officialExtensions lacks "
            f"{', '.join(missing)} (Longhorn needs them on every node)",
            "add them, submit the schematic to Image Factory and put the new ID in "
            "talos.schematic.id",
        )
    ]
