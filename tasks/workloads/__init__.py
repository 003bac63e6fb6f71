"""Workloads: apps and assistants declared once each, what of them is in place, and their tasks."""
