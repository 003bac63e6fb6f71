"""Dependencies point one way: engine ← areas ← layers ← stack ← the root namespace.

Every import in ``tasks/`` counts, a function-level one too, so a lazy import cannot hide a
circle. The rules, from the bottom up:

- the engine (``tasks/engine/``) imports nothing else of ``tasks``;
- an area package (``talos``, ``secrets``, ``validate``, ``workloads``, ``verify``, ``metrics``,
  ``trimaran``, ``status``, ``backup``) and the ``cluster`` tasks import the engine and other
  areas, never a layer module or the stack;
- a layer module (``network``, ``storage``, ...) imports the engine and the areas, never
  another layer or the stack;
- only the root namespace (``tasks/__init__.py``) imports the stack;
- no circle among modules, nor among the packages they form.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TASKS = ROOT / "tasks"
AREAS = (
    "talos",
    "secrets",
    "validate",
    "workloads",
    "verify",
    "metrics",
    "trimaran",
    "status",
    "backup",
)
LAYER_MODULES = ("network", "storage", "observability", "scheduling", "ai", "apps")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, name: str = "") -> set[str]:
    """Every ``tasks.*`` module ``path`` imports, anywhere in it (function bodies too)."""
    name = name or module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            # `from pkg import mod` imports the submodule; `from mod import name`, the module
            subs = {f"{target}.{a.name}" for a in node.names} & MODULES
            found |= subs if len(subs) == len(node.names) else {target, *subs}
    return {m for m in found if m in MODULES and m != name}


MODULES = {module_name(p) for p in TASKS.rglob("*.py")}
GRAPH = {module_name(p): imports_of(p) for p in TASKS.rglob("*.py")}


def kind(module: str) -> str:
    """Which floor a module lives on: engine, area, layer, stack or root."""
    parts = module.split(".")
    if module == "tasks":
        return "root"
    if parts[1] == "engine":
        return "engine"
    if parts[1] in AREAS or parts[1] == "cluster":
        return "area"
    if parts[1] in LAYER_MODULES:
        return "layer"
    if parts[1] == "stack":
        return "stack"
    raise AssertionError(f"{module}: not placed on a floor; add it to tests/test_imports.py")


ALLOWED = {
    "engine": {"engine"},
    "area": {"engine", "area"},
    "layer": {"engine", "area"},
    "stack": {"engine", "area", "layer"},
    "root": {"engine", "area", "layer", "stack"},
}


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_point_down(module: str) -> None:
    upward = sorted(m for m in GRAPH[module] if kind(m) not in ALLOWED[kind(module)])
    assert not upward, f"{module} ({kind(module)}) imports {upward}"


def test_no_circle_among_modules() -> None:
    try:
        TopologicalSorter(GRAPH).prepare()
    except CycleError as exc:
        pytest.fail(f"import circle: {' -> '.join(exc.args[1])}")


def _package(module: str) -> str:
    """The package a module belongs to (``tasks.talos.steps`` → ``tasks.talos``)."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 else module


def test_no_circle_among_packages() -> None:
    packages: dict[str, set[str]] = {}
    for module, targets in GRAPH.items():
        mine = _package(module)
        packages.setdefault(mine, set()).update(_package(t) for t in targets if _package(t) != mine)
    try:
        TopologicalSorter(packages).prepare()
    except CycleError as exc:
        pytest.fail(f"package circle: {' -> '.join(exc.args[1])}")


def test_the_scan_sees_the_imports() -> None:
    # the rules above would pass vacuously on a scan that found nothing
    assert "tasks.engine.components" in GRAPH["tasks.engine.gates"]
    assert "tasks.stack" in GRAPH["tasks"]
    assert {"tasks.workloads.workload"} <= GRAPH["tasks.apps"]


def test_an_upward_import_would_be_found(tmp_path: Path) -> None:
    bad = tmp_path / "tasks" / "engine" / "bad.py"
    bad.parent.mkdir(parents=True)
    bad.write_text("def f():\n    from ..stack import STACK  # lazy, still counted\n")
    found = imports_of(bad, "tasks.engine.bad")
    assert "tasks.stack" in found and kind("tasks.stack") not in ALLOWED["engine"]


def test_loading_the_tasks_leaves_the_standard_librarys_secrets_module_reachable():
    # Invoke puts the package's own directory on sys.path (invoke/loader.py); left there,
    # tasks/secrets would be what `import secrets` finds (the kind profile's passwords failed so)
    script = (
        "import sys\n"
        "from invoke.loader import FilesystemLoader\n"
        "FilesystemLoader(start='.').load('tasks')\n"
        "sys.modules.pop('secrets', None)\n"
        "import secrets\n"
        "print(secrets.token_urlsafe(8) and secrets.__file__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert not Path(out.strip()).is_relative_to(ROOT), out
