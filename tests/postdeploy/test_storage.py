"""Storage layer: what Longhorn needs on each node, and the health of its volumes."""

import pytest

from tasks.verify.probe import HOST_ROOT
from tasks.verify.verification import longhorn_volume_problems, module_present, mount_propagation

pytestmark = pytest.mark.layer("storage")

LONGHORN_PATH = "/var/mnt/longhorn"
# installed by the siderolabs/iscsi-tools system extension
ISCSI_TOOLS = ("/usr/local/sbin/iscsiadm", "/usr/local/sbin/iscsid")
ISCSI_MODULES = ("iscsi_tcp", "libiscsi", "scsi_transport_iscsi")
NO_ISCSI = "kind node images carry no iSCSI extension"


def test_longhorn_path_mounted_and_shared(host):
    # the kubelet's mount namespace is where the Talos extra mount lands and where CSI mounts
    # must propagate from, so that is the one read (the probe shares the host PID namespace)
    kubelet = host.check_output("pidof kubelet").split()[0]
    fields = mount_propagation(
        host.file(f"/proc/{kubelet}/mountinfo").content_string, LONGHORN_PATH
    )
    assert fields is not None, f"{LONGHORN_PATH} is not a mount point for the kubelet"
    assert any(f.startswith("shared:") for f in fields), f"{LONGHORN_PATH} propagation: {fields}"


@pytest.mark.live_only(NO_ISCSI)
@pytest.mark.parametrize("tool", ISCSI_TOOLS)
def test_iscsi_tool_present(host, tool):
    assert host.file(HOST_ROOT + tool).is_file


@pytest.mark.live_only(NO_ISCSI)
@pytest.mark.parametrize("module", ISCSI_MODULES)
def test_iscsi_module_present(host, module):
    release = host.check_output("uname -r")
    dep = builtin = ""
    for base in (f"{HOST_ROOT}/usr/lib/modules/{release}", f"{HOST_ROOT}/lib/modules/{release}"):
        dep += host.run(f"cat {base}/modules.dep").stdout
        builtin += host.run(f"cat {base}/modules.builtin").stdout
    loaded = host.file("/proc/modules").content_string
    assert module_present(module, loaded, dep, builtin), f"kernel module {module} not available"


@pytest.mark.live_only("the kind profile stands local-path in for Longhorn")
def test_longhorn_volumes_healthy_with_two_replicas(kube):
    volumes = kube.json("get", "volumes.longhorn.io", "-n", "longhorn-system")
    assert volumes["items"], "no Longhorn volumes: nothing claims storage yet"
    assert longhorn_volume_problems(volumes, replicas=2) == []
