"""``scheduling.record`` and ``scheduling.simulate``: the variance margin tried on the cluster's history.

Both only read: Prometheus through the API server's service proxy
(:mod:`tasks.metrics.prometheus`) and ``kubectl get`` of the Nodes and Pods, with the user's
kubeconfig. ``simulate`` over a file reads nothing but the file.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from ..engine.cli import duration, file_to_write, onecluster_task
from ..engine.command import Command, Executor
from ..engine.context import user_kubeconfig
from ..engine.errors import FlagError
from ..engine.kubectl import Kubectl
from ..engine.output import echo, table
from ..engine.poll import parse_duration
from ..metrics.prometheus import Prometheus
from .quantity import POD_EXAMPLE, PodShape, parse_pod_shape

if TYPE_CHECKING:  # the heavy modules load when a task runs, not for `invoke --list`
    from .recording import Recording
    from .replay import Setting

SCHEDULER_NAME = "scheduler-plugins-scheduler"  # helm-values/scheduler-plugins.yaml scheduler.name
QUERIES_HELP = "print the Prometheus queries and kubectl reads it would make, and make none"


def _show(command: Command) -> None:
    """A read as it would run, after its PromQL in plain text (the URI carries it encoded)."""
    raw = next((a for a in command.args if a.startswith("/api/v1/namespaces/")), "")
    promql = parse_qs(urlsplit(raw).query).get("query") if raw else None
    if promql:
        echo(f"# {promql[0]}")
    echo(command.display())


def _shown_read(command: Command) -> str:
    _show(command)
    return '{"kind": "List", "items": []}'


def _client(dry_run: bool) -> tuple[Prometheus, Callable[[Command], str]]:
    """Prometheus and a kubectl reader: running the reads, or (dry-run) printing them."""
    kubectl = Kubectl(user_kubeconfig())
    executor = Executor(dry_run=dry_run)
    if dry_run:
        return Prometheus(executor, kubectl, show=_show), _shown_read
    return Prometheus(executor, kubectl), lambda command: executor.query(command).stdout


def _recording_to_write(flag: str, value: Any) -> object:
    """A check: a file to write that is new, or an older recording (nothing else is overwritten)."""
    from .recording import FORMAT

    file_to_write(flag, value)
    path = Path(value)
    if path.exists():
        try:
            ours = json.loads(path.read_text(encoding="utf-8")).get("format") == FORMAT
        except (OSError, ValueError, AttributeError):
            ours = False
        if not ours:
            raise FlagError(
                f"{flag} {value}: the file exists and is not a recording; give a new file name"
            )
    return value


def _positive_step(flag: str, value: Any) -> object:
    seconds = duration(flag, value)
    if not 1 <= float(seconds) <= 3600:  # type: ignore[arg-type]
        raise FlagError(f"{flag} {value}: give a step from 1s to 1h, e.g. {flag} 5m")
    return seconds


@onecluster_task(
    help=dict(
        since="how far back to record (default 14d; Prometheus keeps 30d here)",
        step="the time between two recorded points (default 5m)",
        out="the JSON file to write (FILE; an existing file only if it is an older recording)",
        dry_run=QUERIES_HELP,
    ),
    checks={"since": duration, "step": _positive_step, "out": _recording_to_write},
)  # fmt: skip
def record(c, since="14d", step="5m", out=None, dry_run=False):
    """Record Trimaran's inputs (node load, allocatable, Pods placed) over a window, as JSON."""
    from .collect import record as read_recording
    from .recording import save

    since_s, step_s = parse_duration(since, "--since"), parse_duration(step, "--step")
    if step_s > since_s:
        raise FlagError(f"--step {step} is longer than --since {since}; e.g. --since 14d --step 5m")
    if not out and not dry_run:
        raise FlagError("--out is required: the file to write, e.g. --out trimaran-14d.json")
    prom, read = _client(dry_run)
    rec = read_recording(
        prom, read, now=time.time(), since=since_s, step=step_s, scheduler=SCHEDULER_NAME,
        on_note=(lambda _: None) if dry_run else (lambda note: echo(f"note: {note}", err=True)),
    )  # fmt: skip
    if dry_run:
        return
    save(rec, out)
    hosts = sum(1 for n in rec.nodes if n.name in rec.metrics)
    echo(
        f"recorded {len(rec.times)} points of {hosts}/{len(rec.nodes)} nodes and "
        f"{len(rec.pods)} Pods created since {since} into {out} ({prom.calls} Prometheus queries)"
    )


def _recording_file(flag: str, value: Any) -> object:
    if not Path(value).is_file():
        raise FlagError(
            f"{flag} {value}: no such file; record one with "
            f"`invoke scheduling.record --out {value}`"
        )
    return value


def _margins(flag: str, value: Any) -> object:
    from .settings import parse_list

    return parse_list(flag, value, "1,1.5,2")


def _sensitivities(flag: str, value: Any) -> object:
    from .settings import parse_list

    return parse_list(flag, value, "1,2")


@onecluster_task(
    help=dict(
        metrics="a recording (scheduling.record --out FILE) to replay",
        live="score one Pod shape on the metrics the plugin reads now (needs --pod)",
        margin="safeVarianceMargin values to try, comma-separated (default 1,1.5,2)",
        sensitivity="safeVarianceSensitivity values to try, comma-separated (default 1,2)",
        pod="one Pod shape to score each node for, e.g. cpu=500m,memory=512Mi",
        plot="write a PNG of node utilisation under the best and the current setting (FILE)",
        dry_run=QUERIES_HELP,
    ),
    checks={
        "metrics": _recording_file, "plot": file_to_write, "pod": lambda f, v: parse_pod_shape(v, f),
        "margin": _margins, "sensitivity": _sensitivities,
    },
)  # fmt: skip
def simulate(
    c, metrics=None, live=False, margin="1,1.5,2", sensitivity="1,2", pod=None, plot=None,
    dry_run=False,
):  # fmt: skip
    """Replay Pod placements under other Trimaran margins/sensitivities, and recommend one."""
    from .settings import current_setting, grid, parse_list

    if bool(metrics) == bool(live):
        raise FlagError(
            "give either --metrics FILE (a recording to replay) or --live (the metrics now, "
            f"with {POD_EXAMPLE})"
        )
    if live and not pod:
        raise FlagError(f"--live scores one Pod shape on the current metrics; add {POD_EXAMPLE}")
    if live and plot:
        raise FlagError("--plot draws a replay over time; use it with --metrics FILE, not --live")
    current = current_setting()
    settings = grid(
        parse_list("--margin", margin, "1,1.5,2"), parse_list("--sensitivity", sensitivity, "1,2")
    )
    if current not in settings:
        settings.append(current)
    shape = parse_pod_shape(pod) if pod else None
    if dry_run:
        if metrics:
            echo(f"# reads {metrics} only: no Prometheus query, no kubectl call")
            return
        prom, read = _client(True)
        _live_recording(prom, read)
        return
    if live:
        prom, read = _client(False)
        rec = _live_recording(prom, read)
    else:
        from .recording import load

        rec = load(metrics)
    if shape is not None:
        _print_scores(rec, shape, settings, current, "now" if live else f"at the end of {metrics}")
    if metrics:
        _print_replay(rec, settings, current, plot)


def _live_recording(prom: Prometheus, read: Callable[[Command], str]) -> Recording:
    from .collect import from_live, instant_metrics, nodes_command, parse_nodes

    metrics, _ = instant_metrics(prom)
    nodes = parse_nodes(read(nodes_command(prom.kubectl)))
    return from_live(metrics, nodes, time.time())


def _print_scores(
    rec: Recording, shape: PodShape, settings: list[Setting], current: Setting, when: str
) -> None:
    from .replay import pick, score_now

    nodes, scores = score_now(rec, shape, settings)
    echo(f"LVRB score of each node for a Pod of {shape.label()}, {when}:")
    headers = ["node", *(s.label + (" (current)" if s == current else "") for s in settings)]
    rows = [[n, *(scores[s][n] for s in settings)] for n in nodes]
    rows.append(["picks", *(" ".join(pick(scores[s])[1]) if nodes else "-" for s in settings)])
    echo(table(headers, rows))
    missing = [n for n in nodes if n not in rec.metrics]
    if missing:
        echo(f"(no metrics keyed by node name for {', '.join(missing)}: the plugin scores them 0)")
    echo("")


def _print_replay(
    rec: Recording, settings: list[Setting], current: Setting, plot: str | None
) -> None:
    from .plot import PlotUnavailable, write_plot
    from .replay import Timeline, replay, replayed_pods
    from .report import recommendation, settings_table

    pods = replayed_pods(rec)
    echo(
        f"Replaying {len(pods)} Pod creations ({rec.scheduler}) over {len(rec.times)} steps of "
        f"{rec.step:g}s on {len(rec.nodes)} nodes:"
    )
    if not pods:
        echo("no Pod of the Trimaran scheduler was created in the recording: nothing to compare")
        return
    tl = Timeline(rec)
    outcomes = [replay(rec, None, tl), *(replay(rec, s, tl) for s in settings)]
    echo(settings_table(outcomes, current))
    echo("")
    best, text = recommendation(outcomes, current, rec.start, rec.end)
    echo(text)
    if plot:
        now = next(o for o in outcomes if o.setting == current)
        try:
            rows = (
                [("best and current:", best)]
                if best is now
                else [("best:", best), ("current:", now)]
            )
            write_plot(plot, rec.times, rows)
        except PlotUnavailable as exc:
            raise FlagError(f"--plot {plot}: {exc}; the table above is complete") from None
        echo(f"plot: {plot}")


TASKS = ((record, "record"), (simulate, "simulate"))
