"""Networking: NetworkPolicy enforcement, kube-vip, Gateway API, cert-manager, Traefik, the tunnel."""

from __future__ import annotations

from .engine.components import Component, CrdBundle, HelmRelease, ManifestBundle, SecretSpec
from .engine.gates import condition, crds_established, gate_after, rolled_out
from .engine.inventory import Inventory

LAYER = "network"
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
TRAEFIK_DNS_TOKEN = SecretSpec("traefik", "cloudflare-api-token", {"token": CLOUDFLARE_TOKEN})
ISSUER_DNS_TOKEN = SecretSpec(
    "cert-manager", "cloudflare-api-token", {"api-token": CLOUDFLARE_TOKEN}
)
TUNNEL_TOKEN = SecretSpec("cloudflared", "cloudflared-tunnel", {"token": "CLOUDFLARE_TUNNEL_TOKEN"})
WILDCARD_SECRET = "wildcard-tls"
# Flannel (Talos v1.12's CNI) enforces no NetworkPolicy: kube-network-policies beside it does.
# Whatever relies on a policy (every app and assistant namespace, the Redis and MCP policies)
# needs this gate.
NETWORK_POLICIES_READY = "network/network-policies-ready"


def components(inv: Inventory) -> list[Component]:
    """Policy enforcement; kube-vip; then Gateway API, certificates, Traefik, the tunnel."""
    network_policies = ManifestBundle(
        layer=LAYER, name="network-policies", needs=("talos/health",),
        summary="kube-network-policies DaemonSet: enforces NetworkPolicy beside Flannel",
    )  # fmt: skip
    kube_vip = HelmRelease(
        layer=LAYER, name="kube-vip", needs=("talos/health", *MONITORING_CRDS),
        repo=KUBE_VIP_REPO, version="0.9.9", namespace="kube-system",
    )  # fmt: skip
    cloud_provider = HelmRelease(
        layer=LAYER, name="kube-vip-cloud-provider", needs=("talos/health",),
        repo=KUBE_VIP_REPO, version="0.2.10", namespace="kube-system",
    )  # fmt: skip
    gateway_api = CrdBundle(
        layer=LAYER, name="gateway-api-crds", needs=("talos/health",),
        sources=(
            "https://github.com/kubernetes-sigs/gateway-api/releases/download/"
            f"{GATEWAY_API_VERSION}/standard-install.yaml",
        ),
    )  # fmt: skip
    cert_manager = HelmRelease(
        layer=LAYER, name="cert-manager", needs=("talos/health", *MONITORING_CRDS),
        repo="https://charts.jetstack.io", version=CERT_MANAGER_VERSION, namespace="cert-manager",
    )  # fmt: skip
    traefik = HelmRelease(
        layer=LAYER, name="traefik",
        # the LAN Service needs an address from kube-vip before helm --wait calls it ready
        needs=("network/gateway-api-established", "network/kube-vip-ready", *MONITORING_CRDS),
        repo="https://traefik.github.io/charts", version="41.3.0", namespace="traefik",
        secrets=(TRAEFIK_DNS_TOKEN,),
    )  # fmt: skip
    certificates = ManifestBundle(
        layer=LAYER, name="certificates",
        # the wildcard Certificate lives in Traefik's namespace, created by its release
        needs=("network/cert-manager-ready", "network/traefik"),
        secrets=(ISSUER_DNS_TOKEN,),
    )  # fmt: skip
    default_gateway = ManifestBundle(
        layer=LAYER, name="default-gateway",
        needs=("network/traefik-ready", "network/wildcard-certificate-ready"),
    )  # fmt: skip
    cloudflared = ManifestBundle(
        layer=LAYER, name="cloudflared",
        needs=("network/traefik-ready", NETWORK_POLICIES_READY, *MONITORING_CRDS),
        secrets=(TUNNEL_TOKEN,),
    )  # fmt: skip
    return [
        network_policies,
        gate_after(
            network_policies,
            rolled_out("daemonset", "kube-network-policies", "kube-system"),
            name="network-policies-ready",
        ),
        kube_vip,
        cloud_provider,
        gate_after(
            (kube_vip, cloud_provider),
            rolled_out("daemonset", "kube-vip", "kube-system"),
            rolled_out("deployment", "kube-vip-cloud-provider", "kube-system"),
        ),
        gateway_api,
        gate_after(gateway_api, crds_established(GATEWAY_API_CRDS), name="gateway-api-established"),
        cert_manager,
        gate_after(
            cert_manager,
            crds_established(CERT_MANAGER_CRDS),
            # the webhook admits every Certificate and ClusterIssuer applied next
            rolled_out("deployment", "cert-manager-webhook", "cert-manager"),
            rolled_out("deployment", "cert-manager", "cert-manager"),
        ),
        traefik,
        gate_after(traefik, rolled_out("deployment", "traefik", "traefik")),
        certificates,
        # DNS-01 waits for the TXT record to propagate: minutes, not seconds
        gate_after(
            certificates,
            condition("certificate", WILDCARD_SECRET, "traefik", "Ready", timeout="600s"),
            name="wildcard-certificate-ready",
        ),
        default_gateway,
        gate_after(
            default_gateway,
            condition("gateway", "default-gateway", "traefik", "Programmed"),
            name="gateway-programmed",
        ),
        cloudflared,
        gate_after(cloudflared, rolled_out("deployment", "cloudflared", "cloudflared")),
    ]
