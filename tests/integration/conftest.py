"""The kind integration checks: run by ``nox -s integration`` after it deployed the kind profile.

They look at the cluster from outside, through $KUBECONFIG (the kind cluster's) and the port kind
maps Traefik to, and wait a bounded time for things to converge: a cluster that was just deployed
is still starting Pods.
"""

from __future__ import annotations

import os

import pytest

from tasks.engine.errors import OneclusterError
from tasks.engine.kubectl import Kubectl
from tasks.verify.probe import Kube


@pytest.fixture(scope="session")
def kube() -> Kube:
    """kubectl bound to the kind cluster ($KUBECONFIG, set by the nox session)."""
    kubeconfig = os.environ.get("KUBECONFIG", "")
    if not kubeconfig:
        pytest.exit(
            "integration: $KUBECONFIG is not set; run these through `nox -s integration`", 3
        )
    kube = Kube(Kubectl(kubeconfig))
    try:
        kube.json("get", "nodes")
    except OneclusterError as exc:
        pytest.exit(f"integration: the kind cluster does not answer: {exc}", 3)
    return kube
