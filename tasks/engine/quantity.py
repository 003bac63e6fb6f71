"""Kubernetes quantities (``500m``, ``512Mi``, ``1Gi``, ``2``, ``1e9``), parsed strictly and exactly.

The one reader of quantities: ``cluster.status`` (allocatable, requests), the restore steps (a
backup's size against a claim's) and the scheduling simulation (what the scheduler counts).

The grammar is apimachinery's (``k8s.io/apimachinery/pkg/api/resource/quantity.go``, the comment
above ``type Quantity``): a signed decimal number (``1``, ``1.5``, ``.5``, ``1.``) followed by one
suffix, binary SI (``Ki Mi Gi Ti Pi Ei``), decimal SI (``n u m`` ``""`` ``k M G T P E``) or a
decimal exponent (``e3``, ``E-2``). Values are kept as exact fractions; the scheduler reads them as
whole numbers rounded **up**: ``Quantity.MilliValue()`` for CPU (millicores) and ``Value()`` for
memory (bytes) are ``ScaledValue`` = ``ceil(q / 10^scale)``.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

from .errors import OneclusterError

_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)"
_QUANTITY = re.compile(
    rf"^(?P<number>{_NUMBER})(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$"
)

BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000), "": Fraction(1),
    "k": Fraction(10**3), "M": Fraction(10**6), "G": Fraction(10**9), "T": Fraction(10**12),
    "P": Fraction(10**15), "E": Fraction(10**18),
}  # fmt: skip

QUANTITY_HELP = (
    "a number with an optional suffix: 500m, 0.5 or 2 for CPU; 512Mi, 1Gi or 1e9 for memory"
)


class QuantityError(OneclusterError, ValueError):
    """A text that is not a Kubernetes quantity."""


def parse_quantity(text: str) -> Fraction:
    """The exact value of a quantity (``"500m"`` → 1/2, ``"1Ki"`` → 1024)."""
    m = _QUANTITY.match(str(text).strip()) if isinstance(text, str | int) else None
    if m is None or str(text) != str(text).strip():
        raise QuantityError(f"{text!r} is not a Kubernetes quantity ({QUANTITY_HELP})")
    number = Fraction(m.group("number"))
    suffix = m.group("suffix") or ""
    if suffix in BINARY:
        return number * BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    return number * Fraction(10) ** int(suffix[1:])


def milli_value(text: str) -> int:
    """``Quantity.MilliValue()``: the value in thousandths, rounded up (``"0.1m"`` → 1)."""
    return math.ceil(parse_quantity(text) * 1000)


def value(text: str) -> int:
    """``Quantity.Value()``: the value as a whole number, rounded up (``"1.5"`` → 2)."""
    return math.ceil(parse_quantity(text))
