"""The recording: what Trimaran LVRB read over a window, and the Pods it placed, as one JSON file.

The file is plain JSON (``FORMAT``, ``VERSION``; described in the README, section "Simulating the
variance margin", and by ``recording.schema.json`` beside this module). It holds names, numbers
and times only: no labels, annotations, environment or anything else of a Pod's spec. The
metrics are kept by the series' ``instance`` label, as load-watcher keys them, so a node whose
``instance`` is not its name is missing from them exactly as it is for the plugin. How a
recording is read from a cluster: :mod:`tasks.trimaran.collect`.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine.errors import OneclusterError
from .quantity import PodShape
from .score import AVERAGE, CPU, MEMORY, STD, Allocatable, Metric

FORMAT = "onecluster/trimaran-recording"
VERSION = 1
SCHEMA = Path(__file__).with_name("recording.schema.json")

WINDOW = "15m"  # load-watcher's FifteenMinutes
CPU_RULE = "instance:node_cpu:ratio"  # promCpuMetric
MEMORY_RULE = "instance:node_memory_utilisation:ratio"  # promMemMetric

# (series key in the file, resource type, operator, PromQL): load-watcher's order, AVG then STD
SERIES = (
    ("cpu_avg", CPU, AVERAGE, f"avg_over_time({CPU_RULE}[{WINDOW}])"),
    ("memory_avg", MEMORY, AVERAGE, f"avg_over_time({MEMORY_RULE}[{WINDOW}])"),
    ("cpu_std", CPU, STD, f"stddev_over_time({CPU_RULE}[{WINDOW}])"),
    ("memory_std", MEMORY, STD, f"stddev_over_time({MEMORY_RULE}[{WINDOW}])"),
)


class RecordingError(OneclusterError):
    """A recording file that cannot be read, or is not one this version understands."""


@dataclass(frozen=True)
class NodeInfo:
    """One node as the Nodes list showed it: allocatable, and whether new Pods may land on it."""

    name: str
    allocatable: Allocatable
    schedulable: bool = True


@dataclass(frozen=True)
class PodRecord:
    """One Pod created in the window: when, where it landed, what it requested, until when seen."""

    namespace: str
    name: str
    uid: str
    created: float
    last_seen: float
    node: str | None
    scheduler: str | None
    owner_kind: str | None
    requests: PodShape
    requests_from: str  # "api" or "kube-state-metrics"


@dataclass
class Recording:
    """The file's content: one time axis, the metrics per ``instance`` on it, nodes and Pods."""

    start: float
    end: float
    step: float
    times: list[float]
    nodes: list[NodeInfo]
    metrics: dict[str, dict[str, list[float | None]]]
    pods: list[PodRecord]
    scheduler: str = "scheduler-plugins-scheduler"
    recorded_at: float = 0.0
    dropped_samples: int = 0
    notes: list[str] = field(default_factory=list)

    def snapshot(self, index: int) -> dict[str, list[Metric]]:
        """The metric lists the plugin would have held at ``times[index]``, by ``instance``."""
        out: dict[str, list[Metric]] = {}
        for host, series in self.metrics.items():
            entries = []
            for key, kind, operator, _ in SERIES:
                values = series.get(key)
                v = values[index] if values else None
                if v is not None:
                    entries.append(Metric(kind, operator, v))
            if entries:
                out[host] = entries
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "recorded_at": self.recorded_at,
            "start": self.start,
            "end": self.end,
            "step": self.step,
            "window": WINDOW,
            "scheduler": self.scheduler,
            "queries": {key: promql for key, _, _, promql in SERIES},
            "times": self.times,
            "nodes": [
                {
                    "name": n.name,
                    "allocatable": {
                        "cpu_millicores": n.allocatable.cpu_millicores,
                        "memory_bytes": n.allocatable.memory_bytes,
                    },
                    "schedulable": n.schedulable,
                }
                for n in self.nodes
            ],
            "metrics": self.metrics,
            "pods": [
                {
                    "namespace": p.namespace,
                    "name": p.name,
                    "uid": p.uid,
                    "created": p.created,
                    "last_seen": p.last_seen,
                    "node": p.node,
                    "scheduler": p.scheduler,
                    "owner_kind": p.owner_kind,
                    "requests": {
                        "cpu_millicores": p.requests.cpu_millicores,
                        "memory_bytes": p.requests.memory_bytes,
                    },
                    "requests_from": p.requests_from,
                }
                for p in self.pods
            ],
            "dropped_samples": self.dropped_samples,
        }


# --- reading a file -----------------------------------------------------------------------------


def _need(doc: Mapping[str, Any], key: str, kinds: type | tuple[type, ...], where: str) -> Any:
    if key not in doc:
        raise RecordingError(f"{where}: field {key!r} is missing")
    found = doc[key]
    if isinstance(found, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
        raise RecordingError(f"{where}: field {key!r} is {found!r}, not a number")
    if not isinstance(found, kinds):
        raise RecordingError(f"{where}: field {key!r} has the wrong type ({type(found).__name__})")
    if isinstance(found, float) and not math.isfinite(found):
        raise RecordingError(f"{where}: field {key!r} is {found}, not a finite number")
    return found


def from_json(doc: Any, path: str = "recording") -> Recording:
    """A recording from its parsed JSON, every field checked; errors name the file and field."""
    try:
        return _from_json(doc, path)
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        # what the field checks did not foresee (a list where an object belongs, a NaN count)
        raise RecordingError(
            f"{path}: malformed ({type(exc).__name__}: {exc}); record it again with "
            "`invoke scheduling.record`"
        ) from None


def _from_json(doc: Any, path: str) -> Recording:
    if not isinstance(doc, dict):
        raise RecordingError(
            f"{path}: not a JSON object; record one with `invoke scheduling.record`"
        )
    if doc.get("format") != FORMAT:
        raise RecordingError(
            f"{path}: field 'format' is {doc.get('format')!r}, expected {FORMAT!r}; "
            "record one with `invoke scheduling.record --out FILE`"
        )
    if doc.get("version") != VERSION:
        raise RecordingError(
            f"{path}: field 'version' is {doc.get('version')!r}; this onecluster reads version "
            f"{VERSION}: record it again with `invoke scheduling.record`"
        )
    num = (int, float)
    times = [float(t) for t in _need(doc, "times", list, path)]
    if any(b <= a for a, b in itertools.pairwise(times)):
        raise RecordingError(f"{path}: field 'times' must increase")
    nodes = []
    for i, n in enumerate(_need(doc, "nodes", list, path)):
        where = f"{path}: nodes[{i}]"
        alloc = _need(n, "allocatable", dict, where)
        nodes.append(
            NodeInfo(
                _need(n, "name", str, where),
                Allocatable(
                    int(_need(alloc, "cpu_millicores", num, where + ".allocatable")),
                    int(_need(alloc, "memory_bytes", num, where + ".allocatable")),
                ),
                bool(n.get("schedulable", True)),
            )
        )
    metrics: dict[str, dict[str, list[float | None]]] = {}
    for host, series in _need(doc, "metrics", dict, path).items():
        if not isinstance(series, dict):
            raise RecordingError(f"{path}: metrics.{host} is not an object")
        metrics[host] = {}
        for key, values in series.items():
            where = f"{path}: metrics.{host}.{key}"
            if key not in {k for k, *_ in SERIES}:
                raise RecordingError(f"{where}: unknown series; known: cpu_avg, cpu_std, ...")
            if not isinstance(values, list) or len(values) != len(times):
                raise RecordingError(
                    f"{where}: expected a list of {len(times)} values (one per time)"
                )
            if any(
                v is not None
                and (isinstance(v, bool) or not isinstance(v, num) or not math.isfinite(v))
                for v in values
            ):
                # (Python's JSON reader takes NaN and Infinity; the plugin cannot score them)
                raise RecordingError(f"{where}: values are finite numbers or null")
            metrics[host][key] = [None if v is None else float(v) for v in values]
    pods = []
    for i, p in enumerate(_need(doc, "pods", list, path)):
        where = f"{path}: pods[{i}]"
        req = _need(p, "requests", dict, where)
        pods.append(
            PodRecord(
                namespace=_need(p, "namespace", str, where),
                name=_need(p, "name", str, where),
                uid=_need(p, "uid", str, where),
                created=float(_need(p, "created", num, where)),
                last_seen=float(_need(p, "last_seen", num, where)),
                node=p.get("node") or None,
                scheduler=p.get("scheduler") or None,
                owner_kind=p.get("owner_kind") or None,
                requests=PodShape(
                    int(_need(req, "cpu_millicores", num, where + ".requests")),
                    int(_need(req, "memory_bytes", num, where + ".requests")),
                ),
                requests_from=str(p.get("requests_from", "")),
            )
        )
    return Recording(
        start=float(_need(doc, "start", num, path)),
        end=float(_need(doc, "end", num, path)),
        step=float(_need(doc, "step", num, path)),
        times=times,
        nodes=nodes,
        metrics=metrics,
        pods=sorted(pods, key=lambda p: (p.created, p.namespace, p.name)),
        scheduler=str(doc.get("scheduler") or "scheduler-plugins-scheduler"),
        recorded_at=float(doc.get("recorded_at") or 0.0),
        dropped_samples=int(doc.get("dropped_samples") or 0),
    )


def load(path: str | Path) -> Recording:
    """Read a recording file; a missing, unreadable or malformed one is a :class:`RecordingError`."""
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecordingError(
            f"{where}: no such file; make one with `invoke scheduling.record --out {where}`"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordingError(f"{where}: cannot be read: {exc}") from None
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise RecordingError(f"{where}: not JSON ({exc})") from None
    return from_json(doc, where)


def save(recording: Recording, path: str | Path) -> None:
    """Write the recording as JSON, atomically (a temporary file beside it, then renamed)."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    except OSError as exc:
        raise RecordingError(f"{path}: cannot be written: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(recording.to_json(), fh, separators=(",", ":"), allow_nan=False)
            fh.write("\n")
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise RecordingError(f"{path}: cannot be written: {exc.strerror or exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
