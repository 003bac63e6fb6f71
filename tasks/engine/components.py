"""Deployable units: each declares its layer, a stable id ``layer/name``, and what it needs.

Kinds: Talos steps, secret syncs, CRD bundles, Helm releases, manifest bundles and health gates.
Each kind knows the exact commands it runs (:meth:`Component.commands`, the plan and dry-run show
them) and how to run them (:meth:`Component.run`, by default: those commands, in order).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import yaml

from .command import Command
from .errors import GateError, OneclusterError
from .inventory import REPO_ROOT
from .output import echo
from .render import render_file

if TYPE_CHECKING:
    from .context import RunContext

LAYERS = (
    "talos",
    "secrets",
    "network",
    "storage",
    "observability",
    "scheduling",
    "ai",
    "apps",
)


@dataclass(frozen=True)
class SecretSpec:
    """One Kubernetes Secret built from Infisical secrets: ``keys`` maps Secret key → Infisical name."""

    namespace: str
    name: str
    keys: Mapping[str, str]
    type: str = "Opaque"


@dataclass(frozen=True, kw_only=True)
class Component:
    """A node of the deployment graph."""

    kind: ClassVar[str] = "step"

    layer: str
    name: str
    needs: tuple[str, ...] = ()
    summary: str = ""
    # Kubernetes Secrets this component reads, synced from Infisical by a generated
    # ``secrets/<name>`` step that this component then needs (see tasks/stack.py)
    secrets: tuple[SecretSpec, ...] = ()

    def __post_init__(self) -> None:
        if self.layer not in LAYERS:
            raise ValueError(f"{self.name}: unknown layer {self.layer!r}; use one of {LAYERS}")
        object.__setattr__(self, "needs", tuple(self.needs))
        object.__setattr__(self, "secrets", tuple(self.secrets))

    @property
    def id(self) -> str:
        return f"{self.layer}/{self.name}"

    def commands(self, ctx: RunContext) -> list[Command]:
        """The exact commands this step runs, in order (as the plan and --dry-run show them)."""
        return []

    def tools(self) -> set[str]:
        """External binaries this step needs (checked before the first step runs)."""
        return set()

    def describe(self, ctx: RunContext) -> str:
        """One line saying what the step does beyond its commands (shown in plans)."""
        return self.summary

    def preflight(self, ctx: RunContext) -> list[str]:
        """Problems to report before anything runs (empty when ready)."""
        return []

    def run(self, ctx: RunContext) -> None:
        """Run the step: its commands, in order."""
        for command in self.commands(ctx):
            ctx.run(command, prefix=f"[{self.id}] $ ")


@dataclass(frozen=True, kw_only=True)
class TalosStep(Component):
    """A step that drives talosctl; ``build`` returns its commands, ``action`` may replace run()."""

    kind: ClassVar[str] = "talos"

    build: Callable[[RunContext], list[Command]]
    action: Callable[[RunContext], None] | None = None

    def commands(self, ctx: RunContext) -> list[Command]:
        return self.build(ctx)

    def tools(self) -> set[str]:
        return {"talosctl"}

    def run(self, ctx: RunContext) -> None:
        if self.action is not None and not ctx.dry_run:
            self.action(ctx)
        else:
            super().run(ctx)


@dataclass(frozen=True, kw_only=True)
class SecretSync(Component):
    """Kubernetes Secrets created straight from Infisical values (nothing on disk or argv)."""

    kind: ClassVar[str] = "secret"

    secrets: tuple[SecretSpec, ...]

    def infisical_names(self) -> list[str]:
        """Every Infisical secret name this step reads, sorted."""
        return sorted({n for s in self.secrets for n in s.keys.values()})

    def describe(self, ctx: RunContext) -> str:
        names = ", ".join(f"{s.namespace}/{s.name}" for s in self.secrets)
        return f"sync Secret(s) {names} from Infisical (server-side apply, in memory only)"

    def preflight(self, ctx: RunContext) -> list[str]:
        """Every Infisical name this step needs that the store lacks (names only, no values)."""
        from . import secretsync  # lazy: pulls in the Infisical client

        return secretsync.preflight(ctx, self.secrets, owner=self.id)

    def run(self, ctx: RunContext) -> None:
        if ctx.dry_run:
            echo(f"[{self.id}] would {self.describe(ctx)}")
            for spec in self.secrets:
                for key, source in sorted(spec.keys.items()):
                    echo(f"[{self.id}]   {spec.namespace}/{spec.name}: {key} <- Infisical {source}")
            return
        from . import secretsync  # lazy: pulls in the kubernetes and Infisical clients

        secretsync.sync(ctx, self.secrets, owner=self.id)


@dataclass(frozen=True, kw_only=True)
class CrdBundle(Component):
    """CustomResourceDefinitions applied server-side from pinned URLs or repo files."""

    kind: ClassVar[str] = "crds"

    sources: tuple[str, ...]

    def commands(self, ctx: RunContext) -> list[Command]:
        return [
            ctx.kubectl(
                "apply",
                "--server-side",
                "--force-conflicts",
                "--field-manager=onecluster",
                "-f",
                src,
            )
            for src in self.sources
        ]

    def tools(self) -> set[str]:
        return {"kubectl"}


@dataclass(frozen=True, kw_only=True)
class HelmRelease(Component):
    """A pinned upstream chart installed with values from ``helm-values/<release>.yaml``."""

    kind: ClassVar[str] = "helm"

    release: str
    chart: str
    version: str
    namespace: str
    repo: str = ""  # empty for oci:// charts
    values: str = ""  # defaults to helm-values/<release>.yaml
    timeout: str = "10m"
    wait: bool = True
    # extra values files (repo-relative) merged over the values file in order, e.g. a kind
    # profile's trims; merged here because helm reads only one values stream from stdin
    overlays: tuple[str, ...] = ()

    @property
    def values_path(self) -> Path:
        return REPO_ROOT / (self.values or f"helm-values/{self.release}.yaml")

    @property
    def chart_ref(self) -> list[str]:
        if self.chart.startswith("oci://"):
            return [self.chart]
        return [self.chart, "--repo", self.repo]

    def rendered_values(self, ctx: RunContext) -> str:
        """The values file with inventory placeholders filled in (fed to helm on stdin)."""
        if not self.overlays:
            return render_file(self.values_path, ctx.inventory)
        merged: dict[str, Any] = {}
        if self.values_path.exists():
            merged = _values_mapping(render_file(self.values_path, ctx.inventory), self.values_path)
        for overlay in self.overlays:
            path = REPO_ROOT / overlay
            merged = merge_values(merged, _values_mapping(render_file(path, ctx.inventory), path))
        return yaml.safe_dump(merged, sort_keys=False)

    def commands(self, ctx: RunContext) -> list[Command]:
        args = [
            "upgrade",
            "--install",
            self.release,
            *self.chart_ref,
            "--version",
            self.version,
            "--namespace",
            self.namespace,
            "--create-namespace",
            "--values",
            "-",
        ]
        if self.wait:
            args += ["--wait", "--timeout", self.timeout]
        has_values = self.values_path.exists() or bool(self.overlays)
        stdin = self.rendered_values(ctx).encode() if has_values else None
        return [ctx.helm(*args, stdin=stdin)]

    def describe(self, ctx: RunContext) -> str:
        rel = self.values_path.relative_to(REPO_ROOT)
        over = "".join(f" + {o}" for o in self.overlays)
        shown = f"helm release {self.namespace}/{self.release} with {rel}{over} on stdin"
        return self.summary or shown

    def tools(self) -> set[str]:
        return {"helm"}


def merge_values(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``overlay`` over ``base`` as helm merges values files.

    Maps merge key by key and any other value (lists too) replaces. A ``null`` replaces too and
    stays in the result, so helm then removes that key from the chart's defaults as well.
    """
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_values(merged[key], value)
        else:
            merged[key] = value
    return merged


def _values_mapping(text: str, path: Path) -> dict[str, Any]:
    """A rendered values file as a mapping (an empty file is an empty mapping)."""
    data = yaml.safe_load(text)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise OneclusterError(
            f"{path}: a values file must be a mapping at the top level, got {type(data).__name__}"
        )
    return data


@dataclass(frozen=True, kw_only=True)
class ManifestBundle(Component):
    """Plain manifests from ``manifests/<layer>/<name>/``, rendered and applied server-side."""

    kind: ClassVar[str] = "manifests"

    path: str = ""  # defaults to manifests/<layer>/<name>
    # a per-document rewrite a profile applies on top (e.g. kind serves no ReadWriteMany volumes)
    patch: Callable[[dict], dict] | None = None

    @property
    def directory(self) -> Path:
        return REPO_ROOT / (self.path or f"manifests/{self.layer}/{self.name}")

    def files(self) -> list[Path]:
        return sorted(p for p in self.directory.glob("*.yaml") if p.is_file())

    def rendered(self, ctx: RunContext) -> str:
        """Every manifest file of the bundle, placeholders filled in, as one YAML stream."""
        return "\n---\n".join(render_file(p, ctx.inventory) for p in self.files())

    def applied(self, ctx: RunContext) -> str:
        """What is fed to ``kubectl apply``: the rendered stream, through ``patch`` if any."""
        text = self.rendered(ctx)
        if self.patch is None:
            return text
        docs = [d for d in yaml.safe_load_all(text) if d]
        return yaml.safe_dump_all([self.patch(d) for d in docs], sort_keys=False)

    def commands(self, ctx: RunContext) -> list[Command]:
        return [
            ctx.kubectl(
                "apply",
                "--server-side",
                "--field-manager=onecluster",
                "-f",
                "-",
                stdin=self.applied(ctx).encode(),
            )
        ]

    def describe(self, ctx: RunContext) -> str:
        rel = self.directory.relative_to(REPO_ROOT)
        return self.summary or f"apply {rel}/*.yaml (rendered) on stdin"

    def tools(self) -> set[str]:
        return {"kubectl"}


@dataclass(frozen=True)
class Check:
    """One thing a gate waits for: a command that succeeds once it holds, and what it means."""

    what: str
    command: Callable[[RunContext], Command]
    observe: Callable[[RunContext], Command] | None = None


@dataclass(frozen=True, kw_only=True)
class Gate(Component):
    """A health gate: waits for exactly what the next components need, with a timeout."""

    kind: ClassVar[str] = "gate"

    checks: tuple[Check, ...]

    def commands(self, ctx: RunContext) -> list[Command]:
        return [c.command(ctx) for c in self.checks]

    def tools(self) -> set[str]:
        return {"kubectl"}

    def describe(self, ctx: RunContext) -> str:
        return self.summary or "wait for " + "; ".join(c.what for c in self.checks)

    def run(self, ctx: RunContext) -> None:
        for check in self.checks:
            try:
                ctx.run(check.command(ctx), prefix=f"[{self.id}] $ ")
            except OneclusterError as exc:
                seen = str(exc)
                if check.observe is not None:
                    try:
                        seen += "\n" + ctx.executor.query(check.observe(ctx)).stdout
                    except OneclusterError as inner:
                        seen += f"\n(could not observe: {inner})"
                raise GateError(f"{self.id}: waited for {check.what}; saw:\n{seen}") from None


# Gate checks used across layers ---------------------------------------------------------------


def crds_established(names: Sequence[str], timeout: str = "120s") -> Check:
    """Every named CRD reports condition Established."""
    return Check(
        what=f"CRDs Established: {', '.join(names)}",
        command=lambda ctx: ctx.kubectl(
            "wait",
            "--for=condition=Established",
            f"--timeout={timeout}",
            *(f"crd/{n}" for n in names),
        ),
        observe=lambda ctx: ctx.kubectl("get", "crd", *names, "-o", "wide"),
    )


def rolled_out(kind: str, name: str, namespace: str, timeout: str = "300s") -> Check:
    """A Deployment, DaemonSet or StatefulSet finished rolling out."""
    return Check(
        what=f"{kind}/{name} in {namespace} rolled out",
        command=lambda ctx: ctx.kubectl(
            "rollout",
            "status",
            f"{kind}/{name}",
            "-n",
            namespace,
            f"--timeout={timeout}",
        ),
        observe=lambda ctx: ctx.kubectl("get", kind, name, "-n", namespace, "-o", "wide"),
    )


def resource_exists(kind: str, name: str, namespace: str = "", timeout: str = "120s") -> Check:
    """A resource exists (e.g. the StorageClass another component claims from)."""
    ns = ("-n", namespace) if namespace else ()
    return Check(
        what=f"{kind}/{name} present",
        command=lambda ctx: ctx.kubectl(
            "wait",
            "--for=create",
            f"--timeout={timeout}",
            f"{kind}/{name}",
            *ns,
        ),
        observe=lambda ctx: ctx.kubectl("get", kind, *ns),
    )


def condition(kind: str, name: str, namespace: str, cond: str, timeout: str = "300s") -> Check:
    """A resource reports a status condition (e.g. a Gateway ``Programmed``)."""
    return Check(
        what=f"{kind}/{name} in {namespace} {cond}",
        command=lambda ctx: ctx.kubectl(
            "wait",
            f"--for=condition={cond}",
            f"--timeout={timeout}",
            f"{kind}/{name}",
            "-n",
            namespace,
        ),
        observe=lambda ctx: ctx.kubectl("get", kind, name, "-n", namespace, "-o", "yaml"),
    )
