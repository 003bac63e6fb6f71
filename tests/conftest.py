"""Shared fixtures: recording fakes of the external tools, and a clean redaction registry."""

from __future__ import annotations

import json
import os
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tasks.engine import output

ROOT = Path(__file__).resolve().parents[1]
SHARED_REFERENCE = ROOT.parent / "shared" / "reference"
FAKE_TOOL = Path(__file__).parent / "fakes" / "fake_tool.py"
FAKE_NAMES = ("talosctl", "helm", "kubectl", "kind")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite the golden files under tests/golden/ from the current output",
    )


@dataclass
class FakeTools:
    """Recording fakes on PATH: configure with :meth:`rule`, read calls with :meth:`calls`."""

    bin_dir: Path
    log: Path
    config: Path
    rules: list[dict] = field(default_factory=list)
    sleep: float = 0.0
    # what `talosctl version --client --short` reports (the reference inventory's pin)
    talosctl_version: str = ""

    def _save(self) -> None:
        self.config.write_text(
            json.dumps(
                {
                    "sleep": self.sleep,
                    "rules": self.rules,
                    "talosctl_version": self.talosctl_version,
                }
            )
        )

    def set_talosctl_version(self, tag: str) -> None:
        """Make the fake talosctl client report ``tag`` (e.g. one that mismatches the pin)."""
        self.talosctl_version = tag
        self._save()

    def rule(
        self,
        tool: str,
        *match: str,
        exit: int = 0,
        stdout: str = "",
        stderr: str = "",
        sleep: float | None = None,
        times: int | None = None,
        when: dict | None = None,
        sets: dict | None = None,
        signal: int | None = None,
    ) -> None:
        """Make calls of ``tool`` whose argv contains every ``match`` behave as given.

        ``when``: only while the fakes' shared state holds these values; ``sets``: values the rule
        stores when it fires; ``signal``: the call ends killed by it (an interrupted tool).
        """
        r: dict = {
            "tool": tool,
            "match": list(match),
            "exit": exit,
            "stdout": stdout,
            "stderr": stderr,
        }
        if sleep is not None:
            r["sleep"] = sleep
        if times is not None:
            r["times"] = times
        for key, value in (("when", when), ("set", sets), ("signal", signal)):
            if value is not None:
                r[key] = value
        self.rules.append(r)
        self._save()

    def set_sleep(self, seconds: float) -> None:
        self.sleep = seconds
        self._save()

    def state(self) -> dict:
        """What the fakes remember (the ``set`` values of the rules that fired)."""
        path = self.log.parent / "state.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def calls(self, tool: str | None = None) -> list[dict]:
        if not self.log.exists():
            return []
        records = [json.loads(line) for line in self.log.read_text().splitlines() if line]
        return [r for r in records if tool is None or r["tool"] == tool]

    def argvs(self, tool: str | None = None) -> list[list[str]]:
        return [[r["tool"], *r["argv"]] for r in self.calls(tool)]

    def started(self, tool: str | None = None) -> list[dict]:
        """Every call as it started (tool, argv, pid), finished or still running."""
        path = self.log.parent / "started.jsonl"
        if not path.exists():
            return []
        records = [json.loads(line) for line in path.read_text().splitlines() if line]
        return [r for r in records if tool is None or r["tool"] == tool]

    def leases(self) -> dict[str, dict]:
        """The Leases the fake kubectl holds, by ``namespace/name``."""
        path = self.log.parent / "leases.json"
        return json.loads(path.read_text()) if path.exists() else {}


def install_fakes(directory: Path) -> FakeTools:
    """Write the fake tools into ``directory`` (no PATH change); used by tests and benchmarks."""
    bin_dir = directory / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name in FAKE_NAMES:
        script = bin_dir / name
        script.write_text(f"#!{sys.executable}\n" + FAKE_TOOL.read_text())
        script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    fakes = FakeTools(bin_dir, directory / "calls.jsonl", directory / "config.json")
    fakes.talosctl_version = _pinned_talos_version()
    fakes._save()
    return fakes


def _pinned_talos_version() -> str:
    """cluster.talosVersion of the reference inventory (the client a developer installs)."""
    from tasks.engine import yamlio
    from tasks.engine.inventory import DEFAULT_INVENTORY

    return yamlio.load(DEFAULT_INVENTORY.read_text())["cluster"]["talosVersion"]


@pytest.fixture
def fake_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeTools:
    """Put recording fakes of talosctl, helm, kubectl and kind first on PATH."""
    fakes = install_fakes(tmp_path / "fake-tools")
    monkeypatch.setenv("PATH", f"{fakes.bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_TOOLS_LOG", str(fakes.log))
    monkeypatch.setenv("FAKE_TOOLS_CONFIG", str(fakes.config))
    for var in ("HELM", "KUBECTL", "TALOSCTL", "KIND"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kubeconfig"))
    monkeypatch.setenv("TALOSCONFIG", str(tmp_path / "talosconfig"))
    monkeypatch.setenv("ONECLUSTER_CACHE", str(tmp_path / "cache"))
    return fakes


def task_context(path: str = ""):
    """An Invoke context configured as Invoke configures the task at ``path`` (the root's
    configuration when no path is given): the catalogue, and the layer a shared task serves."""
    from invoke import Config, Context

    import tasks

    config = tasks.namespace.task_with_config(path)[1] if path else tasks.namespace.configuration()
    return Context(config=Config(overrides=config))


def call_task(path: str, **kwargs):
    """Call the task at ``path`` (e.g. ``apps.deploy``) as Invoke would, with its configuration."""
    import tasks

    return tasks.namespace[path](task_context(path), **kwargs)


@pytest.fixture(autouse=True)
def _clean_redaction():
    """Each test starts with no registered secret values."""
    output.forget_secrets()
    yield
    output.forget_secrets()


@pytest.fixture(autouse=True)
def _fresh_precheck_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Each test starts with no inputs known to have passed the prechecks (a test that wants
    that record, tests/test_prechecks.py, makes it itself)."""
    import tasks.validate.passed as passed

    monkeypatch.setattr(passed, "folder", lambda: tmp_path / "prechecked")


@pytest.fixture
def reference() -> Path:
    """../shared/reference, or skip when this checkout has none beside it."""
    if not SHARED_REFERENCE.is_dir():
        pytest.skip("../shared/reference is not present beside this checkout")
    return SHARED_REFERENCE
