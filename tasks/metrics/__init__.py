"""Metrics: Prometheus read through the API server's service proxy (cluster.status, scheduling)."""
