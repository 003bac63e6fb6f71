"""No secret value escapes: not to stdout/stderr, log records, exception text, or any file.

Random values live in a fake Infisical; a successful sync, a dry-run and failing syncs run both in
process (with every logger at DEBUG, so urllib3/requests/kubernetes debug lines are captured too)
and through the ``invoke`` CLI. The failing API server echoes the request body, base64 values and
all, in its error message, and the failing Infisical echoes the machine identity's secret: both must
come out redacted.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets as random_source
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import call_task
from fakes.infisical_server import FakeInfisical
from fakes.kube_apiserver import FakeKubeAPI

from tasks.engine.components import SecretSpec
from tasks.engine.errors import OneclusterError
from tasks.engine.execute import execute
from tasks.engine.inventory import load_inventory
from tasks.secrets.steps import SecretSync
from tasks.stack import STACK, catalog

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "talos" / "cluster.yaml"
PROJECT = "11111111-2222-4333-8444-555555555555"
SPEC = SecretSpec("leak", "leak-test", {"username": "LEAK_USER", "password": "LEAK_PASSWORD"})
# the real catalogue's names, for the CLI runs
CATALOGUE_NAMES = tuple(
    sorted(
        {
            name
            for comp in catalog(load_inventory(CLUSTER))
            for spec in comp.secrets
            for name in spec.keys.values()
        }
    )
)


def _catalog(inventory):
    return [SecretSync(layer="secrets", name="leak-test", secrets=(SPEC,))]


class Setup:
    """Random values, the fakes serving them, and the environment pointing at the fakes."""

    def __init__(self, tmp_path: Path) -> None:
        self.client_secret = "cs-" + random_source.token_urlsafe(24)
        self.values = {
            name: random_source.token_urlsafe(24)
            for name in ("LEAK_USER", "LEAK_PASSWORD", *CATALOGUE_NAMES)
        }
        self.infisical = FakeInfisical("leak-client", self.client_secret)
        self.infisical.add_project(PROJECT, {"prod": ["/"]})
        for name, value in self.values.items():
            self.infisical.put(PROJECT, "prod", "/", name, value, "homelab")
        self.kube = FakeKubeAPI()
        self.kube.start()
        self.env = {
            "INFISICAL_CLIENT_ID": "leak-client",
            "INFISICAL_CLIENT_SECRET": self.client_secret,
            "INFISICAL_SITE_URL": self.infisical.start(),
            "INFISICAL_PROJECT_ID": PROJECT,
            "INFISICAL_TIMEOUT": "2",
            "KUBECONFIG": str(self.kube.kubeconfig(tmp_path / "kubeconfig")),
        }

    def needles(self) -> list[str]:
        plain = [*self.values.values(), self.client_secret]
        return plain + [base64.b64encode(v.encode()).decode() for v in plain]

    def stop(self) -> None:
        self.infisical.stop()
        self.kube.stop()


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    s = Setup(tmp_path)
    for var in [k for k in os.environ if k.startswith("INFISICAL_")]:
        monkeypatch.delenv(var)
    for key, value in s.env.items():
        monkeypatch.setenv(key, value)
    yield s
    s.stop()


def _leaks(needles: list[str], text: str) -> list[str]:
    return [n for n in needles if n in text]


def _files_with(needles: list[str], roots: list[Path], since: float) -> list[str]:
    """Files under ``roots`` containing a needle (for the temp dir: only files touched since)."""
    raw = [n.encode() for n in needles]
    hits = []
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d != ".git"]
            for name in filenames:
                path = Path(dirpath) / name
                try:
                    info = path.stat()
                    if root != ROOT and info.st_mtime < since:
                        continue
                    if not path.is_file() or info.st_size > 50_000_000:
                        continue
                    data = path.read_bytes()
                except OSError:
                    continue
                if any(n in data for n in raw):
                    hits.append(str(path))
    return hits


def _run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("INFISICAL_")}
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_no_value_leaks_anywhere(setup: Setup, capfd, caplog):
    started = time.time() - 1
    caplog.set_level(logging.DEBUG)
    for name in ("urllib3", "requests", "kubernetes", "infisical_sdk"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    errors: list[BaseException] = []

    # 1. a successful sync, then an idempotent re-sync
    execute(STACK.with_components(_catalog), cluster=str(CLUSTER))
    execute(STACK.with_components(_catalog), cluster=str(CLUSTER))
    assert setup.kube.secret_values("leak", "leak-test") == {
        "username": setup.values["LEAK_USER"],
        "password": setup.values["LEAK_PASSWORD"],
    }

    # 2. a dry-run
    execute(STACK.with_components(_catalog), cluster=str(CLUSTER), dry_run=True)

    # 3. a failing sync after the values were fetched: the API server echoes the request body
    # (the Secret deleted first: a Secret that already holds its values is not written)
    del setup.kube.objects[("Secret", "leak", "leak-test")]
    setup.kube.fail(500, echo_body=True)
    with pytest.raises(OneclusterError) as failed:
        execute(STACK.with_components(_catalog), cluster=str(CLUSTER))
    errors.append(failed.value)
    assert "HTTP 500" in str(failed.value)

    # 4. a failing login whose error message repeats the client secret
    setup.infisical.fail(401, f"bad secret {setup.client_secret}", prefix="/api/v1/auth")
    with pytest.raises(OneclusterError) as refused:
        execute(STACK.with_components(_catalog), cluster=str(CLUSTER))
    errors.append(refused.value)
    assert "HTTP 401" in str(refused.value) and "***" in str(refused.value)
    setup.infisical._failure = None
    setup.kube._failure = None

    # 5. the same through the CLI: sync, dry-run, and a failing sync
    cli = [
        _run_cli("secrets.sync", env=setup.env),
        _run_cli("secrets.sync", "--dry-run", env=setup.env),
        _run_cli("secrets.check", env=setup.env),
        _run_cli("secrets.list", "--format", "json", env=setup.env),
    ]
    assert cli[0].returncode == 0, cli[0].stderr
    for key in [k for k in setup.kube.objects if k[0] == "Secret"]:  # so the sync must write
        del setup.kube.objects[key]
    setup.kube.fail(403, echo_body=True)
    cli.append(_run_cli("secrets.sync", env=setup.env))
    assert cli[-1].returncode == 1 and "HTTP 403" in cli[-1].stderr

    needles = setup.needles()
    captured = capfd.readouterr()
    assert _leaks(needles, captured.out + captured.err) == []
    for result in cli:
        assert _leaks(needles, result.stdout + result.stderr) == [], result.args
    assert caplog.records, "DEBUG logging was on: the HTTP clients logged something"
    assert _leaks(needles, "\n".join(r.getMessage() for r in caplog.records)) == []
    assert _leaks(needles, caplog.text) == []
    for exc in errors:
        text = "".join(traceback.format_exception(exc)) + repr(exc)
        assert _leaks(needles, text) == []
    files = _files_with(needles, [ROOT, Path(tempfile.gettempdir())], started)
    assert files == []


def test_a_sync_lists_the_clusters_values_once(setup: Setup):
    # issue 13: each sync step listed every value of the cluster again (11 listings in one run)
    call_task("secrets.sync", jobs=4)
    listings = [
        r
        for r in setup.infisical.requests
        if r.path == "/api/v3/secrets/raw" and r.query.get("viewSecretValue") == "true"
    ]
    synced = [k for k in setup.kube.objects if k[0] == "Secret"]
    assert len(synced) >= 10  # every declared Secret is in the cluster: the sync really ran
    assert len(listings) == 1
