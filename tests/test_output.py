"""Redaction: a registered secret value never reaches stdout, stderr, logs or exceptions."""

from __future__ import annotations

import logging

import pytest

from tasks.engine.command import Command, Executor
from tasks.engine.errors import CommandError
from tasks.engine.output import clipped, echo, redact, redact_argv, register_secret, table

SECRET = "s3cr3t-value-0b1c2d"


def test_redact_replaces_every_occurrence():
    register_secret(SECRET)
    assert redact(f"a {SECRET} b {SECRET}") == "a *** b ***"
    assert redact_argv(["--token", SECRET, f"x={SECRET}"]) == ["--token", "***", "x=***"]


def test_multiline_values_are_redacted_line_by_line():
    pem = "-----BEGIN KEY-----\nAAAABBBBCCCCDDDDEEEEFFFF\nGGGGHHHHIIIIJJJJKKKKLLLL\n-----END KEY-----\n"
    register_secret(pem)
    assert "AAAABBBBCCCCDDDDEEEEFFFF" not in redact("line: AAAABBBBCCCCDDDDEEEEFFFF")


def test_short_values_are_not_registered():
    register_secret("no")
    assert redact("no way") == "no way"


def test_echo_is_redacted(capsys):
    register_secret(SECRET)
    echo(f"token is {SECRET}")
    echo(f"err {SECRET}", err=True)
    out = capsys.readouterr()
    assert SECRET not in out.out + out.err
    assert "token is ***" in out.out


def test_log_records_are_redacted_whatever_the_logger(caplog):
    register_secret(SECRET)
    with caplog.at_level(logging.INFO):
        logging.getLogger("urllib3.connectionpool").warning("GET /?token=%s", SECRET)
        logging.getLogger("anything.else").info(f"value {SECRET}")
    assert SECRET not in caplog.text
    assert all(SECRET not in r.getMessage() for r in caplog.records)


def test_dry_run_commands_are_redacted(capsys):
    register_secret(SECRET)
    Executor(dry_run=True).run(Command("helm", ("install", "--set", f"token={SECRET}")))
    out = capsys.readouterr().out
    assert SECRET not in out and "token=***" in out


def test_failed_command_error_is_redacted(fake_tools):
    register_secret(SECRET)
    fake_tools.rule("kubectl", "apply", exit=1, stderr=f"denied: {SECRET}")
    with pytest.raises(CommandError) as info:
        Executor().run(Command("kubectl", ("apply", "-f", f"/tmp/{SECRET}")))
    assert SECRET not in str(info.value)
    assert info.value.exit_code == 1
    assert info.value.stderr == "denied: ***"
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_table_aligns_columns():
    assert table(("a", "bb"), [("xxx", 1)]).splitlines() == ["a    bb", "---  --", "xxx  1"]


def test_clipped_redacts_before_it_cuts():
    # a cut first would leave the start of the secret, which no registered value matches
    register_secret("s3cr3t-value-that-is-long")
    text = "x" * 10 + "s3cr3t-value-that-is-long" + "y" * 10
    assert clipped(text, 20) == "x" * 10 + "***" + "y" * 4 + "..."
    assert "s3cr3t" not in clipped(text, 16)
    assert clipped("short", 20) == "short"
