"""The volumes the stack declares, found in the manifests its steps apply (never a hand list).

A declared volume is a PersistentVolumeClaim of a Longhorn class that a manifest bundle of the
catalogue applies: a ``PersistentVolumeClaim`` document (``manifests/apps/mealie/data.yaml``), or
a StatefulSet's ``volumeClaimTemplates`` entry, which Kubernetes names
``<template>-<statefulset>-<ordinal>`` per replica (the databases of ``manifests/databases/``).
Each belongs to an app (the ``app.kubernetes.io/part-of`` label every bundle sets) and to the step
that applies it, the one that must wait for its restore.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..engine.command import Executor
from ..engine.components import Component, ManifestBundle
from ..engine.context import WORKDIR_PLACEHOLDER, RunContext
from ..engine.errors import FlagError
from ..engine.inventory import Inventory

# The Longhorn StorageClasses of the stack: the chart's `longhorn` (helm-values/longhorn.yaml,
# persistence.defaultClass) and `longhorn-rwx` (manifests/storage/longhorn-extras).
STORAGE_CLASSES = ("longhorn", "longhorn-rwx")
# What both classes give a volume, and so what a restored volume gets: two replicas, a replica
# waits 30 minutes before it is rebuilt (helm-values/longhorn.yaml defaultClassReplicaCount;
# the StorageClass parameters of longhorn-extras; tests/test_backup.py keeps them equal)
REPLICAS = 2
STALE_REPLICA_TIMEOUT = 30
DATA_LOCALITY = "best-effort"
PART_OF = "app.kubernetes.io/part-of"


@dataclass(frozen=True)
class DeclaredVolume:
    """One claim the stack declares: where, whose, how big, and which step applies it."""

    namespace: str
    pvc: str
    app: str
    step: str  # the id of the step that applies the claim (or the StatefulSet making it)
    storage_class: str
    access_modes: tuple[str, ...]
    size: str  # the claim's requested storage, e.g. 5Gi
    labels: tuple[tuple[str, str], ...] = ()

    @property
    def rwx(self) -> bool:
        return "ReadWriteMany" in self.access_modes


def _claim(
    spec: Any, meta: Any, namespace: str, name: str, app: str, step: str
) -> DeclaredVolume | None:
    if not isinstance(spec, dict) or spec.get("storageClassName") not in STORAGE_CLASSES:
        return None
    labels = (meta or {}).get("labels") or {}
    return DeclaredVolume(
        namespace=namespace,
        pvc=name,
        app=str(labels.get(PART_OF) or app),
        step=step,
        storage_class=spec["storageClassName"],
        access_modes=tuple(spec.get("accessModes") or ("ReadWriteOnce",)),
        size=str(((spec.get("resources") or {}).get("requests") or {}).get("storage") or ""),
        labels=tuple(sorted((str(k), str(v)) for k, v in labels.items())),
    )


def claims_in(docs: Iterable[Any], step: Component) -> list[DeclaredVolume]:
    """The Longhorn claims a step's documents declare (claims and StatefulSets' templates)."""
    found: list[DeclaredVolume] = []
    app = getattr(step, "part_of", "") or step.name
    for doc in docs:
        if not isinstance(doc, dict):
            continue
        meta = doc.get("metadata") or {}
        namespace = meta.get("namespace") or getattr(step, "namespace", "") or "default"
        if doc.get("kind") == "PersistentVolumeClaim":
            claim = _claim(doc.get("spec"), meta, namespace, meta.get("name", ""), app, step.id)
            found += [claim] if claim else []
        elif doc.get("kind") == "StatefulSet":
            spec = doc.get("spec") or {}
            for template in spec.get("volumeClaimTemplates") or []:
                tmeta = template.get("metadata") or {}
                for ordinal in range(int(spec.get("replicas", 1) or 0)):
                    name = f"{tmeta.get('name')}-{meta.get('name')}-{ordinal}"
                    labels = {PART_OF: (meta.get("labels") or {}).get(PART_OF, app)}
                    labels |= tmeta.get("labels") or {}
                    claim = _claim(
                        template.get("spec"), {"labels": labels}, namespace, name, app, step.id
                    )
                    found += [claim] if claim else []
    return found


def render_context(inventory: Inventory) -> RunContext:
    """A context that only renders (placeholders filled from the inventory; runs nothing)."""
    return RunContext(
        inventory=inventory,
        executor=Executor(dry_run=True),
        workdir=Path(WORKDIR_PLACEHOLDER),
        kubeconfig="",
        talosconfig="",
    )


def declared_volumes(components: Sequence[Component], inventory: Inventory) -> list[DeclaredVolume]:
    """Every Longhorn claim the manifest bundles among ``components`` apply, in graph order."""
    from ..engine import yamlio

    ctx = render_context(inventory)
    found: list[DeclaredVolume] = []
    seen: set[tuple[str, str]] = set()
    for step in components:
        if not isinstance(step, ManifestBundle):
            continue
        for claim in claims_in(yamlio.load_all(step.rendered(ctx)), step):
            if (claim.namespace, claim.pvc) not in seen:
                seen.add((claim.namespace, claim.pvc))
                found.append(claim)
    return found


def of_apps(volumes: Sequence[DeclaredVolume], names: Sequence[str]) -> list[DeclaredVolume]:
    """The volumes of the apps ``names`` (all when none); an unknown name is a flag error."""
    if not names:
        return list(volumes)
    apps = sorted({v.app for v in volumes})
    unknown = [n for n in names if n not in apps]
    if unknown:
        raise FlagError(
            f"--name {', '.join(unknown)}: no declared volume belongs to it; apps with "
            f"volumes: {', '.join(apps)}"
        )
    return [v for v in volumes if v.app in names]
