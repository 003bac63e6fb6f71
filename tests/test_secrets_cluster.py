"""Secret sync against a real API server (kind in CI); skipped when no cluster is reachable."""

from __future__ import annotations

import secrets as random_source
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasks.engine.components import SecretSpec
from tasks.engine.context import RunContext, run_context, user_kubeconfig
from tasks.engine.inventory import load_inventory
from tasks.secrets import sync as secretsync
from tasks.secrets.store import MemoryStore

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.cluster


@pytest.fixture
def core() -> Iterator[object]:
    """A CoreV1Api on the user's kubeconfig, or skip with the reason."""
    kubeconfig = user_kubeconfig()
    if not Path(kubeconfig).is_file():
        pytest.skip(f"no kubeconfig at {kubeconfig}: no cluster to test against")
    from kubernetes import client as k8s
    from kubernetes import config

    try:
        api = config.new_client_from_config(config_file=kubeconfig)
        k8s.VersionApi(api).get_code(_request_timeout=5)
    except Exception as exc:
        pytest.skip(f"no reachable cluster via {kubeconfig} ({type(exc).__name__})")
    yield k8s.CoreV1Api(api)
    api.close()


@pytest.fixture
def namespace(core) -> Iterator[str]:
    name = "onecluster-test-" + random_source.token_hex(4)
    yield name
    core.delete_namespace(name, _request_timeout=30)


@pytest.fixture
def ctx() -> Iterator[RunContext]:
    with run_context(
        load_inventory(ROOT / "talos" / "cluster.yaml"), dry_run=False, fetch_kubeconfig=False
    ) as context:
        context.state["store"] = MemoryStore(
            {
                "USER": "cluster-user-" + random_source.token_hex(6),
                "PASS": "pw-" + random_source.token_hex(8),
            }
        )
        yield context


def test_sync_on_a_real_cluster(core, namespace, ctx):
    both = SecretSpec(namespace, "creds", {"user": "USER", "pass": "PASS"})
    assert [o.action for o in secretsync.sync(ctx, [both], owner="t")] == ["created"]
    secret = core.read_namespaced_secret("creds", namespace)
    assert secret.metadata.labels["app.kubernetes.io/managed-by"] == "onecluster"
    assert sorted(secret.data) == ["pass", "user"]
    assert "onecluster" in [m.manager for m in secret.metadata.managed_fields]
    assert core.read_namespace(namespace).metadata.labels["app.kubernetes.io/managed-by"] == (
        "onecluster"
    )

    version = secret.metadata.resource_version
    assert [o.action for o in secretsync.sync(ctx, [both], owner="t")] == ["unchanged"]
    assert core.read_namespaced_secret("creds", namespace).metadata.resource_version == version

    only_user = SecretSpec(namespace, "creds", {"user": "USER"})
    assert [o.action for o in secretsync.sync(ctx, [only_user], owner="t")] == ["configured"]
    assert sorted(core.read_namespaced_secret("creds", namespace).data) == ["user"]
