"""Waiting: one poller, and one parser for the durations flags take (``30s``, ``10m``, ``1h``, ``14d``)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TypeVar

from .errors import FlagError

T = TypeVar("T")
_DURATION = re.compile(r"^(\d+)([smhd]?)$")


def parse_duration(text: str, flag: str = "") -> float:
    """Seconds in ``30s``, ``10m``, ``1h``, ``14d`` or a bare number of seconds."""
    m = _DURATION.match(str(text).strip())
    if not m:
        where = f"{flag} " if flag else ""
        raise FlagError(f"{where}expected a duration such as 30s, 10m or 1h, got {text!r}")
    return int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def _nothing_left(result: object) -> bool:
    return not result


def poll(
    probe: Callable[[], T],
    timeout: float,
    interval: float,
    *,
    done: Callable[[T], bool] = _nothing_left,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``probe`` until ``done(result)`` or ``timeout`` seconds passed; return the last result.

    By default a probe returns the problems it found, and polling ends when there are none.
    """
    deadline = clock() + timeout
    while True:
        result = probe()
        if done(result) or clock() >= deadline:
            return result
        sleep(interval)
