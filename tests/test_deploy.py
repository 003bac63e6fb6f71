"""execute(): progress lines and summary, tools and preflight checked before the first step."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from tasks.engine.command import Command
from tasks.engine.components import Component
from tasks.engine.errors import OneclusterError, ToolMissingError
from tasks.engine.execute import execute
from tasks.engine.runner import RunFailed
from tasks.stack import STACK


@dataclass(frozen=True, kw_only=True)
class Step(Component):
    tool: str = "helm"
    problem: str = ""

    def commands(self, ctx):
        return [Command(self.tool, ("upgrade", self.name))]

    def tools(self):
        return {self.tool}

    def preflight(self, ctx):
        return [self.problem] if self.problem else []


def catalog_of(*steps):
    return STACK.with_components(lambda inventory: list(steps))


def test_progress_lines_and_summary_table(fake_tools, capsys):
    execute(
        catalog_of(
            Step(layer="network", name="a"), Step(layer="network", name="b", needs=("network/a",))
        )
    )
    out = capsys.readouterr().out
    assert "==> start  network/a (step)" in out
    assert re.search(r"==> done   network/a in \d+\.\ds", out)
    assert re.search(r"network/b\s+ok\s+\d+\.\ds", out)
    assert out.index("==> done   network/a") < out.index("==> start  network/b")
    assert out.rstrip().splitlines()[-4].split() == ["step", "result", "duration"]


def test_missing_binary_is_reported_before_the_first_step(fake_tools, monkeypatch):
    monkeypatch.setenv(
        "PATH", str(fake_tools.bin_dir)
    )  # helm and kubectl fakes, but no "nosuchtool"
    steps = catalog_of(
        Step(layer="network", name="a"), Step(layer="apps", name="b", tool="nosuchtool")
    )
    with pytest.raises(ToolMissingError, match="nosuchtool"):
        execute(steps)
    assert fake_tools.calls() == []


def test_preflight_problems_stop_before_any_change(fake_tools):
    steps = catalog_of(
        Step(layer="network", name="a"),
        Step(layer="apps", name="b", problem="Infisical has no MEALIE_DB_PASSWORD"),
        Step(layer="apps", name="c", problem="Infisical has no WORDPRESS_DB_PASSWORD"),
    )
    with pytest.raises(OneclusterError) as info:
        execute(steps)
    assert "MEALIE_DB_PASSWORD" in str(info.value) and "WORDPRESS_DB_PASSWORD" in str(info.value)
    assert "nothing was changed" in str(info.value)
    assert fake_tools.calls() == []


def test_failed_run_raises_with_the_report(fake_tools):
    fake_tools.rule("helm", "upgrade a", exit=1, stderr="nope")
    with pytest.raises(RunFailed) as info:
        execute(
            catalog_of(
                Step(layer="network", name="a"),
                Step(layer="network", name="b", needs=("network/a",)),
            )
        )
    assert [r.status for r in info.value.report.results] == ["failed", "skipped"]


@dataclass(frozen=True, kw_only=True)
class WritesSecretFile(Component):
    """Writes into the private workdir like talos/genconfig does, optionally failing after."""

    fail: bool = False

    def run(self, ctx):
        (ctx.workdir / "secrets.yaml").write_text("key: material")
        ctx.state["workdir"] = ctx.workdir
        seen.append(ctx.workdir)
        assert oct(ctx.workdir.stat().st_mode & 0o777) == "0o700"
        if self.fail:
            raise OneclusterError("apply failed")


seen: list[Path] = []


@pytest.mark.parametrize("fail", [False, True], ids=["success", "failure"])
def test_private_workdir_is_removed_after_the_run(fake_tools, fail):
    seen.clear()
    steps = catalog_of(WritesSecretFile(layer="talos", name="kubeconfig", fail=fail))
    if fail:
        with pytest.raises(RunFailed):
            execute(steps)
    else:
        execute(steps)
    assert seen and not seen[0].exists()
    assert not os.path.exists(seen[0] / "secrets.yaml")
