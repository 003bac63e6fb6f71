"""Run onecluster's Invoke program with an in-memory secret store instead of Infisical.

``python tests/fakes/onecluster_driver.py TASK [FLAGS...]`` from the checkout: the same program as
``invoke TASK ...`` (tasks discovered from the current directory), except that the stack's secret
store is a MemoryStore holding a stand-in value for every secret the stack declares and no Talos
secrets bundle. Tests run it as a real subprocess, with the recording fakes on PATH, to send it
real signals.
"""

import os
import sys

sys.path.insert(0, os.getcwd())  # the checkout, as `invoke` finds its tasks

from invoke import Program

import tasks
from tasks.engine.inventory import load_inventory
from tasks.secrets import infisical
from tasks.secrets.requirements import requirements
from tasks.secrets.store import MemoryStore
from tasks.stack import STACK


def stand_in_store(_inventory):
    graph = STACK.graph(load_inventory())
    names = {n for r in requirements(list(graph.steps(graph.order))) for n in r.names}
    return MemoryStore({n: f"stand-in-{n}" for n in sorted(names)})


infisical.open_store = stand_in_store
sys.argv[0] = "invoke"
Program(namespace=tasks.namespace, name="invoke", binary="invoke").run()
