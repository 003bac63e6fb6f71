"""The options a Talos task hands its steps (``ctx.option(TalosOptions)`` reads them)."""

from __future__ import annotations

from dataclasses import dataclass

HEALTH_TIMEOUT = "10m"


@dataclass(frozen=True)
class TalosOptions:
    """What the Talos tasks' flags ask of their steps; the defaults are a plain rebuild's."""

    # generate a new secrets bundle even though one may exist (needs yes)
    new_pki: bool = False
    yes: bool = False
    # treat every node as in maintenance mode (skip the per-node probe)
    insecure: bool = False
    # also write the node configs and talosconfig here (genconfig --out)
    out: str | None = None
    # how long health gates and upgrades wait
    timeout: str = ""
    # how long bootstrap waits for the first control plane's API
    api_timeout: str = HEALTH_TIMEOUT
    # where kubeconfig / talosconfig exports go (the user's files, or --output)
    kubeconfig_target: str | None = None
    talosconfig_target: str | None = None
    # where talos.upgrade keeps the etcd snapshot taken before each control plane (None: the
    # run's private workdir, removed with it)
    snapshot_dir: str | None = None
    # talos.reset also wipes the user volumes (the Longhorn data)
    wipe_volumes: bool = False
    # seconds between polls of a gate (None: each wait's own default); tests set 0
    poll_interval: float | None = None
