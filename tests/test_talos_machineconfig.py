"""The patches and the generated per-node documents against the Talos v1.12 config schema."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import task_context

from tasks.engine.inventory import REPO_ROOT, load_inventory
from tasks.talos import machineconfig as mc
from tasks.talos import rules, talosctl, versions

INV = load_inventory()
NODES = [n.name for n in INV.nodes]


@pytest.fixture
def schema(reference):
    return mc.load_schema(str(reference / "talos" / "config.schema.json"))


def docs_of(text: str) -> list[dict]:
    return mc.parse_documents(text)


def by_kind(docs: list[dict], kind: str | None) -> list[dict]:
    return [d for d in docs if d.get("kind") == kind]


@pytest.mark.parametrize("patch", ["common", "controlplane"])
def test_repo_patch_matches_talos_schema(schema, patch):
    docs = docs_of(mc.rendered_patches(INV)[patch])
    assert docs
    assert mc.schema_errors(docs, schema, patch) == []


@pytest.mark.parametrize("name", NODES)
def test_generated_node_patch_matches_talos_schema(schema, name):
    docs = docs_of(mc.node_patch(INV, INV.node(name)))
    assert mc.schema_errors(docs, schema, name) == []


@pytest.mark.parametrize("name", NODES)
def test_all_patches_of_a_node_merge_into_schema_valid_documents(schema, name):
    node = INV.node(name)
    docs = mc.node_patch_stack(INV, node)
    assert mc.schema_errors(docs, schema, name) == []
    (machine,) = by_kind(docs, None)
    assert machine["machine"]["install"] == {
        "image": mc.installer_image(INV),
        "wipe": False,
        "disk": node.install_disk,
    }
    assert ("cluster" in machine) == (node.role == "controlplane")


def test_hostname_patch_overrides_the_generated_auto_hostname(schema):
    # talosctl gen config (v1.12) emits `HostnameConfig: auto: stable`; Talos rejects a document
    # with a hostname unless auto is off, so the node patch must switch auto off explicitly
    generated = [{"apiVersion": "v1alpha1", "kind": "HostnameConfig", "auto": "stable"}]
    node = INV.node("talostrk2")
    (host,) = by_kind(mc.merge_documents(generated, mc.node_documents(INV, node)), "HostnameConfig")
    assert host == {"apiVersion": "v1alpha1", "kind": "HostnameConfig", "auto": "off",
                    "hostname": "talostrk2"}  # fmt: skip
    assert mc.schema_errors([host], schema, "merged") == []


def test_schema_check_names_the_offending_field(schema):
    broken = [
        {
            "machine": {
                "kubelet": {"extraMounts": [{"destination": "/x", "propagation": "rshared"}]}
            }
        },
        {"apiVersion": "v1alpha1", "kind": "Layer2VIPConfig", "link": "enp1s0"},
        {"apiVersion": "v1alpha1", "kind": "NoSuchConfig"},
    ]
    problems = mc.schema_errors(broken, schema, "patch.yaml")
    assert len(problems) == 3
    assert "machine.kubelet.extraMounts.0" in problems[0] and "propagation" in problems[0]
    assert "Layer2VIPConfig" in problems[1] and "'name' is a required property" in problems[1]
    assert "unknown kind 'NoSuchConfig'" in problems[2]


def test_common_patch_mounts_longhorn_volume_into_kubelet():
    docs = docs_of(mc.rendered_patches(INV)["common"])
    (machine,) = by_kind(docs, None)
    mounts = machine["machine"]["kubelet"]["extraMounts"]
    assert mounts == [
        {"destination": "/var/mnt/longhorn", "type": "bind", "source": "/var/mnt/longhorn",
         "options": ["bind", "rshared", "rw"]}
    ]  # fmt: skip
    (volume,) = by_kind(docs, "UserVolumeConfig")
    assert volume["name"] == "longhorn"  # Talos mounts user volume <name> at /var/mnt/<name>
    (ephemeral,) = by_kind(docs, "VolumeConfig")
    assert ephemeral["name"] == "EPHEMERAL" and ephemeral["provisioning"]["grow"] is False
    assert machine["machine"]["install"]["image"] == mc.installer_image(INV)
    assert machine["machine"]["install"]["image"] == (
        "factory.talos.dev/metal-installer/"
        "613e1592b2da41ae5e265e8789429f22e121aab91cb4deb6bc3c0b6262961245:v1.12.4"
    )
    assert machine["machine"]["kubelet"]["nodeIP"]["validSubnets"] == ["192.168.50.0/24"]


def test_controlplane_patch_schedules_workloads_and_exposes_metrics():
    (doc,) = docs_of(mc.rendered_patches(INV)["controlplane"])
    cluster = doc["cluster"]
    assert cluster["allowSchedulingOnControlPlanes"] is True
    assert cluster["controllerManager"]["extraArgs"]["bind-address"] == "0.0.0.0"
    assert cluster["etcd"]["extraArgs"]["listen-metrics-urls"] == "http://0.0.0.0:2381"


@pytest.mark.parametrize("name", NODES)
def test_node_patch_carries_hostname_address_and_install_disk(name):
    node = INV.node(name)
    docs = docs_of(mc.node_patch(INV, node))
    assert by_kind(docs, None) == [{"machine": {"install": {"disk": node.install_disk}}}]
    (host,) = by_kind(docs, "HostnameConfig")
    assert (host["hostname"], host["auto"]) == (name, "off")
    (link,) = by_kind(docs, "LinkConfig")
    assert link["name"] == node.link
    assert link["addresses"] == [{"address": f"{node.ip}/24"}]
    # a default route is a gateway with no destination (siderolabs/talos v1.12.4,
    # pkg/machinery/config/types/network/link.go: an unspecified destination is rejected)
    assert link["routes"] == [{"gateway": "192.168.50.1"}]
    (resolver,) = by_kind(docs, "ResolverConfig")
    assert resolver["nameservers"] == [{"address": "192.168.50.1"}, {"address": "1.1.1.1"}]


@pytest.mark.parametrize("name", NODES)
def test_vip_is_held_by_control_planes_only_on_their_link(name):
    node = INV.node(name)
    vips = by_kind(docs_of(mc.node_patch(INV, node)), "Layer2VIPConfig")
    if node.role == "controlplane":
        assert vips == [{"apiVersion": "v1alpha1", "kind": "Layer2VIPConfig",
                         "name": "192.168.50.10", "link": node.link}]  # fmt: skip
    else:
        assert vips == []


def test_schematic_lists_longhorn_extensions():
    data = yaml.safe_load((REPO_ROOT / INV.talos.schematic.file).read_text())
    listed = data["customization"]["systemExtensions"]["officialExtensions"]
    assert set(mc.REQUIRED_EXTENSIONS) <= set(listed)
    assert mc.schematic_errors(INV) == []


# The real binary ---------------------------------------------------------------------------------
# `nox -s talos` (and the GitHub Actions job `talos-validate`) sets this: there a missing talosctl
# is a failure, not a skip
REAL_TALOSCTL = "ONECLUSTER_REAL_TALOSCTL"


def need_real_talosctl() -> str:
    """The talosctl on PATH; skip with one line where there is none (fail under nox -s talos)."""
    found = shutil.which("talosctl")
    if found:
        return found
    if os.environ.get(REAL_TALOSCTL):
        pytest.fail(
            f"talosctl is not on PATH but ${REAL_TALOSCTL} is set: install talosctl "
            f"{INV.cluster.talos_version} ({versions.client_download(INV.cluster.talos_version)})"
        )
    pytest.skip("talosctl is not installed (nox -s talos runs this with the pinned talosctl)")


@pytest.fixture(scope="module")
def real_configs(tmp_path_factory) -> dict[str, Path]:
    """Every node's config, made by the real pipeline from a throwaway secrets bundle.

    ``talos.genconfig --out``: talosctl gen secrets (into an in-memory store, no Infisical), gen
    config with the repo's patches, machineconfig patch per node, validate --mode metal per node.
    """
    need_real_talosctl()
    from tasks.secrets import infisical
    from tasks.secrets.store import MemoryStore
    from tasks.talos import tasks as talos_tasks

    store = MemoryStore()
    out = tmp_path_factory.mktemp("talos") / "configs"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(infisical, "open_store", lambda inventory: store)
        talos_tasks.genconfig(task_context(), out=str(out))
    return {name: out / f"{name}.yaml" for name in NODES}


def test_real_talosctl_validates_every_generated_node_config_in_metal_mode(real_configs):
    # genconfig ran `talosctl validate --mode metal` on each node config: any rejection failed it
    for name in NODES:
        kinds = {d.get("kind") for d in docs_of(real_configs[name].read_text())}
        assert {"HostnameConfig", "LinkConfig", "ResolverConfig", "UserVolumeConfig"} <= kinds


@pytest.mark.parametrize("name", NODES)
def test_real_talosctl_configs_pass_every_offline_rule(real_configs, name):
    node = INV.node(name)
    docs = docs_of(real_configs[name].read_text())
    assert rules.violations(docs, rules.Node(node.role == "controlplane", (str(node.ip),))) == []


def test_real_talosctl_takes_the_all_nodes_config_read(real_configs):
    """``talosctl.machineconfigs`` as the real client parses it: pointed at a closed local port
    (no node to answer), it fails on the connection, never on its flags or its ``--nodes`` list."""
    talosconfig = real_configs[NODES[0]].parent / "talosconfig"
    args = list(talosctl.machineconfigs(str(talosconfig), INV).args)
    args[args.index("--endpoints") + 1] = "127.0.0.1:1"
    done = subprocess.run(
        [need_real_talosctl(), *args], capture_output=True, text=True, timeout=120, check=False
    )
    said = done.stdout + done.stderr
    assert done.returncode != 0, said  # nothing answered
    assert "unknown flag" not in said and "Usage:" not in said, said
