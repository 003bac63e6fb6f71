"""The secret-sync step: Kubernetes Secrets created straight from Infisical values.

The stack's catalogue generates one ``secrets/<name>`` step for every component that declares
Secrets (``tasks/stack.py``); nothing reaches disk or argv (``sync.py`` applies them in memory).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..engine.components import Component
from ..engine.context import RunContext
from ..engine.output import echo
from ..engine.probes import GET_NAMES, Probe, quick
from ..engine.runner import UNCHANGED
from . import sync


@dataclass(frozen=True, kw_only=True)
class SecretSync(Component):
    """Kubernetes Secrets created straight from Infisical values (nothing on disk or argv)."""

    kind: ClassVar[str] = "secret"
    compares: ClassVar[bool] = True

    def describe(self, ctx: RunContext) -> str:
        names = ", ".join(f"{s.namespace}/{s.name}" for s in self.secrets)
        return f"sync Secret(s) {names} from Infisical (server-side apply, in memory only)"

    def preflight(self, ctx: RunContext) -> list[str]:
        """Every Infisical name this step needs that the store lacks (names only, no values)."""
        return sync.preflight(ctx, self.secrets, owner=self.id)

    def probes(self, ctx: RunContext) -> list[Probe]:
        return [
            Probe(
                f"Secret {s.namespace}/{s.name}",
                quick(ctx.kubectl(*GET_NAMES, "secret", s.name, "-n", s.namespace)),
            )
            for s in self.secrets
        ]

    def up_to_date(self, ctx: RunContext) -> bool:
        """Every Secret already holds its Infisical values (read-compare; never in a dry-run,
        which opens no store it was not given)."""
        return not ctx.dry_run and sync.up_to_date(ctx, self.secrets, owner=self.id)

    def run(self, ctx: RunContext) -> str | None:
        if ctx.dry_run:
            echo(f"[{self.id}] would {self.describe(ctx)}")
            for spec in self.secrets:
                for key, source in sorted(spec.keys.items()):
                    echo(f"[{self.id}]   {spec.namespace}/{spec.name}: {key} <- Infisical {source}")
            return None
        outcomes = sync.sync(ctx, self.secrets, owner=self.id)
        return UNCHANGED if all(o.action == "unchanged" for o in outcomes) else None
