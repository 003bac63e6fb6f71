"""Every rule cluster.status applies, and the one call that applies them."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .cluster_rules import (
    etcd,
    etcd_snapshots,
    nodes_not_ready,
    reads_failed,
    releases,
    versions,
    workloads,
)
from .data_rules import backups, certificates, volumes
from .findings import SEVERITIES, Facts, Finding
from .pod_rules import crash_loops, evictions, pending, probes_after_database_restart

Rule = Callable[[Facts], list[Finding]]
RULES: Sequence[Rule] = (
    nodes_not_ready, versions, etcd, etcd_snapshots, reads_failed, releases, workloads,
    evictions, probes_after_database_restart, crash_loops, pending,
    volumes, backups, certificates,
)  # fmt: skip


def find(f: Facts, rules: Sequence[Rule] = RULES) -> list[Finding]:
    """Every rule's findings, errors first."""
    found = [x for rule in rules for x in rule(f)]
    return sorted(found, key=lambda x: SEVERITIES.index(x.severity))
