"""Sync declared Secrets from Infisical into Kubernetes (implemented with the secrets layer)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .errors import SecretsError

if TYPE_CHECKING:
    from .components import SecretSpec
    from .context import RunContext


def sync(ctx: RunContext, specs: Sequence[SecretSpec], *, owner: str) -> None:
    """Create or update ``specs`` as Kubernetes Secrets from Infisical values."""
    raise SecretsError(f"{owner}: secret sync is not available yet")
