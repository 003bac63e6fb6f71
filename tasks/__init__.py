"""onecluster's Invoke tasks: one collection per layer, composed into the root namespace.

Invoke loads this package as ``tasks``. Each collection holds its area's tasks; the tasks every
layer or workload layer shares (``deploy``; ``list``/``deploy``/``status``/``remove``) are
module-level tasks configured per collection with the layer they serve.
"""

from __future__ import annotations

from invoke import Collection

from . import ai, apps, cluster, network, observability, scheduling, storage
from .secrets import tasks as secrets_tasks
from .talos import tasks as talos_tasks
from .validate import tasks as chart_tasks
from .workloads import tasks as workload_tasks


def collection(
    name: str, doc: str | None, tasks=(), *, layer: str = "", noun: str = ""
) -> Collection:
    """A collection of ``tasks`` (task, name) pairs, configured with the layer it serves."""
    ns = Collection(name)
    ns.__doc__ = doc
    for task, task_name in tasks:
        ns.add_task(task, name=task_name)
    if layer:
        settings = {"layer": layer, **({"noun": noun} if noun else {})}
        ns.configure({"onecluster": settings})
    return ns


def _layer(name: str, doc: str | None, tasks=()) -> Collection:
    """A layer's collection: its own tasks plus the shared ``deploy`` of the whole layer."""
    return collection(name, doc, (*tasks, (cluster.deploy_layer, "deploy")), layer=name)


def _workloads(name: str, doc: str | None, noun: str) -> Collection:
    """A workload layer's collection: ``list``, ``deploy``, ``status`` and ``remove``."""
    return collection(name, doc, workload_tasks.TASKS, layer=name, noun=noun)


namespace = Collection()
for _ns in (
    _layer("talos", talos_tasks.__doc__, talos_tasks.TASKS),
    _layer("secrets", secrets_tasks.__doc__, secrets_tasks.TASKS),
    _layer("network", network.__doc__),
    _layer("storage", storage.__doc__),
    _layer("observability", observability.__doc__),
    _layer("scheduling", scheduling.__doc__),
    _workloads("ai", ai.__doc__, noun="workload"),
    _workloads("apps", apps.__doc__, noun="app"),
    collection("cluster", cluster.__doc__, cluster.TASKS),
    collection("charts", chart_tasks.__doc__, chart_tasks.TASKS),
):
    namespace.add_collection(_ns)
