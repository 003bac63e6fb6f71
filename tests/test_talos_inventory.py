"""Bad inventory for the Talos layer fails before any talosctl call, naming file and field."""

from __future__ import annotations

import pytest
from conftest import task_context
from invoke.exceptions import Exit
from test_talos_fixtures import make_talos_env, write_inventory

from tasks.engine.errors import InventoryError
from tasks.engine.execute import execute
from tasks.stack import STACK
from tasks.talos import tasks as talos_tasks


def _drop_install_disk(d):
    del d["nodes"][3]["installDisk"]


def _duplicate_hostname(d):
    d["nodes"][4]["name"] = d["nodes"][3]["name"]


def _loopback_link(d):
    d["nodes"][1]["link"] = "lo"


def _malformed_link(d):
    d["nodes"][2]["link"] = "enp1s0 (LAN)"


def _schematic_without_extensions(tmp_path):
    schematic = tmp_path / "schematic.yaml"
    schematic.write_text(
        "customization:\n  systemExtensions:\n    officialExtensions:\n"
        "      - siderolabs/iscsi-tools\n      - siderolabs/intel-ucode\n"
    )

    def edit(d):
        d["talos"]["schematic"]["file"] = str(schematic)

    return edit


def _missing_schematic(tmp_path):
    def edit(d):
        d["talos"]["schematic"]["file"] = str(tmp_path / "nope.yaml")

    return edit


CASES = {
    "missing-install-disk": (lambda tmp: _drop_install_disk, "nodes[3].installDisk",
                             "missing required key"),
    "duplicate-hostname": (lambda tmp: _duplicate_hostname, "nodes[4].name",
                           "duplicate node name 'talostrk2'"),
    "loopback-link": (lambda tmp: _loopback_link, "nodes[1].link", "unknown link 'lo'"),
    "malformed-link": (lambda tmp: _malformed_link, "nodes[2].link",
                       "expected a network interface name"),
    "schematic-without-longhorn-extensions": (
        _schematic_without_extensions, "talos.schematic.file", "siderolabs/util-linux-tools"),
    "schematic-missing": (_missing_schematic, "talos.schematic.file", "cannot read"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_bad_inventory_fails_before_talosctl_naming_the_field(case, tmp_path, monkeypatch,
                                                              fake_tools):  # fmt: skip
    env = make_talos_env(tmp_path, monkeypatch, fake_tools)
    make_edit, field, message = CASES[case]
    cluster = write_inventory(tmp_path, make_edit(tmp_path))
    with pytest.raises(InventoryError) as err:
        execute(STACK, cluster=cluster, layers=["talos"])
    text = str(err.value)
    assert f"{cluster}: {field}: " in text
    assert message in text
    assert env.argvs() == []


def test_task_reports_bad_inventory_as_a_clean_error(tmp_path, monkeypatch, fake_tools):
    env = make_talos_env(tmp_path, monkeypatch, fake_tools)
    cluster = write_inventory(tmp_path, _schematic_without_extensions(tmp_path))
    with pytest.raises(Exit) as err:
        talos_tasks.apply(task_context(), cluster=cluster)
    assert "talos.schematic.file" in str(err.value.message)
    assert "fix: add them" in str(err.value.message)
    assert env.argvs() == []
