"""The executor: argv lists, binaries from PATH or $TOOL, missing tools reported up front."""

from __future__ import annotations

import os
import signal
import stat
import threading
import time

import pytest

from tasks.engine.command import Command, Executor, check_tools, cmd, resolve_binary
from tasks.engine.errors import CommandError, ToolMissingError
from tasks.engine.invocation import command_line
from tasks.engine.signals import Interrupted, Stop, handle_signals


def test_arguments_must_be_strings():
    with pytest.raises(TypeError, match="every argument must be a str"):
        Command("helm", ("install", 3))  # type: ignore[arg-type]


def test_argv_is_passed_as_is_never_through_a_shell(fake_tools):
    tricky = ["a b", "$(touch /tmp/pwned)", "it's", ";", "|", "*"]
    Executor().run(cmd("kubectl", *tricky))
    assert fake_tools.argvs("kubectl") == [["kubectl", *tricky]]


def test_stdin_is_fed_without_touching_argv(fake_tools):
    Executor().run(Command("kubectl", ("apply", "-f", "-"), stdin=b"kind: List\n"))
    call = fake_tools.calls("kubectl")[0]
    assert call["argv"] == ["apply", "-f", "-"]
    assert call["stdin_len"] == len(b"kind: List\n")


def test_display_is_shell_quoted():
    assert cmd("helm", "install", "a b").display() == "helm install 'a b'"


def test_env_var_overrides_path(tmp_path, monkeypatch, fake_tools):
    other = tmp_path / "my-helm"
    other.write_text((fake_tools.bin_dir / "helm").read_text())
    other.chmod(other.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("HELM", str(other))
    assert resolve_binary("helm") == str(other)


def test_missing_binary_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("TALOSCTL", raising=False)
    with pytest.raises(
        ToolMissingError, match=r"talosctl was not found on PATH.*Install it: .*TALOSCTL"
    ):
        resolve_binary("talosctl")


def test_bad_env_override_is_an_error(monkeypatch):
    monkeypatch.setenv("KUBECTL", "/no/such/kubectl")
    with pytest.raises(ToolMissingError, match=r"\$KUBECTL"):
        resolve_binary("kubectl")


def test_check_tools_names_every_missing_binary(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    for var in ("HELM", "TALOSCTL"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ToolMissingError) as info:
        check_tools(["talosctl", "helm"])
    assert "helm" in str(info.value) and "talosctl" in str(info.value)


def test_failure_carries_command_exit_code_and_stderr(fake_tools):
    fake_tools.rule("helm", "status", exit=4, stderr="release: not found")
    with pytest.raises(CommandError) as info:
        Executor().run(cmd("helm", "status", "x"))
    err = info.value
    assert (err.tool, err.argv, err.exit_code, err.stderr) == (
        "helm",
        ["helm", "status", "x"],
        4,
        "release: not found",
    )


def test_accepted_exit_codes(fake_tools):
    fake_tools.rule("kubectl", "get", exit=1, stdout="partial")
    result = Executor().run(Command("kubectl", ("get", "x"), ok_codes=(0, 1)))
    assert (result.exit_code, result.stdout) == (1, "partial")


def test_timeout_is_reported(fake_tools):
    fake_tools.rule("talosctl", "health", sleep=5)
    with pytest.raises(CommandError, match="timed out"):
        Executor().run(Command("talosctl", ("health",), timeout=0.5))


def test_dry_run_runs_nothing_but_query_does(fake_tools):
    ex = Executor(dry_run=True)
    ex.run(cmd("helm", "upgrade", "x"))
    assert fake_tools.calls() == []
    fake_tools.rule("helm", "list", stdout="[]")
    assert ex.query(cmd("helm", "list")).stdout == "[]"
    assert len(fake_tools.calls()) == 1


def test_environment_is_merged_not_replaced(fake_tools, monkeypatch):
    monkeypatch.setenv("ONECLUSTER_MARKER", "1")
    Executor().run(Command("helm", ("version",), env={"HELM_CACHE_HOME": "/tmp/x"}))
    assert fake_tools.calls("helm")  # PATH survived the merge, so the fake was found
    assert os.environ["ONECLUSTER_MARKER"] == "1"


# stopping: every tool in its own process group, tracked while it runs ------------------------


def test_a_killed_run_ends_a_running_tool_and_refuses_new_ones(fake_tools):
    fake_tools.rule("talosctl", "apply-config", sleep=600)
    stop = Stop()
    ex = Executor(stop=stop)
    caught: list[BaseException] = []

    def apply() -> None:
        try:
            ex.run(cmd("talosctl", "apply-config", "--nodes", "n1"))
        except BaseException as exc:  # Interrupted is no Exception: the test inspects it
            caught.append(exc)

    worker = threading.Thread(target=apply)
    worker.start()
    deadline = time.monotonic() + 60
    while not stop.children.pgids() and time.monotonic() < deadline:
        time.sleep(0.02)
    (pgid,) = stop.children.pgids()
    stop.kill()
    worker.join(60)
    assert not worker.is_alive()
    assert [type(e) for e in caught] == [Interrupted]
    assert stop.children.pgids() == []
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)
    with pytest.raises(Interrupted, match="not started: the run is stopping"):
        ex.run(cmd("helm", "version"))
    assert fake_tools.calls() == []  # the apply was ended before it recorded its end


def test_signal_handlers_route_to_the_stop_and_are_restored():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    stop = Stop()
    with handle_signals(stop):
        os.kill(os.getpid(), signal.SIGTERM)
        deadline = time.monotonic() + 10
        while not stop.requested.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert stop.requested.is_set() and not stop.killing.is_set()
        assert stop.signal_name == "SIGTERM" and stop.exit_code == 143
        stop.request(signal.SIGINT)  # the second signal asks for the kill
        assert stop.killing.is_set() and stop.signal_name == "SIGTERM"
    assert {s: signal.getsignal(s) for s in before} == before


def test_the_command_line_is_shown_as_typed_again_with_the_program_as_invoke():
    assert command_line(["inv", "talos.apply", "--node", "my node"]) == (
        "invoke talos.apply --node 'my node'"
    )
    assert command_line(["/x/invoke/__main__.py", "network.deploy", "--jobs", "8"]) == (
        "invoke network.deploy --jobs 8"
    )
    assert command_line(["/venv/bin/invoke", "apps.deploy", "--name", "mealie"]) == (
        "invoke apps.deploy --name mealie"
    )
