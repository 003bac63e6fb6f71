"""Profiles: the stack's own catalogue adapted to another target, such as a throwaway kind cluster.

A profile deploys with the same engine and the same components as ``cluster.rebuild``; it only
picks some target components (their needs come along), swaps the steps that cannot run on the
target for *stand-ins* with the same ids (so every ``needs`` still resolves and the plan shows what
was swapped), and merges values overlays over the Helm releases' own values files.

The kind profile (``invoke cluster.rebuild --profile kind``), used by ``nox -s integration``:

- ``talos/health`` → every kind node Ready;
- ``storage/longhorn-ready`` → a ``longhorn`` StorageClass provisioned by kind's local-path
  provisioner, so apps and their databases claim from the class they claim on Talos;
- ``storage/longhorn-extras`` → a ``longhorn-rwx`` class on local-path too; local-path serves
  ReadWriteOnce only, so the profile rewrites ReadWriteMany claims in manifests to ReadWriteOnce;
- every secret sync → Secrets filled with random values made in memory (no Infisical in CI);
- ``tests/integration/values/<release>.yaml`` merged over ``helm-values/<release>.yaml``
  (a NodePort Traefik reachable through kind's port mapping, a trimmed kube-prometheus-stack).

Any other Talos or Longhorn step the targets come to need is an error naming it, never a silent
skip.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from ..engine import yamlio
from ..engine.catalog import Catalog
from ..engine.command import Command
from ..engine.components import Component, HelmRelease, ManifestBundle
from ..engine.context import RunContext
from ..engine.errors import GraphError
from ..engine.gates import Check, Gate
from ..engine.graph import Graph
from ..engine.inventory import REPO_ROOT
from ..engine.kubectl import namespace_manifest
from ..engine.output import register_secret
from ..secrets.steps import SecretSync


@dataclass(frozen=True, kw_only=True)
class GeneratedSecrets(Component):
    """The declared Secrets filled with random values made in memory (a cluster with no store)."""

    kind: ClassVar[str] = "secret"
    binaries: ClassVar[tuple[str, ...]] = ("kubectl",)

    def manifests(self) -> list[dict]:
        """Each Secret's namespace, then the Secret with a fresh random value per key."""
        docs: list[dict] = []
        for spec in self.secrets:
            values = {key: secrets.token_urlsafe(24) for key in spec.keys}
            for value in values.values():
                register_secret(value)
            namespace = namespace_manifest(spec.namespace)
            if namespace not in docs:
                docs.append(namespace)
            docs.append(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "type": spec.type,
                    "metadata": {"name": spec.name, "namespace": spec.namespace},
                    "stringData": values,
                }
            )
        return docs

    def commands(self, ctx: RunContext) -> list[Command]:
        return [ctx.kubectl.apply(stdin=yamlio.dump_all(self.manifests()).encode())]

    def describe(self, ctx: RunContext) -> str:
        names = ", ".join(f"{s.namespace}/{s.name}" for s in self.secrets)
        return f"Secret(s) {names} with random values made in memory (stands in for Infisical)"


StandIn = Callable[[Component], Component]
DocPatch = Callable[[dict], dict]


def rwx_as_rwo(doc: dict) -> dict:
    """A PersistentVolumeClaim (or StatefulSet claim template) asking ReadWriteMany → ReadWriteOnce."""

    def fix(claim: dict) -> None:
        spec = claim.get("spec", {})
        modes = spec.get("accessModes") or []
        if "ReadWriteMany" in modes:
            spec["accessModes"] = ["ReadWriteOnce"]

    if doc.get("kind") == "PersistentVolumeClaim":
        fix(doc)
    for template in doc.get("spec", {}).get("volumeClaimTemplates", []) or []:
        fix(template)
    return doc


@dataclass(frozen=True)
class Profile:
    """Which components to deploy on a target, and what replaces the ones that cannot run there."""

    name: str
    # component ids to deploy; what they need comes along
    targets: tuple[str, ...]
    # id → builder of the stand-in that replaces it (given the original component)
    stand_ins: Mapping[str, StandIn]
    # id prefixes that must not be reached other than through a stand-in
    unsupported: tuple[str, ...]
    # repo-relative folder of values overlays, one per Helm release: <release>.yaml
    overlays: str
    # secret syncs become GeneratedSecrets (the target has no secret store)
    generate_secrets: bool = True
    # applied to every document of every manifest bundle (what the target cannot serve as written)
    manifest_patch: DocPatch | None = None

    def overlay_for(self, release: HelmRelease) -> str | None:
        """The overlay file of ``release`` (repo-relative), if this profile has one."""
        path = f"{self.overlays}/{release.release}.yaml"
        return path if (REPO_ROOT / path).is_file() else None

    def adapt(self, comp: Component) -> Component:
        """``comp`` as this profile deploys it: stand-in, generated secrets, or with overlays."""
        if comp.id in self.stand_ins:
            return self.stand_ins[comp.id](comp)
        if self.generate_secrets and isinstance(comp, SecretSync):
            return GeneratedSecrets(
                layer=comp.layer,
                name=comp.name,
                needs=comp.needs,
                secrets=comp.secrets,
                summary=comp.summary,
            )
        if isinstance(comp, HelmRelease):
            overlay = self.overlay_for(comp)
            if overlay:
                return dataclasses.replace(comp, overlays=(*comp.overlays, overlay))
        if self.manifest_patch is not None and isinstance(comp, ManifestBundle):
            return dataclasses.replace(comp, patch=self.manifest_patch)
        return comp

    def select(self, components: Sequence[Component]) -> list[Component]:
        """The adapted targets and everything they need, in graph order."""
        graph = Graph.build(self.adapt(c) for c in components)
        ids = graph.select(targets=self.targets)
        steps = graph.steps(ids)
        bad = [s for s in steps if s.id not in self.stand_ins and s.id.startswith(self.unsupported)]
        if bad:
            lines = []
            for step in bad:
                by = sorted(i for i in graph.descendants(step.id) if i in ids)
                lines.append(f"  {step.id} (needed by {', '.join(by) or 'a target'})")
            raise GraphError(
                f"the {self.name} profile cannot run:\n"
                + "\n".join(lines)
                + f"\nfix: add a stand-in for it in tasks/verify/profile.py ({self.name} profile)",
                [s.id for s in bad],
            )
        return steps

    def catalog(self, stack: Catalog) -> Catalog:
        """``stack`` as this profile deploys it: its components adapted and narrowed."""
        return stack.with_components(lambda inventory: self.select(stack.components(inventory)))


def _kind_health(comp: Component) -> Component:
    nodes_ready = Check(
        what="every kind node Ready",
        command=lambda ctx: ctx.kubectl(
            "wait", "--for=condition=Ready", "node", "--all", "--timeout=300s"
        ),
        observe=lambda ctx: ctx.kubectl("get", "nodes", "-o", "wide"),
    )
    return Gate(
        layer=comp.layer,
        name=comp.name,
        checks=(nodes_ready,),
        summary="kind: wait for every node Ready (stands in for the Talos health check)",
    )


def _local_path_class(folder: str, summary: str) -> StandIn:
    """A stand-in applying the StorageClass manifests in ``folder`` (kind's local-path)."""

    def stand_in(comp: Component) -> Component:
        return ManifestBundle(
            layer=comp.layer,
            name=comp.name,
            needs=("talos/health",),
            path=f"{KIND_DIR}/manifests/{folder}",
            summary=f"kind: {summary}",
        )

    return stand_in


KIND_DIR = "tests/integration"
KIND_CONFIG = f"{KIND_DIR}/kind-config.yaml"
# where kind's port mappings (kind-config.yaml) expose Traefik's NodePorts on the runner
KIND_GATEWAY_HTTP = "127.0.0.1:8080"
KIND_GATEWAY_HTTPS = "127.0.0.1:8443"

KIND = Profile(
    name="kind",
    targets=(
        "network/traefik",
        "observability/kube-prometheus-stack",
        "scheduling/kyverno",
        "scheduling/scheduler-plugins",
        "scheduling/trimaran-policy",
        "apps/mealie",
    ),
    stand_ins={
        "talos/health": _kind_health,
        "storage/longhorn-ready": _local_path_class(
            "storage",
            "StorageClass longhorn provisioned by kind's local-path (stands in for Longhorn)",
        ),
        "storage/longhorn-extras": _local_path_class(
            "storage-rwx",
            "StorageClass longhorn-rwx on local-path (stands in for Longhorn's RWX class)",
        ),
    },
    unsupported=("talos/", "storage/longhorn"),
    overlays=f"{KIND_DIR}/values",
    manifest_patch=rwx_as_rwo,
)
# the apps of the kind profile whose routes the checks call (keys of domains.hosts)
KIND_APPS = ("mealie",)

PROFILES = {p.name: p for p in (KIND,)}
