"""A Pod's requests as the scheduler counts them, and the ``--pod cpu=…,memory=…`` flag.

Quantities are read by the one parser, :mod:`tasks.engine.quantity`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..engine.errors import FlagError
from ..engine.quantity import BINARY, QUANTITY_HELP, QuantityError, parse_quantity


@dataclass(frozen=True)
class PodShape:
    """One Pod's requests as the scheduler counts them: millicores and bytes."""

    cpu_millicores: int = 0
    memory_bytes: int = 0

    def label(self) -> str:
        return f"cpu={self.cpu_millicores}m,memory={_bytes_label(self.memory_bytes)}"


def _bytes_label(n: int) -> str:
    for suffix in ("Gi", "Mi", "Ki"):
        if n and n % BINARY[suffix] == 0:
            return f"{n // BINARY[suffix]}{suffix}"
    return str(n)


POD_EXAMPLE = "--pod cpu=500m,memory=512Mi"


def parse_pod_shape(text: str, flag: str = "--pod") -> PodShape:
    """``cpu=500m,memory=512Mi`` as a :class:`PodShape`; every mistake a :class:`FlagError`."""
    seen: dict[str, str] = {}
    for part in str(text).split(","):
        key, sep, raw = part.strip().partition("=")
        key = key.strip()
        if not sep or not key:
            raise FlagError(
                f"{flag} {text}: {part.strip()!r} is not RESOURCE=QUANTITY; e.g. {POD_EXAMPLE}"
            )
        if key not in ("cpu", "memory"):
            raise FlagError(
                f"{flag} {text}: unknown resource {key!r}; the score reads cpu and memory only, "
                f"e.g. {POD_EXAMPLE}"
            )
        if key in seen:
            raise FlagError(
                f"{flag} {text}: {key} is given twice; give it once, e.g. {POD_EXAMPLE}"
            )
        seen[key] = raw.strip()
    amounts = {}
    for key, raw in seen.items():
        try:
            amount = parse_quantity(raw)
        except QuantityError:
            raise FlagError(
                f"{flag} {text}: {key}={raw!r} is not a Kubernetes quantity ({QUANTITY_HELP}); "
                f"e.g. {POD_EXAMPLE}"
            ) from None
        if amount < 0:
            raise FlagError(
                f"{flag} {text}: {key}={raw} is negative; a request is zero or more, "
                f"e.g. {POD_EXAMPLE}"
            )
        amounts[key] = amount
    return PodShape(
        cpu_millicores=math.ceil(amounts.get("cpu", 0) * 1000),
        memory_bytes=math.ceil(amounts.get("memory", 0)),
    )
