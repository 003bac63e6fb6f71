"""The plan orders the platform: Talos health → secrets → Gateway API → Traefik → gateway, tunnel.

Checked on the real ``invoke cluster.plan --format json`` output (the plan contract), both by
position in the plan and by the needs graph, so a step cannot come first by accident of
declaration order alone.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from functools import cache

import pytest

from tasks.engine.components import HelmRelease, ManifestBundle
from tasks.engine.context import run_context
from tasks.engine.inventory import REPO_ROOT
from tasks.stack import STACK


@pytest.fixture(scope="module")
def steps() -> list[dict]:
    done = subprocess.run(
        [sys.executable, "-m", "invoke", "cluster.plan", "--format", "json"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["steps"]


def _position(steps: list[dict]) -> dict[str, int]:
    return {s["id"]: i for i, s in enumerate(steps)}


def _ancestors(steps: list[dict]) -> dict[str, frozenset[str]]:
    needs = {s["id"]: s["needs"] for s in steps}

    @cache
    def up(step: str) -> frozenset[str]:
        return frozenset(n for need in needs[step] for n in (need, *up(need)))

    return {s: up(s) for s in needs}


ORDER = [
    # (earlier, later): `later` needs `earlier`, directly or through other steps
    ("talos/health", "secrets/traefik"),
    ("talos/health", "secrets/cloudflared"),
    ("talos/health", "secrets/certificates"),
    ("talos/health", "secrets/longhorn"),
    ("secrets/traefik", "network/traefik"),
    ("secrets/certificates", "network/certificates"),
    ("secrets/cloudflared", "network/cloudflared"),
    ("network/gateway-api-crds", "network/gateway-api-established"),
    ("network/gateway-api-established", "network/traefik"),
    ("network/kube-vip-ready", "network/traefik"),
    ("network/traefik", "network/traefik-ready"),
    ("network/traefik-ready", "network/default-gateway"),
    ("network/traefik-ready", "network/cloudflared"),
    ("network/cert-manager-ready", "network/certificates"),
    ("network/wildcard-certificate-ready", "network/default-gateway"),
    ("network/default-gateway", "network/gateway-programmed"),
    ("observability/prometheus-crds", "network/traefik"),
    ("observability/prometheus-crds", "storage/longhorn"),
    ("storage/namespace", "storage/longhorn"),
    ("secrets/longhorn", "storage/longhorn"),
    ("storage/longhorn", "storage/longhorn-ready"),
    ("storage/longhorn-extras", "storage/longhorn-ready"),
    ("observability/prometheus-crds", "observability/prometheus-crds-established"),
    ("observability/prometheus-crds-established", "observability/kube-prometheus-stack"),
    ("observability/namespace", "observability/kube-prometheus-stack"),
    ("storage/longhorn-ready", "observability/kube-prometheus-stack"),
    ("storage/longhorn-ready", "observability/loki"),
    ("observability/loki-ready", "observability/alloy"),
    ("secrets/kube-prometheus-stack", "observability/kube-prometheus-stack"),
    ("observability/kube-prometheus-stack", "scheduling/scheduler-plugins"),
    ("observability/prometheus-ready", "scheduling/scheduler-plugins"),
    ("scheduling/kyverno", "scheduling/kyverno-ready"),
    ("scheduling/kyverno-ready", "scheduling/trimaran-policy"),
    ("scheduling/scheduler-plugins-ready", "scheduling/trimaran-policy"),
]


@pytest.mark.parametrize(("earlier", "later"), ORDER, ids=[f"{a} < {b}" for a, b in ORDER])
def test_plan_orders(steps: list[dict], earlier: str, later: str) -> None:
    pos = _position(steps)
    assert pos[earlier] < pos[later]
    assert earlier in _ancestors(steps)[later], f"{later} does not need {earlier}"


# a claim on a Longhorn class, in a PVC, a claim template or a chart's persistence values
LONGHORN_CLAIM = re.compile(r"storageClass(Name)?:\s*[\"']?longhorn(-rwx)?[\"']?\s*$", re.M)


def volume_claimers() -> list[str]:
    """Every step whose rendered values or manifests claim a Longhorn volume (from the stack)."""
    inventory = STACK.load()
    with run_context(inventory, dry_run=True, fetch_kubeconfig=False) as ctx:
        found = []
        for step in STACK.components(inventory):
            if isinstance(step, HelmRelease) and step.values_path.exists():
                text = step.rendered_values(ctx)
            elif isinstance(step, ManifestBundle):
                text = step.rendered(ctx)
            else:
                continue
            if LONGHORN_CLAIM.search(text):
                found.append(step.id)
    return found


VOLUME_CLAIMERS = volume_claimers()


def test_the_volume_claimers_are_found() -> None:
    # the derivation must see the stack's known claimers, or the test below checks nothing
    assert {"observability/kube-prometheus-stack", "observability/loki", "apps/mealie"} <= set(
        VOLUME_CLAIMERS
    )


@pytest.mark.parametrize("claimer", VOLUME_CLAIMERS)
def test_longhorn_is_ready_before_a_volume_is_claimed(steps: list[dict], claimer: str) -> None:
    assert "storage/longhorn-ready" in _ancestors(steps)[claimer]
    assert _position(steps)["storage/longhorn-ready"] < _position(steps)[claimer]


def test_public_apps_wait_for_the_programmed_gateway(steps: list[dict]) -> None:
    for app in ("apps/mealie", "apps/wordpress"):
        assert "network/gateway-programmed" in _ancestors(steps)[app]


def test_secret_syncs_come_right_after_talos_health(steps: list[dict]) -> None:
    """Every secret sync needs only the API server: Talos health, then secrets, then the rest."""
    pos = _position(steps)
    syncs = [s for s in steps if s["layer"] == "secrets"]
    assert syncs
    for sync in syncs:
        assert sync["needs"] == ["talos/health"]
        assert pos["talos/health"] < pos[sync["id"]] < pos["network/gateway-api-crds"]
