"""Networking: kube-vip, Gateway API, cert-manager, Traefik, default-gateway and cloudflared."""

from __future__ import annotations

from .engine.components import Component, CrdBundle, HelmRelease, ManifestBundle, SecretSpec
from .engine.gates import Gate, condition, crds_established, rolled_out
from .engine.inventory import Inventory

KUBE_VIP_REPO = "https://kube-vip.github.io/helm-charts"
GATEWAY_API_VERSION = "v1.5.1"  # the release Traefik 41.3.0's README pins
# Every CRD of the v1.5.1 standard channel (standard-install.yaml)
GATEWAY_API_CRDS = tuple(
    f"{plural}.gateway.networking.k8s.io"
    for plural in (
        "gatewayclasses",
        "gateways",
        "httproutes",
        "grpcroutes",
        "referencegrants",
        "backendtlspolicies",
        "listenersets",
        "tlsroutes",
    )
)
CERT_MANAGER_VERSION = "v1.21.1"  # newest cert-manager release (2026-07-29)
CERT_MANAGER_CRDS = ("certificates.cert-manager.io", "clusterissuers.cert-manager.io")
# ServiceMonitor/PodMonitor CRDs: applied by one step, usable once its gate says Established
# (helm checks the API at install time, so Traefik's chart fails on a CRD still being set up).
MONITORING_CRDS = ("observability/prometheus-crds", "observability/prometheus-crds-established")

# One Cloudflare API token (Zone:DNS:Edit on the base domain) serves both ACME clients; each reads
# it from a Secret in its own namespace.
CLOUDFLARE_TOKEN = "CLOUDFLARE_API_TOKEN"
WILDCARD_SECRET = "wildcard-tls"


def components(inv: Inventory) -> list[Component]:
    """kube-vip for LoadBalancer Services, then Gateway API, certificates, Traefik, the tunnel."""
    return [
        HelmRelease(
            layer="network",
            name="kube-vip",
            needs=("talos/health", *MONITORING_CRDS),
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
        Gate(
            layer="network",
            name="kube-vip-ready",
            needs=("network/kube-vip", "network/kube-vip-cloud-provider"),
            checks=(
                rolled_out("daemonset", "kube-vip", "kube-system"),
                rolled_out("deployment", "kube-vip-cloud-provider", "kube-system"),
            ),
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
            name="cert-manager",
            needs=("talos/health", *MONITORING_CRDS),
            release="cert-manager",
            chart="cert-manager",
            repo="https://charts.jetstack.io",
            version=CERT_MANAGER_VERSION,
            namespace="cert-manager",
        ),
        Gate(
            layer="network",
            name="cert-manager-ready",
            needs=("network/cert-manager",),
            checks=(
                crds_established(CERT_MANAGER_CRDS),
                # the webhook admits every Certificate and ClusterIssuer applied next
                rolled_out("deployment", "cert-manager-webhook", "cert-manager"),
                rolled_out("deployment", "cert-manager", "cert-manager"),
            ),
        ),
        HelmRelease(
            layer="network",
            name="traefik",
            # the LAN Service needs an address from kube-vip before helm --wait calls it ready
            needs=("network/gateway-api-established", "network/kube-vip-ready", *MONITORING_CRDS),
            release="traefik",
            chart="traefik",
            repo="https://traefik.github.io/charts",
            version="41.3.0",
            namespace="traefik",
            secrets=(SecretSpec("traefik", "cloudflare-api-token", {"token": CLOUDFLARE_TOKEN}),),
        ),
        Gate(
            layer="network",
            name="traefik-ready",
            needs=("network/traefik",),
            checks=(rolled_out("deployment", "traefik", "traefik"),),
        ),
        ManifestBundle(
            layer="network",
            name="certificates",
            # the wildcard Certificate lives in Traefik's namespace, created by its release
            needs=("network/cert-manager-ready", "network/traefik"),
            secrets=(
                SecretSpec("cert-manager", "cloudflare-api-token", {"api-token": CLOUDFLARE_TOKEN}),
            ),
        ),
        Gate(
            layer="network",
            name="wildcard-certificate-ready",
            needs=("network/certificates",),
            # DNS-01 waits for the TXT record to propagate: minutes, not seconds
            checks=(condition("certificate", WILDCARD_SECRET, "traefik", "Ready", timeout="600s"),),
        ),
        ManifestBundle(
            layer="network",
            name="default-gateway",
            needs=("network/traefik-ready", "network/wildcard-certificate-ready"),
        ),
        Gate(
            layer="network",
            name="gateway-programmed",
            needs=("network/default-gateway",),
            checks=(condition("gateway", "default-gateway", "traefik", "Programmed"),),
        ),
        ManifestBundle(
            layer="network",
            name="cloudflared",
            needs=("network/traefik-ready", *MONITORING_CRDS),
            secrets=(
                SecretSpec(
                    "cloudflared", "cloudflared-tunnel", {"token": "CLOUDFLARE_TUNNEL_TOKEN"}
                ),
            ),
        ),
        Gate(
            layer="network",
            name="cloudflared-ready",
            needs=("network/cloudflared",),
            checks=(rolled_out("deployment", "cloudflared", "cloudflared"),),
        ),
    ]
