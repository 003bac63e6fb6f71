"""The graph engine: unknown needs and cycles are errors; selection is one function."""

from __future__ import annotations

import pytest

from tasks.engine.components import Component
from tasks.engine.errors import GraphError
from tasks.engine.graph import Graph, StepKinds, critical_path, missing_crd_needs
from tasks.engine.inventory import load_inventory
from tasks.stack import STACK


def step(cid: str, *needs: str) -> Component:
    layer, name = cid.split("/")
    return Component(layer=layer, name=name, needs=needs)


def diamond() -> Graph:
    return Graph.build(
        [
            step("talos/health"),
            step("network/crds", "talos/health"),
            step("network/traefik", "network/crds"),
            step("storage/longhorn", "talos/health"),
            step("apps/mealie", "network/traefik", "storage/longhorn"),
            step("apps/wordpress", "storage/longhorn"),
        ]
    )


def test_unknown_need_names_the_ids_and_suggests():
    with pytest.raises(GraphError) as info:
        Graph.build([step("talos/health"), step("network/traefik", "talos/helth")])
    assert "network/traefik needs unknown talos/helth" in str(info.value)
    assert "did you mean talos/health" in str(info.value)
    assert info.value.ids == ["talos/helth"]


def test_cycle_prints_the_offending_ids():
    with pytest.raises(GraphError) as info:
        Graph.build(
            [
                step("talos/health"),
                step("network/a", "network/c", "talos/health"),
                step("network/b", "network/a"),
                step("network/c", "network/b"),
            ]
        )
    message = str(info.value)
    assert message.startswith("dependency cycle: ")
    assert set(info.value.ids) == {"network/a", "network/b", "network/c"}
    assert info.value.ids[0] == info.value.ids[-1]


def test_self_need_is_a_cycle():
    with pytest.raises(GraphError, match="cycle: network/a -> network/a"):
        Graph.build([step("network/a", "network/a")])


def test_duplicate_ids_are_rejected():
    with pytest.raises(GraphError, match="duplicate component ids: network/a"):
        Graph.build([step("network/a"), step("network/a")])


def test_unknown_layer_is_rejected_when_the_catalogue_is_built():
    # the layers are the stack's (tasks/stack.py), not the engine's: the catalogue checks them
    catalog = STACK.with_components(lambda inv: [step("netwrk/a")])
    with pytest.raises(GraphError, match="netwrk/a: unknown layer 'netwrk'"):
        catalog.graph(load_inventory())


def test_order_respects_needs_and_declaration_order():
    g = diamond()
    assert g.order == (
        "talos/health",
        "network/crds",
        "network/traefik",
        "storage/longhorn",
        "apps/mealie",
        "apps/wordpress",
    )
    for cid in g.order:
        for need in g[cid].needs:
            assert g.order.index(need) < g.order.index(cid)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, list(diamond().order)),
        ({"layers": ["apps"]}, ["apps/mealie", "apps/wordpress"]),
        (
            {"layers": ["network", "storage"]},
            ["network/crds", "network/traefik", "storage/longhorn"],
        ),
        (
            {"targets": ["apps/mealie"]},
            ["talos/health", "network/crds", "network/traefik", "storage/longhorn", "apps/mealie"],
        ),
        ({"targets": ["wordpress"]}, ["talos/health", "storage/longhorn", "apps/wordpress"]),
        ({"targets": ["apps/mealie"], "with_needs": False}, ["apps/mealie"]),
        (
            {"from_step": "network/traefik"},
            ["network/traefik", "storage/longhorn", "apps/mealie", "apps/wordpress"],
        ),
        (
            {"targets": ["apps/wordpress"], "from_step": "storage/longhorn"},
            ["storage/longhorn", "apps/wordpress"],
        ),
    ],
    ids=[
        "all",
        "layer",
        "two-layers",
        "target-with-needs",
        "bare-name",
        "target-only",
        "from",
        "target-from",
    ],
)
def test_select(kwargs, expected):
    assert diamond().select(**kwargs) == expected


def test_select_rejects_unknown_step_layer_and_from_outside_selection():
    g = diamond()
    with pytest.raises(GraphError, match=r"unknown step 'apps/mealy'.*did you mean apps/mealie"):
        g.select(targets=["apps/mealy"])
    with pytest.raises(GraphError, match="unknown layer 'ap'"):
        g.select(layers=["ap"])
    with pytest.raises(GraphError, match="not in the selection"):
        g.select(layers=["apps"], from_step="network/crds")


def test_ancestors_and_descendants():
    g = diamond()
    assert g.ancestors("apps/mealie") == {
        "talos/health",
        "network/crds",
        "network/traefik",
        "storage/longhorn",
    }
    assert g.descendants("storage/longhorn") == {"apps/mealie", "apps/wordpress"}


def test_critical_path_is_the_longest_weighted_chain():
    g = diamond()
    durations = {
        "talos/health": 1,
        "network/crds": 1,
        "network/traefik": 5,
        "storage/longhorn": 2,
        "apps/mealie": 1,
        "apps/wordpress": 1,
    }
    length, chain = critical_path(g.steps(), durations)
    assert length == 8
    assert chain == ["talos/health", "network/crds", "network/traefik", "apps/mealie"]


def test_the_real_stack_resolves(tmp_path):
    from tasks.engine.inventory import load_inventory
    from tasks.stack import catalog

    g = Graph.build(catalog(load_inventory()))
    assert g.order[0].startswith("talos/")
    assert all(any(s == cid for s in g.order) for cid in g.components)


# Needs that follow from the kinds a step renders ------------------------------------------------

SERVICE_MONITOR = ("monitoring.coreos.com", "ServiceMonitor")


def monitoring_graph(*kyverno_needs: str) -> Graph:
    from tasks.engine.gates import Gate

    return Graph.build(
        [
            step("talos/health"),
            step("observability/prometheus-crds", "talos/health"),
            Gate(
                layer="observability",
                name="prometheus-crds-established",
                needs=("observability/prometheus-crds",),
                checks=(),
            ),
            step("scheduling/kyverno", "talos/health", *kyverno_needs),
        ]
    )


MONITORING_KINDS = {
    "observability/prometheus-crds": StepKinds(installs=frozenset({SERVICE_MONITOR})),
    "scheduling/kyverno": StepKinds(renders=frozenset({SERVICE_MONITOR})),
}


def test_a_kind_no_need_installs_names_step_kind_and_the_need_to_add():
    (miss,) = missing_crd_needs(monitoring_graph(), MONITORING_KINDS)
    assert (miss.step, miss.kind) == ("scheduling/kyverno", SERVICE_MONITOR)
    assert miss.installers == ("observability/prometheus-crds",)
    # the gate that waits for the CRDs, not the step that applies them
    assert miss.suggest == "observability/prometheus-crds-established"
    assert "renders monitoring.coreos.com ServiceMonitor" in str(miss)


@pytest.mark.parametrize(
    "need", ["observability/prometheus-crds", "observability/prometheus-crds-established"]
)
def test_a_need_on_the_installer_or_its_gate_satisfies_the_kind(need: str):
    assert missing_crd_needs(monitoring_graph(need), MONITORING_KINDS) == []


def test_a_step_serving_its_own_kind_needs_nothing_and_an_uninstalled_kind_is_named():
    kinds = {
        "scheduling/kyverno": StepKinds(
            renders=frozenset({("kyverno.io", "ClusterPolicy"), ("x.io", "Widget")}),
            installs=frozenset({("kyverno.io", "ClusterPolicy")}),
        )
    }
    (miss,) = missing_crd_needs(monitoring_graph(), kinds)
    assert (miss.kind, miss.installers) == (("x.io", "Widget"), ())
    assert "no step of the stack does" in str(miss)


def test_validation_fails_a_manifest_step_rendering_a_service_monitor_without_the_crds(
    tmp_path, reference
):
    """End to end through the validation run: kinds read from the step's rendered manifests."""
    import dataclasses

    from tasks.engine.components import ManifestBundle
    from tasks.validate import validation
    from tasks.validate.chartdata import ChartSource

    no_cache = ChartSource(cache=tmp_path / "no-cache", reference=reference)  # manifests only

    (tmp_path / "monitor.yaml").write_text(
        "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\n"
        "metadata: {name: demo, namespace: default}\n"
        "spec: {selector: {}, endpoints: [{port: http}]}\n"
    )
    monitor = ManifestBundle(
        layer="apps", name="monitor", needs=("talos/health",), path=str(tmp_path)
    )
    catalog = STACK.with_components(lambda inv: [*STACK.components(inv), monitor])
    report = validation.run(catalog, load_inventory(), reference=reference, source=no_cache)
    (error,) = [e for e in report.errors if e.file == "apps/monitor"]
    assert error.field == "needs (monitoring.coreos.com ServiceMonitor)"
    assert "observability/prometheus-crds-established" in error.fix
    fixed = dataclasses.replace(monitor, needs=("observability/prometheus-crds-established",))
    catalog = STACK.with_components(lambda inv: [*STACK.components(inv), fixed])
    report = validation.run(catalog, load_inventory(), reference=reference, source=no_cache)
    assert [e for e in report.errors if e.file == "apps/monitor"] == []


def test_the_reference_stack_needs_every_crd_it_renders(tmp_path, reference):
    """Every kind the manifests render (tests/test_chart_renders.py adds the cached charts')."""
    from tasks.validate import validation
    from tasks.validate.chartdata import ChartSource

    no_cache = ChartSource(cache=tmp_path / "no-cache", reference=reference)
    report = validation.run(STACK, load_inventory(), reference=reference, source=no_cache)
    assert [str(e) for e in report.errors if e.field.startswith("needs (")] == []
    assert any(line.startswith("needs: kinds of ") for line in report.lines)
