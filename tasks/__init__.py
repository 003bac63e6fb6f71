"""onecluster's Invoke tasks: one collection per layer, composed into the root namespace.

Invoke loads this package as ``tasks``. This module and ``tasks/stack.py`` are the composition
root: the stack's catalogue reaches every task through the configuration (``onecluster.catalog``),
so no task module imports the stack. The tasks several layers share (a layer's ``deploy``; a
workload layer's ``list``/``deploy``/``status``/``remove``) are module-level tasks each collection
configures with the layer it serves.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# Invoke puts this directory itself on sys.path (invoke/loader.py, for a tasks.py's sibling
# imports); a package's own modules are imported relatively, and left there `tasks/secrets` would
# shadow the standard library's `secrets` for every later `import secrets`
_HERE = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if p == "" or str(Path(p).resolve()) != _HERE]

from invoke import Collection

from . import ai, apps, cluster, network, observability, scheduling, storage
from .backup import tasks as backup_tasks
from .engine.cli import CONFIG_KEY, LAYER_KEY
from .secrets import tasks as secrets_tasks
from .stack import STACK, WORKLOAD_LAYERS
from .talos import tasks as talos_tasks
from .trimaran import tasks as trimaran_tasks
from .validate import tasks as chart_tasks
from .workloads import tasks as workload_tasks


def collection(
    name: str,
    doc: str | None,
    tasks: Iterable[tuple[Any, str]] = (),
    settings: dict[str, Any] | None = None,
) -> Collection:
    """A collection of ``(task, name)`` pairs; ``settings`` (its layer, ...) configure them."""
    ns = Collection(name)
    ns.__doc__ = doc
    for task, task_name in tasks:
        ns.add_task(task, name=task_name)
    if settings:
        ns.configure({LAYER_KEY: settings})
    return ns


def layer(name: str, doc: str | None, tasks: Iterable[tuple[Any, str]] = ()) -> Collection:
    """A layer's collection: its own tasks plus the shared ``deploy`` of the whole layer."""
    return collection(name, doc, (*tasks, (cluster.deploy_layer, "deploy")), {"name": name})


def workload_layer(name: str, doc: str | None, noun: str) -> Collection:
    """A workload layer's collection: ``list``, ``deploy``, ``status`` and ``remove``."""
    settings = {"name": name, "noun": noun, "declared": WORKLOAD_LAYERS[name]}
    return collection(name, doc, workload_tasks.TASKS, settings)


namespace = Collection()
namespace.configure({CONFIG_KEY: {"catalog": STACK}})
for _ns in (
    layer("talos", talos_tasks.__doc__, talos_tasks.TASKS),
    layer("secrets", secrets_tasks.__doc__, secrets_tasks.TASKS),
    layer("network", network.__doc__),
    layer("storage", storage.__doc__, backup_tasks.TASKS),
    layer("observability", observability.__doc__),
    layer("scheduling", scheduling.__doc__, trimaran_tasks.TASKS),
    workload_layer("ai", ai.__doc__, noun="workload"),
    workload_layer("apps", apps.__doc__, noun="app"),
    collection("cluster", cluster.__doc__, cluster.TASKS),
    collection("charts", chart_tasks.__doc__, chart_tasks.TASKS),
):
    namespace.add_collection(_ns)
