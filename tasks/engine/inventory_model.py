"""The cluster inventory as typed objects: one frozen dataclass per section of ``cluster.yaml``.

:mod:`.schema` fills these from the parsed YAML (a field the file gets wrong is left ``None``, so
every rule reading them tolerates a partial object); :mod:`.inventory_rules` checks the rules
between their fields and :mod:`.inventory` loads a file into them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Literal

from .errors import FieldError, InventoryError


@dataclass(frozen=True)
class IPRange:
    """An inclusive range of IPv4 addresses, written ``first-last``."""

    first: IPv4Address
    last: IPv4Address

    def __contains__(self, ip: object) -> bool:
        return isinstance(ip, IPv4Address) and self.first <= ip <= self.last

    def __str__(self) -> str:
        return f"{self.first}-{self.last}"

    @classmethod
    def parse(cls, text: str) -> IPRange:
        first, sep, last = text.partition("-")
        if not sep:
            raise ValueError(text)
        return cls(IPv4Address(first.strip()), IPv4Address(last.strip()))


@dataclass(frozen=True)
class ClusterSpec:
    """Identity and versions of the cluster."""

    name: str
    talos_version: str
    kubernetes_version: str
    endpoint: str
    vip: IPv4Address
    # true once etcd has been bootstrapped: from then on a missing Talos secrets bundle is an error
    bootstrapped: bool = False


@dataclass(frozen=True)
class Schematic:
    """The Image Factory schematic whose installer image the nodes run."""

    id: str
    file: str


@dataclass(frozen=True)
class TalosSpec:
    """Talos-specific settings."""

    schematic: Schematic
    installer_registry: str = "factory.talos.dev/metal-installer"


@dataclass(frozen=True)
class Node:
    """One machine of the cluster."""

    name: str
    role: Literal["controlplane", "worker"]
    ip: IPv4Address
    install_disk: str
    link: str


@dataclass(frozen=True)
class NetworkSpec:
    """The LAN the nodes live on and the LoadBalancer addresses carved out of it."""

    subnet: IPv4Network
    gateway: IPv4Address
    nameservers: list[IPv4Address]
    load_balancer_pool: str
    static_ips: dict[str, IPv4Address] = field(default_factory=dict, metadata={"key": "staticIPs"})

    @property
    def pool(self) -> IPRange:
        return IPRange.parse(self.load_balancer_pool)


@dataclass(frozen=True)
class DomainSpec:
    """Public DNS names served through the tunnel."""

    base: str
    acme_email: str
    hosts: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class InfisicalSpec:
    """Where secrets live. Credentials come from the environment, never from this file."""

    site_url: str
    project_id: str
    environment: str
    path: str = "/"


@dataclass(frozen=True)
class B2Spec:
    """The Backblaze B2 bucket Longhorn backs up to (through its S3 API)."""

    bucket: str
    region: str


@dataclass(frozen=True)
class BackupSpec:
    """Backup destinations."""

    b2: B2Spec


@dataclass(frozen=True)
class Inventory:
    """Everything onecluster knows about one cluster."""

    cluster: ClusterSpec
    talos: TalosSpec
    network: NetworkSpec
    nodes: list[Node]
    domains: DomainSpec
    infisical: InfisicalSpec
    backups: BackupSpec
    # free-form per-layer settings (e.g. ``ai.mcpAccess``), read by the layer that owns them
    settings: dict[str, dict[str, str]] = field(default_factory=dict)
    source: str = field(default="", init=False, compare=False)

    @property
    def name(self) -> str:
        return self.cluster.name

    @property
    def control_planes(self) -> list[Node]:
        return [n for n in self.nodes if n.role == "controlplane"]

    @property
    def workers(self) -> list[Node]:
        return [n for n in self.nodes if n.role == "worker"]

    @property
    def first_control_plane(self) -> Node:
        return self.control_planes[0]

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        known = ", ".join(n.name for n in self.nodes)
        raise InventoryError(
            [FieldError(self.source, "nodes", f"no node named {name!r}", f"use one of: {known}")]
        )

    def setting(self, layer: str, key: str, default: str = "") -> str:
        return self.settings.get(layer, {}).get(key, default)
