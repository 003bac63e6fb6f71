"""Deployable units: each declares its layer, a stable id ``layer/name``, and what it needs.

Kinds here: CRD bundles, Helm releases and manifest bundles (health gates are in ``gates.py``;
areas add their own kinds, e.g. Talos steps and secret syncs). Each kind knows the exact commands
it runs (:meth:`Component.commands`, the plan and dry-run show them), how to run them
(:meth:`Component.run`, by default: those commands, in order), and the read-only probes that say
whether it is already in place (:meth:`Component.probes`).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from . import fingerprint as fingerprints
from . import yamlio
from .command import Command
from .context import RunContext
from .errors import OneclusterError
from .helm import chart_ref
from .inventory import REPO_ROOT
from .kubectl import FIELD_MANAGER
from .output import echo, redact, register_secret
from .probes import GET_NAMES, PROBE_SECONDS, PROBE_TIMEOUT, Probe, holds, object_refs, quick
from .record import cached, helm_releases
from .record import probe as converge_read
from .render import render_file
from .values import merge_values


@dataclass(frozen=True)
class SecretSpec:
    """One Kubernetes Secret built from Infisical secrets: ``keys`` maps Secret key → Infisical name."""

    namespace: str
    name: str
    keys: Mapping[str, str]
    type: str = "Opaque"


@dataclass(frozen=True)
class LiveDiff:
    """A step's object-level diff against the live state (``cluster.diff``), secrets masked."""

    differs: bool
    text: str
    # how it was made, shown above the diff (e.g. "kubectl diff --server-side")
    how: str
    # False: nothing of the step is live yet (a node not configured): the step is new
    exists: bool = True


@dataclass(frozen=True, kw_only=True)
class Component:
    """A node of the deployment graph."""

    kind: ClassVar[str] = "step"
    # the external binaries every step of this kind runs (checked before the first step)
    binaries: ClassVar[tuple[str, ...]] = ()
    # the step only reads (a gate): a converge check of what needs it need not wait for it
    reads_only: ClassVar[bool] = False
    # a step without a fingerprint whose own read-compare (``up_to_date``) can find it unchanged
    compares: ClassVar[bool] = False

    layer: str
    name: str
    needs: tuple[str, ...] = ()
    summary: str = ""
    # Kubernetes Secrets this component reads, synced from the secret store by a generated
    # ``secrets/<name>`` step that this component then needs (see tasks/stack.py)
    secrets: tuple[SecretSpec, ...] = ()
    # this step writes the kubeconfig/talosconfig the run uses into the private workdir
    fetches_configs: bool = False
    # False: the step changes nothing in the cluster (it renders or fetches files into the
    # workdir): it needs no cluster Lease
    changes_cluster: bool = True
    # True: the step may start before the run's preflight answered (it reads, writes only into
    # the private workdir, and waits for the answer before any other write: preflight.passed)
    before_preflight: bool = False

    def __post_init__(self) -> None:
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
        return set(self.binaries)

    def describe(self, ctx: RunContext) -> str:
        """One line saying what the step does beyond its commands (shown in plans)."""
        return self.summary

    def preflight(self, ctx: RunContext) -> list[str]:
        """Problems to report before anything runs (empty when ready)."""
        return []

    def probes(self, ctx: RunContext) -> list[Probe]:
        """The read-only checks that together say this step is in place (empty: cannot tell)."""
        return []

    def in_place(self, ctx: RunContext) -> bool:
        """Whether this step is deployed already; a step with no probe never counts as in place."""
        found = self.probes(ctx)
        return bool(found) and all(holds(p, ctx) for p in found)

    def fingerprint(self, ctx: RunContext) -> str | None:
        """A hash of exactly what this step would apply; None: the step always runs.

        Only kinds whose commands are all they do have one (releases, bundles, CRDs); gates are
        reads, secret syncs and Talos steps keep their own read-compare.
        """
        return None

    def confirm(self, ctx: RunContext) -> bool:
        """Whether the live state confirms what the record says was applied (read-only)."""
        return False

    def up_to_date(self, ctx: RunContext) -> bool:
        """A step without a fingerprint: whether its own read-compare finds nothing to do
        (read-only; a secret sync compares the live Secrets with the store's values)."""
        return False

    def live_diff(self, ctx: RunContext) -> LiveDiff | None:
        """What this step would change, object by object, against the live state (read-only;
        secrets masked); None: the step has no such diff (``cluster.diff`` says so)."""
        return None

    def settled(self, ctx: RunContext) -> bool:
        """A step that only reads (a gate): whether what it waits for already holds, judged from
        the run's shared read (asked only when the steps it follows were unchanged)."""
        return False

    @classmethod
    def confirm_reads(cls, ctx: RunContext, steps: Sequence[Component]) -> None:
        """Make, once, the read that ``confirm`` of this kind's ``steps`` shares (a run issues
        every kind's at once, with the record's read); none by default."""
        return None

    @classmethod
    def prepare_reads(cls, ctx: RunContext, steps: Sequence[Component]) -> None:
        """The work ``confirm_reads`` does before it can ask (parsing what it asks for), done
        ahead, in the background while the run's first steps wait on their tools; none by
        default."""
        return None

    def run(self, ctx: RunContext) -> str | None:
        """Run the step: its commands, in order (a step that finds nothing to do may say
        ``"unchanged"``)."""
        for command in self.commands(ctx):
            ctx.run(command, prefix=f"[{self.id}] $ ")
        return None


def _fingerprint(step: Component, ctx: RunContext) -> str | None:
    paths = (ctx.kubeconfig, ctx.talosconfig, str(ctx.workdir))
    return fingerprints.of_commands(step.kind, step.commands(ctx), paths)


@dataclass(frozen=True, kw_only=True)
class CrdBundle(Component):
    """CustomResourceDefinitions applied server-side from pinned URLs or repo files."""

    kind: ClassVar[str] = "crds"
    binaries: ClassVar[tuple[str, ...]] = ("kubectl",)

    sources: tuple[str, ...]

    def commands(self, ctx: RunContext) -> list[Command]:
        return [ctx.kubectl.apply(src, force_conflicts=True) for src in self.sources]

    def fingerprint(self, ctx: RunContext) -> str | None:
        # the pinned sources (their URLs carry the version) and how they are applied
        return _fingerprint(self, ctx)

    def confirm(self, ctx: RunContext) -> bool:
        # the record says they were applied; the CRDs' own gate (a read) confirms they serve
        return True

    def probes(self, ctx: RunContext) -> list[Probe]:
        return [
            Probe(f"CRDs from {src}", quick(ctx.kubectl(*GET_NAMES, "-f", src)))
            for src in self.sources
        ]


@dataclass(frozen=True, kw_only=True)
class HelmRelease(Component):
    """A pinned upstream chart installed with values from ``helm-values/<release>.yaml``."""

    kind: ClassVar[str] = "helm"
    binaries: ClassVar[tuple[str, ...]] = ("helm",)

    version: str
    namespace: str
    release: str = ""  # defaults to the step's name
    chart: str = ""  # defaults to the release's name
    repo: str = ""  # empty for oci:// charts
    values: str = ""  # defaults to helm-values/<release>.yaml
    timeout: str = "10m"
    wait: bool = True
    # extra values files (repo-relative) merged over the values file in order, e.g. a kind
    # profile's trims; merged here because helm reads only one values stream from stdin
    overlays: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "release", self.release or self.name)
        object.__setattr__(self, "chart", self.chart or self.release)

    @property
    def values_path(self) -> Path:
        return REPO_ROOT / (self.values or f"helm-values/{self.release}.yaml")

    @property
    def chart_ref(self) -> list[str]:
        return chart_ref(self.chart, self.repo)

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
        return yamlio.dump(merged)

    def commands(self, ctx: RunContext) -> list[Command]:
        has_values = self.values_path.exists() or bool(self.overlays)
        stdin = self.rendered_values(ctx).encode() if has_values else None
        return [
            ctx.helm.upgrade_install(
                self.release, self.chart_ref, self.version, self.namespace,
                values=stdin, wait_timeout=self.timeout if self.wait else None,
            )
        ]  # fmt: skip

    def describe(self, ctx: RunContext) -> str:
        rel = self.values_path.relative_to(REPO_ROOT)
        over = "".join(f" + {o}" for o in self.overlays)
        shown = f"helm release {self.namespace}/{self.release} with {rel}{over} on stdin"
        return self.summary or shown

    def fingerprint(self, ctx: RunContext) -> str | None:
        # chart reference and version, namespace, release and the rendered values
        return _fingerprint(self, ctx)

    @classmethod
    def confirm_reads(cls, ctx: RunContext, steps: Sequence[Component]) -> None:
        helm_releases(ctx)

    def confirm(self, ctx: RunContext) -> bool:
        """Deployed at this chart version (from the run's one ``helm list``)."""
        found = helm_releases(ctx).get((self.namespace, self.release))
        return (
            found is not None
            and found.get("status") == "deployed"
            and found.get("chart") == f"{self.chart.rsplit('/', 1)[-1]}-{self.version}"
        )

    def template_command(self, ctx: RunContext) -> Command:
        """``helm template`` of the release as an upgrade would render it (read-only).

        ``--dry-run=server`` renders against the cluster's API versions and Kubernetes version,
        as ``helm upgrade`` does (Helm v4's template flags); ``--is-upgrade`` when the release
        is installed; ``--no-hooks`` leaves hooks (and test pods) out of the output, as an
        upgrade does not apply them as objects (checked with the real helm v4.1.4).
        """
        has_values = self.values_path.exists() or bool(self.overlays)
        installed = (self.namespace, self.release) in helm_releases(ctx)
        return ctx.helm(
            "template", self.release, *self.chart_ref, "--version", self.version,
            "--namespace", self.namespace, "--values", "-", "--dry-run=server", "--no-hooks",
            *(("--is-upgrade",) if installed else ()),
            stdin=self.rendered_values(ctx).encode() if has_values else b"",
        )  # fmt: skip

    def live_diff(self, ctx: RunContext) -> LiveDiff | None:
        """``helm template`` of the rendered values, then ``kubectl diff --server-side`` of
        those objects against the cluster."""
        rendered = ctx.executor.query(self.template_command(ctx)).stdout
        differs, text = kubectl_diff(ctx, rendered)
        return LiveDiff(differs, text, "helm template | kubectl diff --server-side")

    def probes(self, ctx: RunContext) -> list[Probe]:
        return [
            Probe(
                f"helm release {self.namespace}/{self.release} deployed",
                quick(ctx.helm.status(self.release, self.namespace)),
                _helm_deployed,
            )
        ]


def _helm_deployed(stdout: str) -> bool:
    try:
        return json.loads(stdout)["info"]["status"] == "deployed"
    except (ValueError, KeyError, TypeError):
        return False


def _values_mapping(text: str, path: Path) -> dict[str, Any]:
    """A rendered values file as a mapping (an empty file is an empty mapping)."""
    data = yamlio.load(text)
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
    binaries: ClassVar[tuple[str, ...]] = ("kubectl",)

    path: str = ""  # defaults to manifests/<layer>/<name>
    # a per-document rewrite a profile applies on top (e.g. kind serves no ReadWriteMany volumes)
    patch: Callable[[dict], dict] | None = None

    @property
    def directory(self) -> Path:
        return REPO_ROOT / (self.path or f"manifests/{self.layer}/{self.name}")

    def files(self) -> list[Path]:
        return sorted(p for p in self.directory.glob("*.yaml") if p.is_file())

    def placeholders(self) -> dict[str, str]:
        """The bundle's own placeholder values, filled beside the inventory's (none here)."""
        return {}

    def rendered(self, ctx: RunContext) -> str:
        """Every manifest file of the bundle, placeholders filled in, as one YAML stream."""
        own = self.placeholders()
        return "\n---\n".join(render_file(p, ctx.inventory, own) for p in self.files())

    def applied(self, ctx: RunContext) -> str:
        """What is fed to ``kubectl apply``: the rendered stream, through ``patch`` if any
        (rendered once per run: the fingerprint, the converge read and the apply all ask)."""
        done = ctx.state.setdefault(APPLIED, {})
        if self.id not in done:
            text = self.rendered(ctx)
            if self.patch is not None:
                text = yamlio.dump_all(self.patch(d) for d in yamlio.documents(text))
            done[self.id] = text
        return done[self.id]

    def objects(self, ctx: RunContext) -> list[dict]:
        """The objects of :meth:`applied`, parsed once per run (the converge read and check)."""
        done = ctx.state.setdefault(PARSED, {})
        if self.id not in done:
            done[self.id] = _objects(self.applied(ctx))
        return list(done[self.id])

    def commands(self, ctx: RunContext) -> list[Command]:
        return [ctx.kubectl.apply(stdin=self.applied(ctx).encode())]

    def fingerprint(self, ctx: RunContext) -> str | None:
        # the rendered (and patched) objects
        return _fingerprint(self, ctx)

    @classmethod
    def confirm_reads(cls, ctx: RunContext, steps: Sequence[Component]) -> None:
        bundles = [s for s in steps if isinstance(s, ManifestBundle)]
        cached(ctx, BUNDLE_OBJECTS, lambda: _existing_objects(ctx, bundles))

    @classmethod
    def prepare_reads(cls, ctx: RunContext, steps: Sequence[Component]) -> None:
        # every bundle's objects, parsed (the read asks for them by kind and name)
        for step in steps:
            if isinstance(step, ManifestBundle):
                step.objects(ctx)

    def confirm(self, ctx: RunContext) -> bool:
        """Every object of the bundle exists: from the run's one ``kubectl get`` of every
        bundle's objects, else one ``kubectl get -f -`` of this bundle's rendered stream."""
        stream = self.applied(ctx)
        docs = self.objects(ctx)
        if not docs:
            return True
        existing = ctx.state.get(BUNDLE_OBJECTS)
        if existing is not None:
            return all(_present(d, existing) for d in docs)
        probe = Probe(
            f"{self.id}: its objects",
            quick(ctx.kubectl(*GET_NAMES, "-f", "-", stdin=stream.encode())),
        )
        if ctx.dry_run:
            echo(f"# read-only probe: {probe.command.display()}")
        return holds(probe, ctx)

    def live_diff(self, ctx: RunContext) -> LiveDiff | None:
        """``kubectl diff --server-side`` of the bundle's rendered objects."""
        differs, text = kubectl_diff(ctx, self.applied(ctx))
        return LiveDiff(differs, text, "kubectl diff --server-side")

    def describe(self, ctx: RunContext) -> str:
        rel = self.directory.relative_to(REPO_ROOT)
        return self.summary or f"apply {rel}/*.yaml (rendered) on stdin"

    def probes(self, ctx: RunContext) -> list[Probe]:
        return [
            Probe(
                f"{self.id}: {' '.join(refs)} in {ns or 'the cluster'}",
                quick(ctx.kubectl(*GET_NAMES, *(("-n", ns) if ns else ()), *refs)),
            )
            for ns, refs in object_refs(self.rendered(ctx)).items()
        ]


BUNDLE_OBJECTS = "converge.bundle-objects"
APPLIED = "bundles.applied"
PARSED = "bundles.parsed"


def _objects(stream: str) -> list[dict]:
    return [
        d for d in yamlio.load_all(stream)
        if isinstance(d, dict) and d.get("kind") and (d.get("metadata") or {}).get("name")
    ]  # fmt: skip


def _object_key(doc: dict) -> tuple[str, str, str, str]:
    """(group, kind, namespace, name); a Namespace's own namespace is empty."""
    meta = doc.get("metadata") or {}
    group = str(doc.get("apiVersion", "v1")).rpartition("/")[0]
    namespace = "" if doc["kind"] == "Namespace" else str(meta.get("namespace") or "")
    return (group, str(doc["kind"]), namespace, str(meta["name"]))


def _present(doc: dict, existing: set[tuple[str, str, str, str]]) -> bool:
    found = _object_key(doc)
    if found in existing:
        return True
    # a namespaced object from a manifest without a namespace lands in the kubeconfig's default
    return not found[2] and any(e[:2] == found[:2] and e[3] == found[3] for e in existing)


def existing_objects_command(ctx: RunContext, stream: str) -> Command:
    """``kubectl get --ignore-not-found -o json -f -``: which objects of ``stream`` exist.

    With ``--ignore-not-found`` a missing object is left out rather than an error; the answer is
    a ``List`` (one object alone is printed bare), and nothing at all when none exists
    (kubectl's ``staging/src/k8s.io/kubectl/pkg/cmd/get/get.go``). A kind the cluster does not
    serve (its CRD missing) still fails the call.
    """
    return ctx.kubectl(
        "get", f"--request-timeout={PROBE_TIMEOUT}", "--ignore-not-found", "-o", "json",
        "-f", "-", stdin=stream.encode(), timeout=PROBE_SECONDS,
    )  # fmt: skip


def _existing_objects(ctx: RunContext, bundles: Sequence[ManifestBundle]) -> set[tuple]:
    """The objects of every bundle that exist, in one read (raises when it cannot tell)."""
    docs = [d for b in bundles for d in b.objects(ctx)]
    if not docs:
        return set()
    # one JSON List: kubectl's builder flattens it into its items (get.go: ``Flatten()``)
    stream = json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}, default=str)
    out = converge_read(ctx, existing_objects_command(ctx, stream)).stdout
    if not out.strip():
        return set()
    found = json.loads(out)
    items = found.get("items", []) if found.get("kind") == "List" else [found]
    return {
        _object_key(d) for d in items
        if isinstance(d, dict) and d.get("kind") and (d.get("metadata") or {}).get("name")
    }  # fmt: skip


# kubectl diff: 0 no differences, 1 differences found, anything else an error
DIFF_FOUND = 1


def diff_command(ctx: RunContext, stream: str) -> Command:
    """``kubectl diff --server-side`` of the objects in ``stream`` (read-only)."""
    return ctx.kubectl(
        "diff", "--server-side", f"--field-manager={FIELD_MANAGER}", "-f", "-",
        stdin=stream.encode(), ok_codes=(0, DIFF_FOUND),
    )  # fmt: skip


def register_secret_data(stream: str) -> None:
    """Register every value of a Secret's ``data`` and ``stringData`` in ``stream`` (and the
    decoded form of ``data``), so no output path prints one: kubectl diff masks a Secret's data
    itself (``***``, ``*** (before)``, ``*** (after)``: kubectl's ``pkg/cmd/diff/diff.go``,
    ``Masker``); this holds even where that masking does not reach."""
    for doc in yamlio.load_all(stream):
        if not isinstance(doc, dict) or doc.get("kind") != "Secret":
            continue
        for value in (doc.get("stringData") or {}).values():
            register_secret(str(value))
        for value in (doc.get("data") or {}).values():
            register_secret(str(value))
            try:
                register_secret(base64.b64decode(str(value), validate=True).decode())
            except (ValueError, UnicodeDecodeError):
                continue


def kubectl_diff(ctx: RunContext, stream: str) -> tuple[bool, str]:
    """Whether the objects of ``stream`` differ from the live ones, and the diff (redacted)."""
    register_secret_data(stream)
    result = ctx.executor.query(diff_command(ctx, stream))
    return result.exit_code == DIFF_FOUND, redact(result.stdout)
