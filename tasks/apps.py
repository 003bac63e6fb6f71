"""Applications: Mealie, WordPress, Dispatcharr, Headlamp and SterlingPDF."""

from __future__ import annotations

from .engine.components import Component, HelmRelease, ManifestBundle
from .engine.deploy import layer_collection
from .engine.inventory import Inventory

PUBLIC = ("network/gateway-programmed", "storage/longhorn-ready")


def components(inv: Inventory) -> list[Component]:
    """Each app with the platform pieces it relies on."""
    return [
        ManifestBundle(layer="apps", name="mealie", needs=PUBLIC),
        ManifestBundle(layer="apps", name="wordpress", needs=PUBLIC),
        ManifestBundle(
            layer="apps",
            name="dispatcharr",
            needs=("storage/longhorn-ready", "network/kube-vip-cloud-provider"),
        ),
        HelmRelease(
            layer="apps",
            name="headlamp",
            needs=("network/traefik-ready",),
            release="headlamp",
            chart="headlamp",
            repo="https://kubernetes-sigs.github.io/headlamp/",
            version="0.45.0",
            namespace="headlamp",
        ),
        ManifestBundle(layer="apps", name="sterlingpdf", needs=("network/traefik-ready",)),
    ]


ns = layer_collection("apps", __doc__)
