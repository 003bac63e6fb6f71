"""Backups and restores of the stack's Longhorn volumes: what is declared, backed up, restored."""
