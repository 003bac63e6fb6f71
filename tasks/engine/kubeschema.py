"""Validate Kubernetes objects: built-in kinds against the Kubernetes JSON schemas, custom ones
against their CRDs' openAPIV3Schema, with unknown fields an error in both (the API server would
prune them silently).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from .chartdata import crd_docs, load_yaml_all, shown
from .errors import FieldError
from .inventory import Inventory


def kubernetes_schema_version(inv: Inventory) -> str:
    """The kubernetes-validate schema version of the inventory's minor, else the nearest one."""
    from kubernetes_validate.utils import all_versions

    major, minor = (int(x) for x in inv.cluster.kubernetes_version.lstrip("v").split(".")[:2])

    def distance(version: str) -> tuple[bool, int]:
        have = [int(x) for x in version.split(".")[:2]]
        return have[0] != major, abs(have[1] - minor)

    return min(all_versions(), key=distance)


@functools.lru_cache(maxsize=4)
def _definitions(version: str) -> dict[str, Any]:
    from importlib.resources import files

    folder = files("kubernetes_validate") / "kubernetes-json-schema" / f"v{version}-local-strict"
    return json.loads((folder / "_definitions.json").read_text())


@functools.lru_cache(maxsize=32)
def definition_validator(name: str, version: str) -> Any:
    """A strict validator for one Kubernetes type, e.g. ``io.k8s.api.core.v1.Probe``."""
    import jsonschema

    return jsonschema.Draft202012Validator({**_definitions(version), "$ref": f"#/$defs/{name}"})


def latest_schema_version() -> str:
    from kubernetes_validate.utils import all_versions

    return all_versions()[-1]


def _strict(schema: Any) -> Any:
    """A CRD schema where unknown fields are errors (the API server would prune them silently)."""
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    if isinstance(out.get("properties"), dict):
        out["properties"] = {k: _strict(v) for k, v in out["properties"].items()}
    for keyword in ("items", "additionalProperties"):
        if isinstance(out.get(keyword), dict):
            out[keyword] = _strict(out[keyword])
    for keyword in ("allOf", "anyOf", "oneOf"):
        if isinstance(out.get(keyword), list):
            out[keyword] = [_strict(s) for s in out[keyword]]
    if (
        out.get("properties")
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


class CrdIndex:
    """openAPIV3Schemas by (group, kind, version), from CRD documents."""

    def __init__(self) -> None:
        self.schemas: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.sources: set[str] = set()

    def add(self, crd: Mapping[str, Any], origin: str, *, replace: bool = True) -> None:
        """Index ``crd``'s served versions; with ``replace=False`` known versions are kept.

        Charts bundle CRDs of other projects at older versions (Loki's agent operator ships an old
        ServiceMonitor): the reference CRDs, which match what is applied, must win over those.
        """
        spec = crd.get("spec") or {}
        group, kind = spec.get("group", ""), (spec.get("names") or {}).get("kind", "")
        for version in spec.get("versions") or []:
            schema = (version.get("schema") or {}).get("openAPIV3Schema")
            key = (group, kind, version["name"])
            if version.get("served", True) and schema and (replace or key not in self.schemas):
                self.schemas[key] = _strict(schema)
        self.sources.add(origin)

    def add_tree(self, root: Path) -> None:
        for path in sorted(root.rglob("*.yaml")):
            for doc in crd_docs([path.read_bytes()]):
                self.add(doc, shown(path))

    def versions(self, group: str, kind: str) -> list[str]:
        return sorted(v for g, k, v in self.schemas if g == group and k == kind)


def _has_core_kind(kind: str, version: str) -> bool:
    from importlib.resources import files

    folder = files("kubernetes_validate") / "kubernetes-json-schema" / f"v{version}-local-strict"
    return any(p.name.startswith(f"{kind.lower()}-") for p in folder.iterdir())


def validate_objects(
    docs: Iterable[Any], source: str, version: str, crds: CrdIndex, notes: list[str]
) -> list[FieldError]:
    """Validate Kubernetes objects against the schemas of ``version`` and the CRDs in ``crds``."""
    import jsonschema
    from kubernetes_validate.utils import SchemaNotFoundError, ValidationError, validate

    errors: list[FieldError] = []
    for index, doc in enumerate(docs, start=1):
        if doc is None:
            continue
        if not isinstance(doc, dict) or "apiVersion" not in doc or "kind" not in doc:
            errors.append(
                FieldError(
                    source,
                    f"document {index}",
                    "not a Kubernetes object",
                    "every document needs apiVersion, kind and metadata",
                )
            )
            continue
        kind, api = str(doc["kind"]), str(doc["apiVersion"])
        name = (doc.get("metadata") or {}).get("name", "?")
        what = f"{kind}/{name}"
        try:
            validate(doc, version, strict=True)
            continue
        except ValidationError as exc:
            errors.append(_object_error(source, what, exc.path, exc.message))
            continue
        except SchemaNotFoundError:
            pass
        group, _, ver = api.rpartition("/")
        schema = crds.schemas.get((group, kind, ver))
        if schema is not None:
            validator = jsonschema.Draft202012Validator(schema)
            for err in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
                errors.append(_object_error(source, what, err.absolute_path, err.message))
        elif crds.versions(group, kind):
            errors.append(
                FieldError(
                    source,
                    f"{what} apiVersion",
                    f"{api} is not served",
                    f"use one of {', '.join(crds.versions(group, kind))}",
                )
            )
        elif ("." not in group or group.endswith(".k8s.io")) and _has_core_kind(kind, version):
            errors.append(
                FieldError(
                    source,
                    f"{what} apiVersion",
                    f"{api} {kind} is not served by Kubernetes {version}",
                    "use the apiVersion `kubectl explain` shows",
                )
            )
        else:
            notes.append(f"{source}: {what}: no schema for {api} (CRD not in the reference)")
    return errors


def _object_error(source: str, what: str, path: Iterable[Any], message: str) -> FieldError:
    dotted = ""
    for part in path:
        dotted += f"[{part}]" if isinstance(part, int) else (f".{part}" if dotted else str(part))
    return FieldError(source, f"{what} {dotted or '(object)'}", message)


def load_docs(text: str, source: str) -> tuple[list[Any], list[FieldError]]:
    try:
        return load_yaml_all(text), []
    except yaml.YAMLError as exc:
        return [], [FieldError(source, "(yaml)", f"not valid YAML: {exc}")]
