"""The keyed fingerprints a Talos apply leaves in the cluster's record (tasks/talos/applied.py)."""

from __future__ import annotations

import dataclasses
import datetime
from types import SimpleNamespace

from test_talos_fixtures import BUNDLE

from tasks.stack import STACK
from tasks.talos import applied, secretsbundle

INV = STACK.load()
CONFIG = [{"version": "v1alpha1", "machine": {"type": "worker", "token": "t0ken"}}]
TEMPLATE = "version: v1alpha1\nmachine:\n  type: worker\n"
PATCH = "# generated from talos/cluster.yaml\n---\nmachine:\n  install:\n    disk: /dev/sda\n"


def ctx(bundle: str | None = BUNDLE, inventory=INV):
    state = {secretsbundle.STATE_KEY: bundle} if bundle else {}
    return SimpleNamespace(state=state, inventory=inventory)


def test_a_config_fingerprint_is_keyed_by_the_bundle():
    first = applied.config(ctx(), CONFIG)
    assert first is not None and first.startswith("hmac-sha256:")
    assert applied.config(ctx(), [dict(CONFIG[0])]) == first  # the same documents, the same
    assert applied.config(ctx(BUNDLE + "other: key\n"), CONFIG) != first  # another cluster's
    assert applied.config(ctx(None), CONFIG) is None  # no bundle loaded: no fingerprint
    assert "t0ken" not in first


def inputs(c, template: str, patch: str) -> str | None:
    return applied.inputs(c, applied.documents(template), patch)


def test_inputs_change_with_what_makes_the_config_and_not_with_comments():
    base = inputs(ctx(), TEMPLATE, PATCH)
    assert base is not None
    moved = PATCH.replace("talos/cluster.yaml", "/tmp/elsewhere/cluster.yaml")
    assert inputs(ctx(), TEMPLATE, moved) == base  # only a comment differs
    assert inputs(ctx(), TEMPLATE, PATCH.replace("sda", "sdb")) != base
    assert inputs(ctx(), TEMPLATE.replace("worker", "controlplane"), PATCH) != base
    release = dataclasses.replace(INV.cluster, talos_version="v1.12.5")
    upgraded = dataclasses.replace(INV, cluster=release)
    assert inputs(ctx(inventory=upgraded), TEMPLATE, PATCH) != base
    assert inputs(ctx(), TEMPLATE, "machine: [unclosed\n") is None  # no YAML: none
    assert inputs(ctx(), "machine: [unclosed\n", PATCH) is None


def test_data_json_cannot_hold_has_no_fingerprint():
    assert applied.config(ctx(), [{"machine": {"at": datetime.date(2026, 12, 4)}}]) is None
