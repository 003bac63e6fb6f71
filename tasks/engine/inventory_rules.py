"""The cross-field rules of an inventory: what the typed loader cannot see field by field.

One rule per section (cluster, Talos, nodes, control planes, network, domains, Infisical, links),
each yielding ``(field path, what is wrong, how to fix it)``; :func:`validate` runs them all in that
order and names the file in every error. The inventory may be partial (a field the file got wrong
is ``None``), so every rule reads only what is there and leaves the rest to the type errors.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from ipaddress import IPv4Address

from .errors import FieldError
from .inventory_model import Inventory, IPRange, NetworkSpec, Node

_VERSION = re.compile(r"^v\d+\.\d+\.\d+$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_HOSTNAME = re.compile(r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_SCHEMATIC_ID = re.compile(r"^[0-9a-f]{64}$")
_LINK = re.compile(r"^[a-zA-Z0-9._-]{1,15}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")

# (field path, what is wrong, how to fix it)
Problem = tuple[str, str, str]


def validate(inv: Inventory) -> list[FieldError]:
    """Cross-field checks on a typed inventory; returns every problem found."""
    return [FieldError(inv.source, *problem) for rule in RULES for problem in rule(inv)]


def link_errors(inv: Inventory) -> list[FieldError]:
    """Links that cannot carry a node address or the VIP (the loopback)."""
    return [FieldError(inv.source, *problem) for problem in link_problems(inv)]


def cluster_problems(inv: Inventory) -> Iterator[Problem]:
    """The cluster's name, its versions (Talos v1.12.x), and the API endpoint on the VIP."""
    c = inv.cluster
    if c is None:
        return
    if c.name is not None and not _DNS_LABEL.match(c.name):
        yield (
            "cluster.name",
            f"expected a DNS label (lowercase letters, digits, '-'), got {c.name!r}",
            "rename the cluster, e.g. 'homelab'",
        )
    for key, value in (
        ("talosVersion", c.talos_version),
        ("kubernetesVersion", c.kubernetes_version),
    ):
        if value is not None and not _VERSION.match(value):
            yield (
                f"cluster.{key}",
                f"expected a version like v1.12.4, got {value!r}",
                "write it as vMAJOR.MINOR.PATCH",
            )
    talos = c.talos_version
    if talos and _VERSION.match(talos) and not talos.startswith("v1.12."):
        yield (
            "cluster.talosVersion",
            f"this release of onecluster targets Talos v1.12.x, got {talos}",
            "use a v1.12 patch release",
        )
    if c.endpoint is not None and c.vip is not None:
        expected = f"https://{c.vip}:6443"
        if c.endpoint != expected:
            yield (
                "cluster.endpoint",
                f"expected the API endpoint on the VIP ({expected}), got {c.endpoint!r}",
                f"set endpoint: {expected}",
            )


def talos_problems(inv: Inventory) -> Iterator[Problem]:
    """The Image Factory schematic ID."""
    schematic = inv.talos.schematic if inv.talos is not None else None
    sid = schematic.id if schematic is not None else None
    if sid is not None and not _SCHEMATIC_ID.match(sid):
        yield (
            "talos.schematic.id",
            f"expected a 64-character lowercase hex Image Factory ID, got {sid!r}",
            "paste the ID Image Factory returned for talos/schematic.yaml",
        )


def node_problems(inv: Inventory) -> Iterator[Problem]:
    """Each node: hostname, unique name and IP, disk, link, address in the subnet, not the VIP."""
    nodes = _nodes(inv)
    if not nodes and inv.nodes is not None:
        yield "nodes", "expected at least one node", "list the machines under nodes:"
    names = Counter(n.name for n in nodes if n.name)
    ips = Counter(n.ip for n in nodes if n.ip)
    subnet = inv.network.subnet if inv.network is not None else None
    vip = inv.cluster.vip if inv.cluster is not None else None
    for i, n in enumerate(inv.nodes or []):
        if n is None:
            continue
        p = f"nodes[{i}]"
        if n.name is not None and not _DNS_LABEL.match(n.name):
            yield (
                f"{p}.name",
                f"expected a DNS label for the hostname, got {n.name!r}",
                "use lowercase letters, digits and '-'",
            )
        if n.name and names[n.name] > 1:
            yield f"{p}.name", f"duplicate node name {n.name!r}", "give every node a unique name"
        if n.ip and ips[n.ip] > 1:
            yield f"{p}.ip", f"duplicate node IP {n.ip}", "give every node its own address"
        if n.install_disk is not None and not n.install_disk.startswith("/dev/"):
            yield (
                f"{p}.installDisk",
                f"expected a device path such as /dev/sda, got {n.install_disk!r}",
                "use the disk path `talosctl get disks --insecure` shows",
            )
        if n.link is not None and not _LINK.match(n.link):
            yield (
                f"{p}.link",
                f"expected a network interface name such as enp1s0 or eth0, got {n.link!r}",
                "use the link name `talosctl get links --insecure` shows",
            )
        if subnet is not None and n.ip is not None and n.ip not in subnet:
            yield (
                f"{p}.ip",
                f"expected an address inside network.subnet {subnet}, got {n.ip}",
                "fix the address or the subnet",
            )
        if vip is not None and n.ip == vip:
            yield (
                "cluster.vip",
                f"the VIP {vip} is also the address of node {n.name}",
                "choose a free address in the node subnet for the VIP",
            )


def control_plane_problems(inv: Inventory) -> Iterator[Problem]:
    """At least one control plane, and an odd number of them (etcd quorum)."""
    nodes = _nodes(inv)
    cps = [n for n in nodes if n.role == "controlplane"]
    if nodes and not cps:
        yield (
            "nodes",
            "expected at least one node with role: controlplane",
            "mark 1 or 3 nodes as controlplane",
        )
    elif cps and len(cps) % 2 == 0:
        yield (
            "nodes",
            f"expected an odd number of control planes for etcd quorum, got {len(cps)}",
            "use 1, 3 or 5 control planes",
        )


def network_problems(inv: Inventory) -> Iterator[Problem]:
    """The LoadBalancer pool and its static IPs, the gateway, and the VIP on the node LAN."""
    net = inv.network
    if net is None:
        return
    vip = inv.cluster.vip if inv.cluster is not None else None
    pool = None
    if net.load_balancer_pool is not None:
        try:
            pool = net.pool
        except ValueError:
            yield (
                "network.loadBalancerPool",
                f"expected a range FIRST-LAST such as 192.168.1.200-192.168.1.220, got {net.load_balancer_pool!r}",
                "write the pool as two addresses joined by '-'",
            )
    if pool is not None:
        yield from pool_problems(inv, net, pool)
    if net.subnet is not None and net.gateway is not None and net.gateway not in net.subnet:
        yield (
            "network.gateway",
            f"expected an address inside network.subnet {net.subnet}, got {net.gateway}",
            "fix the gateway or the subnet",
        )
    if vip is not None and net.subnet is not None and vip not in net.subnet:
        yield (
            "cluster.vip",
            f"expected an address inside network.subnet {net.subnet}, got {vip}",
            "the Talos-managed VIP must be on the node LAN",
        )


def pool_problems(inv: Inventory, net: NetworkSpec, pool: IPRange) -> Iterator[Problem]:
    """The pool: in order, in the subnet, clear of the nodes and the VIP; static IPs inside it."""
    if pool.first > pool.last:
        yield (
            "network.loadBalancerPool",
            f"the range {pool} ends before it starts",
            "swap the two addresses",
        )
    if net.subnet is not None and (pool.first not in net.subnet or pool.last not in net.subnet):
        yield (
            "network.loadBalancerPool",
            f"expected a range inside network.subnet {net.subnet}, got {pool}",
            "move the pool into the LAN subnet",
        )
    for i, n in enumerate(_nodes(inv)):
        if n.ip in pool:
            yield (
                "network.loadBalancerPool",
                f"the pool {pool} overlaps node {n.name} ({n.ip})",
                f"move the pool or the node; nodes[{i}].ip must be outside it",
            )
    vip = inv.cluster.vip if inv.cluster is not None else None
    if vip is not None and vip in pool:
        yield (
            "cluster.vip",
            f"the VIP {vip} is inside network.loadBalancerPool {pool}",
            "take the VIP out of the pool: kube-vip would hand it to a Service",
        )
    seen: dict[IPv4Address, str] = {}
    for key, ip in (net.static_ips or {}).items():
        if ip is None:
            continue
        if ip not in pool:
            yield (
                f"network.staticIPs.{key}",
                f"expected an address inside network.loadBalancerPool {pool}, got {ip}",
                "pick an address from the pool",
            )
        if ip in seen:
            yield (
                f"network.staticIPs.{key}",
                f"{ip} is already used by staticIPs.{seen[ip]}",
                "give each service its own address",
            )
        seen[ip] = key


def domain_problems(inv: Inventory) -> Iterator[Problem]:
    """The base domain and every host: DNS names, under the base (or ``.lan``); the ACME e-mail."""
    d = inv.domains
    if d is None:
        return
    for key, host in [
        ("base", d.base),
        *((f"hosts.{k}", v) for k, v in (d.hosts or {}).items()),
    ]:
        if host is not None and not _HOSTNAME.match(host):
            yield (
                f"domains.{key}",
                f"expected a DNS name such as example.com, got {host!r}",
                "use a fully qualified lowercase domain name",
            )
        elif host is not None and key != "base" and not _under(host, d.base):
            yield (
                f"domains.{key}",
                f"expected {host!r} to be {d.base}, a name under it, or a .lan name",
                f"use e.g. name.{d.base}",
            )
    if d.acme_email is not None and not _EMAIL.match(d.acme_email):
        yield (
            "domains.acmeEmail",
            f"expected an e-mail address, got {d.acme_email!r}",
            "use the address Let's Encrypt should write to",
        )


def infisical_problems(inv: Inventory) -> Iterator[Problem]:
    """The secret store is reached over TLS only."""
    s = inv.infisical
    if s is not None and s.site_url is not None and not s.site_url.startswith("https://"):
        yield (
            "infisical.siteUrl",
            f"expected an https:// URL, got {s.site_url!r}",
            "use e.g. https://app.infisical.com (secrets must not travel in clear text)",
        )


def link_problems(inv: Inventory) -> Iterator[Problem]:
    """Links that cannot carry a node address or the VIP (the loopback)."""
    for i, node in enumerate(inv.nodes or []):
        if node is None or node.link is None:
            continue
        if node.link == "lo" or node.link.startswith("lo:"):
            yield (
                f"nodes[{i}].link",
                f"unknown link {node.link!r}: "
                "the loopback cannot carry the node address or the VIP",
                "use the LAN link `talosctl get links --insecure` shows, e.g. enp1s0",
            )


# in the order their errors are reported
RULES: tuple[Callable[[Inventory], Iterable[Problem]], ...] = (
    cluster_problems,
    talos_problems,
    node_problems,
    control_plane_problems,
    network_problems,
    domain_problems,
    infisical_problems,
    link_problems,
)


def _nodes(inv: Inventory) -> list[Node]:
    """The nodes the typed loader could build (a malformed entry is ``None``)."""
    return [n for n in (inv.nodes or []) if n is not None]


def _under(host: str, base: str | None) -> bool:
    """Whether ``host`` is ``base``, a name under it, or a LAN-only ``.lan`` name."""
    if not base or not _HOSTNAME.match(base):
        return True  # the base itself is reported as wrong; don't pile errors on its hosts
    return host == base or host.endswith("." + base) or host.endswith(".lan")
