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

Each call also appends {tool, argv, pid, start} to ``started.jsonl`` beside the log as it starts,
so a test can wait for a call that is still running and check its process is gone afterwards.

kubectl keeps Lease state (``leases.json`` beside the log) when no rule matched: ``get lease NAME
-n NS [--ignore-not-found] -o json`` prints what was stored, ``create -f -`` of a Lease fails with
AlreadyExists when it exists, and ``replace -f -`` fails with Conflict unless the body carries the
stored resourceVersion, with the real kubectl's messages (coordination.k8s.io/v1 Lease).
"""

import fcntl
import hashlib
import json
import os
import signal
import sys
import time
from pathlib import Path

LEASES = "leases.coordination.k8s.io"


def _flag(args, *names):
    for i, a in enumerate(args):
        for n in names:
            if a == n and i + 1 < len(args):
                return args[i + 1]
            if a.startswith(n + "="):
                return a.split("=", 1)[1]
    return None


def lease_call(argv, stdin, state_dir):
    """kubectl's Lease verbs against the state in ``leases.json``; None for any other call."""
    args, skip = [], False
    for a in argv:  # drop the global flags kubectl takes first
        if skip:
            skip = False
        elif a in ("--kubeconfig", "--context"):
            skip = True
        else:
            args.append(a)
    body = None
    if args and args[0] in ("create", "replace") and stdin:
        try:
            body = json.loads(stdin)
        except ValueError:
            return None
        if body.get("kind") != "Lease":
            return None
    elif args[:2] != ["get", "lease"]:
        return None
    with open(state_dir / "leases.lock", "a") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        path = state_dir / "leases.json"
        leases = json.loads(path.read_text()) if path.exists() else {}
        if body is None:
            key = f"{_flag(args, '--namespace', '-n') or 'default'}/{args[2]}"
            if key in leases:
                return 0, json.dumps(leases[key], indent=4) + "\n", ""
            if "--ignore-not-found" in args:
                return 0, "", ""
            return 1, "", f'Error from server (NotFound): {LEASES} "{args[2]}" not found\n'
        meta = body.setdefault("metadata", {})
        name = meta["name"]
        key = f"{meta.get('namespace', 'default')}/{name}"
        stored = leases.get(key)
        verb = args[0]
        if verb == "create" and stored is not None:
            return (
                1,
                "",
                (
                    f'Error from server (AlreadyExists): error when creating "STDIN": {LEASES} '
                    f'"{name}" already exists\n'
                ),
            )
        if verb == "replace" and stored is None:
            return (
                1,
                "",
                (
                    f'Error from server (NotFound): error when replacing "STDIN": {LEASES} '
                    f'"{name}" not found\n'
                ),
            )
        if verb == "replace" and meta.get("resourceVersion") not in (
            None,
            stored["metadata"]["resourceVersion"],
        ):
            return (
                1,
                "",
                (
                    f'Error from server (Conflict): error when replacing "STDIN": Operation cannot be '
                    f'fulfilled on {LEASES} "{name}": the object has been modified; please apply your '
                    "changes to the latest version and try again\n"
                ),
            )
        counter = state_dir / "leases.version"
        version = int(counter.read_text()) + 1 if counter.exists() else 1
        counter.write_text(str(version))
        meta["resourceVersion"] = str(version)
        leases[key] = body
        path.write_text(json.dumps(leases))
        return 0, json.dumps(body, indent=4) + "\n", ""


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
    with open(state_dir / "started.jsonl", "a") as fh:
        fh.write(json.dumps({"tool": tool, "argv": argv, "pid": os.getpid(), "start": start}))
        fh.write("\n")
    time.sleep(float(rule.get("sleep", cfg.get("sleep", 0))))
    answer = lease_call(argv, stdin, state_dir) if tool == "kubectl" and not rule else None
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
    if answer is not None:
        code, out, err = answer
        sys.stdout.write(out)
        sys.stderr.write(err)
        return code
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
