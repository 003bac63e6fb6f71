"""The cluster inventory: ``talos/cluster.yaml`` loaded into typed objects and validated.

Nothing touches a cluster until :func:`load_inventory` has returned: every problem in the file is
collected and reported together, each naming the file, the field path, what was expected and how
to fix it. Another cluster is another file (``--cluster PATH`` or ``$ONECLUSTER_CLUSTER``).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Literal

from . import yamlio
from .errors import FieldError, InventoryError
from .schema import load_typed

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_INVENTORY = REPO_ROOT / "talos" / "cluster.yaml"
INVENTORY_ENV = "ONECLUSTER_CLUSTER"

_VERSION = re.compile(r"^v\d+\.\d+\.\d+$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_HOSTNAME = re.compile(r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_SCHEMATIC_ID = re.compile(r"^[0-9a-f]{64}$")

InventoryCheck = Callable[["Inventory"], list[FieldError]]


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
    # free-form per-layer settings (e.g. ``ai.mcpServer.access``), read by the layer that owns them
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


def inventory_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The inventory to use: the argument, else ``$ONECLUSTER_CLUSTER``, else the reference."""
    chosen = path or os.environ.get(INVENTORY_ENV) or DEFAULT_INVENTORY
    return Path(chosen)


def load_inventory(
    path: str | os.PathLike[str] | None = None, checks: Sequence[InventoryCheck] = ()
) -> Inventory:
    """Read, type-check and validate an inventory file; raise one error listing every problem.

    ``checks`` are the cross-field rules the areas add (the stack's catalogue passes them).
    """
    file = inventory_path(path)
    shown = _display(file)
    try:
        text = file.read_text()
    except OSError as exc:
        raise InventoryError(
            [
                FieldError(
                    shown,
                    "(file)",
                    f"cannot read: {exc.strerror}",
                    f"pass --cluster PATH or set ${INVENTORY_ENV}",
                )
            ]
        ) from None
    try:
        data = yamlio.load(text)
    except yamlio.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(file)"
        raise InventoryError(
            [FieldError(shown, where, f"not valid YAML: {getattr(exc, 'problem', exc)}")]
        ) from None
    return parse_inventory(data, shown, checks)


def parse_inventory(
    data: object, file: str = "<memory>", checks: Sequence[InventoryCheck] = ()
) -> Inventory:
    """Validate already-parsed inventory data: types, then every cross-field rule."""
    inv, errors = load_typed(Inventory, data, file)
    if inv is not None:
        inv = _with_source(inv, file)
        errors += validate(inv)
        for check in checks:
            errors += check(inv)
    if errors:
        raise InventoryError(errors)
    return inv


def _with_source(inv: Inventory, file: str) -> Inventory:
    object.__setattr__(inv, "source", file)
    return inv


def _display(file: Path) -> str:
    try:
        return str(file.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(file)


def validate(inv: Inventory) -> list[FieldError]:
    """Cross-field checks on a typed inventory; returns every problem found."""
    f = inv.source
    errs: list[FieldError] = []

    def err(path: str, message: str, fix: str = "") -> None:
        errs.append(FieldError(f, path, message, fix))

    c, net = inv.cluster, inv.network
    if c is not None:
        if c.name is not None and not _DNS_LABEL.match(c.name):
            err(
                "cluster.name",
                f"expected a DNS label (lowercase letters, digits, '-'), got {c.name!r}",
                "rename the cluster, e.g. 'homelab'",
            )
        for key, value in (
            ("talosVersion", c.talos_version),
            ("kubernetesVersion", c.kubernetes_version),
        ):
            if value is not None and not _VERSION.match(value):
                err(
                    f"cluster.{key}",
                    f"expected a version like v1.12.4, got {value!r}",
                    "write it as vMAJOR.MINOR.PATCH",
                )
        if (
            c.talos_version
            and _VERSION.match(c.talos_version)
            and not c.talos_version.startswith("v1.12.")
        ):
            err(
                "cluster.talosVersion",
                f"this release of onecluster targets Talos v1.12.x, got {c.talos_version}",
                "use a v1.12 patch release",
            )
        if c.endpoint is not None and c.vip is not None:
            expected = f"https://{c.vip}:6443"
            if c.endpoint != expected:
                err(
                    "cluster.endpoint",
                    f"expected the API endpoint on the VIP ({expected}), got {c.endpoint!r}",
                    f"set endpoint: {expected}",
                )
    if inv.talos is not None and inv.talos.schematic is not None:
        sid = inv.talos.schematic.id
        if sid is not None and not _SCHEMATIC_ID.match(sid):
            err(
                "talos.schematic.id",
                f"expected a 64-character lowercase hex Image Factory ID, got {sid!r}",
                "paste the ID Image Factory returned for talos/schematic.yaml",
            )

    nodes = [n for n in (inv.nodes or []) if n is not None]
    if not nodes and inv.nodes is not None:
        err("nodes", "expected at least one node", "list the machines under nodes:")
    names = Counter(n.name for n in nodes if n.name)
    ips = Counter(n.ip for n in nodes if n.ip)
    for i, n in enumerate(inv.nodes or []):
        if n is None:
            continue
        p = f"nodes[{i}]"
        if n.name is not None and not _DNS_LABEL.match(n.name):
            err(
                f"{p}.name",
                f"expected a DNS label for the hostname, got {n.name!r}",
                "use lowercase letters, digits and '-'",
            )
        if n.name and names[n.name] > 1:
            err(f"{p}.name", f"duplicate node name {n.name!r}", "give every node a unique name")
        if n.ip and ips[n.ip] > 1:
            err(f"{p}.ip", f"duplicate node IP {n.ip}", "give every node its own address")
        if n.install_disk is not None and not n.install_disk.startswith("/dev/"):
            err(
                f"{p}.installDisk",
                f"expected a device path such as /dev/sda, got {n.install_disk!r}",
                "use the disk path `talosctl get disks --insecure` shows",
            )
        if n.link is not None and not re.match(r"^[a-zA-Z0-9._-]{1,15}$", n.link):
            err(
                f"{p}.link",
                f"expected a network interface name such as enp1s0 or eth0, got {n.link!r}",
                "use the link name `talosctl get links --insecure` shows",
            )
        subnet = net.subnet if net is not None else None
        if subnet is not None and n.ip is not None and n.ip not in subnet:
            err(
                f"{p}.ip",
                f"expected an address inside network.subnet {subnet}, got {n.ip}",
                "fix the address or the subnet",
            )
        if c is not None and c.vip is not None and n.ip == c.vip:
            err(
                "cluster.vip",
                f"the VIP {c.vip} is also the address of node {n.name}",
                "choose a free address in the node subnet for the VIP",
            )

    cps = [n for n in nodes if n.role == "controlplane"]
    if nodes and not cps:
        err(
            "nodes",
            "expected at least one node with role: controlplane",
            "mark 1 or 3 nodes as controlplane",
        )
    elif cps and len(cps) % 2 == 0:
        err(
            "nodes",
            f"expected an odd number of control planes for etcd quorum, got {len(cps)}",
            "use 1, 3 or 5 control planes",
        )

    if net is not None:
        pool = None
        if net.load_balancer_pool is not None:
            try:
                pool = net.pool
            except ValueError:
                err(
                    "network.loadBalancerPool",
                    f"expected a range FIRST-LAST such as 192.168.1.200-192.168.1.220, got {net.load_balancer_pool!r}",
                    "write the pool as two addresses joined by '-'",
                )
        if pool is not None:
            if pool.first > pool.last:
                err(
                    "network.loadBalancerPool",
                    f"the range {pool} ends before it starts",
                    "swap the two addresses",
                )
            if net.subnet is not None and (
                pool.first not in net.subnet or pool.last not in net.subnet
            ):
                err(
                    "network.loadBalancerPool",
                    f"expected a range inside network.subnet {net.subnet}, got {pool}",
                    "move the pool into the LAN subnet",
                )
            for i, n in enumerate(nodes):
                if n.ip in pool:
                    err(
                        "network.loadBalancerPool",
                        f"the pool {pool} overlaps node {n.name} ({n.ip})",
                        f"move the pool or the node; nodes[{i}].ip must be outside it",
                    )
            if c is not None and c.vip is not None and c.vip in pool:
                err(
                    "cluster.vip",
                    f"the VIP {c.vip} is inside network.loadBalancerPool {pool}",
                    "take the VIP out of the pool: kube-vip would hand it to a Service",
                )
            seen: dict[IPv4Address, str] = {}
            for key, ip in (net.static_ips or {}).items():
                if ip is None:
                    continue
                if ip not in pool:
                    err(
                        f"network.staticIPs.{key}",
                        f"expected an address inside network.loadBalancerPool {pool}, got {ip}",
                        "pick an address from the pool",
                    )
                if ip in seen:
                    err(
                        f"network.staticIPs.{key}",
                        f"{ip} is already used by staticIPs.{seen[ip]}",
                        "give each service its own address",
                    )
                seen[ip] = key
        if net.subnet is not None and net.gateway is not None and net.gateway not in net.subnet:
            err(
                "network.gateway",
                f"expected an address inside network.subnet {net.subnet}, got {net.gateway}",
                "fix the gateway or the subnet",
            )
        if (
            c is not None
            and c.vip is not None
            and net.subnet is not None
            and c.vip not in net.subnet
        ):
            err(
                "cluster.vip",
                f"expected an address inside network.subnet {net.subnet}, got {c.vip}",
                "the Talos-managed VIP must be on the node LAN",
            )

    d = inv.domains
    if d is not None:
        for key, host in [
            ("base", d.base),
            *((f"hosts.{k}", v) for k, v in (d.hosts or {}).items()),
        ]:
            if host is not None and not _HOSTNAME.match(host):
                err(
                    f"domains.{key}",
                    f"expected a DNS name such as example.com, got {host!r}",
                    "use a fully qualified lowercase domain name",
                )
            elif host is not None and key != "base" and not _under(host, d.base):
                err(
                    f"domains.{key}",
                    f"expected {host!r} to be {d.base}, a name under it, or a .lan name",
                    f"use e.g. name.{d.base}",
                )
        if d.acme_email is not None and not re.match(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$", d.acme_email):
            err(
                "domains.acmeEmail",
                f"expected an e-mail address, got {d.acme_email!r}",
                "use the address Let's Encrypt should write to",
            )

    s = inv.infisical
    if s is not None and s.site_url is not None and not s.site_url.startswith("https://"):
        err(
            "infisical.siteUrl",
            f"expected an https:// URL, got {s.site_url!r}",
            "use e.g. https://app.infisical.com (secrets must not travel in clear text)",
        )

    return errs + link_errors(inv)


def link_errors(inv: Inventory) -> list[FieldError]:
    """Links that cannot carry a node address or the VIP (the loopback)."""
    errors = []
    for i, node in enumerate(inv.nodes or []):
        if node is None or node.link is None:
            continue
        if node.link == "lo" or node.link.startswith("lo:"):
            errors.append(
                FieldError(
                    inv.source,
                    f"nodes[{i}].link",
                    f"unknown link {node.link!r}: "
                    "the loopback cannot carry the node address or the VIP",
                    "use the LAN link `talosctl get links --insecure` shows, e.g. enp1s0",
                )
            )
    return errors


def _under(host: str, base: str | None) -> bool:
    """Whether ``host`` is ``base``, a name under it, or a LAN-only ``.lan`` name."""
    if not base or not _HOSTNAME.match(base):
        return True  # the base itself is reported as wrong; don't pile errors on its hosts
    return host == base or host.endswith("." + base) or host.endswith(".lan")
