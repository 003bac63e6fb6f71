"""Pre-checks: a run checks the selected steps' values files and manifests before any tool call.

Each case breaks one copy of a real input (kept in tmp_path, the repo's files are never touched),
puts that copy in the stack in place of the original, and runs ``cluster.rebuild`` with the
recording fakes on PATH: it must stop naming the file, the key or line and the fix, having called
no tool at all.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from conftest import FakeTools, call_task
from invoke.exceptions import Exit

import tasks.cluster
from tasks.engine.catalog import Catalog
from tasks.engine.components import HelmRelease, ManifestBundle
from tasks.engine.context import run_context
from tasks.engine.errors import InputError
from tasks.engine.inventory import REPO_ROOT, load_inventory
from tasks.stack import STACK
from tasks.validate.chartdata import ChartSource
from tasks.validate.prechecks import prechecks

KYVERNO_VALUES = REPO_ROOT / "helm-values" / "kyverno.yaml"
TRAEFIK_VALUES = REPO_ROOT / "helm-values" / "traefik.yaml"
CLOUDFLARED = REPO_ROOT / "manifests" / "network" / "cloudflared"


def with_copies(tmp_path: Path, *changes: tuple[str, Path, Any]) -> Catalog:
    """The stack with each ``(step id, original, edit)`` reading an edited copy of ``original``."""
    copies: dict[str, Path] = {}
    for index, (step_id, original, edit) in enumerate(changes):
        folder = tmp_path / f"copy-{index}"
        folder.mkdir()
        if original.is_dir():
            target = folder / original.name
            target.mkdir()
            for path in original.glob("*.yaml"):
                (target / path.name).write_text(path.read_text())
        else:
            target = folder / original.name
            target.write_text(original.read_text())
        edit(target)
        copies[step_id] = target

    def components(inv):
        out = []
        for comp in STACK.components(inv):
            if comp.id in copies and isinstance(comp, HelmRelease):
                comp = dataclasses.replace(comp, values=str(copies[comp.id]))
            elif comp.id in copies and isinstance(comp, ManifestBundle):
                comp = dataclasses.replace(comp, path=str(copies[comp.id]))
            out.append(comp)
        return out

    return STACK.with_components(components)


def replace_in(name: str, old: str, new: str):
    def edit(target: Path) -> None:
        path = target / name if target.is_dir() else target
        text = path.read_text()
        assert old in text, f"{old!r} not in {path}"
        path.write_text(text.replace(old, new, 1))

    return edit


def rebuild_error(
    catalog: Catalog, fake_tools: FakeTools, monkeypatch: pytest.MonkeyPatch, **kwargs: Any
) -> str:
    """Run ``cluster.rebuild`` on ``catalog``: the error it exits with, once no tool has run."""
    monkeypatch.setattr(tasks.cluster, "_catalog", lambda c, profile: catalog)
    with pytest.raises(Exit) as info:
        call_task("cluster.rebuild", **kwargs)
    assert info.value.code == 1
    assert fake_tools.calls() == []  # stopped before the first tool call
    text = str(info.value.message)
    assert "Traceback" not in text and "nothing was run" in text
    return text


CASES = [
    pytest.param(
        "scheduling/kyverno",
        KYVERNO_VALUES,
        replace_in("", "admissionController:", "admissionControler:"),
        ["kyverno.yaml: admissionControler: unknown key", "did you mean `admissionController`"],
        id="misspelt-values-key",
    ),
    pytest.param(
        "network/cloudflared",
        CLOUDFLARED,
        replace_in("deployment.yaml", "  replicas: 3", "  replica: 3"),
        ["deployment.yaml: Deployment/cloudflared spec", "replica", "fix:"],
        id="broken-manifest-field",
    ),
    pytest.param(
        "network/traefik",
        TRAEFIK_VALUES,
        replace_in("", "((domains.acmeEmail))", "((domains.acmeMail))"),
        ["traefik.yaml", "domains.acmeMail"],
        id="broken-placeholder",
    ),
    pytest.param(
        "scheduling/kyverno",
        KYVERNO_VALUES,
        lambda path: path.write_text("- admissionController\n- replicas: 3\n"),
        ["kyverno.yaml: (top level): a values file must be a map", "fix:"],
        id="values-file-is-a-list",
    ),
    pytest.param(
        "scheduling/kyverno",
        KYVERNO_VALUES,
        lambda path: path.write_text(path.read_text() + "broken: [unclosed\n"),
        ["kyverno.yaml: line 22: not valid YAML", "fix: fix the YAML syntax"],
        id="values-yaml-syntax-error",
    ),
    pytest.param(
        "network/cloudflared",
        CLOUDFLARED,
        replace_in("deployment.yaml", "kind: Deployment", "kind: Deployment\n  bad: [x"),
        ["deployment.yaml: line 9: not valid YAML", "fix: fix the YAML syntax"],
        id="manifest-yaml-syntax-error",
    ),
]


@pytest.mark.parametrize(("step_id", "original", "edit", "expected"), CASES)
def test_a_broken_input_stops_a_rebuild_before_any_tool_call(
    tmp_path: Path,
    fake_tools: FakeTools,
    monkeypatch: pytest.MonkeyPatch,
    reference: Path,
    step_id: str,
    original: Path,
    edit: Any,
    expected: list[str],
) -> None:
    text = rebuild_error(with_copies(tmp_path, (step_id, original, edit)), fake_tools, monkeypatch)
    for part in expected:
        assert part in text


TYPO = ("scheduling/kyverno", KYVERNO_VALUES, replace_in("", "admissionController:", "x:"))


def test_dry_run_checks_too(
    tmp_path: Path, fake_tools: FakeTools, monkeypatch: pytest.MonkeyPatch, reference: Path
) -> None:
    text = rebuild_error(with_copies(tmp_path, TYPO), fake_tools, monkeypatch, dry_run=True)
    assert "kyverno.yaml: x: unknown key" in text


def test_every_problem_is_listed_together(
    tmp_path: Path, fake_tools: FakeTools, monkeypatch: pytest.MonkeyPatch, reference: Path
) -> None:
    catalog = with_copies(
        tmp_path,
        TYPO,
        (
            "network/cloudflared",
            CLOUDFLARED,
            replace_in("deployment.yaml", "replicas: 3", "rep: 3"),
        ),
        ("network/traefik", TRAEFIK_VALUES, replace_in("", "((domains.acmeEmail))", "((nope))")),
    )
    text = rebuild_error(catalog, fake_tools, monkeypatch)
    assert "3 problem(s)" in text
    assert "x: unknown key" in text and "'rep'" in text and "nope" in text


def test_only_the_selected_steps_are_checked(tmp_path: Path, reference: Path) -> None:
    catalog = with_copies(tmp_path, TYPO)
    inv = load_inventory()
    graph = catalog.graph(inv)
    source = ChartSource(cache=tmp_path / "no-cache", reference=reference)
    with run_context(inv, dry_run=True, fetch_kubeconfig=False) as ctx:
        network = [s for s in graph.steps() if s.layer == "network"]
        assert prechecks(ctx, network, source=source, reference=reference) == []
        (error,) = prechecks(ctx, graph.steps(), source=source, reference=reference)
    assert error.field == "x"


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The origin of every chart the prechecks parse, in order."""
    import tasks.validate.chartdata as chartdata

    seen: list[str] = []
    real = chartdata.load_chart

    def counting(files, origin, find_dependency=None):
        seen.append(origin)
        return real(files, origin, find_dependency)

    monkeypatch.setattr(chartdata, "load_chart", counting)
    return seen


def test_the_reference_stack_passes_and_each_chart_is_parsed_once(
    reference: Path, monkeypatch: pytest.MonkeyPatch, parsed: list[str]
) -> None:
    import tasks.validate.passed as passed

    monkeypatch.setattr(passed, "seen", lambda name: False)  # both passes check in full
    inv = load_inventory()
    steps = STACK.graph(inv).steps()
    source = ChartSource(reference=reference)
    with run_context(inv, dry_run=True, fetch_kubeconfig=False) as ctx:
        assert prechecks(ctx, steps, source=source, reference=reference) == []
        first = len(parsed)
        assert prechecks(ctx, steps, source=source, reference=reference) == []
    assert first > 0 and len(parsed) == first  # the second pass reused every parsed chart


def test_the_engine_raises_one_input_error_with_every_problem(
    tmp_path: Path, reference: Path
) -> None:
    from tasks.engine.execute import execute

    with pytest.raises(InputError) as info:
        execute(with_copies(tmp_path, TYPO), targets=["scheduling/kyverno"], dry_run=True)
    assert [e.field for e in info.value.errors] == ["x"]


def test_inputs_that_passed_are_not_checked_again_until_one_byte_changes(
    tmp_path: Path, reference: Path, parsed: list[str]
) -> None:
    import tasks.validate.passed as passed

    copy = tmp_path / "traefik.yaml"
    copy.write_text(TRAEFIK_VALUES.read_text())

    def steps(inv):
        return [
            dataclasses.replace(s, values=str(copy)) if s.id == "network/traefik" else s
            for s in STACK.components(inv)
            if s.layer == "network"
        ]

    inv = load_inventory()

    def check() -> list:
        source = ChartSource(cache=tmp_path / "no-cache", reference=reference)
        with run_context(inv, dry_run=True, fetch_kubeconfig=False) as ctx:
            return prechecks(ctx, steps(inv), source=source, reference=reference)

    assert check() == [] and parsed  # checked in full, and the verdict kept
    assert len(list(passed.folder().iterdir())) == 1
    done = len(parsed)
    assert check() == [] and len(parsed) == done  # the same inputs: nothing parsed again
    # one byte of a values file: checked in full again, and the problem is found
    copy.write_text(copy.read_text().replace("  replicas: 2\n", "  replicaz: 2\n", 1))
    assert [e.field for e in check()] == ["deployment.replicaz"] and len(parsed) > done
    done = len(parsed)
    # a problem is never kept: the next run finds it again
    assert [e.field for e in check()] == ["deployment.replicaz"]
    assert len(list(passed.folder().iterdir())) == 1
    # the byte put back: the very first inputs again, whose verdict is known
    done = len(parsed)
    copy.write_text(TRAEFIK_VALUES.read_text())
    assert check() == [] and len(parsed) == done
    assert len(list(passed.folder().iterdir())) == 1
