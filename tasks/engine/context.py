"""The context one run of the graph shares: inventory, executor, private work directory, options."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .command import Command, Executor
from .inventory import REPO_ROOT, Inventory

# Shown instead of the real private directory in dry-runs and plans, so they are reproducible.
WORKDIR_PLACEHOLDER = "$ONECLUSTER_WORKDIR"


def helm_env() -> dict[str, str]:
    """Helm runs with onecluster's own repository config and cache, never the user's."""
    base = Path(os.environ.get("ONECLUSTER_CACHE", REPO_ROOT / ".cache")) / "helm"
    return {
        "HELM_REPOSITORY_CONFIG": str(base / "repositories.yaml"),
        "HELM_REPOSITORY_CACHE": str(base / "repository"),
        "HELM_CACHE_HOME": str(base / "cache"),
        "HELM_CONFIG_HOME": str(base / "config"),
        "HELM_DATA_HOME": str(base / "data"),
    }


@dataclass
class RunContext:
    """What every step of one run sees."""

    inventory: Inventory
    executor: Executor
    workdir: Path
    # kube-facing steps use this kubeconfig: the one talos/kubeconfig fetched into the private
    # work directory during a rebuild, else the user's ($KUBECONFIG or ~/.kube/config)
    kubeconfig: str
    talosconfig: str
    options: dict[str, Any] = field(default_factory=dict)
    # state shared between steps of one run (e.g. the Talos secrets bundle held in memory)
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def dry_run(self) -> bool:
        return self.executor.dry_run

    @property
    def repo(self) -> Path:
        return REPO_ROOT

    def kubectl(self, *args: str, **options: Any) -> Command:
        """A kubectl command bound to this run's kubeconfig."""
        return Command("kubectl", ("--kubeconfig", self.kubeconfig, *args), **options)

    def helm(self, *args: str, **options: Any) -> Command:
        """A helm command bound to this run's kubeconfig and onecluster's own helm config."""
        env = {**helm_env(), **options.pop("env", {})}
        return Command("helm", (*args, "--kubeconfig", self.kubeconfig), env=env, **options)

    def talosctl(self, *args: str, **options: Any) -> Command:
        """A talosctl command bound to this run's talosconfig."""
        return Command("talosctl", ("--talosconfig", self.talosconfig, *args), **options)

    def run(self, command: Command, *, prefix: str = "") -> Any:
        return self.executor.run(command, prefix=prefix)

    def secret_store(self) -> Any:
        """The run's secret store (opened once; tests put a MemoryStore in ``state["store"]``)."""
        if "store" not in self.state:
            from .infisical import open_store  # lazy: imports the Infisical SDK

            self.state["store"] = open_store(self.inventory)
        return self.state["store"]


def user_kubeconfig() -> str:
    """The user's kubeconfig: the first entry of $KUBECONFIG, else ~/.kube/config."""
    env = os.environ.get("KUBECONFIG", "")
    first = env.split(os.pathsep)[0] if env else ""
    return first or str(Path.home() / ".kube" / "config")


def user_talosconfig() -> str:
    """The user's talosconfig: $TALOSCONFIG, else ~/.talos/config."""
    return os.environ.get("TALOSCONFIG") or str(Path.home() / ".talos" / "config")


@contextmanager
def private_workdir(dry_run: bool) -> Iterator[Path]:
    """A 0700 temporary directory for generated secrets, removed on success and failure alike."""
    if dry_run:
        yield Path(WORKDIR_PLACEHOLDER)
        return
    path = Path(tempfile.mkdtemp(prefix="onecluster-"))
    path.chmod(0o700)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def run_context(
    inventory: Inventory,
    *,
    dry_run: bool,
    fetch_kubeconfig: bool,
    options: dict[str, Any] | None = None,
    executor: Executor | None = None,
) -> Iterator[RunContext]:
    """Open a run: private workdir, executor, and where kubeconfig/talosconfig come from."""
    with private_workdir(dry_run) as workdir:
        kubeconfig = str(workdir / "kubeconfig") if fetch_kubeconfig else user_kubeconfig()
        talosconfig = str(workdir / "talosconfig") if fetch_kubeconfig else user_talosconfig()
        yield RunContext(
            inventory=inventory,
            executor=executor or Executor(dry_run=dry_run),
            workdir=workdir,
            kubeconfig=kubeconfig,
            talosconfig=talosconfig,
            options=dict(options or {}),
        )
