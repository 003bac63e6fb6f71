"""The LVRB settings to compare: the flags' lists, and the cluster's current one from its values."""

from __future__ import annotations

import math
from pathlib import Path

from ..engine import yamlio
from ..engine.errors import FlagError, OneclusterError
from .replay import Setting
from .score import default_args

VALUES = Path(__file__).resolve().parents[2] / "helm-values" / "scheduler-plugins.yaml"
PLUGIN = "LoadVariationRiskBalancing"


def parse_list(flag: str, text: str, example: str) -> list[float]:
    """``1,1.5,2`` as numbers, each finite and zero or more; duplicates dropped, order kept."""
    values: list[float] = []
    for part in str(text).split(","):
        raw = part.strip()
        try:
            number = float(raw)
        except ValueError:
            raise FlagError(
                f"{flag} {text}: {raw!r} is not a number; give comma-separated numbers, "
                f"e.g. {flag} {example}"
            ) from None
        if not math.isfinite(number):
            raise FlagError(f"{flag} {text}: {raw} is not a finite number; e.g. {flag} {example}")
        if math.copysign(1.0, number) < 0:
            raise FlagError(
                f"{flag} {text}: {raw} is negative; the plugin replaces a negative value by its "
                f"default 1 (apis/config/v1/defaults.go), so give 1 instead, e.g. {flag} {example}"
            )
        if number not in values:
            values.append(number)
    return values


def grid(margins: list[float], sensitivities: list[float]) -> list[Setting]:
    return [Setting(m, k) for m in margins for k in sensitivities]


def current_setting(path: Path = VALUES) -> Setting:
    """The args in ``helm-values/scheduler-plugins.yaml``, as the plugin defaults them."""
    doc = yamlio.load(yamlio.read_text(path), str(path)) or {}
    for entry in doc.get("pluginConfig") or ():
        if isinstance(entry, dict) and entry.get("name") == PLUGIN:
            args = entry.get("args") or {}
            margin, sensitivity = default_args(
                args.get("safeVarianceMargin"), args.get("safeVarianceSensitivity")
            )
            return Setting(margin, sensitivity)
    raise OneclusterError(
        f"{path}: no pluginConfig entry named {PLUGIN}; the current setting is unknown "
        "(fix: restore the LoadVariationRiskBalancing entry)"
    )
