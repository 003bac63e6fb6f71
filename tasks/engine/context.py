"""The context one run of the graph shares: inventory, executor, private work directory, options."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .command import Command, Executor
from .errors import OneclusterError
from .helm import Helm
from .inventory import REPO_ROOT, Inventory
from .kubectl import Kubectl

# Shown instead of the real private directory in dry-runs and plans, so they are reproducible.
WORKDIR_PLACEHOLDER = "$ONECLUSTER_WORKDIR"

T = TypeVar("T")
StoreOpener = Callable[[Inventory], Any]


@dataclass
class RunContext:
    """What every step of one run sees."""

    inventory: Inventory
    executor: Executor
    workdir: Path
    # kube-facing steps use this kubeconfig: the one a step of this run fetched into the private
    # work directory (a rebuild), else the user's ($KUBECONFIG or ~/.kube/config); likewise talos
    kubeconfig: str
    talosconfig: str
    # one typed options object per area (e.g. the Talos tasks' TalosOptions); see option()
    options: Sequence[object] = ()
    # state shared between steps of one run (e.g. the Talos secrets bundle held in memory)
    state: dict[str, Any] = field(default_factory=dict)
    # opens the run's secret store on first use (the stack's; tests put a store in state)
    open_store: StoreOpener | None = None
    # one store opened (one login) when the preflight and the first steps ask at once
    _store_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    # what starts once the run's kubeconfig exists (a rebuild's Talos steps write it mid-run):
    # the run's reads of the cluster (the converge reads, the Lease's), beside the steps running
    on_kubeconfig: list[Callable[[], None]] = field(default_factory=list, repr=False, compare=False)

    @property
    def dry_run(self) -> bool:
        return self.executor.dry_run

    @property
    def repo(self) -> Path:
        return REPO_ROOT

    @property
    def kubectl(self) -> Kubectl:
        """kubectl bound to this run's kubeconfig: ``ctx.kubectl("get", ...)``."""
        return Kubectl(self.kubeconfig)

    @property
    def helm(self) -> Helm:
        """helm bound to this run's kubeconfig and onecluster's own helm config."""
        return Helm(self.kubeconfig)

    def option(self, kind: type[T]) -> T:
        """This run's options of ``kind`` (an area's dataclass), or its defaults."""
        for value in self.options:
            if isinstance(value, kind):
                return value
        return kind()

    def run(self, command: Command, *, prefix: str = "") -> Any:
        return self.executor.run(command, prefix=prefix)

    def kubeconfig_written(self) -> None:
        """The run's kubeconfig was just written: start what waited for it (``on_kubeconfig``;
        each starts its reads once, however often it is told)."""
        if self.dry_run or not Path(self.kubeconfig).is_file():
            return
        for start in list(self.on_kubeconfig):
            start()

    def secret_store(self) -> Any:
        """The run's secret store, opened once (tests put a MemoryStore in ``state["store"]``)."""
        with self._store_lock:
            if "store" not in self.state:
                if self.open_store is None:
                    raise OneclusterError("internal: this run has no secret store to open")
                self.state["store"] = self.open_store(self.inventory)
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
    options: Sequence[object] = (),
    executor: Executor | None = None,
    open_store: StoreOpener | None = None,
) -> Iterator[RunContext]:
    """Open a run: private workdir, executor, and where kubeconfig/talosconfig come from.

    ``fetch_kubeconfig``: a step of this run writes the kubeconfig and talosconfig it uses into
    the private workdir, so neither the user's files are used nor overwritten.
    """
    with private_workdir(dry_run) as workdir:
        kubeconfig = str(workdir / "kubeconfig") if fetch_kubeconfig else user_kubeconfig()
        talosconfig = str(workdir / "talosconfig") if fetch_kubeconfig else user_talosconfig()
        yield RunContext(
            inventory=inventory,
            executor=executor or Executor(dry_run=dry_run),
            workdir=workdir,
            kubeconfig=kubeconfig,
            talosconfig=talosconfig,
            options=tuple(options),
            open_store=open_store,
        )
