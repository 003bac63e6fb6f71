"""The graph engine: unknown needs and cycles are errors; selection is one function."""

from __future__ import annotations

import pytest

from tasks.engine.components import Component
from tasks.engine.errors import GraphError
from tasks.engine.graph import Graph, critical_path
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
