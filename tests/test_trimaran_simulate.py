"""``scheduling.simulate``: one Pod shape scored by hand, the replay's model, and a 14-day run.

The scores follow scheduler-plugins v0.34.7 (``pkg/trimaran/loadvariationriskbalancing/``); the
replay's model is described in ``tasks/trimaran/replay.py`` and the README.
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import pytest
from invoke.exceptions import Exit

from tasks.trimaran.recording import FORMAT, SCHEMA, VERSION, from_json
from tasks.trimaran.replay import Setting, replay
from tasks.trimaran.settings import current_setting
from tests.conftest import call_task
from tests.test_trimaran_record import envelope, match_query
from tests.trimaran_synthetic import synthetic
from tests.trimaran_synthetic import write as write_synthetic

GiB = 2**30
MiB = 2**20


def recording(times, nodes, metrics, pods=()) -> dict:
    return {
        "format": FORMAT, "version": VERSION, "start": times[0], "end": times[-1], "step": 300,
        "scheduler": "scheduler-plugins-scheduler", "times": times, "nodes": nodes,
        "metrics": metrics, "pods": list(pods),
    }  # fmt: skip


def node(name: str, cpu: int = 2000, memory: int = 4 * GiB, schedulable: bool = True) -> dict:
    return {
        "name": name,
        "allocatable": {"cpu_millicores": cpu, "memory_bytes": memory},
        "schedulable": schedulable,
    }


def series(*values) -> list:
    return list(values)


# Three nodes of 2000m and 4 GiB (4096 MiB); the Pod asks 500m and 512Mi. At the last point:
# a: cpu 30% +- 5%, memory 50% +- 2%    b: cpu 10% +- 17.5%, memory 20% +- 1%
# c: its metrics are keyed by "10.0.0.3:9100", not by its name: the plugin finds none: 0.
# (the first point holds other numbers: the scores must come from the last one)
HAND = recording(
    [1000, 1300],
    [node("a"), node("b"), node("c")],
    {
        "a": {"cpu_avg": [90, 30], "cpu_std": [0, 5], "memory_avg": [90, 50], "memory_std": [0, 2]},
        "b": {"cpu_avg": [0, 10], "cpu_std": [0, 17.5], "memory_avg": [0, 20], "memory_std": [0, 1]},
        "10.0.0.3:9100": {"cpu_avg": [1, 1], "cpu_std": [0, 0], "memory_avg": [1, 1],
                          "memory_std": [0, 0]},
    },
)  # fmt: skip
# cpu a: U=600, R=500: mu=1100/2000=0.55, sigma=100/2000=0.05
# mem a: U=2048, R=512 MiB: mu=2560/4096=0.625, sigma=0.02
# cpu b: U=200: mu=700/2000=0.35, sigma=0.175
# mem b: U=819.2: mu=1331.2/4096=0.325, sigma=0.01
# score = 100 * (1 - (mu + min(1, m * sigma^(1/k))) / 2); the node takes the lower, rounded
#
# m=1 k=1: a cpu (0.55+0.05)/2=0.30 -> 70; mem (0.625+0.02)/2=0.3225 -> 67.75; a = 68
#          b cpu (0.35+0.175)/2=0.2625 -> 73.75; mem (0.325+0.01)/2=0.1675 -> 83.25; b = 74
# m=1 k=2: a cpu sqrt(.05)=0.2236 -> (0.55+0.2236)/2=0.3868 -> 61.32;
#          mem sqrt(.02)=0.1414 -> 0.3832 -> 61.68; a = 61
#          b cpu sqrt(.175)=0.4183 -> (0.35+0.4183)/2=0.3842 -> 61.58; mem 0.1 -> 78.75; b = 62
# m=2 k=1: a cpu 0.1 -> 0.325 -> 67.5; mem 0.04 -> 0.3325 -> 66.75; a = 67
#          b cpu 0.35 -> (0.35+0.35)/2=0.35 -> 65; mem 0.02 -> 82.75; b = 65
# m=2 k=2: a cpu 0.4472 -> 0.4986 -> 50.14; mem 0.2828 -> 0.4539 -> 54.61; a = 50
#          b cpu 0.8367 -> 0.5933 -> 40.67; mem 0.2 -> 73.75; b = 41
EXPECTED = {
    "a": ["68", "61", "67", "50"],
    "b": ["74", "62", "65", "41"],
    "c": ["0", "0", "0", "0"],
    "picks": ["b", "b", "a", "a"],
}


def _score_table(out: str) -> dict[str, list[str]]:
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("node "))
    rows = {}
    for line in lines[start + 2 :]:
        if not line.strip():
            break
        cells = line.split()
        rows[cells[0]] = cells[1:]
        if cells[0] == "picks":
            break
    return rows


def test_one_pod_shape_ranks_the_nodes_as_the_formula_by_hand(tmp_path, capsys):
    path = tmp_path / "hand.json"
    path.write_text(json.dumps(HAND))
    call_task(
        "scheduling.simulate", metrics=str(path), pod="cpu=500m,memory=512Mi",
        margin="1,2", sensitivity="1,2",
    )  # fmt: skip
    out = capsys.readouterr().out
    assert "m=1 k=1  m=1 k=2  m=2 k=1  m=2 k=2 (current)" in out
    assert _score_table(out) == EXPECTED
    assert "(no metrics keyed by node name for c: the plugin scores them 0)" in out
    assert "no Pod of the Trimaran scheduler was created in the recording" in out


def test_live_scores_the_metrics_the_plugin_reads_now(fake_tools, capsys):
    # the same last point as HAND, answered by Prometheus as instant vectors (ratios, not %)
    from tasks.trimaran.recording import SERIES

    values = {
        "cpu_avg": {"a": 0.30, "b": 0.10}, "cpu_std": {"a": 0.05, "b": 0.175},
        "memory_avg": {"a": 0.50, "b": 0.20}, "memory_std": {"a": 0.02, "b": 0.01},
    }  # fmt: skip
    for key, _, _, promql in SERIES:
        result = [
            {"metric": {"instance": n, "job": "node-exporter"}, "value": [1300, repr(v)]}
            for n, v in values[key].items()
        ]
        # an instant query of now has no time parameter: nothing follows the query
        only_query = match_query(promql).rstrip("&")
        fake_tools.rule("kubectl", "/query?", only_query, stdout=envelope("vector", result))
    nodes = {"kind": "List", "items": [
        {"metadata": {"name": n}, "status": {"allocatable": {"cpu": "2", "memory": "4Gi"}}}
        for n in ("a", "b", "c")
    ]}  # fmt: skip
    fake_tools.rule("kubectl", "get", "nodes", stdout=json.dumps(nodes))
    call_task(
        "scheduling.simulate", live=True, pod="cpu=500m,memory=512Mi", margin="1,2",
        sensitivity="1,2",
    )  # fmt: skip
    assert _score_table(capsys.readouterr().out) == EXPECTED
    assert len(fake_tools.calls("kubectl")) == 5


def test_the_current_setting_is_the_values_files(tmp_path):
    assert current_setting() == Setting(2.0, 2.0)
    values = tmp_path / "v.yaml"
    values.write_text(
        "pluginConfig:\n  - name: LoadVariationRiskBalancing\n    args: {safeVarianceMargin: -3}\n"
    )
    # a negative or missing arg is the upstream default 1 (apis/config/v1/defaults.go)
    assert current_setting(values) == Setting(1.0, 1.0)


# --- the replay's model -------------------------------------------------------------------------

# Two nodes of 1000m and 1 GiB, five points 300 s apart. Node x is loaded and bursty, y is quiet.
MODEL = recording(
    [0, 300, 600, 900, 1200],
    [node("x", 1000, GiB), node("y", 1000, GiB)],
    {
        "x": {"cpu_avg": [60, 60, 75, 60, 60], "cpu_std": [20] * 5,
              "memory_avg": [10] * 5, "memory_std": [0] * 5},
        "y": {"cpu_avg": [20, 20, 20, 20, 20], "cpu_std": [0] * 5,
              "memory_avg": [10] * 5, "memory_std": [0] * 5},
    },
    [
        # actually placed on x at t=100 (the step at 0 is what the plugin saw), seen until 900
        {"namespace": "a", "name": "p", "uid": "u1", "created": 100, "last_seen": 900,
         "node": "x", "scheduler": "scheduler-plugins-scheduler", "owner_kind": "ReplicaSet",
         "requests": {"cpu_millicores": 100, "memory_bytes": 0}},
        # a DaemonSet's Pod by the default scheduler: not replayed
        {"namespace": "kube-system", "name": "d", "uid": "u2", "created": 100, "last_seen": 1200,
         "node": "y", "scheduler": "default-scheduler", "owner_kind": "DaemonSet",
         "requests": {"cpu_millicores": 500, "memory_bytes": 0}},
    ],
)  # fmt: skip


def test_a_moved_pod_takes_its_request_from_the_next_step_to_the_last_seen():
    rec = from_json(MODEL)
    # x at step 0: mu=(600+100)/1000=0.7, sigma=0.2 -> (0.7+0.2)/2=0.45 -> 55
    # y at step 0: mu=(200+100)/1000=0.3, sigma=0   -> 0.15 -> 85: the Pod goes to y
    moved = replay(rec, Setting(1, 1))
    [p] = moved.placements
    assert (p.chosen, p.best, p.score, p.differs) == ("y", ("y",), 85, True)
    # 100m of 1000m = 10 points, moved from step 1 (the next refresh) to step 3 (seen at 900)
    assert moved.cpu["x"] == [60, 50, 65, 50, 60]
    assert moved.cpu["y"] == [20, 30, 30, 30, 20]
    assert not p.overloaded and p.steps == 3
    # as recorded: x ran at 75% at step 2 (not above 80): not overloaded either
    recorded = replay(rec, None)
    assert recorded.placements[0].chosen == "x" and recorded.cpu["x"] == [60, 60, 75, 60, 60]


def test_overload_counts_the_steps_the_chosen_node_spent_above_80():
    doc = json.loads(json.dumps(MODEL))
    doc["metrics"]["x"]["cpu_avg"] = [60, 60, 85, 90, 60]
    rec = from_json(doc)
    recorded = replay(rec, None)
    [p] = recorded.placements
    # steps 1..3 of its life on x: 60, 85, 90 -> two of three above 80
    assert (p.overloaded, p.steps, p.over_steps) == (True, 3, 2)
    assert recorded.overload_time == pytest.approx(100 * 2 / 3)
    # moved to y (score 85 vs 55): x carries 10 points less, y never reaches 80
    assert not replay(rec, Setting(1, 1)).placements[0].overloaded


def test_a_tie_keeps_the_actual_node_and_is_no_difference():
    doc = json.loads(json.dumps(MODEL))
    doc["metrics"]["x"] = doc["metrics"]["y"]  # identical nodes: equal scores
    out = replay(from_json(doc), Setting(2, 2))
    [p] = out.placements
    assert p.best == ("x", "y") and p.chosen == "x" and not p.differs


def test_an_unschedulable_node_is_no_candidate_unless_the_pod_landed_there():
    doc = json.loads(json.dumps(MODEL))
    doc["nodes"][1]["schedulable"] = False  # y cordoned: only x remains
    [p] = replay(from_json(doc), Setting(1, 1)).placements
    assert p.chosen == "x" and p.best == ("x",) and not p.differs


def test_spread_is_max_minus_min_and_the_std_across_nodes():
    out = replay(from_json(MODEL), None)
    # cpu per step: |60-20|=40 x4 and |75-20|=55 -> mean 43; std = half the gap: 20 x4, 27.5
    assert out.spread["cpu_range"] == pytest.approx((40 * 4 + 55) / 5)
    assert out.spread["cpu_std"] == pytest.approx((20 * 4 + 27.5) / 5)
    assert out.spread["memory_range"] == 0 and out.spread["memory_std"] == 0


# --- end to end on the synthetic 14 days --------------------------------------------------------


@pytest.fixture(scope="module")
def fourteen_days(tmp_path_factory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("synthetic") / "rec.json", seed=7)


def test_the_synthetic_recording_is_valid_by_the_schema(fourteen_days):
    jsonschema = pytest.importorskip("jsonschema")
    doc = json.loads(fourteen_days.read_text())
    jsonschema.validate(doc, json.loads(SCHEMA.read_text()))
    assert len(doc["nodes"]) == 6 and len(doc["times"]) == 14 * 288 + 1
    assert 250 <= len(doc["pods"]) <= 400
    assert synthetic(seed=7)["pods"] == doc["pods"]  # reproducible from the seed


def test_simulate_replays_two_weeks_and_recommends(fourteen_days, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png = tmp_path / "plot" / "util.png"
    call_task(
        "scheduling.simulate", metrics=str(fourteen_days), margin="1,1.5,2", sensitivity="1,2",
        plot=str(png),
    )  # fmt: skip
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("setting "))
    rows = [line.split()[0:2] for line in lines[header + 2 : header + 9]]
    assert [r[0] for r in rows] == ["recorded", "m=1", "m=1", "m=1.5", "m=1.5", "m=2", "m=2"]
    assert "m=2 k=2 (current)" in lines[header + 8]
    assert not lines[header + 9].strip()  # seven rows: the recorded placements and six settings
    paragraph = lines[header + 10]
    assert "had the lowest overload risk at equal balance" in paragraph
    assert "The current setting (m=2 k=2)" in paragraph
    assert f"plot: {png}" in out
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width > 600 and height > 300


def test_without_matplotlib_the_table_is_printed_and_the_fix_named(tmp_path, capsys, monkeypatch):
    three_days = write_synthetic(tmp_path / "rec.json", days=3, pods=60)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` fails
    png = tmp_path / "util.png"
    with pytest.raises(
        Exit, match=r"--plot .*matplotlib is not installed; pip install -e '.\[plot\]'"
    ):
        call_task("scheduling.simulate", metrics=str(three_days), margin="1", sensitivity="1",
                  plot=str(png))  # fmt: skip
    out = capsys.readouterr().out
    assert "setting " in out and "lowest overload risk" in out and not png.exists()


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({}, "give either --metrics FILE"),
        ({"live": True}, "--live scores one Pod shape on the current metrics; add --pod"),
        ({"live": True, "pod": "cpu=1", "plot": "x.png"}, "--plot draws a replay over time"),
        ({"metrics": "missing.json"}, "--metrics missing.json: no such file"),
        ({"live": True, "pod": "cpu=1", "margin": "1,nan"}, "--margin 1,nan: nan is not a finite"),
        ({"live": True, "pod": "cpu=1", "sensitivity": "-0"}, "--sensitivity -0: -0 is negative"),
        ({"live": True, "pod": "memory=1GB"}, "--pod memory=1GB: memory='1GB' is not a Kubernetes"),
    ],
)
def test_bad_flags_are_errors_before_anything_is_read(fake_tools, kwargs, words):
    with pytest.raises(Exit, match=words.replace("(", r"\(").replace("[", r"\[")):
        call_task("scheduling.simulate", **kwargs)
    assert fake_tools.calls() == []


def test_dry_run_over_a_file_reads_nothing(fake_tools, tmp_path, capsys):
    path = tmp_path / "hand.json"
    path.write_text(json.dumps(HAND))
    call_task("scheduling.simulate", metrics=str(path), dry_run=True)
    assert "no Prometheus query" in capsys.readouterr().out and fake_tools.calls() == []
