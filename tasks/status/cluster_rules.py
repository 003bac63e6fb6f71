"""The rules about the cluster and what the stack deployed: nodes Ready and on the inventory's
versions, etcd, its snapshots, the reads that failed, each release at its pinned chart, each
declared workload and database ready. Each a pure function of the facts."""

from __future__ import annotations

from datetime import timedelta

from .findings import ERROR, WARNING, Facts, Finding, age, when
from .reads import CERTIFICATES, CPU, ETCD, HELM, LONGHORN, MEMORY

# where Sidero's talos-backup runs as a CronJob (the backups layer deploys it)
TALOS_BACKUP_NAMESPACE = "talos-backup"
SNAPSHOT_MAX_AGE = timedelta(days=2)  # talos-backup runs every few hours


def nodes_not_ready(f: Facts) -> list[Finding]:
    return [
        Finding(ERROR, "node-not-ready", n.name, f"node {n.name} is not Ready",
                (f"Node {n.name}: condition Ready is not True",),
                f"`talosctl -n <ip> health` / `kubectl describe node {n.name}`: is it up?")
        for n in f.snapshot.nodes if not n.ready
    ]  # fmt: skip


def versions(f: Facts) -> list[Finding]:
    found = []
    for n in f.snapshot.nodes:
        if f.talos_version and f"({f.talos_version})" not in n.os_image:
            found.append(Finding(
                WARNING, "talos-version", n.name,
                f"node {n.name} runs {n.os_image or 'an unknown OS'}, not Talos {f.talos_version}",
                (f"Node {n.name}: status.nodeInfo.osImage {n.os_image!r}",),
                f"`invoke talos.upgrade --node {n.name}` brings it to the inventory's talosVersion",
            ))  # fmt: skip
        if f.kubernetes_version and n.kubelet != f.kubernetes_version:
            found.append(Finding(
                WARNING, "kubernetes-version", n.name,
                f"node {n.name}'s kubelet is {n.kubelet}, not {f.kubernetes_version}",
                (f"Node {n.name}: status.nodeInfo.kubeletVersion {n.kubelet!r}",),
                "`invoke talos.upgrade-k8s` brings every node to the inventory's kubernetesVersion",
            ))  # fmt: skip
    return found


def etcd(f: Facts) -> list[Finding]:
    problem = f.snapshot.problems.get(ETCD)
    if problem is not None:
        return [Finding(
            WARNING, "etcd-unknown", "etcd", "etcd's health is unknown: talosctl did not answer",
            (f"talosctl etcd status: {problem}",),
            "check the talosconfig ($TALOSCONFIG or ~/.talos/config; `invoke talos.config`) and "
            "that the control planes answer",
        )]  # fmt: skip
    members = f.snapshot.etcd
    found = []
    evidence = tuple(
        f"{m.node}: member {m.member}, leader {m.leader}"
        + (", learner" if m.learner else "") + (f", errors: {m.errors}" if m.errors else "")
        for m in members
    )  # fmt: skip
    if len(members) < f.control_planes:
        found.append(Finding(
            ERROR, "etcd-members", "etcd",
            f"{len(members)} of {f.control_planes} etcd members answered",
            evidence, "`talosctl -n <ip> service etcd` on the silent control plane",
        ))  # fmt: skip
    bad = [m for m in members if m.errors or m.learner]
    leaders = {m.leader for m in members}
    if bad or len(leaders) > 1 or leaders & {"", "0000000000000000"}:
        found.append(Finding(
            ERROR, "etcd-unhealthy", "etcd",
            "etcd is not healthy: "
            + ("members report errors" if any(m.errors for m in members) else
               "a member is still a learner" if any(m.learner for m in members) else
               "the members do not agree on one leader"),
            evidence, "`talosctl -n <ip> etcd status` and `talosctl -n <ip> logs etcd`",
        ))  # fmt: skip
    return found


def etcd_snapshots(f: Facts) -> list[Finding]:
    jobs = [c for c in f.snapshot.cronjobs if c.namespace == TALOS_BACKUP_NAMESPACE]
    if not jobs:
        return [Finding(
            WARNING, "etcd-snapshots", "etcd", "no etcd snapshots configured",
            (f"no CronJob in namespace {TALOS_BACKUP_NAMESPACE}",),
            "deploy talos-backup (etcd snapshots to the backup bucket) to recover etcd itself",
        )]  # fmt: skip
    found = []
    for job in jobs:
        last = job.last_success
        if last is None or f.now - last > SNAPSHOT_MAX_AGE:
            seen = f"last success {when(last)}" if last else "no successful run yet"
            found.append(Finding(
                WARNING, "etcd-snapshots", "etcd",
                f"no etcd snapshot within {age(SNAPSHOT_MAX_AGE)} ({seen})",
                (f"CronJob {job.namespace}/{job.name}: status.lastSuccessfulTime {when(last)}, "
                 f"lastScheduleTime {when(job.last_schedule)}",),
                f"`kubectl -n {job.namespace} get jobs` and the last Job's logs",
            ))  # fmt: skip
    return found


def reads_failed(f: Facts) -> list[Finding]:
    what = {
        LONGHORN: ("Longhorn's volumes, replicas and backups", "is Longhorn deployed?"),
        CERTIFICATES: ("cert-manager's Certificates", "is cert-manager deployed?"),
        HELM: ("the Helm releases", "does `helm list -A` answer?"),
    }
    found = [
        Finding(WARNING, "read-failed", "cluster", f"could not read {what[name][0]}",
                (f"{name}: {f.snapshot.problems[name]}",), what[name][1])
        for name in what if name in f.snapshot.problems
    ]  # fmt: skip
    metrics = [n for n in (CPU, MEMORY) if n in f.snapshot.problems]
    if metrics:
        found.append(Finding(
            WARNING, "prometheus-unreachable", "cluster",
            "Prometheus did not answer through the API server: use shown is Pods' requests",
            tuple(f"{n}: {f.snapshot.problems[n]}" for n in metrics),
            "is kube-prometheus-stack deployed and its Prometheus ready? "
            "(`kubectl -n monitoring get pods`)",
        ))  # fmt: skip
    return found


# --- what the stack declares --------------------------------------------------------------------


def releases(f: Facts) -> list[Finding]:
    if HELM in f.snapshot.problems:
        return []  # said by read-failed; no release is known missing
    found = []
    for s in f.states:
        u = s.unit
        if u.release is None:
            continue
        ns, name = u.release
        if s.release_status == "missing":
            found.append(Finding(
                ERROR, "release", u.id, f"{u.id}: Helm release {ns}/{name} is not installed",
                (f"helm list -A: no release {name} in {ns}",),
                f"`invoke cluster.deploy --step {u.id}`", (u.id,),
            ))  # fmt: skip
        elif s.release_status != "deployed":
            found.append(Finding(
                ERROR, "release", u.id, f"{u.id}: Helm release {ns}/{name} is {s.release_status}",
                (f"helm list -A: {name} in {ns}: status {s.release_status}, chart {s.release_chart}",),
                f"`helm -n {ns} history {name}`, then `invoke cluster.deploy --step {u.id}`",
                (u.id,),
            ))  # fmt: skip
        elif s.release_chart != u.chart:
            found.append(Finding(
                WARNING, "release-drift", u.id,
                f"{u.id}: runs chart {s.release_chart}, the stack pins {u.chart}",
                (f"helm list -A: {name} in {ns}: chart {s.release_chart}",),
                f"`invoke cluster.deploy --step {u.id}` applies the pinned chart", (u.id,),
            ))  # fmt: skip
    return found


def workloads(f: Facts) -> list[Finding]:
    found = []
    for s in f.states:
        u = s.unit
        for role, rows in (("workload", s.workloads), ("database", s.databases)):
            for w in rows:
                if w.ok:
                    continue
                what = f"{w.kind}/{w.name} in {w.namespace}"
                if not w.found:
                    summary, evidence = f"{u.id}: {role} {what} is absent", (f"{what}: not found",)
                else:
                    summary = f"{u.id}: {role} {what} has {w.ready}/{w.desired} ready"
                    evidence = (f"{what}: {w.ready} ready of {w.desired}",)
                found.append(Finding(
                    ERROR, "database" if role == "database" else "workload", u.id, summary,
                    evidence, f"`kubectl -n {w.namespace} describe {w.kind} {w.name}`; "
                    "see the findings on its pods", (u.id,),
                ))  # fmt: skip
    return found
