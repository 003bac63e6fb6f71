"""Invoke entry point: builds the root namespace from the ``tasks/`` package.

``tasks.py`` and the ``tasks/`` package share a module name. Invoke imports this file as ``tasks``,
so it loads the package explicitly from its directory and puts it in ``sys.modules`` under that
name; the package's own ``from tasks.engine import ...`` imports then resolve to it.
"""

import importlib.util
import sys
from pathlib import Path

_package_dir = Path(__file__).resolve().with_name("tasks")
_spec = importlib.util.spec_from_file_location(
    "tasks", _package_dir / "__init__.py", submodule_search_locations=[str(_package_dir)]
)
_package = importlib.util.module_from_spec(_spec)
sys.modules["tasks"] = _package
_spec.loader.exec_module(_package)

ns = _package.namespace
