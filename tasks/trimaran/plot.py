"""A PNG of node utilisation over time under two settings (matplotlib, an optional extra)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from ..engine.errors import OneclusterError
from .replay import OVERLOAD, Outcome

INSTALL_HINT = "pip install -e '.[plot]'  (or: pip install matplotlib)"


class PlotUnavailable(OneclusterError):
    """matplotlib is not installed."""


def write_plot(
    path: str | Path, times: Sequence[float], outcomes: Sequence[tuple[str, Outcome]]
) -> None:
    """One row per ``(title, outcome)`` (best, current), CPU and memory side by side, one line
    per node, the overload line dashed."""
    try:
        import matplotlib  # lazy: heavy, and an optional extra

        matplotlib.use("Agg")  # no display: write files only
        import matplotlib.dates as mdates
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotUnavailable(f"matplotlib is not installed; {INSTALL_HINT}") from None
    # dates converted once (matplotlib would convert the datetimes again for every line)
    when = mdates.date2num([datetime.fromtimestamp(t, UTC) for t in times])
    fig, axes = plt.subplots(
        len(outcomes), 2, figsize=(13, 3.6 * len(outcomes)), sharex=True, squeeze=False
    )
    try:
        for row, (title, outcome) in zip(axes, outcomes, strict=True):
            for ax, resource, series in (
                (row[0], "CPU", outcome.cpu),
                (row[1], "memory", outcome.memory),
            ):
                for node in sorted(series):
                    values = [float("nan") if v is None else v for v in series[node]]
                    ax.plot(when, values, linewidth=0.8, label=node)
                ax.axhline(OVERLOAD, color="red", linestyle="--", linewidth=0.8)
                ax.set_title(f"{title} {outcome.label}: {resource} (15-min mean, %)", fontsize=10)
                ax.set_ylim(bottom=0)
                ax.grid(alpha=0.3)
                ax.xaxis_date(tz=UTC)
                ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d", tz=UTC))
        axes[0][1].legend(loc="upper right", fontsize=7, ncol=2)
        # fixed margins: tight_layout would draw the whole figure once more just to measure it
        height = 3.6 * len(outcomes)  # inches; margins in inches, as fractions of it
        fig.subplots_adjust(
            left=0.05, right=0.99, bottom=0.4 / height, top=1 - 0.35 / height, wspace=0.12,
            hspace=0.3,
        )  # fmt: skip
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(path, format="png", dpi=90)
        except OSError as exc:
            raise OneclusterError(
                f"--plot {path}: cannot be written: {exc.strerror or exc}"
            ) from None
    finally:
        plt.close(fig)
