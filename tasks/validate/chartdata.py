"""Chart data for offline checks: defaults, documented keys, schemas and subcharts of a chart.

A chart comes from the cache ``invoke charts.pull`` fills (``.cache/charts/<chart>-<version>/``,
full charts with templates and packaged subcharts) or else from ``../shared/reference/charts``
(``Chart.yaml``, ``values.yaml`` and ``values.schema.json`` only; subcharts found by name there).
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine import yamlio
from ..engine.components import HelmRelease
from ..engine.helm import cache_root
from ..engine.inventory import REPO_ROOT
from ..engine.values import coalesce

REFERENCE = REPO_ROOT.parent / "shared" / "reference"

Path_ = tuple[str, ...]

# Maps a chart renders verbatim into a program's own configuration (toYaml, ini, env vars), whose
# keys belong to that program, not to the chart. Found automatically where the chart's templates
# are at hand (a cached chart, or templates inside values.yaml such as Loki's `loki.config`: every
# `toYaml .Values.x` and `with .Values.x` + `toYaml .`). Listed here: those whose templates the
# reference data lacks, read from the upstream templates of the pinned versions. "*" is any key.
RENDERED_VERBATIM: dict[str, tuple[Path_, ...]] = {
    # `storage_config` is merged into Loki's config by a long `with` block the scan does not span
    "loki": (("loki", "storage_config"),),
    # rendered into grafana.ini section by section
    "grafana": (("grafana.ini",),),
    # every key becomes an environment variable of the kube-vip container
    "kube-vip": (("env",),),
    # one listener per key; one `expose` flag per Service name
    "traefik": (("gateway", "listeners"), ("ports", "*", "expose")),
    # `toToml .Values.config` becomes the server's config.toml
    "kubernetes-mcp-server": (("config",),),
}


# Chart files -----------------------------------------------------------------------------------


def _tar_files(data: bytes) -> dict[str, bytes]:
    """The files of a packaged chart, keyed by path below its top folder."""
    out: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            if member.isfile():
                handle = tar.extractfile(member)
                if handle is not None:
                    out[member.name.split("/", 1)[-1]] = handle.read()
    return out


def _dir_files(root: Path) -> dict[str, bytes]:
    """The files of an unpacked chart (what the checks read: no binaries beyond subchart .tgz)."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and p.suffix in {".yaml", ".yml", ".json", ".tpl", ".tgz", ".txt"}
    }


@dataclass
class Chart:
    """What the checks know about one chart: defaults, documented keys, schema and subcharts."""

    name: str
    version: str
    origin: str  # where the data came from, as shown to the user
    values: dict[str, Any]
    documented: set[Path_]
    verbatim: set[Path_]
    schema: dict[str, Any] | None
    subcharts: dict[str, Chart | None] = field(default_factory=dict)
    templates: bool = False  # full chart: `helm template` can render it
    crds: list[dict[str, Any]] = field(default_factory=list)

    def view(self, alias: str) -> Chart | None:
        """The subchart under ``alias`` as the parent sees it (parent's values override its own)."""
        sub = self.subcharts.get(alias)
        if sub is None:
            return None
        parent = self.values.get(alias)
        prefix = (alias,)
        return Chart(
            name=sub.name,
            version=sub.version,
            origin=sub.origin,
            values=coalesce(sub.values, parent if isinstance(parent, dict) else {}),
            documented=sub.documented | _strip(self.documented, prefix),
            verbatim=sub.verbatim | _strip(self.verbatim, prefix),
            schema=sub.schema,
            subcharts=sub.subcharts,
            templates=sub.templates,
        )


def _strip(paths: Iterable[Path_], prefix: Path_) -> set[Path_]:
    return {p[len(prefix) :] for p in paths if p[: len(prefix)] == prefix and len(p) > len(prefix)}


def load_chart(
    files: Mapping[str, bytes], origin: str, find_dependency: Any = None
) -> Chart | None:
    """Build a :class:`Chart` from its files; ``find_dependency(name, version)`` fills gaps."""
    if "Chart.yaml" not in files:
        return None
    meta = yamlio.load(files["Chart.yaml"]) or {}
    text = files.get("values.yaml", b"").decode()
    values = yamlio.load(text) or {}
    schema = json.loads(files["values.schema.json"]) if "values.schema.json" in files else None
    templates = [
        v.decode("utf-8", "replace") for k, v in files.items() if k.startswith("templates/")
    ]
    # values.yaml may hold templates too (Loki renders its whole config from `loki.config`)
    documented, verbatim = template_paths([*templates, text])
    documented |= documented_paths(text)
    verbatim |= set(RENDERED_VERBATIM.get(meta.get("name", ""), ()))
    chart = Chart(
        name=str(meta.get("name", "")),
        version=str(meta.get("version", "")),
        origin=origin,
        values=values,
        documented=documented,
        verbatim=verbatim,
        schema=schema,
        templates=bool(templates),
        crds=crd_docs(v for k, v in files.items() if k.startswith("crds/")),
    )
    for dep in meta.get("dependencies") or []:
        name, alias = dep.get("name", ""), dep.get("alias") or dep.get("name", "")
        version = str(dep.get("version", ""))
        sub = None
        nested = {
            k.split("/", 2)[2]: v for k, v in files.items() if k.startswith(f"charts/{name}/")
        }
        if nested:
            sub = load_chart(nested, f"{origin}/charts/{name}", find_dependency)
        else:
            packed = [k for k in files if re.fullmatch(rf"charts/{re.escape(name)}-[^/]+\.tgz", k)]
            if packed:
                sub = load_chart(_tar_files(files[packed[0]]), f"{origin}/{packed[0]}")
        if sub is None and find_dependency is not None:
            sub = find_dependency(name, version)
        chart.subcharts[alias] = sub
        chart.crds += sub.crds if sub else []
    return chart


_DIRECTIVE_LINE = re.compile(r"^\s*(?:[\w.-]+:\s*)?\{\{", re.M)


def crd_docs(texts: Iterable[bytes]) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for raw in texts:
        text = raw.decode("utf-8", "replace")
        if _DIRECTIVE_LINE.search(text):  # a template, not a plain CRD
            continue  # (``{{`` inside a description, as in AlertmanagerConfig's, is still plain)
        try:
            docs += [d for d in yamlio.load_all(text) if isinstance(d, dict)]
        except yamlio.YAMLError:
            continue
    return [d for d in docs if d.get("kind") == "CustomResourceDefinition"]


_VALUES_REF = re.compile(r"\$?\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")
_TO_YAML = re.compile(
    r"(?:toYaml|toToml|toJson|toPrettyJson)\s+\(?\s*\$?\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)"
)
# `{{- with .Values.x }} ... toYaml . ...` (or `. | toYaml`) before the block ends
_WITH_TO_YAML = re.compile(
    r"with\s+\$?\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)\s*-?}}"
    r"(?:(?!{{-?\s*end)[^{]|{(?!{-?\s*end)){0,300}?(?:toYaml\s+\.\s|\.\s*\|\s*toYaml)",
    re.S,
)


def template_paths(templates: Iterable[str]) -> tuple[set[Path_], set[Path_]]:
    """Value paths templates read (and their prefixes), and those they render verbatim."""
    read: set[Path_] = set()
    verbatim: set[Path_] = set()
    for text in templates:
        for match in _VALUES_REF.finditer(text):
            parts = tuple(match.group(1).strip(".").split("."))
            read |= {parts[:i] for i in range(1, len(parts) + 1)}
        for pattern in (_TO_YAML, _WITH_TO_YAML):
            for match in pattern.finditer(text):
                verbatim.add(tuple(match.group(1).strip(".").split(".")))
    return read, verbatim


_KEY = re.compile(r"""(?P<dash>-\s+)?(?P<key>"[^"]+"|'[^']+'|[A-Za-z_][\w.\-/]*)\s*:(?:\s|$)""")
_BLOCK = re.compile(r":\s*[|>][-+0-9]*\s*(#.*)?$")


def documented_paths(text: str) -> set[Path_]:
    """Keys a values.yaml documents in comments (``# storageClassName: default``), by path.

    Charts document optional keys as commented-out YAML. The real lines give the structure (a
    stack of keys by indentation, skipping block scalars and list items); a commented key belongs
    under the real keys indented less than it, so prose comments cannot disturb the structure.
    """
    found: set[Path_] = set()
    real: list[tuple[int, str]] = []  # (indent, key or "[]" for a list item)
    commented: list[tuple[int, str]] = []
    block_indent: int | None = None
    for line in text.splitlines():
        stripped = line.lstrip(" ")
        indent = len(line) - len(stripped)
        if not stripped:
            continue
        if block_indent is not None:
            if indent > block_indent:
                continue
            block_indent = None
        if stripped.startswith("#"):
            body = stripped[1:]
            if body.startswith("#"):  # "## prose"
                continue
            inner = body[1:] if body.startswith(" ") else body
            eff = indent + len(inner) - len(inner.lstrip(" "))
            match = _KEY.match(inner.lstrip(" "))
            if not match:
                continue
            commented = [c for c in commented if c[0] < eff]
            if match.group("dash"):
                commented.append((eff, "[]"))
                continue
            stack = [k for i, k in real if i < eff] + [k for _, k in commented]
            commented.append((eff, match.group("key").strip("\"'")))
            if "[]" not in stack:
                found.add((*stack, match.group("key").strip("\"'")))
            continue
        commented = []
        match = _KEY.match(stripped)
        if stripped.startswith("- "):
            real = [r for r in real if r[0] < indent or (r[0] == indent and r[1] != "[]")]
            real.append((indent, "[]"))
        elif match:
            real = [r for r in real if r[0] < indent]
            real.append((indent, match.group("key").strip("\"'")))
        if _BLOCK.search(stripped.split(" #", 1)[0] if " #" in stripped else stripped):
            block_indent = indent
    return found


# Chart sources ---------------------------------------------------------------------------------


def cache_dir() -> Path:
    """Where ``invoke charts.pull`` unpacks charts (``$ONECLUSTER_CACHE/charts``)."""
    return cache_root() / "charts"


def chart_name(release: HelmRelease) -> str:
    """The chart's own name (the last segment of an ``oci://`` reference)."""
    return release.chart.rstrip("/").rsplit("/", 1)[-1]


def cache_path(release: HelmRelease, cache: Path | None = None) -> Path:
    """The unpacked chart of ``release`` in the cache: ``<cache>/<chart>-<version>/<chart>``."""
    name = chart_name(release)
    return (cache or cache_dir()) / f"{name}-{release.version}" / name


def _version_ok(wanted: str, have: str) -> bool:
    if any(c in wanted for c in "*^~><=| x"):
        return wanted.split(".")[0].lstrip("^~>=<") == have.split(".")[0]
    return wanted.lstrip("v") == have.lstrip("v")


class ChartSource:
    """Finds chart data: the cache first, then ``../shared/reference/charts``."""

    def __init__(self, cache: Path | None = None, reference: Path | None = REFERENCE) -> None:
        self.cache = cache or cache_dir()
        self.reference = reference if reference and (reference / "charts").is_dir() else None
        # each chart is parsed once per source (a run makes one): (chart, why) by release
        self._found: dict[tuple[str, str, str], tuple[Chart | None, str]] = {}

    def available(self) -> bool:
        return self.cache.is_dir() or self.reference is not None

    def describe(self) -> str:
        parts = []
        if self.cache.is_dir():
            parts.append(f"chart cache {shown(self.cache)}")
        if self.reference is not None:
            parts.append(f"reference charts {shown(self.reference / 'charts')}")
        return " then ".join(parts) or "none"

    def _reference(self, name: str, version: str) -> Chart | None:
        if self.reference is None:
            return None
        folder = self.reference / "charts" / name
        if not (folder / "Chart.yaml").is_file():
            return None
        meta = yamlio.load((folder / "Chart.yaml").read_text()) or {}
        if not _version_ok(version, str(meta.get("version", ""))):
            return None
        return load_chart(_dir_files(folder), shown(folder), self._reference)

    def chart(self, release: HelmRelease) -> tuple[Chart | None, str]:
        """The chart of ``release`` and, when absent, why (parsed once, then reused)."""
        key = (release.chart, release.version, str(self.cache))
        if key not in self._found:
            self._found[key] = self._load(release)
        return self._found[key]

    def _load(self, release: HelmRelease) -> tuple[Chart | None, str]:
        path = cache_path(release, self.cache)
        if (path / "Chart.yaml").is_file():
            return load_chart(_dir_files(path), shown(path), self._reference), ""
        found = self._reference(chart_name(release), release.version)
        if found is not None:
            return found, ""
        return None, (
            f"no chart data for {chart_name(release)} {release.version} "
            f"(not in {shown(self.cache)}, not in the reference charts at that version)"
        )


def shown(path: Path) -> str:
    """``path`` as messages show it: relative to the checkout (or ``../shared``), else absolute."""
    relative = os.path.relpath(path, REPO_ROOT)
    inside = not relative.startswith(os.pardir) or relative.startswith(
        os.path.join(os.pardir, "shared") + os.sep
    )
    return relative if inside else str(path)
