"""The dependency graph of components: validation, order, and subgraph selection.

One engine resolves every graph: an unknown need or a cycle is an error naming the offending ids,
so a typo in a dependency never passes silently. :func:`Graph.select` is the one way to pick a
subgraph (a layer, components with their needs, ``--from STEP``), used by every task.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .components import Component
from .errors import GraphError


@dataclass(frozen=True)
class Graph:
    """A validated DAG of components, with a stable topological order."""

    components: Mapping[str, Component]
    order: tuple[str, ...]

    @classmethod
    def build(cls, components: Iterable[Component]) -> Graph:
        """Index ``components`` by id and check the graph; raise :class:`GraphError` if invalid."""
        by_id: dict[str, Component] = {}
        dupes: list[str] = []
        for comp in components:
            if comp.id in by_id:
                dupes.append(comp.id)
            by_id[comp.id] = comp
        if dupes:
            raise GraphError(f"duplicate component ids: {', '.join(dupes)}", dupes)
        unknown = [(c.id, n) for c in by_id.values() for n in c.needs if n not in by_id]
        if unknown:
            lines = []
            for cid, need in unknown:
                close = difflib.get_close_matches(need, list(by_id), n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                lines.append(f"  {cid} needs unknown {need}{hint}")
            raise GraphError("unknown needs:\n" + "\n".join(lines), [n for _, n in unknown])
        return cls(by_id, _toposort(by_id))

    def __contains__(self, cid: object) -> bool:
        return cid in self.components

    def __getitem__(self, cid: str) -> Component:
        return self.components[cid]

    def steps(self, ids: Iterable[str] | None = None) -> list[Component]:
        """Components in graph order (all, or just ``ids``)."""
        wanted = set(self.order if ids is None else ids)
        return [self.components[i] for i in self.order if i in wanted]

    def ancestors(self, cid: str) -> set[str]:
        """Everything ``cid`` needs, directly or not."""
        seen: set[str] = set()
        stack = list(self.components[cid].needs)
        while stack:
            n = stack.pop()
            if n not in seen:
                seen.add(n)
                stack.extend(self.components[n].needs)
        return seen

    def descendants(self, cid: str) -> set[str]:
        """Everything that needs ``cid``, directly or not."""
        dependants: dict[str, list[str]] = {i: [] for i in self.components}
        for c in self.components.values():
            for n in c.needs:
                dependants[n].append(c.id)
        seen: set[str] = set()
        stack = list(dependants[cid])
        while stack:
            n = stack.pop()
            if n not in seen:
                seen.add(n)
                stack.extend(dependants[n])
        return seen

    def resolve(self, ref: str) -> str:
        """Accept an id (``network/traefik``) or an unambiguous bare name (``traefik``)."""
        if ref in self.components:
            return ref
        matches = [i for i in self.order if i.split("/", 1)[1] == ref]
        if len(matches) == 1:
            return matches[0]
        close = difflib.get_close_matches(ref, list(self.order), n=3)
        if len(matches) > 1:
            raise GraphError(f"{ref!r} is ambiguous: {', '.join(matches)}", [ref])
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise GraphError(f"unknown step {ref!r}{hint} (`invoke cluster.plan` lists them)", [ref])

    def select(
        self,
        *,
        layers: Sequence[str] = (),
        targets: Sequence[str] = (),
        with_needs: bool = True,
        from_step: str | None = None,
    ) -> list[str]:
        """Pick a subgraph, in graph order.

        - ``layers``: every component of those layers;
        - ``targets``: those components, plus (``with_needs``) everything they need;
        - ``from_step``: of what was picked (everything, if nothing else was asked), keep
          ``from_step`` and every step that follows it in graph order (a resume after failure).
        """
        chosen: set[str]
        if layers or targets:
            chosen = set()
            known_layers = {c.layer for c in self.components.values()}
            for layer in layers:
                if layer not in known_layers:
                    raise GraphError(
                        f"unknown layer {layer!r}; known: {', '.join(sorted(known_layers))}",
                        [layer],
                    )
                chosen |= {i for i, c in self.components.items() if c.layer == layer}
            for ref in targets:
                cid = self.resolve(ref)
                chosen.add(cid)
                if with_needs:
                    chosen |= self.ancestors(cid)
        else:
            chosen = set(self.order)
        ordered = [i for i in self.order if i in chosen]
        if from_step is not None:
            start = self.resolve(from_step)
            if start not in chosen:
                raise GraphError(f"--from {from_step}: that step is not in the selection", [start])
            ordered = ordered[ordered.index(start) :]
        return ordered


def _toposort(by_id: Mapping[str, Component]) -> tuple[str, ...]:
    """Kahn's algorithm; ties broken by declaration order so plans are stable."""
    position = {cid: i for i, cid in enumerate(by_id)}
    remaining = {cid: set(c.needs) for cid, c in by_id.items()}
    order: list[str] = []
    ready = sorted((cid for cid, deps in remaining.items() if not deps), key=position.get)
    while ready:
        cid = ready.pop(0)
        order.append(cid)
        del remaining[cid]
        newly = [o for o, deps in remaining.items() if cid in deps]
        for o in newly:
            remaining[o].discard(cid)
        ready = sorted([*ready, *(o for o in newly if not remaining[o])], key=position.get)
    if remaining:
        cycle = _find_cycle({cid: by_id[cid].needs for cid in remaining})
        raise GraphError("dependency cycle: " + " -> ".join(cycle), cycle)
    return tuple(order)


def _find_cycle(needs: Mapping[str, Sequence[str]]) -> list[str]:
    """One cycle among ``needs``, as a closed path of ids."""
    for start in needs:
        path: list[str] = []
        node = start
        while node not in path:
            path.append(node)
            node = next(n for n in needs[node] if n in needs)
        return [*path[path.index(node) :], node]
    return []


def critical_path(
    steps: Sequence[Component], durations: Mapping[str, float]
) -> tuple[float, list[str]]:
    """Length and ids of the longest chain of needs among ``steps``, weighted by ``durations``."""
    ids = {s.id for s in steps}
    best: dict[str, tuple[float, list[str]]] = {}
    for s in steps:  # steps are in graph order, so needs come first
        prev = max((best[n] for n in s.needs if n in ids), key=lambda t: t[0], default=(0.0, []))
        best[s.id] = (prev[0] + durations.get(s.id, 0.0), [*prev[1], s.id])
    return max(best.values(), key=lambda t: t[0], default=(0.0, []))


# Needs that follow from what a step renders ----------------------------------------------------

ApiKind = tuple[str, str]  # (API group, kind), e.g. ("monitoring.coreos.com", "ServiceMonitor")


@dataclass(frozen=True)
class StepKinds:
    """The custom kinds one step renders and the ones it serves by installing their CRDs.

    ``renders`` holds only kinds Kubernetes does not build in; ``unknown`` says why what the step
    renders is not fully known (e.g. its chart is not cached), so a check can say so.
    """

    renders: frozenset[ApiKind] = frozenset()
    installs: frozenset[ApiKind] = frozenset()
    unknown: str = ""


@dataclass(frozen=True)
class MissingNeed:
    """A step rendering a custom kind that none of its needs installs the CRD of."""

    step: str
    kind: ApiKind
    installers: tuple[str, ...]  # the steps that install it (empty: none does)
    suggest: str  # the need to add (the gate after the installer, else the installer)

    def __str__(self) -> str:
        group, kind = self.kind
        what = f"renders {group} {kind}, but none of its needs installs that CRD"
        if not self.installers:
            return f"{what}, and no step of the stack does"
        return f"{what} (installed by {', '.join(self.installers)})"


def missing_crd_needs(graph: Graph, kinds: Mapping[str, StepKinds]) -> list[MissingNeed]:
    """Every custom kind a step renders that neither it nor one of its needs (transitively) installs.

    On a fresh cluster (``cluster.deploy --step X``) only a step's needs are in place before it,
    so a kind it renders must be served by a CRD one of them installs, else helm or kubectl fails
    (or a chart silently drops the object).
    """
    installers: dict[ApiKind, list[str]] = {}
    for cid in graph.order:
        for kind in kinds.get(cid, StepKinds()).installs:
            installers.setdefault(kind, []).append(cid)
    missing: list[MissingNeed] = []
    for cid in graph.order:
        step = kinds.get(cid)
        if step is None:
            continue
        before = graph.ancestors(cid)
        for kind in sorted(step.renders - step.installs):
            by = installers.get(kind, [])
            if any(i in before for i in by):
                continue
            missing.append(MissingNeed(cid, kind, tuple(by), _need_for(graph, by)))
    return missing


def _need_for(graph: Graph, installers: Sequence[str]) -> str:
    """The step to need for a CRD ``installers`` apply: the gate waiting on it, else the step."""
    if not installers:
        return ""
    first = installers[0]
    gates = [
        c.id for c in graph.steps() if c.kind == "gate" and first in c.needs and len(c.needs) == 1
    ]
    return gates[0] if gates else first
