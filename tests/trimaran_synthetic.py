"""A synthetic recording for ``scheduling.simulate``: six nodes, two weeks, from one seed.

Not a fake of anything upstream: a plausible history to replay. Six nodes (three of 4 cores and
16 GiB, three of 8 cores and 32 GiB); each node's 15-minute mean CPU and memory follow a daily
cycle with its own base, amplitude and phase, plus noise; two nodes are *bursty* (frequent bursts
lift the mean and widen the deviation, so they run above 80% now and then). Pods are created at
random times (a few hundred), live an exponentially distributed while (12 hours on average), and are placed as the
cluster's own scheduler would have placed most of them (LVRB under the values' setting, m=2 k=2)
and some at random (the other plugins' say); each placed Pod's request is then added to its
node's mean from the next step to the last step it was seen, as the replay's model assumes.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

from tasks.trimaran.quantity import PodShape
from tasks.trimaran.recording import FORMAT, SERIES, VERSION, WINDOW
from tasks.trimaran.score import AVERAGE, CPU, MEMORY, STD, Allocatable, Metric, node_score

DAY = 86_400
GiB = 2**30
MiB = 2**20
START = 1_790_000_100  # a Monday in 2026, on a 5-minute boundary
SCHEDULER = "scheduler-plugins-scheduler"


def synthetic(
    seed: int = 7, days: int = 14, step: int = 300, pods: int = 300, nodes: int = 6
) -> dict:
    """The recording's JSON document (see ``tasks/trimaran/recording.schema.json``)."""
    rng = random.Random(seed)
    n_steps = days * DAY // step + 1
    times = [START + i * step for i in range(n_steps)]
    names = [f"node-{i + 1}" for i in range(nodes)]
    allocs = {
        name: Allocatable(4000, 16 * GiB) if i < 3 else Allocatable(8000, 32 * GiB)
        for i, name in enumerate(names)
    }
    bursty = set(names[1 : len(names) : 3])  # node-2 and node-5
    metrics: dict[str, dict[str, list]] = {}
    for name in names:
        base_cpu, amp_cpu = rng.uniform(20, 40), rng.uniform(8, 18)
        base_mem, amp_mem = rng.uniform(35, 55), rng.uniform(3, 8)
        phase = rng.uniform(0, 2 * math.pi)
        cpu_avg, cpu_std, mem_avg, mem_std = [], [], [], []
        burst = 0
        for t in times:
            day = math.sin(2 * math.pi * ((t - START) % DAY) / DAY + phase)
            if name in bursty and burst == 0 and rng.random() < 0.01:
                burst = rng.randint(3, 24)  # 15 minutes to 2 hours
            lift = rng.uniform(25, 40) if burst else 0.0
            burst = max(0, burst - 1)
            cpu_avg.append(max(0.5, base_cpu + amp_cpu * day + rng.gauss(0, 2) + lift))
            cpu_std.append(abs(rng.gauss(12 if lift else 2, 1.5)))
            mem_avg.append(max(1.0, base_mem + amp_mem * day + rng.gauss(0, 1) + lift / 3))
            mem_std.append(abs(rng.gauss(3 if lift else 0.5, 0.3)))
        metrics[name] = {
            "cpu_avg": cpu_avg, "cpu_std": cpu_std, "memory_avg": mem_avg, "memory_std": mem_std,
        }  # fmt: skip
    # node-6 lost its node-exporter for six hours on day 3: no metrics (the plugin scores it 0)
    gap = range(3 * DAY // step, min(n_steps, 3 * DAY // step + 6 * 3600 // step))
    for key in metrics[names[-1]]:
        for j in gap:
            metrics[names[-1]][key][j] = None
    records = []
    for k in range(pods):
        created = START + rng.uniform(0, days * DAY - step)
        life = min(rng.expovariate(1 / (DAY / 2)), START + days * DAY - created)
        shape = PodShape(rng.choice([50, 100, 250, 500]), rng.choice([64, 128, 256, 512]) * MiB)
        daemon = k % 40 == 0
        i = int((created - START) // step)
        if daemon:
            node = names[k % nodes]
        elif rng.random() < 0.7:
            node = _lvrb_choice(metrics, allocs, names, i, shape)
        else:
            node = rng.choice(names)
        last = min(n_steps - 1, int((created + life - START) // step))
        for j in range(i + 1, last + 1):
            series = metrics[node]
            if series["cpu_avg"][j] is not None:
                series["cpu_avg"][j] += 100 * shape.cpu_millicores / allocs[node].cpu_millicores
                series["memory_avg"][j] += 100 * shape.memory_bytes / allocs[node].memory_bytes
        records.append(
            {
                "namespace": "kube-system" if daemon else f"apps-{k % 5}",
                "name": f"pod-{k:04d}",
                "uid": f"00000000-0000-4000-8000-{k:012d}",
                "created": created,
                "last_seen": START + last * step,
                "node": node,
                "scheduler": "default-scheduler" if daemon else SCHEDULER,
                "owner_kind": "DaemonSet" if daemon else "ReplicaSet",
                "requests": {
                    "cpu_millicores": shape.cpu_millicores,
                    "memory_bytes": shape.memory_bytes,
                },
                "requests_from": "kube-state-metrics",
            }
        )
    return {
        "format": FORMAT,
        "version": VERSION,
        "recorded_at": times[-1] + 17,
        "start": times[0],
        "end": times[-1],
        "step": step,
        "window": WINDOW,
        "scheduler": SCHEDULER,
        "queries": {key: promql for key, _, _, promql in SERIES},
        "times": times,
        "nodes": [
            {
                "name": n,
                "allocatable": {
                    "cpu_millicores": allocs[n].cpu_millicores,
                    "memory_bytes": allocs[n].memory_bytes,
                },
                "schedulable": True,
            }
            for n in names
        ],
        "metrics": metrics,
        "pods": sorted(records, key=lambda p: p["created"]),
        "dropped_samples": 0,
    }


def _lvrb_choice(metrics, allocs, names, i, shape) -> str:
    scores = {}
    for n in names:
        s = metrics[n]
        entries = [
            Metric(kind, op, s[key][i])
            for key, kind, op in (
                ("cpu_avg", CPU, AVERAGE),
                ("memory_avg", MEMORY, AVERAGE),
                ("cpu_std", CPU, STD),
                ("memory_std", MEMORY, STD),
            )
            if s[key][i] is not None
        ]
        scores[n] = node_score(entries or None, allocs[n], shape, 2, 2)
    return max(names, key=lambda n: scores[n])


def write(path: Path, **kwargs) -> Path:
    path.write_text(json.dumps(synthetic(**kwargs), separators=(",", ":")) + "\n")
    return path
