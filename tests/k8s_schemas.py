"""Test helpers: rendered values and manifests, and the schemas they must satisfy.

Built-in kinds are checked against the Kubernetes JSON schemas of ``kubernetes-validate``; custom
resources against the ``openAPIV3Schema`` of their CRD, read from ``../shared/reference/crds`` and
from any directories in ``$ONECLUSTER_EXTRA_CRDS`` (``os.pathsep``-separated; e.g. cert-manager's
CRDs rendered from a locally fetched chart, which the reference data does not hold).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from tasks.engine.inventory import REPO_ROOT, load_inventory
from tasks.engine.render import render_file

INVENTORY = load_inventory(None)  # the reference cluster, talos/cluster.yaml
KUBERNETES_VERSION = INVENTORY.cluster.kubernetes_version.lstrip("v")
EXTRA_CRDS_ENV = "ONECLUSTER_EXTRA_CRDS"
MISSING = object()


def rendered(path: Path) -> str:
    """A values file or manifest with the reference inventory's placeholders filled in."""
    return render_file(path, INVENTORY)


def rendered_values(release: str) -> dict[str, Any]:
    """``helm-values/<release>.yaml``, rendered and parsed."""
    return yaml.safe_load(rendered(REPO_ROOT / "helm-values" / f"{release}.yaml")) or {}


def manifest_docs(directory: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every object of every ``*.yaml`` under ``directory``, rendered, with its file."""
    for path in sorted(directory.rglob("*.yaml")):
        for doc in yaml.safe_load_all(rendered(path)):
            if doc:
                yield path, doc


def find_object(directory: Path, kind: str, name: str) -> dict[str, Any]:
    """The one object of ``kind`` called ``name`` under ``directory``."""
    found = [
        d
        for _, d in manifest_docs(directory)
        if d["kind"] == kind and d["metadata"]["name"] == name
    ]
    assert len(found) == 1, f"expected one {kind}/{name} under {directory}, found {len(found)}"
    return found[0]


def lookup(data: Any, dotted: str) -> Any:
    """``data`` at ``dotted`` (``a.b.0.c``; a key may hold dots when written ``a.[b.c].d``)."""
    for part in _split(dotted):
        if isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        elif isinstance(data, dict) and part in data:
            data = data[part]
        else:
            return MISSING
    return data


def _split(dotted: str) -> list[str]:
    parts: list[str] = []
    buf = ""
    bracket = False
    for ch in dotted:
        if ch == "[" and not buf:
            bracket = True
        elif ch == "]" and bracket:
            bracket = False
        elif ch == "." and not bracket:
            parts.append(buf)
            buf = ""
        else:
            buf += ch
    parts.append(buf)
    return parts


def crd_directories(reference: Path | None) -> list[Path]:
    """Where CRDs are read from: the reference data, then ``$ONECLUSTER_EXTRA_CRDS``."""
    dirs = [reference / "crds"] if reference is not None else []
    dirs += [Path(p) for p in os.environ.get(EXTRA_CRDS_ENV, "").split(os.pathsep) if p]
    return [d for d in dirs if d.is_dir()]


@functools.cache
def crd_documents(path: Path) -> list[dict[str, Any]]:
    """The CustomResourceDefinitions in one file (parsed once per test session)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # CRDs are large: use libyaml if present
    docs = yaml.load_all(path.read_text(), Loader=loader)
    return [d for d in docs if d and d.get("kind") == "CustomResourceDefinition"]


def load_crd_schemas(directories: list[Path]) -> dict[tuple[str, str], dict[str, Any]]:
    """``(apiVersion, kind)`` → openAPIV3Schema for every served version of every CRD found.

    The first directory wins, so the Gateway API version the stack pins (v1.5.1) is preferred to
    the newer one beside it in the reference data.
    """
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for directory in directories:
        # the pinned Gateway API release first: the reference also holds a newer one
        files = sorted(directory.rglob("*.yaml"), key=lambda p: ("v1.5.1" not in str(p), str(p)))
        for path in files:
            for doc in crd_documents(path):
                spec = doc["spec"]
                for version in spec["versions"]:
                    if not version.get("served", True):
                        continue
                    key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                    schemas.setdefault(key, version["schema"]["openAPIV3Schema"])
    return schemas


def validate_object(doc: dict[str, Any], crds: dict[tuple[str, str], dict[str, Any]]) -> str:
    """Validate one object; return "" when checked, or why it could not be (its CRD is absent).

    Built-in kinds use kubernetes-validate's strict schemas. Custom resources use their CRD's
    schema, made strict the way the API server's field validation is (``kubectl apply`` rejects
    unknown fields): an object schema with ``properties`` admits no other keys unless it says
    ``x-kubernetes-preserve-unknown-fields``.
    """
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        return ""
    except kubernetes_validate.SchemaNotFoundError:
        pass
    schema = crds.get((doc["apiVersion"], doc["kind"]))
    if schema is None:
        return f"no CRD for {doc['apiVersion']} {doc['kind']} in {crd_sources_hint()}"
    jsonschema.validate(doc, strict_schema(schema, top=True))
    return ""


def crd_sources_hint() -> str:
    return f"../shared/reference/crds or ${EXTRA_CRDS_ENV}"


def strict_schema(schema: dict[str, Any], top: bool = False) -> dict[str, Any]:
    """A copy of an openAPIV3Schema that rejects unknown fields (metadata is the API's business)."""
    out = dict(schema)
    props = {k: strict_schema(v) for k, v in schema.get("properties", {}).items()}
    if top:
        props["metadata"] = {"type": "object"}  # the API server's to check, not the CRD's
    if "properties" in schema:
        out["properties"] = props
        if (
            not schema.get("x-kubernetes-preserve-unknown-fields")
            and "additionalProperties" not in schema
        ):
            out["additionalProperties"] = False
    if isinstance(schema.get("items"), dict):
        out["items"] = strict_schema(schema["items"])
    if isinstance(schema.get("additionalProperties"), dict):
        out["additionalProperties"] = strict_schema(schema["additionalProperties"])
    for key in ("allOf", "anyOf", "oneOf"):
        if key in schema:
            out[key] = [strict_schema(s) for s in schema[key]]
    return out
