"""Nox sessions: lint, the offline unit tests, and (opt-in) integration and post-deploy checks."""

from __future__ import annotations

import shutil
from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent
DEV = ".[dev]"


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff (check + format), yamllint, shellcheck, and values/manifest validation."""
    session.install("-e", DEV)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("yamllint", "--strict", ".")
    scripts = [str(p) for p in (ROOT / ".ci").glob("*") if p.is_file()]
    if shutil.which("shellcheck"):
        session.run("shellcheck", *scripts, external=True)
    else:
        session.log("skipped: shellcheck is not installed (apt-get install shellcheck)")


@nox.session
def tests(session: nox.Session) -> None:
    """The fast offline unit tests (recording fakes of talosctl, helm and kubectl)."""
    session.install("-e", DEV)
    session.run("pytest", *session.posargs)
