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
that signal, as an interrupted tool ends. In a rule's "stdout", ``$ARGV[n]`` stands for the
call's n-th argument after the global flags (``--kubeconfig K`` ...), so a rule can answer for an
object whose name is made at run time (a backup named after the time it was taken).

Without a rule, ``talosctl version --client --short`` answers as the real client does
(``Client:`` then ``Talos <tag>``: cmd/talosctl/cmd/talos/version.go and pkg/machinery/version's
``Short``) with the config's "talosctl_version" as the tag.

Each call also appends {tool, argv, pid, start} to ``started.jsonl`` beside the log as it starts,
so a test can wait for a call that is still running and check its process is gone afterwards.

kubectl keeps Lease state (``leases.json`` beside the log) when no rule matched: ``get lease NAME
-n NS [--ignore-not-found] -o json`` prints what was stored, ``create -f -`` of a Lease fails with
AlreadyExists when it exists, and ``replace -f -`` fails with Conflict unless the body carries the
stored resourceVersion, with the real kubectl's messages (coordination.k8s.io/v1 Lease).

A wait that succeeded (``rollout status KIND/NAME``, ``wait --for=condition=C`` or
``--for=create``) leaves the object it waited for in the fakes' objects as the controller would
have left it (rolled out, the condition True), so a later ``get`` of it shows it ready.

The fakes keep what was applied and installed (``objects.json``, ``releases.json``,
``machineconfigs.json`` beside the log), whether or not a rule matched, as long as the call
succeeded: ``kubectl apply --server-side -f -`` stores every object of its YAML or JSON stream (a
``List``'s items too) by ``kind/namespace/name``, and ``apply -f SOURCE`` the source;
``kubectl get KIND --all-namespaces -l K=V -o json`` lists the stored objects of that kind with
those labels; ``kubectl get configmap NAME -n NS -o json [--ignore-not-found]`` prints a stored ConfigMap (when
no rule matched) and ``kubectl get -f - -o name`` prints ``kind/name`` of each object of its stdin
stream, or fails with NotFound as kubectl does; with ``--ignore-not-found`` a missing object is
left out, and ``-o json`` prints the stored objects found (a ``List``, one object bare, nothing
when none is found, as kubectl's get.go does). ``helm upgrade --install NAME CHART --version V
--namespace NS`` stores the release (a new revision each time); ``helm list --all-namespaces -o
json`` prints them in helm's fields (name, namespace, revision, updated, status, chart,
app_version). ``talosctl apply-config --nodes IP --file F`` stores F's text for the node, and
``talosctl get machineconfig --nodes IP[,IP...] -o yaml`` prints it as the MachineConfig resource
(``spec`` the raw YAML string, pkg/machinery/resources/config/machine_config.go), each after a
``node: IP`` line, ``---`` between them; as talosctl's get does, it fails outright when the first
node has none, and otherwise prints the others and then exits 1 for the nodes that had none
(cmd/talosctl/cmd/talos/get.go, output/yaml.go).
``talosctl kubeconfig PATH`` writes a minimal kubeconfig to PATH when it does not exist (the real
one writes, or merges into, the file it is given), so a run's Lease can be taken once it is there.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import signal
import sys
import time
from pathlib import Path

LEASES = "leases.coordination.k8s.io"
# what ``talosctl kubeconfig PATH`` writes (the fake kubectl reads no kubeconfig)
KUBECONFIG = (
    "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\ncurrent-context: ''\nusers: []\n"
)


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


def _store(state_dir, name, update=None):
    """Read (and with ``update``, change and write) one JSON state file under a lock."""
    with open(state_dir / f"{name}.lock", "a") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        path = state_dir / f"{name}.json"
        data = json.loads(path.read_text()) if path.exists() else {}
        if update is not None:
            update(data)
            path.write_text(json.dumps(data))
        return data


def _documents(stdin):
    try:  # a JSON body (one object or a List) needs no YAML parser
        loaded = [json.loads(stdin)]
    except ValueError:
        import yaml

        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        loaded = list(yaml.load_all(stdin.decode(), Loader=loader))
    docs = []
    for doc in loaded:
        if isinstance(doc, dict) and doc.get("kind") == "List":
            docs += [d for d in doc.get("items") or [] if isinstance(d, dict) and d.get("kind")]
        elif isinstance(doc, dict) and doc.get("kind") and (doc.get("metadata") or {}).get("name"):
            docs.append(doc)
    return docs


def _object_key(doc):
    meta = doc.get("metadata") or {}
    namespaced = doc["kind"] != "Namespace" and meta.get("namespace")
    return f"{doc['kind'].lower()}/{meta.get('namespace', '') if namespaced else ''}/{meta['name']}"


def _bare(argv):
    args, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in ("--kubeconfig", "--context", "--talosconfig"):
            skip = True
        else:
            args.append(a)
    return args


# the kinds a gate waits for, as kubectl names them → (apiVersion, kind); the fake keeps its
# own table rather than import tasks/engine/readiness.py's: a wrong entry there must not be
# answered by the same wrong entry here
KINDS = {
    "deployment": ("apps/v1", "Deployment"),
    "daemonset": ("apps/v1", "DaemonSet"),
    "statefulset": ("apps/v1", "StatefulSet"),
    "crd": ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
    "storageclass": ("storage.k8s.io/v1", "StorageClass"),
    "certificate": ("cert-manager.io/v1", "Certificate"),
    "gateway": ("gateway.networking.k8s.io/v1", "Gateway"),
}
# what a finished rollout leaves in an object's spec and status (one replica; kubectl's
# rollout_status.go reads these fields)
ROLLED_OUT = {
    "Deployment": (
        {"replicas": 1},
        {"replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1,
         "conditions": [{"type": "Available", "status": "True"},
                        {"type": "Progressing", "status": "True",
                         "reason": "NewReplicaSetAvailable"}]},
    ),
    "DaemonSet": (
        {"updateStrategy": {"type": "RollingUpdate"}},
        {"desiredNumberScheduled": 1, "updatedNumberScheduled": 1, "numberAvailable": 1,
         "numberReady": 1, "currentNumberScheduled": 1},
    ),
    "StatefulSet": (
        {"replicas": 1, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}},
        {"replicas": 1, "readyReplicas": 1, "updatedReplicas": 1, "currentReplicas": 1,
         "currentRevision": "r1", "updateRevision": "r1"},
    ),
}  # fmt: skip


def _observed(args):
    """What a wait that succeeded saw: [(kubectl's kind name, name, namespace, condition)] with
    condition "rollout", "create" or a condition type; [] for any other call."""
    ns = _flag(args, "--namespace", "-n") or ""
    if args[:2] == ["rollout", "status"] and len(args) > 2 and "/" in args[2]:
        kind, name = args[2].split("/", 1)
        return [(kind, name, ns, "rollout")]
    if args[:1] != ["wait"]:
        return []
    wanted = _flag(args, "--for") or ""
    cond = "create" if wanted == "create" else wanted.removeprefix("condition=")
    return [(*ref.split("/", 1), ns, cond) for ref in args[1:] if "/" in ref and ref[0] != "-"]


def _ready(objects, kind, name, ns, cond):
    """Keep, in the fakes' objects, the object a successful wait found ready (its status as the
    real controller would have left it), so a later ``get`` shows it so."""
    if kind not in KINDS:
        return
    api_version, kind_name = KINDS[kind]
    doc = {"apiVersion": api_version, "kind": kind_name,
           "metadata": {"name": name, **({"namespace": ns} if ns else {})}}  # fmt: skip
    key = _object_key(doc)
    obj = objects.get(key) or doc
    meta, spec = obj.setdefault("metadata", {}), obj.setdefault("spec", {})
    status = obj.setdefault("status", {})
    meta.setdefault("generation", 1)
    if cond == "rollout" and kind_name in ROLLED_OUT:
        wanted_spec, wanted_status = ROLLED_OUT[kind_name]
        for field, value in wanted_spec.items():
            spec.setdefault(field, value)
        status.update(json.loads(json.dumps(wanted_status)))
        replicas = spec.get("replicas", 1)  # every replica of the spec, rolled out
        for field in status:
            if isinstance(status[field], int) and field != "observedGeneration":
                status[field] = replicas
        status["observedGeneration"] = meta["generation"]
    elif cond not in ("create", "rollout"):
        conditions = [c for c in status.get("conditions", []) if c.get("type") != cond]
        status["conditions"] = [*conditions, {"type": cond, "status": "True"}]
        status["observedGeneration"] = meta["generation"]
    objects[key] = obj


def remember(tool, argv, stdin, state_dir):
    """What a successful call leaves behind in the fakes' cluster state."""
    args = _bare(argv)
    seen = _observed(args) if tool == "kubectl" else []
    if seen:
        _store(state_dir, "objects", lambda d: [_ready(d, *s) for s in seen])
    elif tool == "kubectl" and args[:1] == ["apply"]:
        source = _flag(args, "-f", "--filename")
        if source == "-" and stdin:
            docs = _documents(stdin)
            _store(state_dir, "objects", lambda d: d.update({_object_key(x): x for x in docs}))
        elif source:
            _store(state_dir, "objects", lambda d: d.update({f"source//{source}": {}}))
    elif tool == "helm" and args[:2] == ["upgrade", "--install"] and len(args) > 3:
        name, chart = args[2], args[3]
        ns, version = _flag(args, "--namespace", "-n") or "default", _flag(args, "--version")

        def install(releases):
            old = releases.get(f"{ns}/{name}", {})
            releases[f"{ns}/{name}"] = {
                "name": name, "namespace": ns, "revision": str(int(old.get("revision", 0)) + 1),
                "updated": time.strftime("%Y-%m-%d %H:%M:%S.000000000 +0000 UTC", time.gmtime()),
                "status": "deployed", "chart": f"{chart.rsplit('/', 1)[-1]}-{version}",
                "app_version": version,
            }  # fmt: skip

        _store(state_dir, "releases", install)
    elif tool == "talosctl" and args[:1] == ["kubeconfig"] and len(args) > 1:
        # the real talosctl writes (or merges into) the file named: a run's Lease needs it
        target = Path(args[1])
        if not args[1].startswith("-") and target.parent.is_dir() and not target.exists():
            target.write_text(KUBECONFIG)
    elif tool == "talosctl" and args[:1] == ["apply-config"]:
        node, file = _flag(args, "--nodes", "-n"), _flag(args, "--file", "-f")
        if node and file and Path(file).exists():
            text = Path(file).read_text()
            _store(state_dir, "machineconfigs", lambda d: d.update({node: text}))


def answer(tool, argv, stdin, state_dir):
    """A read the fakes answer from their state (no rule matched); None for any other call."""
    args = _bare(argv)
    if tool == "kubectl" and args[:2] == ["get", "configmap"] and "json" in args:
        ns = _flag(args, "--namespace", "-n") or "default"
        found = _store(state_dir, "objects").get(f"configmap/{ns}/{args[2]}")
        if found is not None:
            return 0, json.dumps(found, indent=4) + "\n", ""
        if "--ignore-not-found" in args:
            return 0, "", ""
        return 1, "", f'Error from server (NotFound): configmaps "{args[2]}" not found\n'
    if tool == "kubectl" and args[:1] == ["get"] and _flag(args, "-f", "--filename") == "-":
        objects = _store(state_dir, "objects")
        out, found = [], []
        for doc in _documents(stdin):
            stored = objects.get(_object_key(doc))
            if stored is None:
                if "--ignore-not-found" in args:
                    continue
                name = doc["metadata"]["name"]
                kind = doc["kind"].lower() + "s"
                return 1, "", f'Error from server (NotFound): {kind} "{name}" not found\n'
            found.append(stored)
            out.append(f"{doc['kind'].lower()}/{doc['metadata']['name']}\n")
        if _flag(args, "-o", "--output") == "json":
            if not found:
                return 0, "", ""
            body = (
                found[0]
                if len(found) == 1
                else {"apiVersion": "v1", "kind": "List", "items": found}
            )
            return 0, json.dumps(body, indent=4) + "\n", ""
        return 0, "".join(out), ""
    if (
        tool == "kubectl" and args[:1] == ["get"] and len(args) > 1 and "json" in args
        and ({"-A", "--all-namespaces"} & set(args)) and _flag(args, "-l", "--selector")
    ):  # fmt: skip
        kind = args[1].lower().rstrip("s")
        wanted = dict(p.split("=", 1) for p in _flag(args, "-l", "--selector").split(","))
        items = [
            o for k, o in sorted(_store(state_dir, "objects").items())
            if k.startswith(f"{kind}/") and all(
                ((o.get("metadata") or {}).get("labels") or {}).get(lk) == lv
                for lk, lv in wanted.items()
            )
        ]  # fmt: skip
        return 0, json.dumps({"apiVersion": "v1", "kind": "List", "items": items}) + "\n", ""
    if tool == "helm" and args[:1] == ["list"] and "json" in args:
        releases = _store(state_dir, "releases")
        return 0, json.dumps(sorted(releases.values(), key=lambda r: r["name"])) + "\n", ""
    if tool == "talosctl" and args[:2] == ["get", "machineconfig"]:
        nodes = (_flag(args, "--nodes", "-n") or "").split(",")
        stored = _store(state_dir, "machineconfigs")
        error = "rpc error: code = NotFound desc = resource not found"
        if stored.get(nodes[0]) is None:  # the type is resolved on the first node: nothing
            return 1, "", error + "\n"
        import yaml

        docs, failed = [], []
        for node in nodes:  # each node in turn, what failed reported after the rest
            if stored.get(node) is None:
                failed.append(error)
                continue
            res = {
                "metadata": {"namespace": "config", "type": "MachineConfigs.config.talos.dev",
                             "id": "v1alpha1", "version": 1, "phase": "running"},
                "spec": stored[node],
            }  # fmt: skip
            docs.append(f"node: {node}\n" + yaml.safe_dump(res, sort_keys=False))
        if not failed:
            return 0, "---\n".join(docs), ""
        count = f"{len(failed)} error{'s' if len(failed) > 1 else ''} occurred"
        listed = "".join(f"\t* {e}\n" for e in failed)
        return 1, "---\n".join(docs), f"{count}:\n{listed}\n"
    return None


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
    reply = lease_call(argv, stdin, state_dir) if tool == "kubectl" and not rule else None
    if reply is None and not rule:
        reply = answer(tool, argv, stdin, state_dir)
    code = None if rule.get("signal") else (reply or (int(rule.get("exit", 0)),))[0]
    if code == 0:
        # a body the fake cannot read (e.g. a test's stand-in, not YAML): nothing to remember
        with contextlib.suppress(Exception):
            remember(tool, argv, stdin, state_dir)
    end = time.time()
    record = {
        "tool": tool,
        "argv": argv,
        "start": start,
        "end": end,
        "stdin_sha256": hashlib.sha256(stdin).hexdigest() if stdin else None,
        "stdin_len": len(stdin),
        "exit": code,
    }
    log = os.environ.get("FAKE_TOOLS_LOG")
    if log:
        with open(log, "a") as fh:
            fh.write(json.dumps(record) + "\n")
    if reply is not None:
        code, out, err = reply
        sys.stdout.write(out)
        sys.stderr.write(err)
        return code
    client = tool == "talosctl" and argv[:1] == ["version"] and {"--client", "--short"} <= set(argv)
    if not rule and client and cfg.get("talosctl_version"):
        sys.stdout.write(f"Client:\nTalos {cfg['talosctl_version']}\n")
    if rule.get("stdout"):
        out = rule["stdout"]
        for n, arg in enumerate(_bare(argv)):
            out = out.replace(f"$ARGV[{n}]", arg)
        sys.stdout.write(out)
    if rule.get("stderr"):
        sys.stderr.write(rule["stderr"])
    if rule.get("signal"):
        sys.stdout.flush()
        signal.signal(rule["signal"], signal.SIG_DFL)
        os.kill(os.getpid(), rule["signal"])
    return int(rule.get("exit", 0))


if __name__ == "__main__":
    sys.exit(main())
