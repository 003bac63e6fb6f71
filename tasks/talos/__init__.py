"""Talos: machine configs, the PKI bundle, rolling upgrades, and the steps and tasks built on them."""
