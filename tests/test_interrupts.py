"""Ctrl-C and SIGTERM with real signals on a real onecluster process and its real tool processes.

Each test starts onecluster (``tests/fakes/onecluster_driver.py``: the Invoke program with an
in-memory secret store) as a subprocess, the recording fakes on PATH, one tool call made slow.
Once that call has started (the fakes record each call and its pid as it starts), the test sends
the signal the way a terminal (Ctrl-C: SIGINT to the foreground process group) or ``kill`` (SIGTERM
to the process) would, then checks what the run printed, its exit code, that its private work
directory is gone and that no tool process is left. Both in the Talos phase of ``cluster.rebuild``
(``talosctl apply-config``) and in the Helm phase (``helm upgrade`` in ``network.deploy``). Every
wait is bounded; nothing asserts on how long anything took.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_talos_fixtures import make_talos_env

ROOT = Path(__file__).resolve().parents[1]
DRIVER = ROOT / "tests" / "fakes" / "onecluster_driver.py"
BOUND = 90.0  # the longest any wait here may take before the test fails


def alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie waiting for a reaper counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def wait_until(check: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + BOUND
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


@dataclass
class Run:
    """One onecluster process started by a test."""

    proc: subprocess.Popen
    out: Path
    err: Path
    fakes: object
    tmp: Path

    def started(self, *parts: str) -> list[dict]:
        """The tool calls that started, whose argv holds every one of ``parts``."""
        calls = self.fakes.started()  # type: ignore[attr-defined]
        return [c for c in calls if all(p in [c["tool"], *c["argv"]] for p in parts)]

    def finished(self, *parts: str) -> list[dict]:
        calls = self.fakes.calls()  # type: ignore[attr-defined]
        return [c for c in calls if all(p in [c["tool"], *c["argv"]] for p in parts)]

    def stdout(self) -> str:
        return self.out.read_text()

    def stderr(self) -> str:
        return self.err.read_text()

    def interrupt(self, sig: int) -> None:
        """SIGINT as a terminal's Ctrl-C sends it (the whole foreground group), SIGTERM as kill."""
        if sig == signal.SIGINT:
            os.killpg(self.proc.pid, sig)
        else:
            os.kill(self.proc.pid, sig)

    def wait(self) -> int:
        return self.proc.wait(BOUND)

    def workdirs(self) -> list[Path]:
        return list(self.tmp.glob("onecluster-*"))


@pytest.fixture
def launch(tmp_path, monkeypatch, fake_tools):
    """Start onecluster with the fakes: ``launch("cluster.rebuild", slow=("talosctl", ...))``."""
    env = make_talos_env(tmp_path, monkeypatch, fake_tools)
    fake_tools.rule("talosctl", "etcd status", exit=1, stderr="etcd is not running")
    runs: list[Run] = []

    def start(*args: str, slow: tuple[str, ...] = (), sleep: float = 0, **extra: str) -> Run:
        if slow:
            fake_tools.rule(slow[0], *slow[1:], sleep=sleep)
        n = len(runs)
        out, err = tmp_path / f"out{n}.txt", tmp_path / f"err{n}.txt"
        proc = subprocess.Popen(
            [sys.executable, str(DRIVER), *args],
            cwd=ROOT,
            env={**os.environ, "TMPDIR": str(env.tmp), **extra},
            stdin=subprocess.DEVNULL,
            stdout=out.open("w"),
            stderr=err.open("w"),
            start_new_session=True,  # its own group, as a shell's foreground job
        )
        run = Run(proc, out, err, fake_tools, env.tmp)
        runs.append(run)
        return run

    yield start
    for run in runs:  # a failed test must not leave processes behind
        if run.proc.poll() is None:
            os.killpg(run.proc.pid, signal.SIGKILL)
            run.proc.wait(BOUND)
        for call in fake_tools.started():
            if alive(call["pid"]):
                os.kill(call["pid"], signal.SIGKILL)


PHASES = {
    # the task, the slow call, the steps it can never reach once interrupted there
    "talos": (
        ("cluster.rebuild", "--jobs", "4"),
        ("talosctl", "apply-config"),
        ["talos/bootstrap", "talos/health", "network/traefik"],
    ),
    "helm": (
        ("network.deploy",),
        ("helm", "upgrade"),
        ["network/traefik", "network/default-gateway"],
    ),
}
EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


def no_tool_left(run: Run) -> None:
    pids = [c["pid"] for c in run.fakes.started()]  # type: ignore[attr-defined]
    assert pids
    assert [p for p in pids if alive(p)] == []


def assert_continues_with_same_command(stdout: str, task: tuple[str, ...]) -> None:
    """The continue command is the same command: a re-run skips what succeeded unchanged."""
    line = next(x for x in stdout.splitlines() if x.startswith("continue with: "))
    assert line == f"continue with: invoke {' '.join(task)}"


def results(stdout: str) -> dict[str, str]:
    """The summary table's rows: step id → result."""
    rows = {}
    for line in stdout.splitlines():
        m = re.match(
            r"^(\S+/\S+)\s+(ok|unchanged|failed|skipped|stopped|not run)\s+\d+\.\d+s$", line
        )
        if m:
            rows[m.group(1)] = m.group(2)
    return rows


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("phase", sorted(PHASES))
def test_first_signal_lets_running_steps_finish_and_starts_nothing_new(launch, phase, sig):
    task, slow, unreached = PHASES[phase]
    run = launch(*task, slow=slow, sleep=3, ONECLUSTER_GRACE="300")
    wait_until(lambda: run.started(*slow), f"the first {' '.join(slow)}")
    run.interrupt(sig)
    assert run.wait() == EXIT[sig]
    out, err = run.stdout(), run.stderr()
    name = signal.Signals(sig).name
    assert f"==> interrupted ({name}): starting nothing new" in err
    assert f"error: interrupted by {name}" in err
    assert re.search(
        rf"^interrupted by {name}: \d+ step\(s\) done, 0 stopped, \d+ not run$", out, re.M
    )
    rows = results(out)
    # the steps already running were let finish: every slow call that started also ended
    started = run.started(*slow)
    assert started and len(run.finished(*slow)) == len(started)
    assert "stopped" not in rows.values()
    not_run = next(x for x in out.splitlines() if x.startswith("not run: "))
    for step in unreached:
        assert rows[step] == "not run" and step in not_run
    assert_continues_with_same_command(out, task)
    assert run.workdirs() == []
    no_tool_left(run)
    if phase == "talos":  # four applies ran (--jobs 4); the other two never started
        assert len(started) == 4
        assert (
            sorted(rows[s] for s in rows if s.startswith("talos/apply-"))
            == ["not run"] * 2 + ["ok"] * 4
        )
    else:
        assert not [c for c in started if "traefik" in c["argv"]]


@pytest.mark.parametrize(
    ("phase", "sig"), [("talos", signal.SIGINT), ("helm", signal.SIGTERM)], ids=["talos", "helm"]
)
def test_second_signal_ends_the_running_tools_and_exits(launch, phase, sig):
    task, slow, unreached = PHASES[phase]
    run = launch(*task, slow=slow, sleep=600, ONECLUSTER_GRACE="600")
    wait_until(lambda: run.started(*slow), f"the first {' '.join(slow)}")
    run.interrupt(sig)
    wait_until(lambda: "==> interrupted (" in run.stderr(), "the run to report the first signal")
    assert run.proc.poll() is None  # still waiting for its running steps
    run.interrupt(sig)
    assert run.wait() == EXIT[sig]
    out, err = run.stdout(), run.stderr()
    assert "==> second signal: stopping" in err
    rows = results(out)
    stopped = [s for s, r in rows.items() if r == "stopped"]
    assert stopped
    assert next(
        x for x in out.splitlines() if x.startswith("stopped: ")
    ) == "stopped: " + ", ".join(stopped)
    for step in unreached:
        assert rows[step] == "not run"
    assert_continues_with_same_command(out, task)
    # the slow calls were ended, not waited for: none of them got to record its end
    assert run.started(*slow) and run.finished(*slow) == []
    assert run.workdirs() == []
    no_tool_left(run)


def test_grace_period_over_ends_the_running_tools(launch):
    task, slow, _ = PHASES["talos"]
    run = launch(*task, slow=slow, sleep=600, ONECLUSTER_GRACE="0.5")
    wait_until(lambda: run.started(*slow), "the first apply-config")
    run.interrupt(signal.SIGTERM)
    assert run.wait() == 143
    assert "==> grace period over: stopping" in run.stderr()
    assert "stopped" in results(run.stdout()).values()
    assert run.workdirs() == []
    no_tool_left(run)


def test_tools_run_in_their_own_process_group(launch):
    """So the terminal's Ctrl-C reaches onecluster alone, which decides what the tools do."""
    task, slow, _ = PHASES["helm"]
    run = launch(*task, slow=slow, sleep=600, ONECLUSTER_GRACE="0")
    wait_until(lambda: run.started(*slow), "the first helm upgrade")
    pid = run.started(*slow)[0]["pid"]
    assert os.getpgid(pid) == pid != os.getpgid(run.proc.pid)
    run.interrupt(signal.SIGINT)
    assert run.wait() == 130
    no_tool_left(run)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_outside_a_run_ends_the_tool_and_the_task_cleanly(launch, sig):
    # apps.status asks the cluster through its own probes, not through a run of the engine
    run = launch("apps.status", "--name", "mealie", slow=("kubectl",), sleep=60)
    wait_until(lambda: run.started("kubectl"), "the first kubectl call")
    run.interrupt(sig)
    assert run.wait() == EXIT[sig]
    err = run.stderr()
    assert f"error: interrupted by {signal.Signals(sig).name}" in err
    assert "Traceback" not in err + run.stdout()
    assert run.workdirs() == []
    no_tool_left(run)
