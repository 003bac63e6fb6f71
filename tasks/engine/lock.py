"""One run per cluster: a local advisory file lock, then a Lease in the cluster once it answers.

A run that changes a cluster first takes ``<cache>/locks/<cluster>.lock`` with ``flock`` (never
blocking: a second run fails at once and names the holder: host, pid, start time, command). The
kernel drops an flock when its holder exits, however it exits, so a dead run never blocks the
next one on the same machine. Once the run's kubeconfig exists and the API answers, the run also
holds a ``coordination.k8s.io/v1`` Lease ``kube-system/onecluster-run-<cluster>`` (holder
``host:pid``) before its first step that may change the cluster, renewed by a background thread
while the run lasts and released at its end: runs from two machines exclude each other too. A
run that finds nothing to change (every step unchanged, gates passing) never writes it: it reads
it once, and stops if another run holds it. A Lease whose holder stopped renewing is free after
:data:`LEASE_SECONDS`. ``--break-lock --yes`` takes either lock from a holder that is gone (or
stuck) without waiting. Lease writes are ``create`` and ``replace`` carrying the
``resourceVersion`` read, so two runs racing for it cannot both win.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .command import Command, Executor
from .errors import CommandError, ConfirmationRequired, OneclusterError
from .helm import cache_root
from .invocation import command_line
from .kubectl import Kubectl
from .output import echo
from .signals import Interrupted, Stop

LEASE_NAMESPACE = "kube-system"
LEASE_SECONDS = 60
# how often the Lease is renewed ($ONECLUSTER_LEASE_RENEW overrides, for tests)
RENEW_SECONDS = 20.0
# how often a run whose cluster did not answer yet tries to take the Lease again
RETRY_SECONDS = 5.0
HOLDER_ANNOTATION = "onecluster/run"
REQUEST_TIMEOUT = "10s"
COMMAND_SECONDS = 20.0
MICROTIME = "%Y-%m-%dT%H:%M:%S.%fZ"  # metav1.MicroTime as the API server writes it
# how long a run refused the local lock waits for the holder to write its details in it
HOLDER_WAIT_SECONDS = 1.0

BREAK_LOCK_HELP = "take the cluster's run lock from another run that is gone or stuck (needs --yes)"
YES_HELP = "confirm --break-lock"
# the help of a mutating task's two lock flags
LOCK_HELP = {"break_lock": BREAK_LOCK_HELP, "yes": YES_HELP}


class LockHeld(OneclusterError):
    """Another run holds this cluster's lock."""


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Holder:
    """Who holds a lock: the machine, the process, when it started, and its command line."""

    host: str
    pid: int
    started: str
    command: str

    @classmethod
    def me(cls) -> Holder:
        started = _now().strftime("%Y-%m-%dT%H:%M:%SZ")
        return cls(socket.gethostname(), os.getpid(), started, command_line())

    @classmethod
    def parse(cls, text: str) -> Holder | None:
        """A holder from its JSON, or None when the text is no holder (empty, half-written)."""
        try:
            data = json.loads(text)
            return cls(
                str(data["host"]), int(data["pid"]), str(data["started"]), str(data["command"])
            )
        except (ValueError, KeyError, TypeError):
            return None

    @property
    def identity(self) -> str:
        """``host:pid``: the Lease's holderIdentity."""
        return f"{self.host}:{self.pid}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def gone(self) -> bool:
        """Whether this holder is a process of this machine that no longer runs."""
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def describe(self) -> str:
        return f"`{self.command}` (pid {self.pid} on {self.host}, started {self.started})"


def _held_message(cluster: str, holder: Holder | None, where: str) -> str:
    who = holder.describe() if holder else "a run whose details could not be read"
    text = f"cluster {cluster} is being changed by another run: {who}; {where}."
    if holder is not None and holder.gone():
        text += (
            f" That run looks gone (pid {holder.pid} is not running on this host): take the "
            "lock with --break-lock --yes."
        )
    else:
        text += (
            " Wait for it to finish, or if that run is gone, take the lock with --break-lock --yes."
        )
    return text


def lock_path(cluster: str) -> Path:
    """The local lock file of ``cluster``: ``<cache>/locks/<cluster>.lock``."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", cluster)
    return cache_root() / "locks" / f"{safe}.lock"


class LocalLock:
    """The advisory file lock of one cluster on this machine."""

    def __init__(self, cluster: str, holder: Holder) -> None:
        self.cluster = cluster
        self.holder = holder
        self.path = lock_path(cluster)
        self._fd: int | None = None

    def read_holder(self, wait: float = HOLDER_WAIT_SECONDS) -> Holder | None:
        """The holder written in the lock file, waiting up to ``wait`` s for it to be written.

        A holder writes its details just after its ``flock`` succeeds, so a run that failed to
        take the lock in between finds the file empty (or half-written) for a moment.
        """
        deadline = time.monotonic() + wait
        while True:
            try:
                holder = Holder.parse(self.path.read_text())
            except OSError:
                holder = None
            if holder is not None or time.monotonic() >= deadline:
                return holder
            time.sleep(0.02)

    def acquire(self, *, force: bool = False) -> None:
        """Take the lock or raise :class:`LockHeld`; ``force`` takes it from its holder."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(5):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if not force:
                    where = f"lock file {self.path}"
                    raise LockHeld(_held_message(self.cluster, self.read_holder(), where)) from None
                # the holder keeps its lock on the old file, which no one else will open again
                held_by = self.read_holder()
                who = held_by.describe() if held_by else "an unknown run"
                echo(f"# --break-lock: taking cluster {self.cluster}'s lock from {who}", err=True)
                self.path.unlink(missing_ok=True)
                continue
            try:  # the file may have been broken (replaced) between open and flock
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, self.holder.to_json().encode())
            self._fd = fd
            return
        raise LockHeld(f"cluster {self.cluster}: the lock file {self.path} kept changing; retry")

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # still under the lock: a waiting opener sees it replaced
        os.close(self._fd)
        self._fd = None


class _NoAnswer(Exception):
    """The API server did not answer (yet)."""


class ClusterLease:
    """The run's Lease in the cluster: taken, renewed and released with kubectl."""

    def __init__(
        self,
        cluster: str,
        holder: Holder,
        executor: Executor,
        kubectl: Kubectl,
        *,
        force: bool = False,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.cluster = cluster
        self.name = f"onecluster-run-{re.sub(r'[^a-z0-9.-]', '-', cluster.lower())}"
        self.holder = holder
        self.executor = executor
        self.kubectl = kubectl
        self.force = force
        self.clock = clock
        self.held = False
        self._version = ""
        self._acquired = ""
        self._transitions = 0
        self.written_at = 0.0  # when the Lease was last written (taken or renewed), monotonic

    # commands -----------------------------------------------------------------------------

    def get_command(self) -> Command:
        return self.kubectl(
            "get", "lease", self.name, "--namespace", LEASE_NAMESPACE, "--ignore-not-found",
            "--output", "json", f"--request-timeout={REQUEST_TIMEOUT}", timeout=COMMAND_SECONDS,
        )  # fmt: skip

    def write_command(self, verb: str, body: dict[str, Any]) -> Command:
        """``kubectl create|replace -f -`` of the Lease (JSON on stdin), printing the result."""
        return self.kubectl(
            verb, "--output", "json", f"--request-timeout={REQUEST_TIMEOUT}", "-f", "-",
            stdin=json.dumps(body).encode(), timeout=COMMAND_SECONDS,
        )  # fmt: skip

    def body(self, *, holding: bool = True) -> dict[str, Any]:
        now = self.clock().strftime(MICROTIME)
        spec: dict[str, Any] = {"leaseDurationSeconds": LEASE_SECONDS, "renewTime": now}
        if holding:
            spec |= {"holderIdentity": self.holder.identity, "acquireTime": self._acquired or now}
        if self._transitions:
            spec["leaseTransitions"] = self._transitions
        metadata: dict[str, Any] = {
            "name": self.name,
            "namespace": LEASE_NAMESPACE,
            "labels": {"app.kubernetes.io/managed-by": "onecluster"},
            "annotations": {HOLDER_ANNOTATION: self.holder.to_json() if holding else ""},
        }
        if self._version:
            metadata["resourceVersion"] = self._version
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": spec,
        }

    # reading ------------------------------------------------------------------------------

    def _get(self) -> dict[str, Any] | None:
        try:
            out = self.executor.query(self.get_command()).stdout
        except CommandError as exc:
            raise _NoAnswer(str(exc)) from None
        if not out.strip():
            return None
        try:
            return json.loads(out)
        except ValueError:
            raise _NoAnswer("kubectl printed no JSON for the Lease") from None

    def _live_other(self, lease: dict[str, Any]) -> Holder | None:
        """The other run holding ``lease`` now, or None (free, ours, or expired)."""
        spec = lease.get("spec") or {}
        identity = spec.get("holderIdentity") or ""
        if not identity or identity == self.holder.identity:
            return None
        try:
            renewed = datetime.strptime(spec.get("renewTime", ""), MICROTIME).replace(tzinfo=UTC)
        except ValueError:
            renewed = self.clock()  # unreadable: treat as just renewed, the safe side
        if renewed + timedelta(seconds=int(spec.get("leaseDurationSeconds") or 0)) < self.clock():
            return None
        note = (lease.get("metadata", {}).get("annotations") or {}).get(HOLDER_ANNOTATION, "")
        host, _, pid = identity.rpartition(":")
        return Holder.parse(note) or Holder(host, int(pid) if pid.isdigit() else 0, "?", "?")

    def _write(self, verb: str, holding: bool = True) -> bool:
        """Create or replace the Lease; False when someone else wrote it first."""
        try:
            out = self.executor.query(self.write_command(verb, self.body(holding=holding))).stdout
        except CommandError as exc:
            text = str(exc)
            if "AlreadyExists" in text or "Conflict" in text or "has been modified" in text:
                return False
            raise _NoAnswer(text) from None
        with contextlib.suppress(ValueError, AttributeError):
            self._version = json.loads(out)["metadata"]["resourceVersion"]
        self.written_at = time.monotonic()
        return True

    # the lock -----------------------------------------------------------------------------

    def try_acquire(self) -> bool:
        """Take the Lease: True when held, False when the API does not answer (try later).

        Raises :class:`LockHeld` when another live run holds it (unless forced).
        """
        try:
            for _ in range(5):
                lease = self._get()
                if lease is None:
                    self._version, self._acquired = "", ""
                    if self._write("create"):
                        self.held = True
                        return True
                    continue
                other = self._live_other(lease)
                where = f"Lease {LEASE_NAMESPACE}/{self.name}"
                if other is not None and not self.force:
                    raise LockHeld(_held_message(self.cluster, other, where))
                meta, spec = lease.get("metadata", {}), lease.get("spec") or {}
                self._version = str(meta.get("resourceVersion", ""))
                mine = spec.get("holderIdentity") == self.holder.identity
                self._acquired = spec.get("acquireTime", "") if mine else ""
                self._transitions = int(spec.get("leaseTransitions") or 0) + (0 if mine else 1)
                if self._write("replace"):
                    self.held = True
                    return True
        except _NoAnswer:
            return False
        raise LockHeld(f"cluster {self.cluster}: the Lease {self.name} kept changing; retry")

    def renew(self) -> str:
        """Renew the held Lease; "" or why it is no longer ours."""
        try:
            if self._write("replace"):
                return ""
            lease = self._get()
        except _NoAnswer:
            return ""  # the API is busy: the Lease lasts LEASE_SECONDS, try again next round
        other = self._live_other(lease) if lease else None
        if other is not None:
            self.held = False
            return f"the cluster's Lease was taken by another run: {other.describe()}"
        try:
            self.try_acquire()  # free or expired meanwhile: take it again
        except LockHeld as exc:
            self.held = False
            return str(exc)
        return ""

    def release(self) -> None:
        """Give the Lease up (it stays, without a holder), if it is still ours."""
        if not self.held:
            return
        self.held = False
        with contextlib.suppress(_NoAnswer):
            self._write("replace", holding=False)


class RunLock:
    """The lock of one run: the local file lock for its whole life, the Lease once possible."""

    def __init__(self, cluster: str, *, break_lock: bool = False, yes: bool = False) -> None:
        if break_lock and not yes:
            raise ConfirmationRequired(
                f"--break-lock takes cluster {cluster}'s lock from the run holding it: add --yes "
                "to confirm, once you know that run is gone"
            )
        self.cluster = cluster
        self.force = break_lock
        self.holder = Holder.me()
        self.local = LocalLock(cluster, self.holder)
        self.lease: ClusterLease | None = None
        self.kubeconfig = ""
        self.lost = ""
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._mutex = threading.Lock()  # one Lease call at a time: the thread or between steps
        self._next_try = 0.0
        self._attempt: threading.Thread | None = None
        self._peeked = False
        self._peek_lock = threading.Lock()

    @contextlib.contextmanager
    def held(self) -> Iterator[RunLock]:
        """Hold the local lock for the block; release the Lease and the file at its end."""
        self.local.acquire(force=self.force)
        try:
            yield self
        finally:
            self.close()

    def attach(self, kubeconfig: str) -> None:
        """Use this run's kubeconfig for the Lease, and keep a background thread renewing it
        once held. The Lease is taken on demand, before the first step that may change the
        cluster (:meth:`may_change`): a run that finds nothing to change only reads it."""
        self.kubeconfig = kubeconfig
        # its own executor: lock commands run on after an interrupt ended the steps' tools
        self.lease = ClusterLease(
            self.cluster, self.holder, Executor(stop=Stop()), Kubectl(kubeconfig), force=self.force
        )
        self._thread = threading.Thread(target=self._keep, name="lease", daemon=True)
        self._thread.start()

    def after_step(self, _result: object = None) -> None:
        """Between steps: stop the run if another run holds or took the cluster's Lease."""
        if self.lost:
            raise LockHeld(self.lost)
        self.peek()

    def peek(self) -> None:
        """Once the kubeconfig exists (after a first step, or as a rebuild's Talos steps wrote
        it): read the Lease once, beside the steps, so another run's live Lease stops this one
        before its next step."""
        lease = self.lease
        with self._peek_lock:
            if lease is None or lease.held or self._peeked or not Path(self.kubeconfig).is_file():
                return
            self._peeked = True
        threading.Thread(target=self._peek, name="lease-read", daemon=True).start()

    def _peek(self) -> None:
        lease = self.lease
        assert lease is not None
        try:
            found = lease._get()
        except _NoAnswer:
            return
        other = lease._live_other(found) if found else None
        if other is not None and not self.force:
            where = f"Lease {LEASE_NAMESPACE}/{lease.name}"
            self.lost = _held_message(self.cluster, other, where)

    def attempting(self) -> bool:
        """Whether an attempt to take the Lease is under way."""
        return self._attempt is not None and self._attempt.is_alive()

    def _attempt_once(self) -> None:
        if not self._mutex.acquire(blocking=False):
            return  # the background thread is renewing at this moment
        try:
            self._try_lease()
        except LockHeld as exc:
            self.lost = str(exc)
        except (OneclusterError, Interrupted) as exc:
            echo(f"# could not take the cluster's Lease: {exc}", err=True)
        finally:
            self._mutex.release()

    def may_change(self) -> bool:
        """Whether a step that may change the cluster can start now: the Lease is held, or the
        cluster cannot hold one yet (no kubeconfig; an API that did not answer the last
        attempt). Otherwise an attempt to take it starts, and the step waits for its answer;
        raises :class:`LockHeld` once another run holds it."""
        if self.lost:
            raise LockHeld(self.lost)
        lease = self.lease
        if lease is None or lease.held or not Path(self.kubeconfig).is_file():
            return True
        if self.attempting():
            return False
        if time.monotonic() < self._next_try:
            return True  # the API did not answer: go on, and ask again after RETRY_SECONDS
        self._attempt = threading.Thread(target=self._attempt_once, name="lease-take", daemon=True)
        self._attempt.start()
        return False

    def _try_lease(self) -> None:
        """One attempt (the caller holds ``_mutex``)."""
        lease = self.lease
        if lease is None or lease.held or not Path(self.kubeconfig).is_file():
            return
        if lease.try_acquire():
            echo(f"==> holding Lease {LEASE_NAMESPACE}/{lease.name} as {self.holder.identity}")
        else:  # no answer yet: the next attempt waits a little
            self._next_try = time.monotonic() + RETRY_SECONDS

    def _keep(self) -> None:
        """The background thread: renew the Lease while it is held."""
        every = float(os.environ.get("ONECLUSTER_LEASE_RENEW") or RENEW_SECONDS)
        lease = self.lease
        assert lease is not None
        while not self._done.wait(every if lease.held else min(every, RETRY_SECONDS)):
            why = ""
            try:
                with self._mutex:
                    if not lease.held or time.monotonic() - lease.written_at < every / 2:
                        continue  # not taken (yet), or taken since this thread last looked
                    why = lease.renew()
            except LockHeld as exc:
                why = str(exc)
            except (OneclusterError, Interrupted) as exc:
                echo(f"# could not renew the cluster's Lease: {exc}", err=True)
            if why:
                self.lost = why
                return

    def release_lease(self) -> None:
        """Stop renewing and give the Lease up (before the run's kubeconfig is removed)."""
        self._done.set()
        if self._attempt is not None:
            self._attempt.join(COMMAND_SECONDS * 2 + 5)
        if self._thread is not None:
            self._thread.join(COMMAND_SECONDS + 5)
        if self.lease is not None:
            self.lease.release()

    def close(self) -> None:
        try:
            self.release_lease()
        finally:
            self.local.release()

    def print_dry_run(self, kubeconfig: str) -> None:
        """What the run would do to hold the lock, as comment lines (nothing is taken)."""
        lease = ClusterLease(self.cluster, self.holder, Executor(dry_run=True), Kubectl(kubeconfig))
        echo(f"# lock: a run would hold {self.local.path} (flock) while it lasts")
        echo(
            f"# lock: once {kubeconfig} exists and the API answers: {lease.get_command().display()}"
        )
        echo(
            f"# lock: then {lease.write_command('create', {}).display()} (a Lease "
            f"{LEASE_NAMESPACE}/{lease.name}, holder host:pid), renewed every {RENEW_SECONDS:g}s "
            "with `kubectl replace`, released at the end"
        )
