"""Applications: Mealie, WordPress, Dispatcharr, Headlamp and SterlingPDF."""

from __future__ import annotations

from .engine.components import Component, SecretSpec
from .engine.inventory import Inventory
from .workloads.workload import Chart, Database, Workload

# Public apps are reached through default-gateway (Cloudflare tunnel → Traefik); LAN-only ones
# through the Traefik LAN entry. Shared volumes come from Longhorn's RWX class (longhorn-extras).
# Every app namespace holds a default-deny ingress policy (manifests/apps/<app>/network-policy.yaml,
# Headlamp's in its values), which only means something once kube-network-policies enforces it.
POLICIES = "network/network-policies-ready"
PUBLIC = ("network/gateway-programmed", "storage/longhorn-extras", POLICIES)
LAN = ("network/gateway-programmed", POLICIES)


def _db(namespace: str, name: str, **keys: str) -> SecretSpec:
    return SecretSpec(namespace, name, keys)


def declared(inv: Inventory) -> list[Workload]:
    """Each app: one declaration, plus its folder under manifests/apps/ (or its values file)."""
    return [
        Workload(
            layer="apps",
            name="mealie",
            namespace="mealie",
            needs=PUBLIC,
            databases=("postgres",),
            summary="recipes: 3 replicas on a shared RWX volume, PostgreSQL, public route",
            secrets=(_db("mealie", "mealie-postgres", password="MEALIE_POSTGRES_PASSWORD"),),
        ),
        Workload(
            layer="apps",
            name="wordpress",
            namespace="wordpress",
            needs=PUBLIC,
            databases=("mysql",),
            summary="blog: 3 replicas sharing 15Gi RWX at /var/www/html, MySQL, public route",
            secrets=(
                _db(
                    "wordpress",
                    "wordpress-mysql",
                    password="WORDPRESS_MYSQL_PASSWORD",
                    **{"root-password": "WORDPRESS_MYSQL_ROOT_PASSWORD"},
                ),
            ),
        ),
        Workload(
            layer="apps",
            name="dispatcharr",
            namespace="dispatcharr",
            needs=(
                "network/kube-vip",
                "network/kube-vip-cloud-provider",
                "storage/longhorn-extras",
                POLICIES,
            ),
            # its Redis keeps only the Celery queue and stream state: 1Gi, not the default 10Gi
            databases=("postgres", Database("redis", size="1Gi")),
            summary="IPTV: web + Celery worker, Redis, PostgreSQL, LoadBalancer on its static IP",
            secrets=(
                _db(
                    "dispatcharr", "dispatcharr-postgres", password="DISPATCHARR_POSTGRES_PASSWORD"
                ),
                # Redis requires a password too, not only its NetworkPolicy
                _db("dispatcharr", "dispatcharr-redis", password="DISPATCHARR_REDIS_PASSWORD"),
            ),
        ),
        Workload(
            layer="apps",
            name="headlamp",
            namespace="headlamp",
            needs=LAN,
            summary="Kubernetes web UI, LAN only",
            chart=Chart(
                chart="headlamp",
                version="0.45.0",
                repo="https://kubernetes-sigs.github.io/headlamp/",
                workloads=(("deployment", "headlamp"),),
            ),
        ),
        Workload(
            layer="apps",
            name="sterlingpdf",
            namespace="sterlingpdf",
            needs=(*LAN, "storage/longhorn-ready"),
            summary="PDF tools (Stirling-PDF), LAN only",
        ),
    ]


def components(inv: Inventory) -> list[Component]:
    """Every app's steps (its databases first, each gated, then the app)."""
    return [c for w in declared(inv) for c in w.components()]
