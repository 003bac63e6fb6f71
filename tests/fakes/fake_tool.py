#!/usr/bin/env python3
"""A recording fake of talosctl / helm / kubectl / kind, installed on PATH by tests.

Every call appends one JSON line to $FAKE_TOOLS_LOG: tool, argv, start and end times, and a hash of
stdin (never the stdin text itself: it may hold rendered values). Behaviour comes from the JSON file
$FAKE_TOOLS_CONFIG: {"sleep": seconds, "rules": [{"tool": t, "match": [substr, ...],
"exit": n, "stdout": s, "stderr": s, "sleep": seconds, "times": n, "when": {k: v}, "set": {k: v},
"signal": n}]}. The first rule whose substrings all appear in the joined argv applies ("times"
limits how often a rule fires). State makes the fakes remember what was done to them: a rule with
"when" applies only while every key of the shared state ($FAKE_TOOLS_LOG's folder, state.json)
holds its value (null: unset), and a rule that fires stores its "set" values (e.g. an upgrade
remembers the node's new version, a drain that the node is cordoned). "signal" ends the fake by
that signal, as an interrupted tool ends.

Without a rule, ``talosctl version --client --short`` answers as the real client does
(``Client:`` then ``Talos <tag>``: cmd/talosctl/cmd/talos/version.go and pkg/machinery/version's
``Short``) with the config's "talosctl_version" as the tag.
"""

import fcntl
import hashlib
import json
import os
import signal
import sys
import time
from pathlib import Path


def main() -> int:
    tool = Path(sys.argv[0]).name
    argv = sys.argv[1:]
    start = time.time()
    # read stdin only when the command says it takes input from it ("-f -", "--values -")
    stdin = sys.stdin.buffer.read() if "-" in argv and sys.stdin is not None else b""
    cfg_path = os.environ.get("FAKE_TOOLS_CONFIG")
    cfg = json.loads(Path(cfg_path).read_text()) if cfg_path and Path(cfg_path).exists() else {}
    joined = " ".join(argv)
    rule = {}
    state_dir = Path(os.environ.get("FAKE_TOOLS_LOG", "/tmp/fake-tools.log")).parent
    lock = open(state_dir / ".state.lock", "a")  # noqa: SIM115 - held until the process ends
    fcntl.flock(lock, fcntl.LOCK_EX)
    state_file = state_dir / "state.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    for i, r in enumerate(cfg.get("rules", [])):
        if r.get("tool", tool) != tool or not all(m in joined for m in r.get("match", [])):
            continue
        if any(state.get(k) != v for k, v in (r.get("when") or {}).items()):
            continue
        if "times" in r:
            counter = state_dir / f".rule-{i}.count"
            used = int(counter.read_text()) if counter.exists() else 0
            if used >= r["times"]:
                continue
            counter.write_text(str(used + 1))
        rule = r
        break
    if rule.get("set"):
        state.update(rule["set"])
        state_file.write_text(json.dumps(state))
    fcntl.flock(lock, fcntl.LOCK_UN)
    time.sleep(float(rule.get("sleep", cfg.get("sleep", 0))))
    end = time.time()
    record = {
        "tool": tool,
        "argv": argv,
        "start": start,
        "end": end,
        "stdin_sha256": hashlib.sha256(stdin).hexdigest() if stdin else None,
        "stdin_len": len(stdin),
    }
    log = os.environ.get("FAKE_TOOLS_LOG")
    if log:
        with open(log, "a") as fh:
            fh.write(json.dumps(record) + "\n")
    client = tool == "talosctl" and argv[:1] == ["version"] and {"--client", "--short"} <= set(argv)
    if not rule and client and cfg.get("talosctl_version"):
        sys.stdout.write(f"Client:\nTalos {cfg['talosctl_version']}\n")
    if rule.get("stdout"):
        sys.stdout.write(rule["stdout"])
    if rule.get("stderr"):
        sys.stderr.write(rule["stderr"])
    if rule.get("signal"):
        sys.stdout.flush()
        signal.signal(rule["signal"], signal.SIG_DFL)
        os.kill(os.getpid(), rule["signal"])
    return int(rule.get("exit", 0))


if __name__ == "__main__":
    sys.exit(main())
