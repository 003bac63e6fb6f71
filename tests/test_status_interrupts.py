"""cluster.status interrupted: its reads (threads, each tool in its own process group) end at once."""

from __future__ import annotations

import signal

import pytest

from tests.test_interrupts import EXIT, launch, no_tool_left, wait_until  # noqa: F401 - launch


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_status_ends_its_reads_at_once(launch, tmp_path, sig):  # noqa: F811
    """The reads run in threads, each tool in its own process group: a signal ends them all
    at once (not at the deadline), and the task exits 130/143 with no traceback."""
    (tmp_path / "kubeconfig").write_text("apiVersion: v1\nkind: Config\n")
    run = launch("cluster.status", "--timeout", "5m", slow=("kubectl",), sleep=120,
                 KUBECONFIG=str(tmp_path / "kubeconfig"))  # fmt: skip
    wait_until(lambda: len(run.started("kubectl")) >= 3, "the status's kubectl reads")
    run.interrupt(sig)
    assert run.wait() == EXIT[sig]
    err = run.stderr()
    assert f"error: interrupted by {signal.Signals(sig).name}" in err
    assert "Traceback" not in err + run.stdout()
    no_tool_left(run)
