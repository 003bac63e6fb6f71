"""What a replay says: a table with one row per setting, and a recommendation in one paragraph."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from ..engine.output import table
from .replay import OVERLOAD, Outcome, Setting

# settings whose balance (mean std-dev across nodes) is within this many percentage points of the
# best count as equally balanced; among them the lowest overload risk wins
BALANCE_TOLERANCE = 1.0
# a current setting within this many points of the best's overload risk (and balanced within
# BALANCE_TOLERANCE of it) is as good as the best: the replay is not that precise
RISK_TOLERANCE = 0.5


def _pct(x: float) -> str:
    return f"{x:.1f}%"


def _pp(x: float) -> str:
    return f"{x:.1f}"


def settings_table(outcomes: Sequence[Outcome], current: Setting) -> str:
    """One row per setting (the recorded placements first): agreement, overload, spread."""
    headers = (
        "setting", "pods", "differs", f"time >{OVERLOAD:g}%", f"pods >{OVERLOAD:g}%",
        "cpu max-min", "cpu std",
        "mem max-min", "mem std",
    )  # fmt: skip
    rows = []
    for o in outcomes:
        name = o.label + (" (current)" if o.setting == current else "")
        rows.append(
            (
                name, len(o.placements), "-" if o.setting is None else _pct(o.rate(o.differs)),
                _pct(o.overload_time), _pct(o.rate(o.overloaded)), _pp(o.spread["cpu_range"]), _pp(o.spread["cpu_std"]),
                _pp(o.spread["memory_range"]), _pp(o.spread["memory_std"]),
            )
        )  # fmt: skip
    return table(headers, rows)


def best_outcome(outcomes: Sequence[Outcome], current: Setting) -> Outcome:
    """The lowest overload risk among the settings balanced within :data:`BALANCE_TOLERANCE` of
    the best; ties go to the better balance, then the current setting, then the first given."""
    simulated = [o for o in outcomes if o.setting is not None]
    best_balance = min(o.balance for o in simulated)
    balanced = [o for o in simulated if o.balance <= best_balance + BALANCE_TOLERANCE]
    return min(
        balanced,
        key=lambda o: (round(o.overload_time, 6), round(o.balance, 6), o.setting != current),
    )


def _day(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC")


def recommendation(
    outcomes: Sequence[Outcome], current: Setting, start: float, end: float
) -> tuple[Outcome, str]:
    """The best setting and one paragraph saying why, and how far the current one is from it."""
    best = best_outcome(outcomes, current)
    now = next((o for o in outcomes if o.setting == current), None)
    pods = len(best.placements)
    assert best.setting is not None
    text = (
        f"Over {pods} Pod creations from {_day(start)} to {_day(end)}, "
        f"safeVarianceMargin {best.setting.margin:g} with safeVarianceSensitivity "
        f"{best.setting.sensitivity:g} had the lowest overload risk at equal balance: "
        f"the Pods it placed spent {_pct(best.overload_time)} of their lifetime on a node whose "
        f"15-minute mean CPU or memory was above {OVERLOAD:g}% "
        f"({_pct(best.rate(best.overloaded))} of them met it at least once), with node utilisation "
        f"{_pp(best.balance)} points apart (std-dev across nodes, CPU and memory averaged)"
    )
    if now is None:
        text += "."
    elif now is best:
        text += (
            f". That is the current setting ({current.label}); its choices differ from the "
            f"recorded placements for {_pct(now.rate(now.differs))} of the Pods, which measures "
            "how much the other scoring plugins and filters (not simulated) decided."
        )
    else:
        risk = now.overload_time - best.overload_time
        balance = now.balance - best.balance
        close = risk <= RISK_TOLERANCE and balance <= BALANCE_TOLERANCE
        text += (
            f". The current setting ({current.label}) is within {RISK_TOLERANCE:g} points of it "
            f"in overload risk ({_pct(now.overload_time)}) and {BALANCE_TOLERANCE:g} in balance "
            f"({_pp(now.balance)}): closer than this replay can tell apart, so no change is "
            "indicated."
            if close
            else ""
        )
        text += (
            ""
            if close
            else (
                f". The current setting ({current.label}) is {abs(risk):.1f} points "
                f"{'higher' if risk >= 0 else 'lower'} in overload risk "
                f"({_pct(now.overload_time)}) and {abs(balance):.1f} points "
                f"{'less' if balance >= 0 else 'better'} balanced ({_pp(now.balance)}); "
                f"to change it, set safeVarianceMargin: {best.setting.margin:g} and "
                f"safeVarianceSensitivity: {best.setting.sensitivity:g} in "
                "helm-values/scheduler-plugins.yaml and run `invoke scheduling.deploy`."
            )
        )
    if best.placements and pods < 30:
        text += f" With only {pods} Pods the difference between settings is weak evidence."
    return best, text
