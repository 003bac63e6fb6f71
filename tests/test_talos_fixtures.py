"""Shared set-up for the Talos tests: a talosctl that writes files like the real one, and a store.

The recording fake on PATH records argv but writes nothing; the real talosctl writes the secrets
bundle, configs and talosconfig. ``talosctl_writer`` wraps the fake: it writes those files (each
holding ``MARK``, standing in for key material), records whether the bundle file given to
``--with-secrets`` existed (and its modes, and a hash of what it held) at that moment, then runs
the recording fake. Tests then prove that no file holding ``MARK`` survives a run. Like the real
talosctl it also answers ``get disks -o json`` with the disks of ``$TALOS_TEST_DISKS`` (one JSON
object per disk, ``cmd/talosctl/cmd/talos/output/json.go``), writes a talosconfig as YAML with
one context named after the cluster, and writes ``etcd snapshot <path>``'s file.
With ``$TALOS_TEST_UNIQUE_BUNDLES`` set, every ``gen secrets`` writes a bundle of its own.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tasks.engine.inventory import DEFAULT_INVENTORY, load_inventory
from tasks.secrets import infisical
from tasks.secrets.store import MemoryStore

MARK = "FAKE-TALOS-KEY-MATERIAL-7f3a9c"
# the read-only probe of the talosctl client's version every Talos run makes first
CLIENT_PROBE = ["talosctl", "version", "--client", "--short"]
BUNDLE = f"cluster:\n  id: fake\n  secret: {MARK}-bundle\ncerts:\n  os:\n    key: {MARK}-os-ca\n"

WRITER = """
import hashlib, json, os, runpy, sys, uuid
from pathlib import Path

args = sys.argv[1:]
mark, bundle = os.environ["TALOS_TEST_MARK"], os.environ["TALOS_TEST_BUNDLE"]


def val(flag):
    return args[args.index(flag) + 1] if flag in args else None


if "--with-secrets" in args:
    p = Path(val("--with-secrets"))
    rec = {"path": str(p), "exists": p.exists()}
    if p.exists():
        rec["mode"] = p.stat().st_mode & 0o777
        rec["dir_mode"] = p.parent.stat().st_mode & 0o777
        rec["matches"] = p.read_text() == bundle
        rec["sha256"] = hashlib.sha256(p.read_bytes()).hexdigest()
    with open(os.environ["TALOS_TEST_PROBES"], "a") as fh:
        fh.write(json.dumps(rec) + "\\n")


def talosconfig(name):
    ctx = {"endpoints": [], "ca": "Q0E=", "crt": "Q1JU", "key": f"{mark}-client-key"}
    return json.dumps({"context": name, "contexts": {name: ctx}})  # JSON is YAML


if args[:2] == ["gen", "secrets"]:
    unique = f"nonce: {uuid.uuid4().hex}\\n" if os.environ.get("TALOS_TEST_UNIQUE_BUNDLES") else ""
    Path(val("--output-file")).write_text(bundle + unique)
elif args[:2] == ["gen", "config"]:
    out, types = Path(val("--output")), val("--output-types").split(",")
    if types == ["talosconfig"]:
        out.write_text(talosconfig(args[2]))
    else:
        for t in types:
            text = talosconfig(args[2]) if t == "talosconfig" else f"# {t} {mark}\\n"
            (out / (t if t == "talosconfig" else t + ".yaml")).write_text(text)
elif args[:2] == ["get", "disks"]:
    for path in json.loads(os.environ.get("TALOS_TEST_DISKS", "{}")).get(val("--nodes"), []):
        disk = {"node": val("--nodes"),
                "metadata": {"namespace": "runtime", "type": "Disks.block.talos.dev",
                             "id": path.rsplit("/", 1)[-1]},
                "spec": {"dev_path": path, "symlinks": [f"/dev/disk/by-id/wwn-{hashlib.md5(path.encode()).hexdigest()[:8]}"]}}
        print(json.dumps(disk, indent=4))
elif "etcd" in args and "snapshot" in args:
    Path(val("snapshot")).write_text("fake etcd snapshot\\n")
elif args[:2] == ["machineconfig", "patch"]:
    # a node's config follows its patch (as the real one does), so a changed patch is a new one
    patch = hashlib.sha256(Path(val("--patch")[1:]).read_bytes()).hexdigest()
    Path(val("--output")).write_text(f"# node config {mark}\\nmachine:\\n  patch: {patch}\\n")
fake = os.environ["TALOS_TEST_FAKE"]
sys.argv = [fake, *args]  # the recorder names the tool after argv[0]: talosctl
runpy.run_path(fake, run_name="__main__")
"""


@dataclass
class TalosEnv:
    """Everything a Talos test drives and inspects."""

    fakes: object
    store: MemoryStore
    tmp: Path
    probes: Path
    root: Path

    def probe_records(self) -> list[dict]:
        if not self.probes.exists():
            return []
        return [json.loads(line) for line in self.probes.read_text().splitlines()]

    def files_with_mark(self) -> list[Path]:
        """Every file under the test's directory that holds key material.

        The fake talosctl's ``machineconfigs.json`` is left out: it is the fake nodes' own memory
        of the configs applied to them (what a real node holds), not a file onecluster wrote.
        """
        nodes = self.fakes.log.parent / "machineconfigs.json"  # type: ignore[attr-defined]
        found = []
        for p in self.root.rglob("*"):
            if p == nodes:
                continue
            if p.is_file() and MARK in p.read_text(errors="replace"):
                found.append(p)
        return found

    def argvs(self) -> list[list[str]]:
        """Every recorded call but the read-only client-version probe (:meth:`client_probes`)."""
        return [a for a in self.fakes.argvs() if a != CLIENT_PROBE]  # type: ignore[attr-defined]

    def talosctl(self) -> list[list[str]]:
        """Every talosctl call but the read-only client-version probe."""
        return [a for a in self.fakes.argvs("talosctl") if a != CLIENT_PROBE]  # type: ignore[attr-defined]

    def client_probes(self) -> list[list[str]]:
        """The ``talosctl version --client --short`` probes a run made (one, before any step)."""
        return [a for a in self.fakes.argvs() if a == CLIENT_PROBE]  # type: ignore[attr-defined]


def make_talos_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_tools) -> TalosEnv:
    """Fakes on PATH, a file-writing talosctl, a MemoryStore as Infisical, a private TMPDIR."""
    writer = tmp_path / "talosctl-writer"
    writer.write_text(f"#!{sys.executable}\n{WRITER}")
    writer.chmod(writer.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("TALOSCTL", str(writer))
    monkeypatch.setenv("TALOS_TEST_FAKE", str(fake_tools.bin_dir / "talosctl"))
    monkeypatch.setenv("TALOS_TEST_MARK", MARK)
    monkeypatch.setenv("TALOS_TEST_BUNDLE", BUNDLE)
    disks = {str(n.ip): [n.install_disk, "/dev/sdb"] for n in load_inventory().nodes}
    monkeypatch.setenv("TALOS_TEST_DISKS", json.dumps(disks))
    probes = tmp_path / "probes.jsonl"
    monkeypatch.setenv("TALOS_TEST_PROBES", str(probes))
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    store = MemoryStore()
    monkeypatch.setattr(infisical, "open_store", lambda inventory: store)
    return TalosEnv(fake_tools, store, tmp, probes, tmp_path)


def write_inventory(tmp_path: Path, edit=None, name: str = "cluster.yaml") -> str:
    """A copy of the reference inventory, changed by ``edit(data)``; returns its path."""
    data = yaml.safe_load(DEFAULT_INVENTORY.read_text())
    if edit is not None:
        edit(data)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def workdir_of(argvs: list[list[str]]) -> str:
    """The private workdir of a run, read from the first path-bearing talosctl argument."""
    for argv in argvs:
        for flag in ("--output-file", "--with-secrets"):
            if flag in argv:
                return os.path.dirname(argv[argv.index(flag) + 1])
    raise AssertionError("no talosctl call named the workdir")


def normalise(argvs: list[list[str]], workdir: str) -> list[list[str]]:
    """Argv lists with the random workdir written as $WD."""
    return [[a.replace(workdir, "$WD") for a in argv] for argv in argvs]


def test_writer_records_bundle_file_and_hands_over_to_the_recorder(
    tmp_path, monkeypatch, fake_tools
):
    env = make_talos_env(tmp_path, monkeypatch, fake_tools)
    secrets = tmp_path / "s.yaml"
    secrets.write_text(BUNDLE)
    secrets.chmod(0o600)
    import subprocess

    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(
        [os.environ["TALOSCTL"], "gen", "config", "c", "https://x:6443", "--with-secrets",
         str(secrets), "--output-types", "controlplane,talosconfig", "--output", str(out)],
        check=True,
    )  # fmt: skip
    assert env.probe_records() == [
        {"path": str(secrets), "exists": True, "mode": 0o600,
         "dir_mode": tmp_path.stat().st_mode & 0o777, "matches": True,
         "sha256": hashlib.sha256(BUNDLE.encode()).hexdigest()}
    ]  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == ["controlplane.yaml", "talosconfig"]
    assert env.talosctl()[0][:3] == ["talosctl", "gen", "config"]
