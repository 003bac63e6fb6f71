"""Talos's own Validate rules, offline: each case is a config Talos v1.12.4 rejects, with its words.

Every case names the siderolabs/talos file (at v1.12.4) whose rule it breaks and the exact text
Talos prints for it; a case changes one node's merged patch stack the way a bad patch would. The
same cases run against the real ``talosctl validate --mode metal`` where talosctl is installed
(``nox -s talos``; see tests/test_talos_machineconfig.py for the pipeline that makes the configs).
"""

from __future__ import annotations

import copy
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from conftest import call_task, task_context
from invoke.exceptions import Exit
from test_talos_fixtures import make_talos_env, write_inventory
from test_talos_machineconfig import real_configs  # noqa: F401  (a fixture)

from tasks.engine.errors import InventoryError
from tasks.engine.inventory import load_inventory
from tasks.stack import STACK
from tasks.talos import machineconfig as mc
from tasks.talos import rules
from tasks.talos import tasks as talos_tasks

INV = load_inventory()
WORKER = INV.node("talostrk2")
CONTROL_PLANE = INV.node("talostrk1")
TAG = rules.TALOS_RELEASE

Docs = list[dict[str, Any]]


def doc(docs: Docs, kind: str | None) -> dict[str, Any]:
    return next(d for d in docs if d.get("kind") == kind)


def setting(kind: str | None, path: tuple, value: Any) -> Callable[[Docs], None]:
    """Set ``path`` of the (first) document of ``kind``; ``...`` deletes it."""

    def change(docs: Docs) -> None:
        node = doc(docs, kind)
        for key in path[:-1]:
            node = node.setdefault(key, {}) if isinstance(node, dict) else node[key]
        if value is ...:
            del node[path[-1]]
        else:
            node[path[-1]] = value

    return change


def both(*changes: Callable[[Docs], None]) -> Callable[[Docs], None]:
    def change(docs: Docs) -> None:
        for c in changes:
            c(docs)

    return change


@dataclass(frozen=True)
class Case:
    id: str
    upstream: str
    change: Callable[[Docs], None]
    says: str
    field: str
    node: Any = WORKER


LINK = "LinkConfig/enp1s0"
LONG_LABEL = "a" * 64
CASES = [
    # network/link.go: CommonLinkConfig.Validate, the route loop (the rebuild-stopping one)
    Case("default-route-with-0.0.0.0/0", rules.LINK_GO,
         setting("LinkConfig", ("routes", 0, "destination"), "0.0.0.0/0"),
         f"{LINK}: route 0 destination must be a valid IP prefix", "routes[0].destination"),
    Case("route-gateway-unspecified", rules.LINK_GO,
         setting("LinkConfig", ("routes", 0, "gateway"), "0.0.0.0"),
         f"{LINK}: route 0 gateway must be a valid IP address", "routes[0].gateway"),
    Case("route-source-unspecified", rules.LINK_GO,
         setting("LinkConfig", ("routes", 0, "source"), "0.0.0.0"),
         f"{LINK}: route 0 source must be a valid IP address", "routes[0].source"),
    Case("route-gateway-malformed", rules.LINK_GO,
         setting("LinkConfig", ("routes", 0, "gateway"), "192.168.50"),
         'ParseAddr("192.168.50"): IPv4 address too short', "routes[0].gateway"),
    Case("link-without-name", rules.LINK_GO, setting("LinkConfig", ("name",), ...),
         "LinkConfig/: name must be specified", "name"),
    Case("address-empty", rules.LINK_GO, setting("LinkConfig", ("addresses", 0, "address"), ""),
         f"{LINK}: address 0 must be specified", "addresses[0].address"),
    Case("address-unspecified", rules.LINK_GO,
         setting("LinkConfig", ("addresses", 0, "address"), "0.0.0.0/24"),
         f"{LINK}: address 0 must be a valid IP address", "addresses[0].address"),
    Case("address-without-prefix", rules.LINK_GO,
         setting("LinkConfig", ("addresses", 0, "address"), "192.168.50.12"),
         """netip.ParsePrefix("192.168.50.12"): no '/'""", "addresses[0].address"),
    Case("address-prefix-out-of-range", rules.LINK_GO,
         setting("LinkConfig", ("addresses", 0, "address"), "192.168.50.12/33"),
         'netip.ParsePrefix("192.168.50.12/33"): prefix length out of range',
         "addresses[0].address"),
    # network/hostname.go: HostnameConfigV1Alpha1.Validate and V1Alpha1ConflictValidate
    Case("hostname-with-auto-stable", rules.HOSTNAME_GO,
         setting("HostnameConfig", ("auto",), "stable"),
         "HostnameConfig: 'auto' and 'hostname' cannot be set at the same time", "auto"),
    Case("hostname-missing-with-auto-off", rules.HOSTNAME_GO,
         setting("HostnameConfig", ("hostname",), ...),
         "HostnameConfig: either 'auto' or 'hostname' must be set", "hostname"),
    Case("hostname-auto-talos-addr", rules.HOSTNAME_GO,
         both(setting("HostnameConfig", ("hostname",), ...),
              setting("HostnameConfig", ("auto",), "talos-addr")),
         "HostnameConfig: invalid value for 'auto': talos-addr", "auto"),
    Case("hostname-auto-unknown", rules.HOSTNAME_GO,
         both(setting("HostnameConfig", ("hostname",), ...),
              setting("HostnameConfig", ("auto",), "dhcp")),
         "dhcp does not belong to AutoHostnameKind values", "auto"),
    Case("hostname-label-too-long", rules.HOSTNAME_GO,
         setting("HostnameConfig", ("hostname",), LONG_LABEL + ".lan"),
         f'HostnameConfig: invalid hostname "{LONG_LABEL}"', "hostname"),
    Case("hostname-fqdn-too-long", rules.HOSTNAME_GO,
         setting("HostnameConfig", ("hostname",), "a." * 127),
         "HostnameConfig: fqdn is too long: 254", "hostname"),
    Case("hostname-also-in-v1alpha1", rules.HOSTNAME_GO,
         setting(None, ("machine", "network", "hostname"), "talostrk2"),
         "static hostname is already set in v1alpha1 config", "hostname"),
    Case("stable-hostname-feature-in-v1alpha1", rules.HOSTNAME_GO,
         setting(None, ("machine", "features", "stableHostname"), True),
         "stable hostname is already set in v1alpha1 config", "auto"),
    # network/resolver.go: its address type and V1Alpha1ConflictValidate
    Case("nameservers-also-in-v1alpha1", rules.RESOLVER_GO,
         setting(None, ("machine", "network", "nameservers"), ["1.1.1.1"]),
         ".machine.network.nameservers is already set in v1alpha1 config", "nameservers"),
    Case("nameserver-malformed", rules.RESOLVER_GO,
         setting("ResolverConfig", ("nameservers", 1, "address"), "1.1.1"),
         'ParseAddr("1.1.1"): IPv4 address too short', "nameservers[1].address"),
    # network/layer2_vip.go: Layer2VIPConfigV1Alpha1.Validate
    Case("vip-without-name", rules.VIP_GO, setting("Layer2VIPConfig", ("name",), ...),
         "Layer2VIPConfig/: name must be specified", "name", CONTROL_PLANE),
    Case("vip-name-not-an-address", rules.VIP_GO,
         setting("Layer2VIPConfig", ("name",), "192.168.50.300"),
         "Layer2VIPConfig/192.168.50.300: name must be a valid IP address: "
         'ParseAddr("192.168.50.300"): IPv4 field has value >255', "name", CONTROL_PLANE),
    Case("vip-without-link", rules.VIP_GO, setting("Layer2VIPConfig", ("link",), ...),
         "Layer2VIPConfig/192.168.50.10: link must be specified", "link", CONTROL_PLANE),
    # block/volume_config.go: VolumeConfigV1Alpha1.Validate and ProvisioningSpec.Validate
    Case("volume-not-a-system-volume", rules.VOLUME_GO,
         setting("VolumeConfig", ("name",), "DATA"),
         'VolumeConfig/DATA: only ["STATE" "EPHEMERAL" "IMAGECACHE"] volumes are supported', "name"),
    Case("state-volume-provisioned", rules.VOLUME_GO, setting("VolumeConfig", ("name",), "STATE"),
         'VolumeConfig/STATE: provisioning config is not allowed for the "STATE" volume',
         "provisioning"),
    Case("volume-min-above-max", rules.VOLUME_GO,
         setting("VolumeConfig", ("provisioning", "minSize"), "200GiB"),
         "VolumeConfig/EPHEMERAL: min size is greater than max size", "provisioning.minSize"),
    Case("volume-selector-unknown-name", rules.VOLUME_GO,
         setting("VolumeConfig", ("provisioning", "diskSelector", "match"), "systemdisk"),
         "VolumeConfig/EPHEMERAL: disk selector is invalid: "
         "ERROR: <input>:1:1: undeclared reference to 'systemdisk' (in container '')",
         "provisioning.diskSelector.match"),
    Case("volume-size-unit-unknown", rules.VOLUME_GO,
         setting("VolumeConfig", ("provisioning", "maxSize"), "100 gigs"),
         "unhandled size name: gigs", "provisioning.maxSize"),
    Case("volume-percentage-above-100", rules.VOLUME_GO,
         setting("VolumeConfig", ("provisioning", "maxSize"), "120%"),
         "percentage must be between 0 and 100, got 120", "provisioning.maxSize"),
    # block/user_volume_config.go: UserVolumeConfigV1Alpha1.Validate and FilesystemSpec.Validate
    # (its provisioning goes through volume_config.go's ProvisioningSpec.Validate)
    Case("user-volume-name-too-long", rules.USER_VOLUME_GO,
         setting("UserVolumeConfig", ("name",), "l" * 35),
         f"UserVolumeConfig/{'l' * 35}: name must be between 1 and 34 characters long", "name"),
    Case("user-volume-name-underscore", rules.USER_VOLUME_GO,
         setting("UserVolumeConfig", ("name",), "long_horn"),
         "UserVolumeConfig/long_horn: name can only contain lowercase and uppercase ASCII "
         "letters, digits, and hyphens", "name"),
    Case("user-volume-without-selector", rules.VOLUME_GO,  # ProvisioningSpec.Validate
         setting("UserVolumeConfig", ("provisioning", "diskSelector"), ...),
         "UserVolumeConfig/longhorn: disk selector is required", "provisioning.diskSelector.match"),
    Case("user-volume-without-sizes", rules.VOLUME_GO,  # ProvisioningSpec.Validate
         setting("UserVolumeConfig", ("provisioning", "minSize"), ...),
         "UserVolumeConfig/longhorn: min size or max size is required", "provisioning"),
    Case("user-volume-selector-unknown-field", rules.VOLUME_GO,  # ProvisioningSpec.Validate
         setting("UserVolumeConfig", ("provisioning", "diskSelector", "match"), "disk.modle == 'x'"),
         "UserVolumeConfig/longhorn: disk selector is invalid: "
         "ERROR: <input>:1:5: undefined field 'modle'", "provisioning.diskSelector.match"),
    Case("user-volume-vfat", rules.USER_VOLUME_GO,
         setting("UserVolumeConfig", ("filesystem", "type"), "vfat"),
         "UserVolumeConfig/longhorn: unsupported filesystem type: vfat", "filesystem.type"),
    Case("user-volume-project-quota-on-ext4", rules.USER_VOLUME_GO,
         both(setting("UserVolumeConfig", ("filesystem", "type"), "ext4"),
              setting("UserVolumeConfig", ("filesystem", "projectQuotaSupport"), True)),
         "UserVolumeConfig/longhorn: project quota support is only available for xfs filesystem",
         "filesystem.projectQuotaSupport"),
    Case("user-volume-tmpfs", rules.USER_VOLUME_GO,
         setting("UserVolumeConfig", ("volumeType",), "tmpfs"),
         'UserVolumeConfig/longhorn: unsupported volume type "tmpfs"', "volumeType"),
    Case("user-volume-directory-provisioned", rules.USER_VOLUME_GO,
         setting("UserVolumeConfig", ("volumeType",), "directory"),
         "UserVolumeConfig/longhorn: provisioning spec is invalid for volumeType directory",
         "provisioning"),
    # v1alpha1/v1alpha1_validation.go: Config.Validate in metal mode, the parts the patches set
    Case("install-without-disk", rules.V1ALPHA1_GO,
         setting(None, ("machine", "install", "disk"), ""),
         "v1alpha1.Config: either install disk or diskSelector should be defined",
         "machine.install.disk"),
    Case("kubelet-valid-subnet-malformed", rules.V1ALPHA1_GO,
         setting(None, ("machine", "kubelet", "nodeIP", "validSubnets"), ["192.168.50.0/33"]),
         'v1alpha1.Config: kubelet nodeIP subnet is not valid: "192.168.50.0/33"',
         "machine.kubelet.nodeIP.validSubnets[0]"),
    Case("etcd-on-a-worker", rules.V1ALPHA1_GO,
         setting(None, ("cluster", "etcd", "extraArgs"), {"listen-metrics-urls": "http://0.0.0.0:2381"}),
         "v1alpha1.Config: etcd config is only allowed on control plane machines", "cluster.etcd"),
    Case("talos-api-access-on-a-worker", rules.V1ALPHA1_GO,
         setting(None, ("machine", "features", "kubernetesTalosAPIAccess"),
                 {"enabled": True, "allowedRoles": ["os:etcd:backup"],
                  "allowedKubernetesNamespaces": ["talos-backup"]}),
         "v1alpha1.Config: feature Kubernetes Talos API Access can only be enabled on control "
         "plane machines", "machine.features.kubernetesTalosAPIAccess.enabled"),
    Case("talos-api-access-unknown-role", rules.V1ALPHA1_GO,
         setting(None, ("machine", "features", "kubernetesTalosAPIAccess", "allowedRoles"),
                 ["os:etcd:restore"]),
         'v1alpha1.Config: invalid role "os:etcd:restore" in allowed roles for Kubernetes Talos '
         "API Access", "machine.features.kubernetesTalosAPIAccess.allowedRoles[0]",
         node=CONTROL_PLANE),
]  # fmt: skip


def stack(node) -> Docs:
    return copy.deepcopy(mc.node_patch_stack(INV, node))


def found(docs: Docs, node) -> list[rules.Violation]:
    return rules.violations(docs, rules.Node(node.role == "controlplane", (str(node.ip),)))


def test_at_least_twenty_of_talos_own_rules_are_covered():
    assert len(CASES) >= 20
    assert all(c.upstream for c in CASES)  # each is Talos's rule, not onecluster's
    assert len({c.says for c in CASES}) == len(CASES)


@pytest.mark.parametrize("node", INV.nodes, ids=lambda n: n.name)
def test_reference_inventory_passes_every_rule(node):
    assert found(mc.node_patch_stack(INV, node), node) == []


def test_reference_inventory_has_no_rule_errors():
    assert mc.talos_rule_errors(INV) == []


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_rule_rejects_what_talos_rejects(case):
    docs = stack(case.node)
    assert found(docs, case.node) == []
    case.change(docs)
    got = found(docs, case.node)
    assert case.says in [v.says for v in got], [v.says for v in got]
    (v,) = [v for v in got if v.says == case.says]
    assert v.upstream == case.upstream
    assert v.field == case.field
    assert v.fix
    assert f"Talos {TAG} rejects it: {case.says!r} (siderolabs/talos {case.upstream})" == v.message


# onecluster's own rules: configs Talos accepts but a node cannot work with ---------------------


def test_gateway_outside_the_link_subnet_is_refused():
    docs = stack(WORKER)
    setting("LinkConfig", ("routes", 0, "gateway"), "10.0.0.1")(docs)
    (v,) = found(docs, WORKER)
    assert v.upstream == "" and v.field == "routes[0].gateway"
    assert v.says == (
        f"{LINK}: route 0 gateway 10.0.0.1 is outside the link's subnets (192.168.50.0/24); "
        "Talos accepts it, but the kernel refuses the route (no default route)"
    )


def test_vip_on_a_worker_is_refused():
    docs = [*stack(WORKER), *copy.deepcopy(mc.node_documents(INV, CONTROL_PLANE)[-1:])]
    (v,) = found(docs, WORKER)
    assert v.says.startswith(
        "Layer2VIPConfig/192.168.50.10: virtual (shared) IP is not allowed on non-controlplane nodes"
    )


def test_vip_on_a_link_the_node_does_not_configure_is_refused():
    docs = stack(CONTROL_PLANE)
    setting("Layer2VIPConfig", ("link",), "eth9")(docs)
    (v,) = found(docs, CONTROL_PLANE)
    assert v.says == (
        "Layer2VIPConfig/192.168.50.10: link 'eth9' is not a link this node configures "
        "(enp1s0); the VIP would never come up"
    )


def test_vip_that_is_the_node_address_is_refused():
    docs = stack(CONTROL_PLANE)
    setting("Layer2VIPConfig", ("name",), str(CONTROL_PLANE.ip))(docs)
    (v,) = found(docs, CONTROL_PLANE)
    assert (
        v.says == "Layer2VIPConfig/192.168.50.11: the VIP 192.168.50.11 is also this node's address"
    )


# the parsers behind the messages (Go's net/netip, go-humanize) -----------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("1.2.3.4.5", 'ParseAddr("1.2.3.4.5"): IPv4 address too long'),
        ("01.2.3.4", 'ParseAddr("01.2.3.4"): IPv4 field has octet with leading zero'),
        ("1..2.3", 'ParseAddr("1..2.3"): IPv4 field must have at least one digit (at ".2.3")'),
        ("1.2.3.x", 'ParseAddr("1.2.3.x"): unexpected character (at "x")'),
        ("router", 'ParseAddr("router"): unable to parse IP'),
    ],
)
def test_addresses_are_parsed_as_go_parses_them(text, problem):
    assert rules.parse_addr(text) == (None, problem)


def test_sizes_are_parsed_as_go_humanize_parses_them():
    assert rules.parse_bytes("20GiB") == (20 * 1024**3, "")
    assert rules.parse_bytes("1,000 MB") == (10**9, "")
    assert rules.parse_bytes("50") == (50, "")
    assert rules.parse_size("50%") == (50, True, "")


# the rules as an inventory check: every task refuses a bad document before talosctl runs -------


@pytest.fixture
def env(tmp_path, monkeypatch, fake_tools):
    return make_talos_env(tmp_path, monkeypatch, fake_tools)


@pytest.fixture
def bad_common_patch(tmp_path, monkeypatch):
    """talos/patches/common.yaml with the Longhorn volume's minimum above its maximum."""
    text = mc.COMMON_PATCH.read_text().replace(
        "  minSize: 50GiB\n", "  minSize: 50GiB\n  maxSize: 10GiB\n"
    )
    patch = tmp_path / "common.yaml"
    patch.write_text(text)
    monkeypatch.setattr(mc, "COMMON_PATCH", patch)
    return patch


def test_bad_patch_is_one_error_naming_file_field_talos_message_and_fix(bad_common_patch):
    (error,) = mc.talos_rule_errors(INV)  # one problem, though every node gets the patch
    assert error.file == str(bad_common_patch)
    assert error.field == "UserVolumeConfig/longhorn provisioning.minSize"
    assert error.message == (
        f"Talos {TAG} rejects it: 'UserVolumeConfig/longhorn: min size is greater than max size' "
        f"(siderolabs/talos {rules.VOLUME_GO})"  # ProvisioningSpec.Validate
    )
    assert error.fix == "make minSize at most maxSize"


def test_every_task_s_inventory_load_refuses_a_bad_patch(bad_common_patch):
    with pytest.raises(InventoryError) as err:
        STACK.load()
    assert "min size is greater than max size" in str(err.value)
    assert str(bad_common_patch) in str(err.value)


@pytest.mark.parametrize("dry_run", [True, False], ids=["--dry-run", "run"])
def test_genconfig_refuses_a_bad_patch_before_any_talosctl_call(env, bad_common_patch, dry_run):
    with pytest.raises(Exit) as err:
        talos_tasks.genconfig(task_context(), dry_run=dry_run)
    assert "UserVolumeConfig/longhorn provisioning.minSize" in err.value.message
    assert str(bad_common_patch) in err.value.message
    assert env.fakes.argvs() == []


@pytest.mark.parametrize(
    ("task", "flags"), [("cluster.plan", {}), ("cluster.rebuild", {"dry_run": True})]
)
def test_cluster_plan_and_rebuild_refuse_a_bad_patch(env, bad_common_patch, task, flags):
    with pytest.raises(Exit) as err:
        call_task(task, **flags)
    assert "UserVolumeConfig/longhorn provisioning.minSize" in err.value.message
    assert env.fakes.argvs() == []


def test_the_old_default_route_is_reported_against_the_inventory(monkeypatch):
    # what the generator emitted before the fix: the error names the inventory field it comes from
    real = mc.node_documents

    def old(inv, node):
        docs = real(inv, node)
        doc(docs, "LinkConfig")["routes"] = [
            {"destination": "0.0.0.0/0", "gateway": "192.168.50.1"}
        ]
        return docs

    monkeypatch.setattr(mc, "node_documents", old)
    # one error, though every node's document has it: it is one field of the inventory
    errors = mc.talos_rule_errors(INV)
    assert len(errors) == 1
    assert errors[0].file == INV.source
    assert errors[0].field == "network.gateway (LinkConfig/enp1s0 routes[0].destination)"
    assert "route 0 destination must be a valid IP prefix" in errors[0].message


def test_an_inventory_with_a_rule_error_is_refused_by_catalogue_load(tmp_path, monkeypatch):
    monkeypatch.setattr(mc, "node_documents", lambda inv, node: [
        {"apiVersion": "v1alpha1", "kind": "HostnameConfig", "auto": "stable", "hostname": node.name},
    ])  # fmt: skip
    cluster = write_inventory(tmp_path)
    with pytest.raises(InventoryError) as err:
        STACK.load(cluster)
    assert "'auto' and 'hostname' cannot be set at the same time" in str(err.value)
    assert f"{cluster}: nodes[0].name (HostnameConfig auto)" in str(err.value)


# the same cases against the real binary (where talosctl is installed) ------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_real_talosctl_rejects_each_case_with_the_same_words(case, real_configs, tmp_path):  # noqa: F811
    text = real_configs[case.node.name].read_text()
    docs = [d for d in yaml.safe_load_all(text) if d]
    case.change(docs)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    run = subprocess.run(
        ["talosctl", "validate", "--config", str(bad), "--mode", "metal"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert run.returncode != 0, run.stdout
    assert case.says in run.stderr + run.stdout
