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
from . import sync


@dataclass(frozen=True, kw_only=True)
class SecretSync(Component):
    """Kubernetes Secrets created straight from Infisical values (nothing on disk or argv)."""

    kind: ClassVar[str] = "secret"

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

    def run(self, ctx: RunContext) -> None:
        if ctx.dry_run:
            echo(f"[{self.id}] would {self.describe(ctx)}")
            for spec in self.secrets:
                for key, source in sorted(spec.keys.items()):
                    echo(f"[{self.id}]   {spec.namespace}/{spec.name}: {key} <- Infisical {source}")
            return
        sync.sync(ctx, self.secrets, owner=self.id)
