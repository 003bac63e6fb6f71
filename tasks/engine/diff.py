"""What a run would change, read-only: each selected step new, changed or unchanged.

A step with a fingerprint (:mod:`tasks.engine.fingerprint`) is ``new`` when the cluster's record
(:mod:`tasks.engine.record`) has no entry for it, ``changed`` when the entry differs or the live
state no longer confirms it, ``unchanged`` otherwise. For a changed (or new) step its
object-level diff follows (:meth:`Component.live_diff`): a manifest bundle's ``kubectl diff
--server-side`` of its rendered objects, a Helm release's ``helm template`` of its rendered
values through the same ``kubectl diff``; Secret data masked (by kubectl, and every rendered
Secret value and registered secret redacted from the output). ``live``: unchanged steps are
diffed too, so objects changed in the cluster by hand show up (``drifted``). A step without a
fingerprint but with a live diff (a Talos node's config: its live config against the rendered
one, every secret field masked) is new, changed or unchanged by that diff. Other steps (gates,
secret syncs, the other Talos steps) keep their own read-compare at run time and are listed as
``checked at run time``; they never count as a change.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from .components import Component, LiveDiff
from .context import RunContext
from .output import clipped, redact, table
from .record import Converge

NEW, CHANGED, UNCHANGED, DRIFTED = "new", "changed", "unchanged", "drifted"
RUNTIME = "checked at run time"
CHANGES = (NEW, CHANGED, DRIFTED)


@dataclass
class StepDiff:
    """One step's verdict, and its object-level diff when one was made."""

    id: str
    kind: str
    status: str
    diff: str = ""
    # how the diff was made ("kubectl diff --server-side", ...), when one was
    how: str = ""


def _with(entry: StepDiff, found: LiveDiff) -> StepDiff:
    entry.diff, entry.how = redact(found.text), found.how
    return entry


def diff_steps(
    ctx: RunContext, steps: Sequence[Component], *, live: bool = False
) -> list[StepDiff]:
    """The verdict of every step (reads only: the record once, then the live state)."""
    converge = Converge(ctx, strict=True)
    found: list[StepDiff] = []
    for step in steps:
        fingerprint = step.fingerprint(ctx)
        if fingerprint is None:
            own = step.live_diff(ctx)
            if own is None:
                found.append(StepDiff(step.id, step.kind, RUNTIME))
                continue
            status = NEW if not own.exists else CHANGED if own.differs else UNCHANGED
            found.append(_with(StepDiff(step.id, step.kind, status), own))
            continue
        recorded = converge.recorded(step.id)
        if recorded is None:
            status = NEW
        elif recorded != fingerprint or not step.confirm(ctx):
            status = CHANGED
        else:
            status = UNCHANGED
        entry = StepDiff(step.id, step.kind, status)
        if status != UNCHANGED or live:
            objects = step.live_diff(ctx)
            if objects is not None:
                _with(entry, objects)
                if status == UNCHANGED and objects.differs:
                    entry.status = DRIFTED
        found.append(entry)
    return found


def render(found: Sequence[StepDiff], fmt: str) -> str:
    """The verdicts as a table (diffs below it) or as JSON."""
    if fmt == "json":
        return json.dumps(
            {
                "changes": any(f.status in CHANGES for f in found),
                "steps": [asdict(f) for f in found],
            },
            indent=2,
        )
    out = [table(("step", "kind", "would be"), [(f.id, f.kind, f.status) for f in found])]
    for f in found:
        if f.diff:
            out.append(f"\n--- {f.id} ({f.status}): {f.how}\n{clipped(f.diff, 20000)}")
    counts = {s: sum(f.status == s for f in found) for s in (NEW, CHANGED, DRIFTED, UNCHANGED)}
    out.append(", ".join(f"{n} {s}" for s, n in counts.items()))
    return "\n".join(out)


def has_changes(found: Sequence[StepDiff]) -> bool:
    return any(f.status in CHANGES for f in found)
