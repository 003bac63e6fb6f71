"""The plan contract (`cluster.plan --format json`) and its agreement with --dry-run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasks.engine.execute import execute, plan
from tasks.engine.output import register_secret
from tasks.stack import STACK

KINDS = {"talos", "secret", "crds", "helm", "manifests", "gate"}
GOLDEN_PLAN = Path(__file__).parent / "golden" / "plan.json"


@pytest.fixture(scope="module")
def contract() -> dict:
    return json.loads(plan(STACK, fmt="json"))


def test_contract_shape(contract):
    assert set(contract) == {"cluster", "steps"}
    assert contract["cluster"] == "homelab"
    for step in contract["steps"]:
        assert {"id", "layer", "kind", "needs", "commands"} <= set(step)
        assert step["id"] == f"{step['layer']}/{step['id'].split('/', 1)[1]}"
        assert step["kind"] in KINDS
        assert all(
            isinstance(c, list) and all(isinstance(a, str) for a in c) for c in step["commands"]
        )


def test_contract_is_in_dependency_order_and_complete(contract):
    seen: set[str] = set()
    for step in contract["steps"]:
        assert set(step["needs"]) <= seen, step["id"]
        seen.add(step["id"])
    layers = {s["layer"] for s in contract["steps"]}
    assert layers == set(STACK.layers)


def test_contract_is_stable(contract):
    assert json.loads(plan(STACK, fmt="json")) == contract


def test_contract_matches_the_golden_file(contract, request):
    """The reference inventory's plan, kept in tests/golden/plan.json.

    A change to any step, need or command shows up here as a diff to review; after a deliberate
    change regenerate it with ``pytest tests/test_plan.py --update-golden``.
    """
    if request.config.getoption("--update-golden"):
        GOLDEN_PLAN.write_text(json.dumps(contract, indent=2) + "\n")
    assert GOLDEN_PLAN.is_file(), "no golden plan: run pytest tests/test_plan.py --update-golden"
    assert contract == json.loads(GOLDEN_PLAN.read_text())


def test_commands_match_what_dry_run_prints(contract, capsys):
    execute(STACK, dry_run=True)
    printed = [
        line.split(" $ ", 1)[1] for line in capsys.readouterr().out.splitlines() if " $ " in line
    ]
    import shlex

    planned = [shlex.join(c) for s in contract["steps"] for c in s["commands"]]
    assert printed == planned


def test_rebuild_starts_with_talos_and_every_layer_needs_talos_health(contract):
    ids = [s["id"] for s in contract["steps"]]
    assert ids[0] == "talos/genconfig" or ids[0].startswith("talos/")
    health = ids.index("talos/health")
    assert all(i.startswith("talos/") for i in ids[:health])


def test_table_and_mermaid(contract):
    table = plan(STACK)
    assert table.startswith(f"Plan for cluster homelab: {len(contract['steps'])} steps")
    mermaid = plan(STACK, fmt="mermaid")
    assert mermaid.startswith("flowchart TD")
    assert "talos__health --> network__gateway_api_crds" in mermaid


def test_plan_selection_by_layer_and_step():
    layer = json.loads(plan(STACK, layers=["storage"], fmt="json"))
    assert {s["layer"] for s in layer["steps"]} == {"storage"}
    step = json.loads(plan(STACK, targets=["apps/mealie"], fmt="json"))
    ids = [s["id"] for s in step["steps"]]
    assert ids[-1] == "apps/mealie" and "talos/health" in ids and "apps/wordpress" not in ids


def test_plan_redacts_registered_values(contract):
    address = contract["steps"][1]["commands"][0][-1]
    register_secret(address)
    redacted = json.loads(plan(STACK, fmt="json"))
    assert address not in json.dumps(redacted)


def test_unknown_format_is_an_error():
    with pytest.raises(ValueError, match="unknown format"):
        plan(STACK, fmt="yaml")


# Properties every step of the stack keeps, whichever layer declares it ------------------------


@pytest.fixture(scope="module")
def components():
    from tasks.engine.inventory import load_inventory
    from tasks.stack import catalog

    return catalog(load_inventory())


def test_every_gate_command_has_a_timeout(contract):
    for step in contract["steps"]:
        if step["kind"] == "gate":
            for argv in step["commands"]:
                # kubectl takes --timeout=, talosctl health --wait-timeout
                assert any(a.startswith(("--timeout", "--wait-timeout")) for a in argv), (
                    step["id"],
                    argv,
                )


def test_every_gate_check_says_what_it_waits_for_and_how_to_look(components):
    from tasks.engine.gates import Gate

    gates = [c for c in components if isinstance(c, Gate)]
    assert gates
    for gate in gates:
        for check in gate.checks:
            assert check.what and check.observe is not None, gate.id


def test_every_manifest_bundle_has_files(components):
    from tasks.engine.components import ManifestBundle

    for comp in components:
        if isinstance(comp, ManifestBundle):
            assert comp.files(), f"{comp.id}: no manifests in {comp.directory}"
