"""Interrupts of a run: the first SIGINT/SIGTERM stops new work, a second ends the running tools.

A run holds one :class:`Stop`. The first signal sets ``requested``: the runner starts no new
step and gives the running ones :data:`GRACE_SECONDS` to finish. A second signal, or the grace
running out, sets ``killing``: every tracked child process group (each tool runs in its own, see
:class:`Children`) gets SIGTERM, then SIGKILL after :data:`KILL_WAIT_SECONDS`, and the executor
refuses to start anything more. The handlers only set flags (a handler that printed could
deadlock on the output lock); the runner's loop reports. Exit codes follow the shell's
convention, 128 + the signal's number: 130 for SIGINT, 143 for SIGTERM.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# how long running steps may take to finish after the first signal ($ONECLUSTER_GRACE overrides)
GRACE_SECONDS = 30.0
# how long a process group has between SIGTERM and SIGKILL
KILL_WAIT_SECONDS = 5.0
HANDLED = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """Raised inside a step whose tool was stopped, or that tried to start one while stopping.

    A ``BaseException`` on purpose, like :class:`KeyboardInterrupt`: a step's ``except
    OneclusterError`` (a gate retrying, a probe treating failure as "not there") must not swallow
    it, so the step ends at once.
    """


def grace_seconds() -> float:
    """The grace period: ``$ONECLUSTER_GRACE`` seconds when set, else :data:`GRACE_SECONDS`."""
    raw = os.environ.get("ONECLUSTER_GRACE", "")
    try:
        return float(raw) if raw else GRACE_SECONDS
    except ValueError:
        return GRACE_SECONDS


class Children:
    """The process groups of the commands running now (each tool leads its own group)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._groups: dict[int, Any] = {}  # pgid → sh's process (kept until it was reaped)

    def add(self, pgid: int, process: Any) -> None:
        with self._lock:
            self._groups[pgid] = process

    def discard(self, pgid: int) -> None:
        with self._lock:
            self._groups.pop(pgid, None)

    def pgids(self) -> list[int]:
        with self._lock:
            return list(self._groups)

    def signal_all(self, sig: int) -> None:
        for pgid in self.pgids():
            try:
                os.killpg(pgid, sig)
            except (ProcessLookupError, PermissionError):
                self.discard(pgid)

    def kill_all(self, wait: float = KILL_WAIT_SECONDS) -> None:
        """SIGTERM to every group, SIGKILL to those still there after ``wait`` seconds."""
        self.signal_all(signal.SIGTERM)
        deadline = time.monotonic() + wait
        while self.pgids() and time.monotonic() < deadline:
            time.sleep(0.05)  # a group leaves the registry once its leader was reaped
        self.signal_all(signal.SIGKILL)


class Stop:
    """One run's stop state, shared by the runner, the executor and the signal handlers."""

    def __init__(self, grace: float | None = None) -> None:
        self.grace = grace_seconds() if grace is None else grace
        self.requested = threading.Event()
        self.killing = threading.Event()
        self.signum: int | None = None
        self.children = Children()

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else "interrupt"

    @property
    def exit_code(self) -> int:
        """128 + the signal's number (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + (self.signum or signal.SIGINT)

    def request(self, signum: int) -> None:
        """A signal arrived: the first asks to stop, the next one to kill (called by handlers)."""
        if self.requested.is_set():
            self.killing.set()
            return
        self.signum = signum
        self.requested.set()

    def kill(self) -> None:
        """End every running tool now and refuse new ones (a second signal, or grace expired)."""
        self.requested.set()
        self.killing.set()
        self.children.kill_all()


@contextmanager
def handle_signals(stop: Stop) -> Iterator[Stop]:
    """Route SIGINT and SIGTERM to ``stop`` while the block runs; restore the previous handlers.

    Handlers can only be installed from the main thread; elsewhere (a test calling a task in a
    thread) the block runs with the handlers as they are, and ``stop`` still works when set.
    """
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, _frame: Any) -> None:
        stop.request(signum)

    previous = {s: signal.signal(s, handler) for s in HANDLED}
    try:
        yield stop
    finally:
        for s, old in previous.items():
            signal.signal(s, old)
