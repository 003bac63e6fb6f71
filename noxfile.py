"""Nox sessions: lint, the offline unit tests, and (opt-in) real-talosctl, integration and
post-deploy checks."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent
DEV = ".[dev]"
KIND_CLUSTER = "onecluster-it"
KIND_CONFIG = "tests/integration/kind-config.yaml"
SKIP_DIRS = {".git", ".nox", ".cache", ".venv", "node_modules"}


def shell_scripts() -> list[str]:
    """Every shell script in the repo: ``*.sh`` files and files with a sh/bash shebang."""
    found = []
    for top, dirs, files in os.walk(ROOT):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in sorted(files):
            path = Path(top, name)
            if name.endswith(".sh") or _interpreter(path) in ("sh", "bash"):
                found.append(str(path.relative_to(ROOT)))
    return found


def _interpreter(path: Path) -> str:
    """The program a file's ``#!`` line names (``bash`` for ``#!/usr/bin/env bash``), or ""."""
    with path.open("rb") as fh:
        first = fh.readline(200).decode("utf-8", "replace")
    words = first[2:].split() if first.startswith("#!") else []
    if not words:
        return ""
    program = words[0].rsplit("/", 1)[-1]
    if program == "env":
        program = next((w for w in words[1:] if not w.startswith("-")), "")
    return program


def kind_unavailable() -> str:
    """Why no kind cluster can be made here ("" when one can): kind, docker, a docker engine."""
    missing = [f"{tool} is not installed" for tool in ("kind", "docker") if not shutil.which(tool)]
    if "docker is not installed" not in missing:
        # the docker client alone is not enough: kind needs an engine answering on its socket
        info = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            timeout=30,
            check=False,
        )
        if info.returncode != 0:
            missing.append("no docker engine is reachable (`docker info` failed)")
    if not missing:
        return ""
    return "; ".join(missing) + ": no kind cluster can be created, nothing was checked"


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff (check + format), yamllint, shellcheck, and values/manifest validation."""
    session.install("-e", DEV)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("yamllint", "--strict", ".")
    session.run("invoke", "charts.validate")
    scripts = shell_scripts()
    if not shutil.which("shellcheck"):
        session.log("skipped: shellcheck is not installed (apt-get install shellcheck)")
    elif scripts:
        session.run("shellcheck", *scripts, external=True)


@nox.session
def tests(session: nox.Session) -> None:
    """The fast offline unit tests (recording fakes of talosctl, helm, kubectl and kind)."""
    session.install("-e", DEV)
    session.run("pytest", *session.posargs)


# the real-talosctl tests fail instead of skipping when this is set and talosctl is missing
REAL_TALOSCTL = "ONECLUSTER_REAL_TALOSCTL"


@nox.session(default=False)
def talos(session: nox.Session) -> None:
    """The real talosctl: gen secrets, gen config, patch and validate --mode metal for every node.

    Needs talosctl (the version of cluster.talosVersion) on PATH; fails, not skips, without it.
    Also runs every offline rule case against `talosctl validate`. CI: the talos-validate job.
    """
    session.install("-e", DEV)
    session.run(
        "pytest", "-k", "real_talosctl", "tests/test_talos_machineconfig.py",
        "tests/test_talos_rules.py", *session.posargs, env={REAL_TALOSCTL: "1"},
    )  # fmt: skip


@nox.session(default=False)
def charts(session: nox.Session) -> None:
    """Pull every pinned chart into the cache the lint and tests sessions read (needs network)."""
    session.install("-e", DEV)
    session.run("invoke", "charts.pull")


@nox.session(default=False, tags=["cluster"])
def integration(session: nox.Session) -> None:
    """Deploy the kind profile on a fresh kind cluster and check it from outside (`-- --keep`)."""
    reason = kind_unavailable()
    if reason:
        session.skip(reason)
    keep = "--keep" in session.posargs
    pytest_args = [a for a in session.posargs if a != "--keep"]
    session.install("-e", DEV)
    kubeconfig = Path(session.create_tmp()).resolve() / "kind-kubeconfig"
    env = {"KUBECONFIG": str(kubeconfig)}
    try:
        session.run(
            "kind", "create", "cluster", "--name", KIND_CLUSTER, "--config", KIND_CONFIG,
            "--kubeconfig", str(kubeconfig), "--wait", "180s", external=True,
        )  # fmt: skip
        session.run("invoke", "cluster.rebuild", "--profile", "kind", env=env)
        session.run("pytest", "tests/integration", *pytest_args, env=env)
        session.run("pytest", "tests/postdeploy", "--profile", "kind", *pytest_args, env=env)
    finally:
        if keep:
            session.log(
                f"kept kind cluster {KIND_CLUSTER} (KUBECONFIG={kubeconfig}); "
                f"remove it with: kind delete cluster --name {KIND_CLUSTER}"
            )
        else:
            session.run("kind", "delete", "cluster", "--name", KIND_CLUSTER, external=True)


@nox.session(default=False, tags=["cluster"])
def postdeploy(session: nox.Session) -> None:
    """Check the live cluster after a rebuild with pytest-testinfra (`-- --layer storage`)."""
    session.install("-e", DEV)
    session.run("pytest", "tests/postdeploy", *session.posargs)
