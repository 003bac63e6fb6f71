"""What a run would change, read-only: each selected step new, changed or unchanged.

A step with a fingerprint (:mod:`tasks.engine.fingerprint`) is ``new`` when the cluster's record
(:mod:`tasks.engine.record`) has no entry for it, ``changed`` when the entry differs or the live
state no longer confirms it, ``unchanged`` otherwise. For a changed (or new) manifest bundle the
object-level diff follows: ``kubectl diff --server-side`` of its rendered objects (kubectl masks
a Secret's data itself, and onecluster's registered secrets are redacted from every output).
``live``: unchanged bundles are diffed too, so objects changed in the cluster by hand show up
(``drifted``). Steps without a fingerprint (gates, secret syncs, Talos steps) keep their own
read-compare at run time and are listed as ``checked at run time``; they never count as a change.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from .command import Command
from .components import Component, ManifestBundle
from .context import RunContext
from .output import clipped, redact, table
from .record import Converge

NEW, CHANGED, UNCHANGED, DRIFTED = "new", "changed", "unchanged", "drifted"
RUNTIME = "checked at run time"
CHANGES = (NEW, CHANGED, DRIFTED)
# kubectl diff: 0 no differences, 1 differences found, anything else an error
DIFF_FOUND = 1


@dataclass
class StepDiff:
    """One step's verdict, and its object-level diff when one was made."""

    id: str
    kind: str
    status: str
    diff: str = ""


def object_diff(ctx: RunContext, step: ManifestBundle) -> Command:
    """``kubectl diff --server-side`` of the bundle's rendered objects (read-only)."""
    return ctx.kubectl(
        "diff", "--server-side", "--field-manager=onecluster", "-f", "-",
        stdin=step.applied(ctx).encode(), ok_codes=(0, DIFF_FOUND),
    )  # fmt: skip


def _diff_text(ctx: RunContext, step: ManifestBundle) -> tuple[bool, str]:
    result = ctx.executor.query(object_diff(ctx, step))
    return result.exit_code == DIFF_FOUND, redact(result.stdout)


def diff_steps(
    ctx: RunContext, steps: Sequence[Component], *, live: bool = False
) -> list[StepDiff]:
    """The verdict of every step (reads only: the record once, then the live state)."""
    converge = Converge(ctx, strict=True)
    found: list[StepDiff] = []
    for step in steps:
        fingerprint = step.fingerprint(ctx)
        if fingerprint is None:
            found.append(StepDiff(step.id, step.kind, RUNTIME))
            continue
        recorded = converge.recorded(step.id)
        if recorded is None:
            status = NEW
        elif recorded != fingerprint or not step.confirm(ctx):
            status = CHANGED
        else:
            status = UNCHANGED
        entry = StepDiff(step.id, step.kind, status)
        if isinstance(step, ManifestBundle) and (status != UNCHANGED or live):
            differs, text = _diff_text(ctx, step)
            entry.diff = text
            if status == UNCHANGED and differs:
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
            out.append(
                f"\n--- {f.id} ({f.status}): kubectl diff --server-side\n{clipped(f.diff, 20000)}"
            )
    counts = {s: sum(f.status == s for f in found) for s in (NEW, CHANGED, DRIFTED, UNCHANGED)}
    out.append(", ".join(f"{n} {s}" for s, n in counts.items()))
    return "\n".join(out)


def has_changes(found: Sequence[StepDiff]) -> bool:
    return any(f.status in CHANGES for f in found)
