"""Post-deploy checks of a live cluster: options, the cluster, and probe Pods as testinfra hosts.

Run with ``nox -s postdeploy`` (``-- --layer storage`` to pick layers) after a rebuild, and by
``nox -s integration`` against kind with ``--profile kind``. Node checks get ``host``: a testinfra
host inside a probe Pod on that node (see tasks/verify/probe.py); the pods are created once per
run, only if a node check is selected, and removed afterwards even when checks fail.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import testinfra

from tasks.engine.errors import OneclusterError
from tasks.engine.inventory import load_inventory
from tasks.engine.kubectl import Kubectl
from tasks.stack import STACK
from tasks.verify.probe import Kube, probe_pods
from tasks.verify.verification import node_names, select_layers

PROFILES = ("live", "kind")
# the cluster's node names, read once in pytest_configure
NODES = pytest.StashKey[list[str]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("onecluster", "onecluster post-deploy checks")
    group.addoption(
        "--layer",
        action="append",
        default=[],
        help="run only the checks of this layer (repeatable), e.g. storage",
    )
    group.addoption(
        "--profile",
        choices=PROFILES,
        default="live",
        help="what was deployed: the live Talos cluster, or the kind profile",
    )
    group.addoption(
        "--kubeconfig",
        default=None,
        help="kubeconfig of the cluster (default: $KUBECONFIG or ~/.kube/config)",
    )
    group.addoption("--kube-context", default="", help="kubeconfig context (default: current)")
    group.addoption(
        "--cluster",
        default=None,
        help="inventory file (default: $ONECLUSTER_CLUSTER or talos/cluster.yaml)",
    )


def _kube(config: pytest.Config) -> Kube:
    kubeconfig = config.getoption("--kubeconfig") or os.environ.get("KUBECONFIG", "")
    return Kube(Kubectl(kubeconfig.split(os.pathsep)[0], config.getoption("--kube-context")))


def pytest_configure(config: pytest.Config) -> None:
    # the node list parametrises node checks, so it is read once, before collection; a cluster
    # that does not answer ends the run here with the reason, not with a pile of errors
    kube = _kube(config)
    try:
        config.stash[NODES] = node_names(kube.json("get", "nodes"))
    except OneclusterError as exc:
        pytest.exit(f"postdeploy: cannot list the cluster's nodes: {exc}", returncode=3)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "node" in metafunc.fixturenames:
        nodes = metafunc.config.stash[NODES]
        metafunc.parametrize("node", nodes, ids=nodes, scope="session")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    ours = [i for i in items if here in i.path.parents]
    marked = {i.nodeid: [m.args[0] for m in i.iter_markers("layer")] for i in ours}
    try:
        _, dropped = select_layers(marked, config.getoption("--layer"), STACK.layers)
    except OneclusterError as exc:
        raise pytest.UsageError(str(exc)) from None
    if dropped:
        gone = set(dropped)
        config.hook.pytest_deselected(items=[i for i in items if i.nodeid in gone])
        items[:] = [i for i in items if i.nodeid not in gone]
    if config.getoption("--profile") == "kind":
        for item in ours:
            for mark in item.iter_markers("live_only"):
                item.add_marker(pytest.mark.skip(reason=f"kind profile: {mark.args[0]}"))


@pytest.fixture(scope="session")
def kube(pytestconfig: pytest.Config) -> Kube:
    """kubectl bound to the cluster under test."""
    return _kube(pytestconfig)


@pytest.fixture(scope="session")
def profile(pytestconfig: pytest.Config) -> str:
    """``live`` (the Talos cluster) or ``kind`` (the kind profile)."""
    return pytestconfig.getoption("--profile")


@pytest.fixture(scope="session")
def inventory(pytestconfig: pytest.Config):
    """The cluster inventory the stack was deployed from."""
    return load_inventory(pytestconfig.getoption("--cluster"))


@pytest.fixture(scope="session")
def probes(kube: Kube, pytestconfig: pytest.Config):
    """One probe Pod per node for the whole run: ``{node: testinfra host spec}``."""
    with probe_pods(kube, pytestconfig.stash[NODES]) as specs:
        yield specs


@pytest.fixture(scope="session")
def host(node: str, probes: dict[str, str]):
    """The testinfra host of ``node``: a shell in its probe Pod, host root at /host."""
    return testinfra.get_host(probes[node])
