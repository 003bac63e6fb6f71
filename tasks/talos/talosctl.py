"""The talosctl commands onecluster runs, as pure argv builders (tested without the binary).

Commands that talk to a configured node take the run's talosconfig and always name ``--nodes``
and ``--endpoints`` explicitly, so nothing depends on the contexts of a talosconfig file.
Commands for nodes in maintenance mode use ``--insecure`` and no talosconfig. Local commands
(generating and patching configs) take file paths only; no secret value is ever an argument.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..engine.command import Command, Tool, register_tool
from ..engine.inventory import Inventory, Node
from .machineconfig import installer_image, kubernetes_version

SYSTEM_LABELS_TO_WIPE = ("STATE", "EPHEMERAL")

TALOSCTL = register_tool(
    Tool(
        "talosctl",
        "TALOSCTL",
        "see https://www.talos.dev/v1.12/talos-guides/install/talosctl/ "
        "(e.g. `brew install siderolabs/tap/talosctl`)",
    )
)


def _talosctl(*args: str, **options: object) -> Command:
    return Command("talosctl", tuple(args), **options)  # type: ignore[arg-type]


def on_node(
    talosconfig: str, ip: str, *args: str, endpoint: str | None = None, **options: object
) -> Command:
    """``talosctl --talosconfig T <args> --nodes IP --endpoints E`` (E defaults to the node)."""
    return _talosctl(
        "--talosconfig", talosconfig, *args, "--nodes", ip, "--endpoints", endpoint or ip,
        **options,
    )  # fmt: skip


# Local: secrets and configs ---------------------------------------------------------------------


def gen_secrets(inv: Inventory, out: Path) -> Command:
    """Generate a new secrets bundle (the cluster's PKI and tokens) into ``out``."""
    return _talosctl(
        "gen", "secrets", "--talos-version", inv.cluster.talos_version, "--output-file", str(out)
    )


def gen_config(
    inv: Inventory,
    secrets: Path,
    out: Path,
    *,
    common: Path | None = None,
    controlplane: Path | None = None,
    types: Sequence[str] = ("controlplane", "worker", "talosconfig"),
) -> Command:
    """Render the base configs (and talosconfig) from the bundle and the repo's patches."""
    patches: list[str] = []
    if common is not None:
        patches += ["--config-patch", f"@{common}"]
    if controlplane is not None:
        patches += ["--config-patch-control-plane", f"@{controlplane}"]
    return _talosctl(
        "gen", "config", inv.name, inv.cluster.endpoint,
        "--with-secrets", str(secrets),
        "--talos-version", inv.cluster.talos_version,
        "--kubernetes-version", kubernetes_version(inv),
        *patches,
        "--with-docs=false", "--with-examples=false",
        "--output-types", ",".join(types),
        "--output", str(out),
        "--force",
    )  # fmt: skip


def patch_config(base: Path, patch: Path, out: Path) -> Command:
    """Apply one node's patch to the base config of its role."""
    return _talosctl(
        "machineconfig", "patch", str(base), "--patch", f"@{patch}", "--output", str(out)
    )


def validate_config(path: Path) -> Command:
    """Validate a finished node config as Talos does on bare metal."""
    return _talosctl("validate", "--config", str(path), "--mode", "metal")


def config_endpoints(talosconfig: str, inv: Inventory) -> list[Command]:
    """Point a talosconfig at the control planes (endpoints) and the first of them (node)."""
    cps = [str(n.ip) for n in inv.control_planes]
    return [
        _talosctl("--talosconfig", talosconfig, "config", "endpoint", *cps),
        _talosctl("--talosconfig", talosconfig, "config", "node", cps[0]),
    ]


# Nodes -----------------------------------------------------------------------------------------


def maintenance_probe(node: Node) -> Command:
    """Succeeds only while ``node`` is in maintenance mode (later it demands a client cert).

    ``-o json`` prints one JSON object per disk (``cmd/talosctl/cmd/talos/output/json.go``), whose
    ``spec.dev_path`` and ``spec.symlinks`` say which install disks exist.
    """
    return _talosctl(
        "get", "disks", "--insecure", "--nodes", str(node.ip), "-o", "json", timeout=30
    )


def apply_config(talosconfig: str, node: Node, file: Path, *, insecure: bool) -> Command:
    """Apply ``file`` to ``node``: ``--insecure`` in maintenance mode, authenticated afterwards."""
    if insecure:
        return _talosctl("apply-config", "--insecure", "--nodes", str(node.ip), "--file", str(file))
    return on_node(talosconfig, str(node.ip), "apply-config", "--file", str(file))


def machineconfig(talosconfig: str, node: Node) -> Command:
    """The config a configured node runs, as YAML (read-only; authenticated).

    The resource is ``MachineConfigs.config.talos.dev`` ``v1alpha1``; its spec is the config's
    raw YAML (pkg/machinery/resources/config/machine_config.go: "presented as raw YAML string").
    """
    return on_node(talosconfig, str(node.ip), "get", "machineconfig", "-o", "yaml", timeout=30)


def machineconfigs(talosconfig: str, inv: Inventory) -> Command:
    """The config every node runs, in one read through the control planes (read-only).

    At v1.12 ``talosctl get`` resolves the resource type on the first of ``--nodes`` (when that
    fails it prints nothing), then asks each node in turn through the endpoint's apid; each
    resource is printed after a ``node: <as given in --nodes>`` line, ``---`` between them, and
    the nodes that failed are collected and reported after the others were printed, exit code 1
    (``cmd/talosctl/cmd/talos/get.go``, ``cmd/talosctl/pkg/talos/helpers/resources.go``,
    ``cmd/talosctl/cmd/talos/output/yaml.go``). Exit 1 is therefore an answer too: what was
    printed is what those nodes run. Several endpoints are tried round-robin
    (``pkg/machinery/client/resolver/roundrobin.go``).
    """
    return _talosctl(
        "--talosconfig", talosconfig, "get", "machineconfig", "-o", "yaml",
        "--nodes", ",".join(str(n.ip) for n in inv.nodes),
        "--endpoints", ",".join(str(n.ip) for n in inv.control_planes),
        ok_codes=(0, 1), timeout=30,
    )  # fmt: skip


def version(talosconfig: str, node: Node) -> Command:
    """Answers once the node's API serves the applied config; prints the node's ``Tag:``.

    The server block is always the long form (``cmd/talosctl/cmd/talos/version.go``: ``--short``
    shortens the client's only), so the node's version is its ``Tag:`` line after ``Server:``.
    """
    return on_node(talosconfig, str(node.ip), "version", timeout=30)


def client_version() -> Command:
    """The talosctl client's own version, asking no node (``Client:`` / ``Talos v1.12.4``)."""
    return _talosctl("version", "--client", "--short", timeout=30)


def etcd_status(talosconfig: str, node: Node) -> Command:
    """Succeeds only when etcd runs on ``node``, i.e. the cluster was bootstrapped."""
    return on_node(talosconfig, str(node.ip), "etcd", "status", timeout=30)


def etcd_members_status(talosconfig: str, inv: Inventory) -> Command:
    """``talosctl etcd status`` of every control plane at once: one row per member that answered.

    apid fans the call out to each of ``--nodes`` (endpoints: the control planes); the output is
    a table with a ``NODE`` column first (``cmd/talosctl/cmd/talos/etcd.go`` at v1.12.4), and a
    node that did not answer is a warning on stderr, not a row.
    """
    ips = ",".join(str(n.ip) for n in inv.control_planes)
    return _talosctl(
        "--talosconfig", talosconfig, "etcd", "status", "--nodes", ips, "--endpoints", ips
    )


def etcd_snapshot(talosconfig: str, node: Node, path: str) -> Command:
    """Stream an etcd snapshot of ``node`` to ``path`` (talosctl writes it 0600 via ``.part``)."""
    return on_node(talosconfig, str(node.ip), "etcd", "snapshot", path)


def bootstrap(talosconfig: str, node: Node) -> Command:
    """Bootstrap etcd on ``node`` (once per cluster, on the first control plane)."""
    return on_node(talosconfig, str(node.ip), "bootstrap")


def kubeconfig(talosconfig: str, node: Node, path: str) -> Command:
    """Fetch an admin kubeconfig into ``path`` (merged into it when it exists)."""
    return on_node(talosconfig, str(node.ip), "kubeconfig", path, "--force")


def health(talosconfig: str, inv: Inventory, timeout: str) -> Command:
    """Wait until every listed node, etcd, the API server and the kubelets are healthy."""
    first = inv.first_control_plane
    return on_node(
        talosconfig,
        str(first.ip),
        "health",
        "--control-plane-nodes", ",".join(str(n.ip) for n in inv.control_planes),
        "--worker-nodes", ",".join(str(n.ip) for n in inv.workers),
        "--wait-timeout", timeout,
    )  # fmt: skip


def upgrade(talosconfig: str, inv: Inventory, node: Node, timeout: str) -> Command:
    """Upgrade ``node`` to the inventory's installer image and wait for it to come back.

    ``--wait`` tracks the node until it is back with a new boot ID
    (``cmd/talosctl/cmd/talos/upgrade.go``); it does not prove the node booted the new image,
    which is why the rolling upgrade asks the node's version afterwards.
    """
    return on_node(
        talosconfig, str(node.ip), "upgrade",
        "--image", installer_image(inv), "--wait", "--timeout", timeout,
    )  # fmt: skip


def upgrade_k8s(talosconfig: str, inv: Inventory, *, dry_run: bool) -> Command:
    """Upgrade Kubernetes to the inventory's version (talosctl's own ``--dry-run`` first)."""
    first = inv.first_control_plane
    extra = ("--dry-run",) if dry_run else ()
    return on_node(
        talosconfig, str(first.ip), "upgrade-k8s", "--to", kubernetes_version(inv), *extra
    )


def reset(talosconfig: str, node: Node, *, graceful: bool, volumes: Sequence[str] = ()) -> Command:
    """Wipe STATE and EPHEMERAL (and the user ``volumes``, e.g. ``u-longhorn``) and reboot.

    ``--system-labels-to-wipe`` names volumes by their ``VolumeStatus`` ID, and a user volume's ID
    is ``u-<name>`` (``constants.UserVolumePrefix``; ``internal/app/machined/internal/server/
    v1alpha1/v1alpha1_server.go``, Reset). ``--user-disks-to-wipe`` would not do: it refuses the
    system disk, where the Longhorn volume lives. The node comes back in maintenance mode.
    """
    labels = (*SYSTEM_LABELS_TO_WIPE, *volumes)
    wipe = [a for label in labels for a in ("--system-labels-to-wipe", label)]
    return on_node(
        talosconfig, str(node.ip), "reset",
        f"--graceful={str(graceful).lower()}", "--reboot", *wipe, "--wait=false",
    )  # fmt: skip
