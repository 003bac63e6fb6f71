"""Versions that go together: Kubernetes for the pinned Talos, the talosctl client, kubectl.

:data:`SUPPORT_MATRIX` is the one table of which Kubernetes versions each Talos minor release
runs, copied from siderolabs/talos (``pkg/machinery/compatibility/talos112/talos112.go`` at
v1.12.4: ``MinimumKubernetesVersion`` 1.30.0, ``MaximumKubernetesVersion`` 1.35.99, and
``kubernetes_version.go``'s ``SupportedWith``, which refuses the maximum itself; the default is
``constants.DefaultKubernetesVersion``). :func:`kubernetes_version_errors` is an inventory check;
:func:`client_problems` asks ``talosctl version --client --short`` once per run, before the first
Talos step, whether the client is the release the inventory pins (Sidero recommends matching
them). kubectl must be within :data:`KUBECTL_SKEW` minor versions of the cluster's Kubernetes.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from ..engine.context import RunContext
from ..engine.errors import CommandError, FieldError
from ..engine.inventory import Inventory
from ..engine.output import echo
from . import talosctl

Version = tuple[int, int, int]


@dataclass(frozen=True)
class KubernetesSupport:
    """The Kubernetes versions one Talos minor release runs: ``minimum <= v < below``."""

    minimum: Version
    below: Version
    default: str


# Talos minor release -> the Kubernetes it supports (siderolabs/talos pkg/machinery/compatibility/)
SUPPORT_MATRIX: dict[tuple[int, int], KubernetesSupport] = {
    (1, 12): KubernetesSupport(minimum=(1, 30, 0), below=(1, 35, 99), default="v1.35.0"),
}

# kubectl's supported skew: one minor version older or newer than the API server
KUBECTL_SKEW = 1
# `kubectl wait --for=create` (the gates use it) arrived in kubectl 1.31
KUBECTL_MINIMUM = (1, 31)

CLIENT_CHECKED = "talosctl-client-version"
_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)")


def parse_version(text: str) -> Version | None:
    """``v1.35.0`` (or ``1.35.0``, a pre-release suffix ignored) as a tuple."""
    m = _VERSION.match(text.strip())
    return (int(m[1]), int(m[2]), int(m[3])) if m else None


def _show(v: Version) -> str:
    return ".".join(map(str, v))


def kubernetes_version_errors(inv: Inventory) -> list[FieldError]:
    """``cluster.kubernetesVersion`` must be one the pinned Talos release supports."""
    c = inv.cluster
    if c is None or c.talos_version is None or c.kubernetes_version is None:
        return []
    talos, kube = parse_version(c.talos_version), parse_version(c.kubernetes_version)
    if talos is None or kube is None:
        return []  # malformed versions are reported by the inventory's own rules
    support = SUPPORT_MATRIX.get(talos[:2])
    field = "cluster.kubernetesVersion"
    if support is None:
        known = ", ".join(f"v{a}.{b}" for a, b in SUPPORT_MATRIX)
        return [
            FieldError(
                inv.source,
                "cluster.talosVersion",
                f"compatibility with version {_show(talos)} is not supported "
                f"(onecluster knows the Kubernetes support of Talos {known})",
                "add the release's support matrix to SUPPORT_MATRIX in tasks/talos/versions.py",
            )
        ]
    # the upper bound is a x.y.99 that SupportedWith refuses: every real patch of x.y is in
    span = f"v{_show(support.minimum)} to v{support.below[0]}.{support.below[1]}.x"
    fix = f"use a Kubernetes version from {span}, e.g. {support.default} (Talos's default)"
    if kube < support.minimum:
        return [
            FieldError(
                inv.source,
                field,
                f"version of Kubernetes {_show(kube)} is too old to be used with Talos "
                f"{_show(talos)}",
                fix,
            )
        ]
    if kube >= support.below:
        return [
            FieldError(
                inv.source,
                field,
                f"version of Kubernetes {_show(kube)} is too new to be used with Talos "
                f"{_show(talos)}",
                fix,
            )
        ]
    return []


def parse_client_version(stdout: str) -> str | None:
    """The client's tag from ``talosctl version --client --short`` (``Client:`` / ``Talos v1.12.4``).

    The format is ``cmd/talosctl/cmd/talos/version.go`` and ``pkg/machinery/version``'s ``Short``
    (``<Name> <Tag>``).
    """
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    for before, line in itertools.pairwise(lines):
        if before == "Client:":
            name, _, tag = line.partition(" ")
            return tag.strip() if name == "Talos" and tag.strip() else None
    return None


def client_download(version: str) -> str:
    """Where the talosctl of ``version`` is downloaded from (Linux amd64)."""
    return f"https://github.com/siderolabs/talos/releases/download/{version}/talosctl-linux-amd64"


def client_problems(ctx: RunContext) -> list[str]:
    """Whether the talosctl client is the pinned Talos release (asked once per run).

    A read-only probe: a dry-run names it and runs nothing.
    """
    if CLIENT_CHECKED in ctx.state:
        return []
    ctx.state[CLIENT_CHECKED] = True
    want = ctx.inventory.cluster.talos_version
    probe = talosctl.client_version()
    if ctx.dry_run:
        echo(f"# read-only probe: {probe.display()} (the client must be Talos {want})")
        return []
    try:
        result = ctx.executor.query(probe)
    except CommandError as exc:
        return [f"cannot tell the talosctl client's version: {exc}"]
    got = parse_client_version(result.stdout)
    if got == want:
        return []
    seen = got or f"unreadable output {result.stdout.strip()[:80]!r}"
    return [
        f"talosctl is {seen} but cluster.talosVersion in {ctx.inventory.source} is {want}; "
        f"Sidero recommends a client that matches the cluster (fix: install talosctl {want}: "
        f"curl -fsSLo talosctl {client_download(want)} && chmod +x talosctl, put it on PATH "
        "or point $TALOSCTL at it)"
    ]


def kubectl_skew_problem(kubectl: tuple[int, int], kubernetes: tuple[int, int]) -> str:
    """Why a kubectl minor does not go with the cluster's Kubernetes ("" when it does)."""
    if kubectl[0] != kubernetes[0] or abs(kubectl[1] - kubernetes[1]) > KUBECTL_SKEW:
        return (
            f"kubectl {kubectl[0]}.{kubectl[1]} is more than {KUBECTL_SKEW} minor version away "
            f"from Kubernetes {kubernetes[0]}.{kubernetes[1]}"
        )
    if kubectl < KUBECTL_MINIMUM:
        return (
            f"kubectl {kubectl[0]}.{kubectl[1]} lacks `wait --for=create` (since "
            f"{KUBECTL_MINIMUM[0]}.{KUBECTL_MINIMUM[1]})"
        )
    return ""
