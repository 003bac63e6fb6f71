"""Infisical as the secret store (implemented with the secrets layer)."""

from __future__ import annotations

from .errors import SecretsError
from .inventory import Inventory


def open_store(inventory: Inventory):
    """Log in with the machine identity from the environment and return a SecretStore."""
    raise SecretsError("the Infisical store is not available yet")
