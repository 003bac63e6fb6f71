"""Secrets: Infisical values synced straight into Kubernetes Secrets, never on disk or printed."""

from __future__ import annotations

from .engine.deploy import layer_collection

ns = layer_collection("secrets", __doc__)
