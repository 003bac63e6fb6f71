"""Networking: kube-vip, Gateway API CRDs, cert-manager, Traefik, default-gateway and cloudflared."""

from __future__ import annotations

from .engine.components import (
    Component,
    CrdBundle,
    Gate,
    HelmRelease,
    ManifestBundle,
    SecretSpec,
    condition,
    crds_established,
    rolled_out,
)
from .engine.deploy import layer_collection
from .engine.inventory import Inventory

KUBE_VIP_REPO = "https://kube-vip.github.io/helm-charts"
GATEWAY_API_VERSION = "v1.5.1"  # the release Traefik 41.3.0's README pins
GATEWAY_API_CRDS = (
    "gatewayclasses.gateway.networking.k8s.io",
    "gateways.gateway.networking.k8s.io",
    "httproutes.gateway.networking.k8s.io",
    "grpcroutes.gateway.networking.k8s.io",
    "referencegrants.gateway.networking.k8s.io",
)


def components(inv: Inventory) -> list[Component]:
    """kube-vip for LoadBalancer Services, then Gateway API, Traefik and the tunnel."""
    return [
        HelmRelease(
            layer="network",
            name="kube-vip",
            needs=("talos/health",),
            release="kube-vip",
            chart="kube-vip",
            repo=KUBE_VIP_REPO,
            version="0.9.9",
            namespace="kube-system",
        ),
        HelmRelease(
            layer="network",
            name="kube-vip-cloud-provider",
            needs=("talos/health",),
            release="kube-vip-cloud-provider",
            chart="kube-vip-cloud-provider",
            repo=KUBE_VIP_REPO,
            version="0.2.10",
            namespace="kube-system",
        ),
        CrdBundle(
            layer="network",
            name="gateway-api-crds",
            needs=("talos/health",),
            sources=(
                "https://github.com/kubernetes-sigs/gateway-api/releases/download/"
                f"{GATEWAY_API_VERSION}/standard-install.yaml",
            ),
        ),
        Gate(
            layer="network",
            name="gateway-api-established",
            needs=("network/gateway-api-crds",),
            checks=(crds_established(GATEWAY_API_CRDS),),
        ),
        HelmRelease(
            layer="network",
            name="traefik",
            needs=("network/gateway-api-established", "observability/prometheus-crds"),
            release="traefik",
            chart="traefik",
            repo="https://traefik.github.io/charts",
            version="41.3.0",
            namespace="traefik",
            secrets=(
                SecretSpec("traefik", "cloudflare-api-token", {"token": "CLOUDFLARE_API_TOKEN"}),
            ),
        ),
        Gate(
            layer="network",
            name="traefik-ready",
            needs=("network/traefik",),
            checks=(rolled_out("deployment", "traefik", "traefik"),),
        ),
        ManifestBundle(layer="network", name="default-gateway", needs=("network/traefik-ready",)),
        Gate(
            layer="network",
            name="gateway-programmed",
            needs=("network/default-gateway",),
            checks=(condition("gateway", "default-gateway", "traefik", "Programmed"),),
        ),
        ManifestBundle(
            layer="network",
            name="cloudflared",
            needs=("network/traefik-ready",),
            secrets=(
                SecretSpec(
                    "cloudflared", "cloudflared-tunnel", {"token": "CLOUDFLARE_TUNNEL_TOKEN"}
                ),
            ),
        ),
    ]


ns = layer_collection("network", __doc__)
