"""Step fingerprints: one hash of exactly what a step would apply, to tell a re-run what changed.

A fingerprint is sha256 over a canonical JSON form of the step's commands — argv (with the run's
kubeconfig, talosconfig and private work directory left out, as they differ per run) and the
bytes each command feeds on stdin (a release's rendered values, a bundle's rendered objects) —
plus :data:`STEP_FORMAT`, onecluster's own step-format version: bumping it re-applies everything.

Secrets: a stored fingerprint must reveal nothing. The Secrets themselves are synced by the
``secrets/*`` steps, which have no fingerprint (they keep their own read-compare); and when a
step's commands carry any value registered as a secret (``output.register_secret``), the step
gets no fingerprint either (it always runs) rather than a hash of that secret, which a small
secret would not survive (a plain or cluster-keyed hash can be guessed offline).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from .command import Command
from .output import redact

# onecluster's own step format: what a fingerprint covers and how; bump to re-apply every step
STEP_FORMAT = "1"
# argv flags whose value is the run's own file or directory, never part of what is applied
RUN_PATH_FLAGS = ("--kubeconfig", "--talosconfig")


def _argv(command: Command, run_paths: Iterable[str]) -> list[str]:
    kept: list[str] = []
    skip = False
    paths = [p for p in run_paths if p]
    for arg in command.args:
        if skip:
            skip = False
            continue
        if arg in RUN_PATH_FLAGS:
            skip = True
            continue
        for path in paths:
            arg = arg.replace(path, "$RUN")
        kept.append(arg)
    return [command.tool, *kept]


def of_commands(
    kind: str, commands: Iterable[Command], run_paths: Iterable[str] = ()
) -> str | None:
    """The fingerprint of ``commands``; None when they carry a registered secret (always run)."""
    paths = list(run_paths)
    parts: list[object] = [STEP_FORMAT, kind]
    for command in commands:
        stdin = command.stdin.decode("utf-8", "replace") if command.stdin else ""
        argv = _argv(command, paths)
        if redact(stdin) != stdin or any(redact(a) != a for a in argv):
            return None
        parts.append({"argv": argv, "stdin": stdin})
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
