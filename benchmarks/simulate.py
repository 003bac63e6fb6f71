#!/usr/bin/env python3
"""Benchmark `scheduling.simulate` on a synthetic 14-day recording (six nodes, a few hundred Pods).

Usage: python benchmarks/simulate.py [--seed 7] [--days 14] [--pods 300] [--repeat 3]

The recording comes from the tests' generator (``tests/trimaran_synthetic.py``). Each row is the
best of ``--repeat`` wall times of one way of running the 6-setting grid ``--margin 1,1.5,2
--sensitivity 1,2`` (the current setting m=2 k=2 is part of it): the replay alone in process, the
task with its table and recommendation, the task with ``--plot``, and the whole command
(``invoke scheduling.simulate ... --plot``) from a cold start. Target: the whole command under
10 s on this machine.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tasks.engine.output import table  # noqa: E402
from tasks.trimaran.recording import load  # noqa: E402
from tasks.trimaran.replay import Setting, Timeline, replay  # noqa: E402
from tests.conftest import call_task  # noqa: E402
from tests.trimaran_synthetic import write  # noqa: E402

MARGIN, SENSITIVITY = "1,1.5,2", "1,2"
TARGET = 10.0


def best_of(repeat: int, run) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--pods", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = write(Path(tmp) / "rec.json", seed=args.seed, days=args.days, pods=args.pods)
        png = Path(tmp) / "plot.png"
        rec = load(path)
        settings = [Setting(m, k) for m in (1, 1.5, 2) for k in (1, 2)]

        def replay_only() -> None:
            tl = Timeline(load(path))
            for s in [None, *settings]:
                replay(rec, s, tl)

        def task(plot: bool) -> None:
            with redirect_stdout(StringIO()):
                call_task(
                    "scheduling.simulate", metrics=str(path), margin=MARGIN,
                    sensitivity=SENSITIVITY, plot=str(png) if plot else None,
                )  # fmt: skip

        def command() -> None:
            subprocess.run(
                [sys.executable, "-m", "invoke", "scheduling.simulate", "--metrics", str(path),
                 "--margin", MARGIN, "--sensitivity", SENSITIVITY, "--plot", str(png)],
                cwd=ROOT, check=True, capture_output=True,
            )  # fmt: skip

        pods = sum(1 for p in rec.pods if p.scheduler == rec.scheduler)
        rows = []
        for name, run in (
            ("replay (load + 7 replays)", replay_only),
            ("task: table + recommendation", lambda: task(False)),
            ("task with --plot", lambda: task(True)),
            ("invoke scheduling.simulate --plot (cold)", command),
        ):
            wall = best_of(args.repeat, run)
            rows.append((name, len(settings), len(rec.times), pods, f"{wall:.2f}"))
        print(
            f"synthetic recording: {args.days} days, {len(rec.nodes)} nodes, "
            f"{len(rec.times)} points, {len(rec.pods)} Pods (seed {args.seed}); "
            f"best of {args.repeat}"
        )
        print(table(("run", "settings", "points", "pods replayed", "wall s"), rows))
        whole = float(rows[-1][-1])
        verdict = "met" if whole < TARGET else "MISSED"
        print(f"target: the whole command under {TARGET:g} s: {verdict} ({whole:.2f} s)")


if __name__ == "__main__":
    main()
