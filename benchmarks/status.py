#!/usr/bin/env python3
"""Benchmark `cluster.status` on the reference cluster's canned answers, against slow fake tools.

Usage: python benchmarks/status.py [--sleep 0.5 1.0] [--repeat 3]

The recording fakes answer every read with tests/fixtures/status/ (the storm: a descheduler
evicting Mealie's database), each call sleeping ``--sleep`` seconds like a slow API server. A row
per latency: the commands, the API requests they make (one list per kind: counted from the fakes'
log), the wall time, and the wall time less one call's latency (the fixed cost: loading the stack,
rendering its manifests, starting the tools). The reads run at once, so a status costs one round
trip, not one per read: that fixed cost must not grow with the latency. Target: at most 25 API
requests.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from invoke.exceptions import Exit  # noqa: E402

from tasks.engine.output import table  # noqa: E402
from tests.conftest import call_task, install_fakes  # noqa: E402
from tests.test_status import api_requests, fixture, serve  # noqa: E402


def one_status(sleep: float) -> tuple[int, int, float]:
    """(commands, API requests, wall seconds) of one status against fakes sleeping ``sleep``."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        fakes = install_fakes(tmp_path / "fake-tools")
        env = {
            "PATH": f"{fakes.bin_dir}{os.pathsep}{os.environ['PATH']}",
            "FAKE_TOOLS_LOG": str(fakes.log),
            "FAKE_TOOLS_CONFIG": str(fakes.config),
            "KUBECONFIG": str(tmp_path / "kubeconfig"),
            "TALOSCONFIG": str(tmp_path / "talosconfig"),
            "ONECLUSTER_CACHE": str(tmp_path / "cache"),
        }
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            fakes.set_sleep(sleep)
            serve(fakes, tmp_path, fixture("storm"))
            start = time.monotonic()
            # the storm is an error finding: the task exits 1
            with redirect_stdout(StringIO()), contextlib.suppress(Exit):
                call_task("cluster.status", format="json")
            wall = time.monotonic() - start
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        return len(fakes.calls()), api_requests(fakes), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sleep", type=float, nargs="+", default=[0.5, 1.0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = []
    for sleep in args.sleep:
        runs = [one_status(sleep) for _ in range(args.repeat)]
        commands, requests = runs[0][0], runs[0][1]
        wall = statistics.median(r[2] for r in runs)
        rows.append((f"{sleep:g}s", commands, requests, f"{wall:.2f}s", f"{wall - sleep:.2f}s"))
    print(table(("latency per call", "commands", "API requests", "wall (median)", "wall - latency"),
                rows))  # fmt: skip


if __name__ == "__main__":
    main()
