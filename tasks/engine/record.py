"""The in-cluster record of what onecluster applied, and the converge decision a re-run makes.

After a step with a fingerprint (:mod:`tasks.engine.fingerprint`) succeeds, its fingerprint, the
time and onecluster's step format are written to one ConfigMap, ``onecluster-state`` in the
namespace ``onecluster-system`` (created in the same server-side apply, field manager
``onecluster-record``), one data key per step (``network/traefik`` → ``network.traefik``). A run reads it
once, lazily (the kubeconfig of a rebuild exists only after its Talos steps), and the live state
once per kind: one ``helm list --all-namespaces -o json`` for every release; a manifest bundle
asks for its own objects once (``kubectl get -f -``). A step is *unchanged*, and skipped, when its
fingerprint matches the record and the live state confirms it; ``--force`` and ``--force-step``
re-apply. The record is written once, at the end of the run (a failed or interrupted one too),
while the run's lock is held: one server-side apply of what succeeded, none when nothing changed;
a write that fails fails no step, it is said (those steps will run again next time).

The converge reads are issued up front, together: the first check of a run reads the record, and
in the same moment each kind's shared read (:meth:`Component.confirm_reads`: the one ``helm
list``, the one ``kubectl get`` of every bundle's objects), each in its own thread. A read that
fails is not kept: a check made before the cluster answered (the runner checks early, see
:mod:`tasks.engine.runner`) decides nothing, and the step is checked again once its needs are done.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .command import Command, Executor, Result
from .context import RunContext
from .errors import OneclusterError
from .fingerprint import STEP_FORMAT
from .output import echo
from .signals import Interrupted, Stop

NAMESPACE = "onecluster-system"
NAME = "onecluster-state"
# the record has a field manager of its own: its writes are told apart from the stack's applies
# (also in a log of kubectl calls), and applying the stack never touches it
RECORD_MANAGER = "onecluster-record"
HELM_LIST = "converge.helm-list"
_LOCKS = "converge.locks"
_FAILED = "converge.failed-reads"
# how often a converge read that failed is made again in one run (an early check, then the
# check when the step's needs are done)
READ_TRIES = 2
# a converge read that does not answer within this is a read that failed
READ_SECONDS = 60.0
_cache_lock = threading.Lock()


def key(step_id: str) -> str:
    """The ConfigMap data key of a step (data keys allow no ``/``)."""
    return step_id.replace("/", ".")


def read_command(ctx: RunContext):
    """``kubectl get configmap onecluster-state -o json`` (read-only; empty when absent)."""
    return ctx.kubectl(
        "get", "configmap", NAME, "--namespace", NAMESPACE, "-o", "json", "--ignore-not-found",
        timeout=READ_SECONDS,
    )  # fmt: skip


def write_command(ctx: RunContext, data: dict[str, str]):
    """Server-side apply of the namespace and the record, one call."""
    items = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": NAME,
                "namespace": NAMESPACE,
                "labels": {"app.kubernetes.io/managed-by": "onecluster"},
            },
            "data": dict(sorted(data.items())),
        },
    ]
    body = json.dumps({"apiVersion": "v1", "kind": "List", "items": items}, indent=2)
    return ctx.kubectl(
        "apply", "--server-side", f"--field-manager={RECORD_MANAGER}", "-f", "-",
        stdin=body.encode(),
    )  # fmt: skip


def cached(ctx: RunContext, name: str, load: Callable[[], Any]) -> Any:
    """``load()`` once per run, kept in the run's state (steps ask from several threads).

    Each name has its own lock, so different reads load concurrently. A load that raises keeps
    nothing and the error reaches the caller: the next caller loads again (the cluster may answer
    later in the run), up to :data:`READ_TRIES` loads; after that the last error is raised
    without loading (a cluster that does not answer is not asked once per step).
    """
    with _cache_lock:
        if name in ctx.state:
            return ctx.state[name]
        locks = ctx.state.setdefault(_LOCKS, {})
        lock = locks.setdefault(name, threading.Lock())
    with lock:
        if name not in ctx.state:
            failed = ctx.state.setdefault(_FAILED, {})
            tries, last = failed.get(name, (0, None))
            if tries >= READ_TRIES and last is not None:
                raise last
            try:
                ctx.state[name] = load()
            except Exception as exc:
                failed[name] = (tries + 1, exc)
                raise
        return ctx.state[name]


def probe(ctx: RunContext, command: Command) -> Result:
    """Run a converge read; a dry-run names it as the read-only probe it still runs."""
    if ctx.dry_run:
        echo(f"# read-only probe: {command.display()}")
    return ctx.executor.query(command)


def helm_list_command(ctx: RunContext):
    """``helm list`` of every release in every namespace, whatever its status, as JSON.

    Helm v4 lists releases in any status by default and has no ``--all`` (v3's flag): given it,
    v4 fails with "unknown flag: --all" (``tests/test_real_tools.py`` runs the real helm on this).
    """
    return ctx.helm("list", "--all-namespaces", "--output", "json", timeout=READ_SECONDS)


def helm_releases(ctx: RunContext) -> dict[tuple[str, str], dict]:
    """Every Helm release in the cluster by (namespace, name): one ``helm list`` per run.

    Empty when helm cannot list (then nothing is confirmed; a later call lists again).
    """

    def load() -> dict[tuple[str, str], dict]:
        rows = json.loads(probe(ctx, helm_list_command(ctx)).stdout or "[]")
        return {(r.get("namespace", ""), r.get("name", "")): r for r in rows or []}

    try:
        return cached(ctx, HELM_LIST, load)
    except (OneclusterError, ValueError, AttributeError):
        return {}


CONVERGE = "converge"


def forced(ctx: RunContext, step_id: str) -> bool:
    """Whether this run re-applies ``step_id`` regardless (``--force``, ``--force-step``)."""
    converge = ctx.state.get(CONVERGE)
    return converge is not None and converge.forced(step_id)


class Converge:
    """One run's record and decisions: which steps are unchanged, and what to write after each."""

    def __init__(
        self,
        ctx: RunContext,
        *,
        force: bool = False,
        force_steps: Iterable[str] = (),
        strict: bool = False,
        version: str = "",
    ) -> None:
        """``strict``: a record that cannot be read is an error (``cluster.diff``), not an empty
        record (a run then runs every step). ``version``: onecluster's, written beside each
        step."""
        self.ctx = ctx
        self.version = version
        self.strict = strict
        self.force = force
        self.force_steps = set(force_steps)
        self._lock = threading.Lock()
        self._entries: dict[str, str] | None = None
        self._read_lock = threading.Lock()
        self._said_unread = False
        self._failed_reads = 0
        self._steps: list[Any] = []
        self._prefetched = False
        self._prefetch_done = threading.Event()
        self._fingerprints: dict[str, str | None] = {}
        self.unwritten: list[str] = []
        self._new: dict[str, str] = {}
        self._new_ids: list[str] = []
        self._confirmed: dict[str, str] = {}
        ctx.state[CONVERGE] = self
        # the cluster's kubeconfig written mid-run (a rebuild's Talos steps fetch it): the reads
        # start then, beside whatever else runs, rather than at the first check that needs them
        ctx.on_kubeconfig.append(lambda: self.prefetch(wait=False))

    def select(self, steps: Iterable[Any]) -> None:
        """The run's selected steps: their kinds' shared reads are issued with the record's, and
        their fingerprints are computed in the background meanwhile (rendering is CPU work a
        check would otherwise do while the first steps of the run wait on their tools)."""
        self._steps = list(steps)
        if not self.ctx.dry_run:
            threading.Thread(target=self._warm, name="fingerprints", daemon=True).start()

    def selects(self, prefix: str) -> bool:
        """Whether the run selected a step whose id starts with ``prefix``."""
        return any(s.id.startswith(prefix) for s in self._steps)

    def _warm(self) -> None:
        for step in self._steps:
            try:
                self.fingerprint(step)
            except Exception:  # the step's own check or run reports it
                continue
        for prepare, steps in self._groups("prepare_reads").values():
            _quietly(lambda p=prepare, g=steps: p(self.ctx, g))

    def fingerprint(self, step: Any) -> str | None:
        """``step.fingerprint(ctx)``, computed once per run (the runner asks early and again)."""
        with self._lock:
            if step.id in self._fingerprints:
                return self._fingerprints[step.id]
        found = step.fingerprint(self.ctx)
        with self._lock:
            self._fingerprints[step.id] = found
        return found

    def prefetch(self, *, wait: bool = True) -> None:
        """The run's converge reads, up front and concurrently: the record, and each kind's
        shared read (:meth:`Component.confirm_reads`) of the selected steps; once per run.
        ``wait=False`` starts them (if no check did) and returns at once."""
        with self._lock:
            first = not self._prefetched
            self._prefetched = True
        if first:
            threading.Thread(target=self._prefetch_all, name="converge-reads", daemon=True).start()
        if wait:  # the check that started them, or another: their answers are this one's
            self._prefetch_done.wait()

    def _prefetch_all(self) -> None:
        try:
            self._prefetch()
        finally:
            self._prefetch_done.set()

    def _groups(self, name: str) -> dict[Any, tuple[Callable[..., None], list[Any]]]:
        """The selected steps by their kind's classmethod ``name`` (one call per kind)."""
        groups: dict[Any, tuple[Callable[..., None], list[Any]]] = {}
        for step in self._steps:
            method = getattr(type(step), name, None)
            if method is not None:
                key_ = getattr(method, "__func__", method)
                groups.setdefault(key_, (method, []))[1].append(step)
        return groups

    def _prefetch(self) -> None:
        groups = self._groups("confirm_reads")
        jobs = [self.entries, *(lambda r=r, g=g: r(self.ctx, g) for r, g in groups.values())]
        threads = [threading.Thread(target=_quietly, args=(job,), daemon=True) for job in jobs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def entries(self) -> dict[str, str]:
        """The record's data (read once; empty when there is none or it cannot be read, and then
        read again by a later caller, up to READ_TRIES reads: the cluster may answer later)."""
        with self._read_lock:
            if self._entries is not None:
                return self._entries
            if self._failed_reads >= READ_TRIES:
                return {}
            found = self._read()
            if found is not None:
                self._entries = found
            else:
                self._failed_reads += 1
            return found or {}

    def _read(self) -> dict[str, str] | None:
        try:
            out = probe(self.ctx, read_command(self.ctx)).stdout
        except OneclusterError as exc:
            if self.strict:
                raise
            if not self._said_unread:
                first = str(exc).splitlines()[0] if str(exc) else "no answer"
                echo(f"==> the record {NAMESPACE}/{NAME} could not be read ({first}): "
                     "steps it cannot confirm run")  # fmt: skip
                self._said_unread = True
            return None
        if not out.strip():
            return {}
        try:
            return dict(json.loads(out).get("data") or {})
        except (ValueError, AttributeError):
            echo(f"==> the record {NAMESPACE}/{NAME} is not a ConfigMap's JSON: every step runs")
            return {}

    def recorded(self, step_id: str) -> str | None:
        """The fingerprint the record holds for ``step_id``, if any."""
        return self.recorded_entry(step_id).get("fingerprint")

    def recorded_entry(self, step_id: str) -> dict[str, Any]:
        """The record's whole entry for ``step_id`` (empty when it holds none, or no JSON)."""
        raw = self.entries().get(key(step_id))
        try:
            entry = json.loads(raw) if raw is not None else {}
        except ValueError:
            return {}
        return entry if isinstance(entry, dict) else {}

    def forced(self, step_id: str) -> bool:
        return self.force or step_id in self.force_steps

    def unchanged(self, step: Any, fingerprint: str | None) -> bool:
        """Whether ``step`` can be skipped: recorded with this fingerprint and confirmed live;
        a step without one, when its own read-compare finds nothing to do."""
        if fingerprint is None and (self.ctx.dry_run or not getattr(step, "compares", False)):
            return False  # (a dry-run shows what such a step would do)
        if self.forced(step.id):
            return False
        if fingerprint is None:  # its own read-compare; the run's reads start meanwhile, once
            # the cluster's kubeconfig exists (a rebuild's Talos steps fetch it)
            if Path(self.ctx.kubeconfig).is_file():
                self.prefetch(wait=False)
            return bool(step.up_to_date(self.ctx))
        self.prefetch()
        if self.recorded(step.id) != fingerprint:
            return False
        return bool(step.confirm(self.ctx))

    def _entry(self, fingerprint: str, version: str, extra: dict[str, str]) -> str:
        entry = {
            **extra,
            "fingerprint": fingerprint,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "version": version or self.version,
            "format": STEP_FORMAT,
        }
        return json.dumps(entry, sort_keys=True)

    def succeeded(self, step_id: str, fingerprint: str, version: str = "", **extra: str) -> None:
        """Note ``step_id``'s success, to be written by :meth:`flush` (``extra``: more fields
        of the entry, e.g. a Talos apply's config fingerprint)."""
        entry = self._entry(fingerprint, version, extra)
        with self._lock:
            self._new[key(step_id)] = entry
            self._new_ids.append(step_id)

    def confirmed(self, step_id: str, fingerprint: str, **extra: str) -> None:
        """Note that ``step_id``'s live state was found to be what ``fingerprint`` stands for,
        though the record did not say so: written only beside a write of something that
        changed (a run that changes nothing writes nothing), so a later run can skip sooner."""
        entry = self._entry(fingerprint, "", extra)
        with self._lock:
            self._confirmed[key(step_id)] = entry

    def flush(self) -> None:
        """Write what succeeded in one server-side apply (nothing when nothing changed); when the
        write fails, say which steps will run again next time, and go on."""
        with self._lock:
            new, ids = dict(self._new), list(self._new_ids)
            confirmed = dict(self._confirmed)
        if not new or self.ctx.dry_run:
            return
        # its own executor: the record is written after an interrupt ended the steps' tools too
        executor = Executor(stop=Stop())
        try:
            if self._entries is None:  # no check read it (or it could not): read it now
                out = executor.query(read_command(self.ctx)).stdout
                self._entries = dict(json.loads(out).get("data") or {}) if out.strip() else {}
            # a write without what the record held would drop the other steps' entries
            data = {**self._entries, **confirmed, **new}
            executor.query(write_command(self.ctx, data))
        except (OneclusterError, Interrupted, ValueError, AttributeError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else "no answer"
            echo(
                f"==> the record {NAMESPACE}/{NAME} was not written ({first}): "
                f"{', '.join(ids)} succeeded but will run again next time",
                err=True,
            )
            self.unwritten = ids
            return
        with self._lock:
            self._entries = data
            self._new.clear()
            self._new_ids.clear()
            self._confirmed.clear()


def _quietly(job: Callable[[], Any]) -> None:
    """Run a converge read in its own thread; a read that fails was not kept (the step that
    needs it reads again), so nothing is raised here."""
    try:
        job()
    except Exception:  # the reader itself reports what matters
        return
