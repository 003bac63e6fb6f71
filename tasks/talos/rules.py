"""Talos's own validation rules for the documents onecluster emits, checked offline.

The JSON schema (``config.schema.json``) checks shapes; Talos then decodes each document and runs
its ``Validate`` methods, which reject configs the schema accepts (a default route written as
``destination: 0.0.0.0/0`` is the case that stopped a real rebuild). This module re-states those
rules for every kind onecluster emits, read from siderolabs/talos at :data:`TALOS_RELEASE`:

- ``pkg/machinery/config/types/network/link.go`` — ``LinkConfig`` (``CommonLinkConfig.Validate``);
- ``pkg/machinery/config/types/network/hostname.go`` — ``HostnameConfig``;
- ``pkg/machinery/config/types/network/resolver.go`` — ``ResolverConfig``;
- ``pkg/machinery/config/types/network/layer2_vip.go`` — ``Layer2VIPConfig``;
- ``pkg/machinery/config/types/block/volume_config.go`` — ``VolumeConfig``;
- ``pkg/machinery/config/types/block/user_volume_config.go`` — ``UserVolumeConfig``;
- ``pkg/machinery/config/types/v1alpha1/v1alpha1_validation.go`` — the v1alpha1 parts patched;
- ``pkg/machinery/role/role.go`` — the roles a Kubernetes Talos API Access may grant;
- the decoders of the field types (Go's ``net/netip``, go-humanize's ``ParseBytes``,
  ``block/percentage_size.go``) and the disk-selector CEL environment (``cel/celenv/celenv.go``).

Each :class:`Violation` carries the text Talos prints (``says``: ``<kind>/<name>: <message>`` as
``config/container/container.go`` prefixes a document's errors), the upstream file, the field and
a fix. A few rules are onecluster's own (``upstream`` is empty): Talos accepts those configs, but
the node then cannot work (a gateway outside the link's subnet never becomes a route).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network
from typing import Any

# the Talos release the rules below were read from (the inventory pins cluster.talosVersion)
TALOS_RELEASE = "v1.12.4"

LINK_GO = "pkg/machinery/config/types/network/link.go"
HOSTNAME_GO = "pkg/machinery/config/types/network/hostname.go"
RESOLVER_GO = "pkg/machinery/config/types/network/resolver.go"
VIP_GO = "pkg/machinery/config/types/network/layer2_vip.go"
VOLUME_GO = "pkg/machinery/config/types/block/volume_config.go"
USER_VOLUME_GO = "pkg/machinery/config/types/block/user_volume_config.go"
V1ALPHA1_GO = "pkg/machinery/config/types/v1alpha1/v1alpha1_validation.go"

Path = tuple[str | int, ...]
# the roles Talos can grant (pkg/machinery/role/role.go: role.All)
TALOS_ROLES = ("os:admin", "os:operator", "os:reader", "os:etcd:backup", "os:impersonator")


@dataclass(frozen=True)
class Violation:
    """One rule a document breaks: what Talos says, where, and how to fix it."""

    document: str  # Talos's id of the document: "LinkConfig/enp1s0", "v1alpha1.Config"
    path: Path  # the field inside the document, e.g. ("routes", 0, "destination")
    says: str  # what Talos prints (its words); onecluster's own words for its own rules
    fix: str
    upstream: str  # the siderolabs/talos file the rule comes from ("" for onecluster's rules)

    @property
    def field(self) -> str:
        """The field as a path: ``routes[0].destination``."""
        out = ""
        for part in self.path:
            out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
        return out or "(document)"

    @property
    def message(self) -> str:
        """One line for an error report, naming the release and the upstream file."""
        if not self.upstream:
            return self.says
        return f"Talos {TALOS_RELEASE} rejects it: {self.says!r} (siderolabs/talos {self.upstream})"


@dataclass(frozen=True)
class Node:
    """What the rules know of the machine a stack of documents configures."""

    controlplane: bool
    addresses: tuple[str, ...] = ()  # the node's own addresses, for the VIP rules


# Go's parsers, message for message ------------------------------------------------------------


def go_quote(text: str) -> str:
    """``strconv.Quote`` for the texts these messages carry."""
    return json.dumps(text, ensure_ascii=False)


def _ipv4_error(text: str) -> str | None:
    """``net/netip.parseIPv4``'s complaint about ``text`` (None when it parses)."""
    val, pos, digits = 0, 0, 0
    for i, ch in enumerate(text):
        if ch.isascii() and ch.isdigit():
            if digits == 1 and val == 0:
                return "IPv4 field has octet with leading zero"
            val, digits = val * 10 + int(ch), digits + 1
            if val > 255:
                return "IPv4 field has value >255"
        elif ch == ".":
            if i == 0 or i == len(text) - 1 or text[i - 1] == ".":
                return f"IPv4 field must have at least one digit (at {go_quote(text[i:])})"
            if pos == 3:
                return "IPv4 address too long"
            pos, val, digits = pos + 1, 0, 0
        else:
            return f"unexpected character (at {go_quote(text[i:])})"
    return "IPv4 address too short" if pos < 3 else None


def parse_addr(text: str) -> tuple[IPv4Address | IPv6Address | None, str]:
    """``netip.ParseAddr``: the address, or Go's error text.

    IPv4 errors are Go's own; IPv6 is parsed by Python and reported with Go's generic wording.
    """
    for ch in text:
        if ch == ".":
            problem = _ipv4_error(text)
            if problem is None:
                return IPv4Address(text), ""
            return None, f"ParseAddr({go_quote(text)}): {problem}"
        if ch == ":":
            try:
                return IPv6Address(text), ""
            except ValueError:
                return None, f"ParseAddr({go_quote(text)}): unable to parse IP"
        if ch == "%":
            return None, f"ParseAddr({go_quote(text)}): missing IPv6 address"
    return None, f"ParseAddr({go_quote(text)}): unable to parse IP"


def parse_prefix(text: str) -> tuple[tuple[IPv4Address | IPv6Address, int] | None, str]:
    """``netip.ParsePrefix``: (address, bits), or Go's error text."""
    head = f"netip.ParsePrefix({go_quote(text)}): "
    addr_text, slash, bits_text = text.rpartition("/")
    if not slash:
        return None, head + "no '/'"
    addr, problem = parse_addr(addr_text)
    if addr is None:
        return None, head + problem
    if (len(bits_text) > 1 and not "1" <= bits_text[0] <= "9") or not re.fullmatch(
        r"[+-]?\d+", bits_text
    ):
        return None, head + "bad bits after slash: " + go_quote(bits_text)
    bits = int(bits_text)
    if not 0 <= bits <= (32 if addr.version == 4 else 128):
        return None, head + "prefix length out of range"
    return (addr, bits), ""


_BYTE_UNITS = {
    **dict.fromkeys(("", "b"), 1),
    **{u: 1000**i for i, units in enumerate("kmgtpe", 1) for u in (units, units + "b")},
    **{u: 1024**i for i, units in enumerate("kmgtpe", 1) for u in (units + "i", units + "ib")},
}


def parse_bytes(text: str) -> tuple[int | None, str]:
    """go-humanize's ``ParseBytes`` (``block/byte_size.go`` decodes sizes with it)."""
    digits = 0
    for ch in text:
        if not (ch.isdigit() or ch in ".,"):
            break
        digits += 1
    number = text[:digits].replace(",", "")
    try:
        value = float(number)
    except ValueError:
        return None, f"strconv.ParseFloat: parsing {go_quote(number)}: invalid syntax"
    unit = text[digits:].strip().lower()
    if unit not in _BYTE_UNITS:
        return None, f"unhandled size name: {unit}"
    return int(value * _BYTE_UNITS[unit]), ""


def parse_size(text: str) -> tuple[int | None, bool, str]:
    """``block/size.go``: a byte size, or a percentage (``relative``); or the decoder's error."""
    if "%" not in text:
        value, problem = parse_bytes(text)
        return value, False, problem
    if not text.endswith("%"):
        return None, True, "percentage must end with '%'"
    try:
        value = float(text[:-1])
    except ValueError:
        return (
            None,
            True,
            f"invalid percentage value: strconv.ParseFloat: parsing {go_quote(text[:-1])}: invalid syntax",
        )
    if not 0 <= value <= 100:
        return None, True, f"percentage must be between 0 and 100, got {value:g}"
    return int(value), True, ""


# the disk-selector CEL environment (pkg/machinery/cel/celenv/celenv.go, DiskLocator): the
# variables, the unit constants and the fields of `disk` (api/resource/definitions/block/block.proto,
# DiskSpec); CEL's own macros and functions besides
DISK_FIELDS = frozenset((
    "size", "io_size", "sector_size", "readonly", "model", "serial", "modalias", "wwid",
    "bus_path", "sub_system", "transport", "rotational", "cdrom", "dev_path", "pretty_size",
    "secondary_disks", "uuid", "symlinks"
))  # fmt: skip
DISK_NAMES = frozenset((
    "disk", "system_disk", "true", "false", "null", "in", "KiB", "MiB", "GiB", "TiB", "PiB",
    "EiB", "kB", "MB", "GB", "TB", "PB", "EB"
))  # fmt: skip
CEL_FUNCTIONS = frozenset((
    "glob", "size", "has", "matches", "startsWith", "endsWith", "contains", "int", "uint",
    "double", "string", "bool", "bytes", "type", "duration", "timestamp", "exists", "all",
    "exists_one", "map", "filter", "in", "dyn"
))  # fmt: skip
_CEL_TOKEN = re.compile(
    r"""(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')"""
    r"""|(?P<number>0[xX][0-9a-fA-F]+[uU]?|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[uU]?)"""
    r"""|\.\s*(?P<field>[A-Za-z_]\w*)(?P<method>\s*\()?"""
    r"""|(?P<ident>[A-Za-z_]\w*)(?P<call>\s*\()?|(?P<other>\S)""",
)


def disk_selector_error(expression: str) -> str:
    """The first name cel-go refuses in a disk selector ("" when every name is known).

    Not a CEL compiler: it checks the names (variables, functions, ``disk`` fields) against the
    DiskLocator environment and returns the first line of cel-go's error, as Talos wraps it.
    """
    receiver = ""
    for m in _CEL_TOKEN.finditer(expression):
        if m.group("field"):
            field = m.group("field")
            if receiver == "disk" and not m.group("method") and field not in DISK_FIELDS:
                return f"ERROR: <input>:1:{m.start() + 1}: undefined field '{field}'"
            receiver = field
        elif m.group("ident"):
            name = m.group("ident")
            if name not in (CEL_FUNCTIONS if m.group("call") else DISK_NAMES):
                return f"ERROR: <input>:1:{m.start() + 1}: undeclared reference to '{name}' (in container '')"
            receiver = name
        else:
            receiver = ""
    return ""


# Document helpers -----------------------------------------------------------------------------


def doc_id(doc: dict[str, Any]) -> str:
    """Talos's name of a document (``config/container/container.go``, ``docID``)."""
    kind = doc.get("kind")
    if kind is None:
        return "v1alpha1.Config"
    named = kind in ("LinkConfig", "Layer2VIPConfig", "VolumeConfig", "UserVolumeConfig")
    return f"{kind}/{doc.get('name') or ''}" if named else str(kind)


def _text(value: Any) -> str:
    """A scalar as Talos's text decoders see it (YAML ``true`` is ``true``)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _get(doc: Any, *path: str | int) -> Any:
    for key in path:
        if isinstance(doc, dict):
            doc = doc.get(key)
        elif isinstance(doc, list) and isinstance(key, int) and key < len(doc):
            doc = doc[key]
        else:
            return None
    return doc


def has_path(doc: Any, path: Path) -> bool:
    """Whether ``doc`` has the field at ``path`` (a key or list index per step)."""
    for key in path:
        in_map = isinstance(doc, dict) and key in doc
        in_list = isinstance(doc, list) and isinstance(key, int) and key < len(doc)
        if not (in_map or in_list):
            return False
        doc = doc[key]
    return True


def _v1alpha1(docs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return next((d for d in docs if d.get("kind") is None), {})


Rule = Callable[[dict[str, Any], Sequence[dict[str, Any]], Node], Iterator[Violation]]


# LinkConfig (network/link.go) -----------------------------------------------------------------


def link_rules(
    doc: dict[str, Any], docs: Sequence[dict[str, Any]], node: Node
) -> Iterator[Violation]:
    """``LinkConfigV1Alpha1.Validate`` and ``CommonLinkConfig.Validate`` (+ the route gateway)."""
    me = doc_id(doc)

    def bad(path: Path, message: str, fix: str, upstream: str = LINK_GO) -> Violation:
        return Violation(me, path, f"{me}: {message}" if upstream else message, fix, upstream)

    if not doc.get("name"):
        yield bad(("name",), "name must be specified", "name the link, e.g. enp1s0")
    subnets = []
    for i, entry in enumerate(doc.get("addresses") or []):
        text = _text(_get(entry, "address"))
        path: Path = ("addresses", i, "address")
        if not text:
            yield bad(path, f"address {i} must be specified", "write the address with its prefix")
            continue
        parsed, problem = parse_prefix(text)
        if parsed is None:
            yield Violation(
                me, path, problem, "write ADDRESS/PREFIX, e.g. 192.168.1.10/24", LINK_GO
            )
        elif parsed[0].is_unspecified:
            yield bad(path, f"address {i} must be a valid IP address", "use the node's address")
        else:
            subnets.append(ip_network(f"{parsed[0]}/{parsed[1]}", strict=False))
    for i, route in enumerate(doc.get("routes") or []):
        dest = _text(_get(route, "destination"))
        if dest:
            parsed, problem = parse_prefix(dest)
            if parsed is None:
                yield Violation(me, ("routes", i, "destination"), problem,
                                "write the destination as ADDRESS/PREFIX", LINK_GO)  # fmt: skip
            elif parsed[0].is_unspecified:
                yield bad(
                    ("routes", i, "destination"),
                    f"route {i} destination must be a valid IP prefix",
                    "a default route is a gateway with no destination: drop `destination`",
                )
        for key in ("gateway", "source"):
            text = _text(_get(route, key))
            if not text:
                continue
            addr, problem = parse_addr(text)
            if addr is None:
                yield Violation(me, ("routes", i, key), problem, f"write the {key} as an address",
                                LINK_GO)  # fmt: skip
            elif addr.is_unspecified:
                yield bad(("routes", i, key), f"route {i} {key} must be a valid IP address",
                          f"use the LAN's router as the {key}")  # fmt: skip
            elif key == "gateway" and subnets and not any(addr in net for net in subnets):
                nets = ", ".join(str(n) for n in subnets)
                yield bad(
                    ("routes", i, key),
                    f"{me}: route {i} gateway {addr} is outside the link's subnets ({nets}); "
                    "Talos accepts it, but the kernel refuses the route (no default route)",
                    "use a router inside network.subnet as network.gateway",
                    upstream="",
                )


# HostnameConfig (network/hostname.go) ---------------------------------------------------------

AUTO_HOSTNAME = ("off", "talos-addr", "stable")  # nethelpers.AutoHostnameKind, in enum order


def hostname_rules(
    doc: dict[str, Any], docs: Sequence[dict[str, Any]], node: Node
) -> Iterator[Violation]:
    """``HostnameConfigV1Alpha1.Validate`` and its ``V1Alpha1ConflictValidate``."""
    me = doc_id(doc)
    raw = doc.get("auto")
    auto = _text(raw) or "off"  # a missing auto is the enum's zero value: off
    hostname = _text(doc.get("hostname"))
    if auto.lower() not in AUTO_HOSTNAME:
        yield Violation(me, ("auto",), f"{auto} does not belong to AutoHostnameKind values",
                        "use auto: off with a hostname, or auto: stable", HOSTNAME_GO)  # fmt: skip
        return
    auto = auto.lower()
    if auto == "off" and not hostname:
        yield Violation(me, ("hostname",), f"{me}: either 'auto' or 'hostname' must be set",
                        "set the node's hostname", HOSTNAME_GO)  # fmt: skip
    if auto != "off" and hostname:
        yield Violation(me, ("auto",), f"{me}: 'auto' and 'hostname' cannot be set at the same time",
                        "set auto: off next to a static hostname", HOSTNAME_GO)  # fmt: skip
    if auto == "talos-addr":
        yield Violation(me, ("auto",), f"{me}: invalid value for 'auto': {auto}",
                        "use auto: off with a hostname, or auto: stable", HOSTNAME_GO)  # fmt: skip
    if hostname:
        if len(hostname) > 253:
            yield Violation(me, ("hostname",), f"{me}: fqdn is too long: {len(hostname)}",
                            "use a name of at most 253 characters", HOSTNAME_GO)  # fmt: skip
        label = hostname.partition(".")[0]
        if not 0 < len(label) <= 63:
            yield Violation(me, ("hostname",), f"{me}: invalid hostname {go_quote(label)}",
                            "use a first label of 1 to 63 characters", HOSTNAME_GO)  # fmt: skip
    machine = _v1alpha1(docs).get("machine") or {}
    if _text(_get(machine, "network", "hostname")):
        yield Violation(me, ("hostname",), "static hostname is already set in v1alpha1 config",
                        "drop machine.network.hostname: HostnameConfig sets it", HOSTNAME_GO)  # fmt: skip
    elif _get(machine, "features", "stableHostname") is True:
        yield Violation(me, ("auto",), "stable hostname is already set in v1alpha1 config",
                        "drop machine.features.stableHostname: HostnameConfig sets it",
                        HOSTNAME_GO)  # fmt: skip


# ResolverConfig (network/resolver.go) ---------------------------------------------------------


def resolver_rules(
    doc: dict[str, Any], docs: Sequence[dict[str, Any]], node: Node
) -> Iterator[Violation]:
    """``ResolverConfigV1Alpha1``: its nameserver addresses and ``V1Alpha1ConflictValidate``."""
    me = doc_id(doc)
    for i, entry in enumerate(doc.get("nameservers") or []):
        text = _text(_get(entry, "address"))
        addr, problem = parse_addr(text) if text else (None, "")
        if text and addr is None:
            yield Violation(me, ("nameservers", i, "address"), problem,
                            "write each nameserver as an IP address", RESOLVER_GO)  # fmt: skip
    network = _get(_v1alpha1(docs), "machine", "network") or {}
    # in Talos's order; the first conflict is the one it reports (Resolvers() is nil unless one
    # of machine.network.nameservers parses as an address)
    conflicts = (
        ("searchDomains", network.get("searchDomains") is not None),
        ("nameservers", any(parse_addr(_text(a))[0] for a in network.get("nameservers") or [])),
        ("disableSearchDomain", network.get("disableSearchDomain") is True),
    )
    for key, present in conflicts:
        if present:
            yield Violation(
                me, (key,), f".machine.network.{key} is already set in v1alpha1 config",
                f"drop machine.network.{key}: ResolverConfig sets it", RESOLVER_GO,
            )  # fmt: skip
            return


# Layer2VIPConfig (network/layer2_vip.go) ------------------------------------------------------


def vip_rules(
    doc: dict[str, Any], docs: Sequence[dict[str, Any]], node: Node
) -> Iterator[Violation]:
    """``Layer2VIPConfigV1Alpha1.Validate``, then where the VIP may live (onecluster's rules)."""
    me = doc_id(doc)
    name, link = _text(doc.get("name")), _text(doc.get("link"))
    addr = None
    if not name:
        yield Violation(me, ("name",), f"{me}: name must be specified",
                        "name the document with the VIP address", VIP_GO)  # fmt: skip
    else:
        addr, problem = parse_addr(name)
        if addr is None:
            yield Violation(me, ("name",), f"{me}: name must be a valid IP address: {problem}",
                            "set cluster.vip to an address", VIP_GO)  # fmt: skip
    if not link:
        yield Violation(me, ("link",), f"{me}: link must be specified",
                        "name the link that holds the VIP", VIP_GO)  # fmt: skip
    if not node.controlplane:
        # Talos checks this only for a v1alpha1 VIP (v1alpha1_validation.go); the same holds here
        yield Violation(
            me, (),
            f"{me}: virtual (shared) IP is not allowed on non-controlplane nodes (Talos's rule "
            "for a v1alpha1 VIP; a worker holding the API VIP takes the API away)",
            "only control planes hold cluster.vip", "",
        )  # fmt: skip
    links = {d.get("name") for d in docs if d.get("kind") == "LinkConfig"}
    if link and link not in links:
        yield Violation(
            me, ("link",),
            f"{me}: link {link!r} is not a link this node configures ({', '.join(sorted(map(str, links))) or 'none'}); "
            "the VIP would never come up",
            "hold the VIP on the node's LAN link (nodes[].link)", "",
        )  # fmt: skip
    if addr is not None and str(addr) in node.addresses:
        yield Violation(
            me, ("name",), f"{me}: the VIP {addr} is also this node's address",
            "choose a free address in the node subnet for cluster.vip", "",
        )  # fmt: skip


# VolumeConfig and UserVolumeConfig (block/volume_config.go, block/user_volume_config.go) ----

SYSTEM_VOLUMES = ("STATE", "EPHEMERAL", "IMAGECACHE")
# constants.PartitionLabelLength - len(constants.UserVolumePrefix)
MAX_USER_VOLUME_NAME = 36 - len("u-")
FILESYSTEMS = ("none", "xfs", "vfat", "ext4", "iso9660", "swap")  # block.FilesystemType
VOLUME_TYPES = ("partition", "disk", "tmpfs", "directory", "symlink", "overlay")


def provisioning_rules(me: str, spec: Any, *, required: bool, sizes: bool) -> Iterator[Violation]:
    """``ProvisioningSpec.Validate(required, sizeSupported)`` (volume_config.go)."""
    spec = spec if isinstance(spec, dict) else {}
    match = _text(_get(spec, "diskSelector", "match"))
    if match:
        problem = disk_selector_error(match)
        if problem:
            yield Violation(me, ("provisioning", "diskSelector", "match"),
                            f"{me}: disk selector is invalid: {problem}",
                            "use the disk and system_disk of Talos's disk selectors, e.g. system_disk",
                            VOLUME_GO)  # fmt: skip
    elif required:
        yield Violation(me, ("provisioning", "diskSelector", "match"),
                        f"{me}: disk selector is required",
                        "add provisioning.diskSelector.match, e.g. system_disk", VOLUME_GO)  # fmt: skip
    min_text, max_text = _text(spec.get("minSize")), _text(spec.get("maxSize"))
    low = high = None
    relative = False
    if min_text:
        low, problem = parse_bytes(min_text)
        if low is None:
            yield Violation(me, ("provisioning", "minSize"), problem,
                            "write a size such as 20GiB", VOLUME_GO)  # fmt: skip
    if max_text:
        high, relative, problem = parse_size(max_text)
        if high is None:
            yield Violation(me, ("provisioning", "maxSize"), problem,
                            "write a size such as 100GiB or a percentage such as 50%", VOLUME_GO)  # fmt: skip
    if sizes:
        if low and high and not relative and low > high:
            yield Violation(me, ("provisioning", "minSize"), f"{me}: min size is greater than max size",
                            "make minSize at most maxSize", VOLUME_GO)  # fmt: skip
        elif required and not min_text and not max_text:
            yield Violation(me, ("provisioning",), f"{me}: min size or max size is required",
                            "set provisioning.minSize (and maxSize when it must not grow)",
                            VOLUME_GO)  # fmt: skip
    elif min_text or max_text or "grow" in spec:
        yield Violation(me, ("provisioning",), f"{me}: min size, max size and grow are not supported",
                        "drop minSize, maxSize and grow from a whole-disk volume", VOLUME_GO)  # fmt: skip


def volume_rules(
    doc: dict[str, Any], docs: Sequence[dict[str, Any]], node: Node
) -> Iterator[Violation]:
    """``VolumeConfigV1Alpha1.Validate`` (volume_config.go)."""
    me = doc_id(doc)
    name = _text(doc.get("name"))
    if name not in SYSTEM_VOLUMES:
        listed = " ".join(go_quote(v) for v in SYSTEM_VOLUMES)
        yield Violation(me, ("name",), f"{me}: only [{listed}] volumes are supported",
                        "a VolumeConfig sizes a system volume; use UserVolumeConfig for data",
                        VOLUME_GO)  # fmt: skip
        return
    if name == "STATE" and doc.get("provisioning"):
        yield Violation(me, ("provisioning",),
                        f'{me}: provisioning config is not allowed for the "STATE" volume',
                        "drop provisioning from the STATE volume", VOLUME_GO)  # fmt: skip
    yield from provisioning_rules(me, doc.get("provisioning"), required=False, sizes=True)  # fmt: skip


def user_volume_rules(
    doc: dict[str, Any], docs: Sequence[dict[str, Any]], node: Node
) -> Iterator[Violation]:
    """``UserVolumeConfigV1Alpha1.Validate`` and ``FilesystemSpec.Validate``."""
    me = doc_id(doc)

    def bad(path: Path, message: str, fix: str) -> Violation:
        return Violation(me, path, f"{me}: {message}", fix, USER_VOLUME_GO)

    name = _text(doc.get("name"))
    if not name:
        yield bad(("name",), "name is required", "name the volume (it is mounted at /var/mnt/NAME)")
    if not 1 <= len(name) <= MAX_USER_VOLUME_NAME:
        yield bad(("name",), f"name must be between 1 and {MAX_USER_VOLUME_NAME} characters long",
                  "shorten the name")  # fmt: skip
    if re.search(r"[^a-zA-Z0-9-]", name):
        yield bad(("name",), "name can only contain lowercase and uppercase ASCII letters, digits, and hyphens",
                  "use letters, digits and '-' only")  # fmt: skip
    vtype = _text(doc.get("volumeType")) or "partition"
    if vtype.lower() not in VOLUME_TYPES:
        yield Violation(me, ("volumeType",), f"{vtype} does not belong to VolumeType values",
                        "use volumeType partition, disk or directory", USER_VOLUME_GO)  # fmt: skip
        return
    vtype = vtype.lower()
    fs = doc.get("filesystem") if isinstance(doc.get("filesystem"), dict) else {}
    if vtype == "directory":
        for key, what in (("provisioning", "provisioning"), ("encryption", "encryption"),
                          ("filesystem", "filesystem")):  # fmt: skip
            if doc.get(key):
                yield bad((key,), f"{what} spec is invalid for volumeType directory",
                          f"drop {key} from a directory volume")  # fmt: skip
        return
    if vtype not in ("partition", "disk"):
        yield bad(("volumeType",), f"unsupported volume type {go_quote(vtype)}",
                  "use volumeType partition, disk or directory")  # fmt: skip
        return
    yield from provisioning_rules(me, doc.get("provisioning"), required=True,
                                  sizes=vtype == "partition")  # fmt: skip
    fstype = _text(fs.get("type")) or "none"
    if fstype.lower() not in FILESYSTEMS:
        yield Violation(me, ("filesystem", "type"), f"{fstype} does not belong to FilesystemType values",
                        "use filesystem.type xfs or ext4", USER_VOLUME_GO)  # fmt: skip
    elif fstype.lower() not in ("none", "xfs", "ext4"):
        yield bad(("filesystem", "type"), f"unsupported filesystem type: {fstype.lower()}",
                  "use filesystem.type xfs or ext4")  # fmt: skip
    elif fs.get("projectQuotaSupport") is True and fstype.lower() not in ("none", "xfs"):
        yield bad(("filesystem", "projectQuotaSupport"),
                  "project quota support is only available for xfs filesystem",
                  "use xfs, or drop projectQuotaSupport")  # fmt: skip


# v1alpha1.Config (v1alpha1/v1alpha1_validation.go): the parts onecluster patches ---------------


def v1alpha1_rules(
    doc: dict[str, Any], docs: Sequence[dict[str, Any]], node: Node
) -> Iterator[Violation]:
    """``Config.Validate`` in metal mode, for install, kubelet.nodeIP, the etcd section and
    ``machine.features.kubernetesTalosAPIAccess`` (control planes only, known roles)."""
    me = "v1alpha1.Config"
    machine = doc.get("machine") if isinstance(doc.get("machine"), dict) else {}
    install = machine.get("install")
    if install is None:
        yield Violation(me, ("machine", "install"),
                        f'{me}: install instructions are required in "metal" mode',
                        "set nodes[].installDisk", V1ALPHA1_GO)  # fmt: skip
    elif not _text(_get(install, "disk")) and not _get(install, "diskSelector"):
        yield Violation(me, ("machine", "install", "disk"),
                        f"{me}: either install disk or diskSelector should be defined",
                        "set nodes[].installDisk, e.g. /dev/sda", V1ALPHA1_GO)  # fmt: skip
    subnets = _get(machine, "kubelet", "nodeIP", "validSubnets") or []
    for i, cidr in enumerate(subnets):
        text = _text(cidr).removeprefix("!")
        if not _subnet_or_address(text):
            yield Violation(me, ("machine", "kubelet", "nodeIP", "validSubnets", i),
                            f"{me}: kubelet nodeIP subnet is not valid: {go_quote(text)}",
                            "write network.subnet as ADDRESS/PREFIX", V1ALPHA1_GO)  # fmt: skip
    if not node.controlplane and _get(doc, "cluster", "etcd") is not None:
        yield Violation(me, ("cluster", "etcd"),
                        f"{me}: etcd config is only allowed on control plane machines",
                        "keep cluster.etcd in talos/patches/controlplane.yaml", V1ALPHA1_GO)  # fmt: skip
    access = ("machine", "features", "kubernetesTalosAPIAccess")
    if _get(doc, *access, "enabled") is True:
        if not node.controlplane:
            yield Violation(me, (*access, "enabled"),
                            f"{me}: feature Kubernetes Talos API Access can only be enabled on "
                            "control plane machines",
                            "keep machine.features.kubernetesTalosAPIAccess in "
                            "talos/patches/controlplane.yaml", V1ALPHA1_GO)  # fmt: skip
        for i, granted in enumerate(_get(doc, *access, "allowedRoles") or []):
            if _text(granted) not in TALOS_ROLES:
                yield Violation(me, (*access, "allowedRoles", i),
                                f"{me}: invalid role {go_quote(_text(granted))} in allowed roles "
                                "for Kubernetes Talos API Access",
                                f"use one of {', '.join(TALOS_ROLES)}", V1ALPHA1_GO)  # fmt: skip


def _subnet_or_address(text: str) -> bool:
    """go-net's ``ParseSubnetOrAddress``: a prefix, or a bare address."""
    if "/" in text:
        return parse_prefix(text)[0] is not None
    return parse_addr(text)[0] is not None


RULES: dict[str | None, Rule] = {
    "LinkConfig": link_rules,
    "HostnameConfig": hostname_rules,
    "ResolverConfig": resolver_rules,
    "Layer2VIPConfig": vip_rules,
    "VolumeConfig": volume_rules,
    "UserVolumeConfig": user_volume_rules,
    None: v1alpha1_rules,
}


def violations(docs: Sequence[dict[str, Any]], node: Node) -> list[Violation]:
    """Every rule the documents of one node's config break (empty: Talos would accept them)."""
    found: list[Violation] = []
    for doc in docs:
        rule = RULES.get(doc.get("kind")) if isinstance(doc, dict) else None
        if rule is not None:
            found.extend(rule(doc, docs, node))
    return found


def ip_of(text: str) -> str:
    """The address of ``ADDRESS/PREFIX`` (or of a bare address), normalised."""
    return str(ip_address(text.partition("/")[0]))
