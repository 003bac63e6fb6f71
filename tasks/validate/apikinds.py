"""Which API kinds each step renders and which it serves by installing CRDs (for the needs check).

A step's custom kinds come from what it applies: a manifest bundle's rendered stream, a release's
``helm template`` output (when its chart is cached). What it installs: a CRD bundle's CRDs (each
source resolved against the reference CRDs: ``<group>_<plural>.yaml``, or a release download
``<project>/releases/download/<tag>/`` as the pinned folder ``crds/<project>-<tag>/``), a chart's
``crds/`` folders and the CRDs a release renders. Built-in kinds are those of the Kubernetes JSON
schemas of the inventory's minor (:mod:`kubernetes_validate`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..engine.components import CrdBundle
from ..engine.graph import ApiKind
from .chartdata import crd_docs
from .kubeschema import PLATFORM_CRDS, _definitions, crd_directories

_GROUP_PLURAL = re.compile(
    r"^(?:crd-)?(?:(?P<group>[a-z0-9.-]+\.[a-z]+)_)?(?P<plural>[a-z0-9]+)\.ya?ml$"
)
_RELEASE_DOWNLOAD = re.compile(r"/(?P<project>[^/]+)/releases/download/(?P<tag>[^/]+)/")


@functools.lru_cache(maxsize=4)
def builtin_kinds(version: str) -> frozenset[ApiKind]:
    """Every (group, kind) Kubernetes ``version`` serves itself, and those the platform serves
    (Talos's ServiceAccount: :data:`~.kubeschema.PLATFORM_CRDS`)."""
    defs = _definitions(version).get("$defs", {})
    return frozenset(
        (gvk.get("group", ""), gvk.get("kind", ""))
        for d in defs.values()
        for gvk in d.get("x-kubernetes-group-version-kind", [])
    ) | served_kinds(PLATFORM_CRDS)


def api_kind(doc: Any) -> ApiKind | None:
    """(group, kind) of a Kubernetes object, None for anything else."""
    if not isinstance(doc, dict) or "apiVersion" not in doc or "kind" not in doc:
        return None
    group, _, _ = str(doc["apiVersion"]).rpartition("/")
    return group, str(doc["kind"])


def custom_kinds(docs: Iterable[Any], version: str) -> frozenset[ApiKind]:
    """The kinds among ``docs`` that Kubernetes does not build in."""
    builtin = builtin_kinds(version)
    return frozenset(k for k in map(api_kind, docs) if k is not None and k not in builtin)


def served_kinds(crds: Iterable[Mapping[str, Any]]) -> frozenset[ApiKind]:
    """The (group, kind) each CRD serves."""
    out = set()
    for crd in crds:
        spec = crd.get("spec") or {}
        out.add((str(spec.get("group", "")), str((spec.get("names") or {}).get("kind", ""))))
    return frozenset(out)


def api_versions(crds: Iterable[Mapping[str, Any]]) -> list[str]:
    """``group/version`` and ``group/version/Kind`` of every served version (``--api-versions``)."""
    out: set[str] = set()
    for crd in crds:
        spec = crd.get("spec") or {}
        group, kind = spec.get("group", ""), (spec.get("names") or {}).get("kind", "")
        for version in spec.get("versions") or []:
            if version.get("served", True):
                out |= {f"{group}/{version['name']}", f"{group}/{version['name']}/{kind}"}
    return sorted(out)


def crds_in(docs: Iterable[Any]) -> list[dict[str, Any]]:
    return [d for d in docs if isinstance(d, dict) and d.get("kind") == "CustomResourceDefinition"]


class CrdCatalogue:
    """Every CRD document known offline, by name (``plural.group``) and by file."""

    def __init__(self, reference: Path | None) -> None:
        self.by_name: dict[str, dict[str, Any]] = {}
        self.by_file: dict[str, list[dict[str, Any]]] = {}
        self.by_folder: dict[str, list[dict[str, Any]]] = {}
        for root in crd_directories(reference):
            for path in sorted(root.rglob("*.yaml")):
                docs = crd_docs([path.read_bytes()])
                self.by_file.setdefault(path.name, docs)
                self.by_folder.setdefault(path.parent.name, []).extend(docs)
                for doc in docs:
                    self.add(doc)

    def add(self, crd: Mapping[str, Any]) -> None:
        name = str((crd.get("metadata") or {}).get("name", ""))
        if name and name not in self.by_name:
            self.by_name[name] = dict(crd)

    def bundle(self, bundle: CrdBundle) -> tuple[list[dict[str, Any]], list[str]]:
        """The CRDs ``bundle`` applies, and its sources that could not be resolved offline."""
        found: list[dict[str, Any]] = []
        unresolved: list[str] = []
        for source in bundle.sources:
            base = source.rstrip("/").rsplit("/", 1)[-1]
            match, release = _GROUP_PLURAL.match(base), _RELEASE_DOWNLOAD.search(source)
            name = f"{match['plural']}.{match['group']}" if match and match["group"] else ""
            if name in self.by_name:
                found.append(self.by_name[name])
            elif base in self.by_file:
                found += self.by_file[base]
            elif release and f"{release['project']}-{release['tag']}" in self.by_folder:
                found += self.by_folder[f"{release['project']}-{release['tag']}"]
            else:
                unresolved.append(source)
        return found, unresolved
