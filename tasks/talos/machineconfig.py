"""Talos machine configuration: the repo's patches, per-node patches, and schema validation.

Three layers of patches make each node's config (all Talos v1.12, multi-document):

- ``talos/patches/common.yaml``: every node (installer image, kubelet mount and user volume for
  Longhorn, sysctls), with ``((placeholders))`` filled from the inventory;
- ``talos/patches/controlplane.yaml``: control planes only;
- a per-node patch generated here: install disk, ``HostnameConfig``, ``LinkConfig`` with the static
  address and default route, ``ResolverConfig``, and on control planes the ``Layer2VIPConfig`` that
  holds the API VIP on that node's link (links may differ between nodes, hence per node).

:func:`schema_errors` checks documents against the Talos JSON schema (``config.schema.json``);
:func:`node_patch_stack` merges one node's layers so the tests can check them together.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..engine import yamlio
from ..engine.errors import FieldError
from ..engine.inventory import REPO_ROOT, Inventory, Node
from ..engine.render import render_file

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
            "routes": [{"destination": "0.0.0.0/0", "gateway": str(inv.network.gateway)}],
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


def node_patch_stack(inv: Inventory, node: Node) -> list[dict[str, Any]]:
    """Every patch ``node`` gets (common, control plane when it is one, its own), merged."""
    rendered = rendered_patches(inv)
    layers = [parse_documents(rendered["common"])]
    if node.role == "controlplane":
        layers.append(parse_documents(rendered["controlplane"]))
    layers.append(node_documents(inv, node))
    return merge_documents(*layers)


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
