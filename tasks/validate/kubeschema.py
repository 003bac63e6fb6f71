"""Validate Kubernetes objects: built-in kinds against the Kubernetes JSON schemas, custom ones
against their CRDs' openAPIV3Schema, with unknown fields an error in both (the API server would
prune them silently).

CRDs are read from ``../shared/reference/crds`` and then from the directories in
``$ONECLUSTER_EXTRA_CRDS`` (``os.pathsep``-separated; e.g. cert-manager's CRDs rendered from a
locally fetched chart, which the reference data does not hold).
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterable, Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any

from ..engine import yamlio
from ..engine.errors import FieldError
from ..engine.inventory import Inventory
from .chartdata import crd_docs, shown

EXTRA_CRDS_ENV = "ONECLUSTER_EXTRA_CRDS"
CRD_SOURCES = f"../shared/reference/crds or ${EXTRA_CRDS_ENV}"

# A folder named for a release (`gateway-api-v1.5.1`) holds the version the stack pins; the
# unversioned folder beside it (`gateway-api`) holds the newest release, which is not applied.
_PINNED_FOLDER = re.compile(r"-v\d+(\.\d+)*$")


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
        """Index every CRD under ``root``; versions already known are kept.

        Pinned release folders (``gateway-api-v1.5.1``) are read before the others, so their
        versions win over the newer release the reference holds beside them.
        """
        paths = sorted(
            root.rglob("*.yaml"),
            key=lambda p: (
                not any(map(_PINNED_FOLDER.search, p.relative_to(root).parts[:-1])),
                str(p),
            ),
        )
        for path in paths:
            for doc in crd_docs([path.read_bytes()]):
                self.add(doc, shown(path), replace=False)

    def versions(self, group: str, kind: str) -> list[str]:
        return sorted(v for g, k, v in self.schemas if g == group and k == kind)


# Kinds the platform itself serves, whose CRD no step applies and the reference does not hold:
# Talos applies the CRD of its ServiceAccount (talos.dev/v1alpha1, namespaced) with its bootstrap
# manifests once machine.features.kubernetesTalosAPIAccess is on (siderolabs/talos v1.12.4
# internal/app/machined/pkg/controllers/k8s/manifest.go). Its schema here is onecluster's own
# statement of what that CRD serves (internal/app/machined/pkg/controllers/k8s/internal/
# k8stemplates/crds.go: spec.roles, a list of strings; status.failureReason), so a manifest of it
# is checked as strictly as any other; the needs check counts the kind as built in.
PLATFORM_CRDS: tuple[dict[str, Any], ...] = (
    {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "serviceaccounts.talos.dev"},
        "spec": {
            "group": "talos.dev",
            "scope": "Namespaced",
            "names": {"kind": "ServiceAccount", "plural": "serviceaccounts"},
            "versions": [
                {
                    "name": "v1alpha1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                # every object's own fields (the API server adds them to each
                                # CRD's schema)
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": {
                                    "type": "object",
                                    "properties": {
                                        "roles": {"type": "array", "items": {"type": "string"}}
                                    },
                                },
                                "status": {
                                    "type": "object",
                                    "properties": {"failureReason": {"type": "string"}},
                                },
                            },
                        }
                    },
                }
            ],
        },
    },
)
PLATFORM_ORIGIN = "Talos (kubernetesTalosAPIAccess)"


def crd_directories(reference: Path | None) -> list[Path]:
    """Where CRDs are read from: ``<reference>/crds``, then ``$ONECLUSTER_EXTRA_CRDS``."""
    dirs = [reference / "crds"] if reference is not None else []
    dirs += [Path(p) for p in os.environ.get(EXTRA_CRDS_ENV, "").split(os.pathsep) if p]
    return [d for d in dirs if d.is_dir()]


def crd_index(reference: Path | None) -> CrdIndex:
    """The CRDs of :func:`crd_directories`; the first directory to define a version wins.

    The directories are parsed once per process (4 MB of YAML); each call gets its own index to
    add to.
    """
    index = CrdIndex()
    parsed = _parsed_index(tuple(crd_directories(reference)))
    index.schemas.update(parsed.schemas)
    index.sources |= parsed.sources
    for crd in PLATFORM_CRDS:
        index.add(crd, PLATFORM_ORIGIN, replace=False)
    return index


@functools.lru_cache(maxsize=8)
def _parsed_index(directories: tuple[Path, ...]) -> CrdIndex:
    index = CrdIndex()
    for directory in directories:
        index.add_tree(directory)
    return index


@functools.lru_cache(maxsize=512)
def _builtin_validator(api_version: str, kind: str, version: str) -> Any:
    """The strict validator of a built-in kind (None: not built in), each schema read once.

    The lookup is kubernetes-validate's own (``<kind>-<group>-<version>.json`` in
    ``v<version>-local-strict``); its ``validate`` reads the 2 MB definitions for every object.
    """
    import jsonschema
    from referencing import Registry, Resource

    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    folder = files("kubernetes_validate") / "kubernetes-json-schema" / f"v{version}-local-strict"
    path = folder / f"{kind.lower()}-{api}.json"
    if not path.is_file():
        return None
    schema = json.loads(path.read_text())
    registry = Resource.from_contents(_definitions(version)) @ (
        Resource.from_contents(schema) @ Registry()
    )
    return jsonschema.Draft202012Validator(schema, registry=registry)


def _has_core_kind(kind: str, version: str) -> bool:
    from importlib.resources import files

    folder = files("kubernetes_validate") / "kubernetes-json-schema" / f"v{version}-local-strict"
    return any(p.name.startswith(f"{kind.lower()}-") for p in folder.iterdir())


def validate_objects(
    docs: Iterable[Any], source: str, version: str, crds: CrdIndex, notes: list[str]
) -> list[FieldError]:
    """Validate Kubernetes objects against the schemas of ``version`` and the CRDs in ``crds``."""
    errors: list[FieldError] = []
    for index, doc in enumerate(docs, start=1):
        if doc is None:
            continue
        found, note = validate_object(doc, source, version, crds, index)
        errors += found
        if note:
            notes.append(note)
    return errors


def validate_object(
    doc: Any, source: str, version: str, crds: CrdIndex, index: int = 1
) -> tuple[list[FieldError], str]:
    """Validate one object: its errors, and a note when no schema for its kind is at hand.

    Built-in kinds use kubernetes-validate's strict schemas; custom resources their CRD's schema,
    made strict the way the API server's field validation is (``kubectl apply`` rejects unknown
    fields). ``index`` names the document in ``source`` when it is not an object at all.
    """
    import jsonschema

    if not isinstance(doc, dict) or "apiVersion" not in doc or "kind" not in doc:
        return [
            FieldError(
                source,
                f"document {index}",
                "not a Kubernetes object",
                "every document needs apiVersion, kind and metadata",
            )
        ], ""
    kind, api = str(doc["kind"]), str(doc["apiVersion"])
    name = (doc.get("metadata") or {}).get("name", "?")
    what = f"{kind}/{name}"
    validator = _builtin_validator(api, kind, version)
    if validator is not None:
        # the first error, as kubernetes_validate.validate raises it (Validator.validate)
        error = next(iter(validator.iter_errors(doc)), None)
        return ([_object_error(source, what, error.path, error.message)] if error else []), ""
    group, _, ver = api.rpartition("/")
    schema = crds.schemas.get((group, kind, ver))
    if schema is not None:
        validator = jsonschema.Draft202012Validator(schema)
        return [
            _object_error(source, what, err.absolute_path, err.message)
            for err in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
        ], ""
    if crds.versions(group, kind):
        return [
            FieldError(
                source,
                f"{what} apiVersion",
                f"{api} is not served",
                f"use one of {', '.join(crds.versions(group, kind))}",
            )
        ], ""
    if ("." not in group or group.endswith(".k8s.io")) and _has_core_kind(kind, version):
        return [
            FieldError(
                source,
                f"{what} apiVersion",
                f"{api} {kind} is not served by Kubernetes {version}",
                "use the apiVersion `kubectl explain` shows",
            )
        ], ""
    return [], f"{source}: {what}: no schema for {api} (no CRD for it in {CRD_SOURCES})"


def _object_error(source: str, what: str, path: Iterable[Any], message: str) -> FieldError:
    dotted = ""
    for part in path:
        dotted += f"[{part}]" if isinstance(part, int) else (f".{part}" if dotted else str(part))
    return FieldError(source, f"{what} {dotted or '(object)'}", message)


def load_docs(text: str, source: str) -> tuple[list[Any], list[FieldError]]:
    try:
        return yamlio.load_all(text), []
    except yamlio.YAMLError as exc:
        return [], [FieldError(source, "(yaml)", f"not valid YAML: {exc}")]
