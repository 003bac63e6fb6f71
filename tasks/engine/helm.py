"""The helm commands onecluster runs, as pure argv builders; Helm never uses the user's config.

Helm runs with onecluster's own repository config and cache (``$ONECLUSTER_CACHE/helm``), so a
user's ``helm repo add`` can neither break nor change a run. Commands against a cluster start
``helm --kubeconfig K``, global flags first as for kubectl and talosctl.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .command import Command
from .inventory import REPO_ROOT


def cache_root() -> Path:
    """onecluster's cache (``$ONECLUSTER_CACHE``, else ``.cache`` in the checkout)."""
    return Path(os.environ.get("ONECLUSTER_CACHE", REPO_ROOT / ".cache"))


def helm_env() -> dict[str, str]:
    """Helm runs with onecluster's own repository config and cache, never the user's."""
    base = cache_root() / "helm"
    return {
        "HELM_REPOSITORY_CONFIG": str(base / "repositories.yaml"),
        "HELM_REPOSITORY_CACHE": str(base / "repository"),
        "HELM_CACHE_HOME": str(base / "cache"),
        "HELM_CONFIG_HOME": str(base / "config"),
        "HELM_DATA_HOME": str(base / "data"),
    }


def chart_ref(chart: str, repo: str) -> list[str]:
    """How helm names a chart: ``oci://...`` alone, else the chart and ``--repo URL``."""
    return [chart] if chart.startswith("oci://") else [chart, "--repo", repo]


def local(*args: str, **options: Any) -> Command:
    """A helm command that needs no cluster (pull, template), with onecluster's helm config."""
    env = {**helm_env(), **options.pop("env", {})}
    return Command("helm", tuple(args), env=env, **options)


def pull(chart: str, repo: str, version: str, into: Path) -> Command:
    """``helm pull`` of a pinned chart, unpacked into ``into``."""
    return local(
        "pull", *chart_ref(chart, repo), "--version", version, "--untar", "--untardir", str(into),
        timeout=300,
    )  # fmt: skip


def template(
    release: str,
    chart_dir: Path,
    namespace: str,
    kube_version: str,
    values: str,
    api_versions: Iterable[str] = (),
    include_crds: bool = False,
) -> Command:
    """``helm template`` from an unpacked chart, values on stdin.

    ``api_versions`` (``group/version`` or ``group/version/Kind``) stand in for the API discovery
    ``helm template`` lacks: charts render their ServiceMonitors only when the API is there.
    ``include_crds`` adds the ``crds/`` folders an install would apply (enabled subcharts' too).
    """
    extra = tuple(arg for api in api_versions for arg in ("--api-versions", api))
    extra += ("--include-crds",) if include_crds else ()
    return local(
        "template", release, str(chart_dir), "--namespace", namespace,
        "--kube-version", f"v{kube_version}", "--values", "-", *extra,
        stdin=values.encode(),
    )  # fmt: skip


@dataclass(frozen=True)
class Helm:
    """helm bound to one kubeconfig; calling it builds a command against that cluster."""

    kubeconfig: str

    def __call__(self, *args: str, **options: Any) -> Command:
        """``helm --kubeconfig K ARGS`` with onecluster's own helm config."""
        return local("--kubeconfig", self.kubeconfig, *args, **options)

    def upgrade_install(
        self,
        release: str,
        ref: Sequence[str],
        version: str,
        namespace: str,
        *,
        values: bytes | None,
        wait_timeout: str | None,
    ) -> Command:
        """Install or upgrade ``release`` at ``version``, values on stdin, optionally waiting."""
        wait = ("--wait", "--timeout", wait_timeout) if wait_timeout else ()
        return self(
            "upgrade", "--install", release, *ref, "--version", version,
            "--namespace", namespace, "--create-namespace", "--values", "-", *wait,
            stdin=values,
        )  # fmt: skip

    def status(self, release: str, namespace: str) -> Command:
        """The release's status as JSON (read-only)."""
        return self("status", release, "--namespace", namespace, "--output", "json")

    def uninstall(self, release: str, namespace: str) -> Command:
        """Uninstall ``release``, waiting until its objects are gone."""
        return self("uninstall", release, "--namespace", namespace, "--ignore-not-found", "--wait")
