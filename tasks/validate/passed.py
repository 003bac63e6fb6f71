"""A record, on this machine, of the exact inputs that passed the prechecks, so a re-run that
changed nothing need not parse every chart and schema again.

The prechecks (:mod:`tasks.validate.prechecks`) parse each chart's values and schema, every CRD
and every manifest: most of what a re-run of an unchanged stack does before its first tool call.
Their verdict depends only on their inputs, so a clean verdict is kept as an empty file named by
a hash of every input (``<cache>/prechecked/<sha256>``): the inventory, each selected step's
values files and manifests as they are on disk, the chart data (files, sizes and modification
times of the chart cache and the reference charts) and the checks' own code. Any change to any of
them is another name, and the checks run in full; a problem found is never kept (it is reported
every time). Nothing secret is an input: values, manifests and the inventory hold none (secrets
go from Infisical straight into Kubernetes), and the name is a hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..engine.components import Component, HelmRelease, ManifestBundle
from ..engine.context import RunContext
from ..engine.helm import cache_root
from ..engine.inventory import REPO_ROOT

# a new format (or new checks) makes every earlier record a stranger
FORMAT = "onecluster.prechecked/v1"
CODE = Path(__file__).resolve().parent  # the checks' own code: tasks/validate


def folder() -> Path:
    return cache_root() / "prechecked"


def _files(root: Path | None) -> Iterable[Path]:
    if root is None or not root.is_dir():
        return ()
    return sorted(p for p in root.rglob("*") if p.is_file())


def _stamp(h: Any, root: Path | None) -> None:
    """Each file under ``root`` by path, size and modification time (chart data is large)."""
    for path in _files(root):
        st = path.stat()
        h.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())


def _text(h: Any, path: Path) -> None:
    h.update(f"{path}\n".encode())
    h.update(path.read_bytes() if path.is_file() else b"<absent>")


def key(
    ctx: RunContext,
    steps: Sequence[Component],
    charts: Sequence[Path | None],
    reference: Path | None,
) -> str | None:
    """The name of these inputs' record; None when they cannot be named (then: full checks)."""
    h = hashlib.sha256(FORMAT.encode())
    try:
        h.update(repr(ctx.inventory).encode())
        for code in sorted(CODE.glob("*.py")):
            _text(h, code)
        for step in steps:
            if isinstance(step, HelmRelease):
                h.update(f"{step.id}\0{step.chart}\0{step.repo}\0{step.version}\n".encode())
                for path in (step.values_path, *(REPO_ROOT / o for o in step.overlays)):
                    _text(h, path)
            elif isinstance(step, ManifestBundle):
                patch = getattr(step.patch, "__qualname__", repr(step.patch))
                h.update(f"{step.id}\0{step.directory}\0{patch}\0{step.placeholders()}\n".encode())
                for path in step.files():
                    _text(h, path)
        for root in (*charts, reference):
            _stamp(h, root)
        for package in ("kubernetes-validate", "jsonschema", "pyyaml"):
            h.update(f"{package}=={_version(package)}\n".encode())
    except OSError:
        return None
    return h.hexdigest()


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "absent"


def seen(name: str | None) -> bool:
    return name is not None and (folder() / name).is_file()


def keep(name: str | None) -> None:
    """Note that the inputs named ``name`` passed (best effort: a cache that cannot be written
    only means the checks run in full next time)."""
    if name is None:
        return
    try:
        folder().mkdir(parents=True, exist_ok=True)
        (folder() / name).touch()
    except OSError:
        return
