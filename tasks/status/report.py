"""The status report: one document (the JSON contract, ``status.schema.json`` beside this) and the
table rendered from it, so the two always say the same."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from ..engine.output import table
from .assess import UnitState
from .cluster_rules import TALOS_BACKUP_NAMESPACE
from .findings import ERROR, INFO, SEVERITIES, WARNING, Facts, Finding, age
from .reads import CPU, MEMORY, Snapshot

SCHEMA = "onecluster.status/v1"
SCHEMA_FILE = Path(__file__).with_name("status.schema.json")
GB = 1e9


def _time(at: datetime | None) -> str | None:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ") if at else None


def _hours(now: datetime, at: datetime | None) -> float | None:
    return round((now - at).total_seconds() / 3600, 1) if at else None


def _pct(used: float, total: float) -> float | None:
    return round(100 * used / total, 1) if total else None


def usage(snapshot: Snapshot) -> dict[str, Any]:
    """CPU and memory in use per node and for the cluster: Prometheus when it answered, else the
    sum of the Pods' requests (said in ``source``)."""
    measured = bool(snapshot.usage) and not {CPU, MEMORY} & set(snapshot.problems)
    # (a node Prometheus has no sample for shows 0 in use: it is named in no series)
    nodes = []
    for n in snapshot.nodes:
        if measured:
            cpu, memory = snapshot.usage.get(n.name, (0.0, 0.0))
        else:
            held = [p for p in snapshot.pods if p.node == n.name and not p.terminated]
            cpu, memory = sum(p.cpu for p in held), sum(p.memory for p in held)
        nodes.append({
            "name": n.name,
            "role": "control-plane" if n.control_plane else "worker",
            "ready": n.ready,
            "talos": n.os_image,
            "kubelet": n.kubelet,
            "cpu": {"used_cores": round(cpu, 2), "allocatable_cores": round(n.cpu, 2),
                    "percent": _pct(cpu, n.cpu)},
            "memory": {"used_gb": round(memory / GB, 2), "allocatable_gb": round(n.memory / GB, 2),
                       "percent": _pct(memory, n.memory)},
        })  # fmt: skip
    total = {
        key: {
            unit: round(sum(n[key][unit] for n in nodes), 2)
            for unit in (("used_cores", "allocatable_cores") if key == "cpu"
                         else ("used_gb", "allocatable_gb"))
        }
        for key in ("cpu", "memory")
    }  # fmt: skip
    for key, (used, alloc) in (("cpu", ("used_cores", "allocatable_cores")),
                               ("memory", ("used_gb", "allocatable_gb"))):  # fmt: skip
        total[key]["percent"] = _pct(total[key][used], total[key][alloc])
    return {
        "source": "prometheus" if measured else "requests",
        "nodes_ready": sum(1 for n in snapshot.nodes if n.ready),
        "nodes": len(snapshot.nodes),
        "cpu": total["cpu"],
        "memory": total["memory"],
        "per_node": nodes,
    }


def _component(s: UnitState, now: datetime, findings: Sequence[Finding]) -> dict[str, Any]:
    u = s.unit
    errors = [f for f in findings if u.id in f.units and f.severity == ERROR]
    return {
        "id": u.id,
        "layer": u.layer,
        "name": u.name,
        "kind": u.kind,
        "namespace": u.namespace,
        "healthy": not errors,
        "release": None if u.release is None else {
            "namespace": u.release[0], "name": u.release[1], "status": s.release_status,
            "chart": s.release_chart, "pinned": u.chart,
        },
        "workloads": [
            {"kind": w.kind, "name": w.name, "namespace": w.namespace, "ready": w.ready,
             "desired": w.desired, "found": w.found}
            for w in s.workloads
        ],
        "databases": [
            {"kind": w.kind, "name": w.name, "namespace": w.namespace, "ready": w.ready,
             "desired": w.desired, "found": w.found}
            for w in s.databases
        ],
        "volumes": [
            {"namespace": v.namespace, "claim": v.claim, "volume": v.volume, "state": v.state,
             "robustness": v.robustness, "healthy": v.healthy, "colocated_on": list(v.colocated),
             "last_backup": _time(v.last_backup), "backup_age_hours": _hours(now, v.last_backup)}
            for v in s.volumes
        ],
        "certificates": [
            {"namespace": c.namespace, "name": c.name, "not_after": _time(c.not_after),
             "days_left": None if c.not_after is None else
             round((c.not_after - now).total_seconds() / 86400, 1),
             "ready": c.ready, "found": c.found}
            for c in s.certificates
        ],
    }  # fmt: skip


def document(
    facts: Facts,
    states: Sequence[UnitState],
    found: Sequence[Finding],
    *,
    cluster: str,
    selected: bool,
) -> dict[str, Any]:
    """The report as the JSON contract has it (``status.schema.json``)."""
    snap = facts.snapshot
    counts = {s: sum(1 for f in found if f.severity == s) for s in SEVERITIES}
    snapshots = [c for c in snap.cronjobs if c.namespace == TALOS_BACKUP_NAMESPACE]
    last = max((c.last_success for c in snapshots if c.last_success), default=None)
    members = snap.etcd
    return {
        "schema": SCHEMA,
        "cluster": cluster,
        "generated": _time(snap.now),
        "since": _time(facts.since),
        "healthy": counts[ERROR] == 0,
        "narrowed": selected,
        "counts": counts,
        "reads": {
            "commands": snap.commands,
            "api_requests": snap.api_requests,
            "seconds": round(snap.seconds, 2),
            "failed": dict(sorted(snap.problems.items())),
        },
        "usage": usage(snap),
        "talos": {
            "version": facts.talos_version,
            "kubernetes_version": facts.kubernetes_version,
            "nodes_on_version": sum(1 for n in snap.nodes if f"({facts.talos_version})" in n.os_image),
            "nodes_on_kubernetes_version": sum(
                1 for n in snap.nodes if n.kubelet == facts.kubernetes_version
            ),
            "etcd": {
                "healthy": None if "etcd" in snap.problems else (
                    len(members) >= facts.control_planes
                    and not any(m.errors or m.learner for m in members)
                    and len({m.leader for m in members}) == 1
                ),
                "members": [
                    {"node": m.node, "member": m.member, "leader": m.leader, "learner": m.learner,
                     "errors": m.errors}
                    for m in members
                ],
            },
            "etcd_snapshots": {
                "configured": bool(snapshots),
                "last_success": _time(last),
                "age_hours": _hours(snap.now, last),
            },
        },
        "components": [_component(s, snap.now, found) for s in states],
        "findings": [
            {"severity": f.severity, "rule": f.rule, "subject": f.subject, "summary": f.summary,
             "evidence": list(f.evidence), "suggestion": f.suggestion, "components": list(f.units)}
            for f in found
        ],
    }  # fmt: skip


def render_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2)


def _ratio(rows: Sequence[dict[str, Any]]) -> str:
    """``mealie 3/3``; with more than two, the totals and only those not ready by name."""
    if not rows:
        return "-"
    if len(rows) <= 2:
        return ", ".join(f"{r['name']} {r['ready']}/{r['desired']}" for r in rows)
    short = [r for r in rows if not r["found"] or r["ready"] < r["desired"]]
    total = (
        f"{len(rows)} workloads: {sum(r['ready'] for r in rows)}/{sum(r['desired'] for r in rows)}"
    )
    return ", ".join([total, *(f"{r['name']} {r['ready']}/{r['desired']}" for r in short)])


def _volumes(rows: Sequence[dict[str, Any]]) -> str:
    """``2/2 healthy, oldest backup 9h 0m``: the details are in the JSON."""
    if not rows:
        return "-"
    healthy = sum(1 for v in rows if v["healthy"] and v["volume"] and not v["colocated_on"])
    ages = [v["backup_age_hours"] for v in rows]
    backed = [a for a in ages if a is not None]
    never = len(ages) - len(backed)
    oldest = f"oldest backup {age_text(max(backed))}" if backed else "no backup"
    return f"{healthy}/{len(rows)} healthy, {oldest}" + (
        f", {never} never" if backed and never else ""
    )


def _cells(c: dict[str, Any]) -> tuple[str, ...]:
    rel = c["release"]
    release = "-" if rel is None else (
        rel["chart"] if rel["status"] == "deployed" and rel["chart"] == rel["pinned"]
        else f"{rel['status']} {rel['chart'] or ''} (pins {rel['pinned']})".replace("  ", " ")
    )  # fmt: skip
    certs = [
        f"{x['name']} {x['days_left']:g}d" if x["days_left"] is not None else f"{x['name']} ?"
        for x in c["certificates"]
    ]
    return (
        c["id"], "ok" if c["healthy"] else "ERROR", release, _ratio(c["workloads"]),
        _ratio(c["databases"]), _volumes(c["volumes"]), ", ".join(certs) or "-",
    )  # fmt: skip


def age_text(hours: float | None) -> str:
    if hours is None:
        return "?"
    from datetime import timedelta

    return age(timedelta(hours=hours))


def render_table(doc: dict[str, Any]) -> str:
    """The report for a person: the cluster, Talos, each component, then the findings."""
    u = doc["usage"]
    src = "Prometheus" if u["source"] == "prometheus" else "Pod requests (Prometheus unreachable)"
    out = [
        f"cluster {doc['cluster']} at {doc['generated']}: {u['nodes_ready']}/{u['nodes']} nodes "
        f"Ready; CPU {u['cpu']['used_cores']:g}/{u['cpu']['allocatable_cores']:g} cores "
        f"({u['cpu']['percent']}%), memory {u['memory']['used_gb']:g}/"
        f"{u['memory']['allocatable_gb']:g} GB ({u['memory']['percent']}%), from {src}",
        "",
        table(
            ("node", "role", "ready", "cpu cores", "memory GB", "talos", "kubelet"),
            [
                (n["name"], n["role"], "yes" if n["ready"] else "NO",
                 f"{n['cpu']['used_cores']:g}/{n['cpu']['allocatable_cores']:g} ({n['cpu']['percent']}%)",
                 f"{n['memory']['used_gb']:g}/{n['memory']['allocatable_gb']:g} ({n['memory']['percent']}%)",
                 n["talos"], n["kubelet"])
                for n in u["per_node"]
            ],
        ),
    ]  # fmt: skip
    t = doc["talos"]
    etcd = {True: "healthy", False: "NOT healthy", None: "unknown"}[t["etcd"]["healthy"]]
    snaps = t["etcd_snapshots"]
    snap_text = (
        "no etcd snapshots configured" if not snaps["configured"] else
        f"last etcd snapshot {age_text(snaps['age_hours'])} ago" if snaps["last_success"] else
        "no etcd snapshot has succeeded yet"
    )  # fmt: skip
    out += [
        "",
        f"talos {t['version']}: {t['nodes_on_version']}/{u['nodes']} nodes; kubernetes "
        f"{t['kubernetes_version']}: {t['nodes_on_kubernetes_version']}/{u['nodes']} nodes; etcd "
        f"{etcd} ({len(t['etcd']['members'])} members answered); {snap_text}",
        "",
        table(
            ("component", "health", "release", "workloads ready", "databases", "volumes",
             "certificates (days left)"),
            [_cells(c) for c in doc["components"]],
        ),
    ]  # fmt: skip
    found = doc["findings"]
    out += ["", f"findings since {doc['since']}: " + (
        ", ".join(f"{doc['counts'][s]} {s}" for s in (ERROR, WARNING, INFO)) if found else "none"
    )]  # fmt: skip
    for f in found:
        out.append(f"\n[{f['severity']}] {f['summary']}")
        out += [f"    - {e}" for e in f["evidence"]]
        if f["suggestion"]:
            out.append(f"    → {f['suggestion']}")
    r = doc["reads"]
    out += [
        "",
        f"{r['commands']} reads ({r['api_requests']} API requests) in {r['seconds']:g}s; "
        + ("healthy" if doc["healthy"] else "NOT healthy: exit 1"),
    ]
    return "\n".join(out)
