"""Secrets: Infisical as the store, Secrets applied from memory, and the tasks that list and sync them."""
