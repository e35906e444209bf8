"""Signal performance measures on hand-made event logs, with the answers worked out by hand."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from gwfactories import four_leg, two_phase

from controller.backend import FakeBackend
from controller.engine import Engine
from controller.events import EventCode as E
from controller.events import EventRecorder
from controller.policies import make_policy
from intersections.errors import InputError
from intersections.network import Network
from intersections.plan import PlanStage, TimingPlan
from scenarios.atspm import (
    DetectionType,
    DetectorConfig,
    IntersectionDetectors,
    approach_volume,
    config_from_network,
    intersection_measures,
    load_detector_config,
    purdue_coordination,
    read_events,
    red_to_red_cycles,
    save_detector_config,
    split_failures,
    split_monitor,
    turning_movement_counts,
    write_report,
    yellow_red_actuations,
)
from scenarios.atspm.cycles import merge_intervals, occupied_time
from scenarios.atspm.events import EventTable
from scenarios.atspm.volumes import peak_hour

AC, SBP, LLC, LLS = (
    DetectionType.ADVANCE_COUNT,
    DetectionType.STOP_BAR_PRESENCE,
    DetectionType.LANE_COUNT,
    DetectionType.LANE_SPEED,
)


def _phase(t_codes: list[tuple[float, int]], phase: int, dev: str = "J1") -> list[tuple[float, str, int, int]]:
    return [(t, dev, c, phase) for t, c in t_codes]


def _det(times: list[float], channel: int, dev: str = "J1", hold_s: float = 0.5) -> list[tuple[float, str, int, int]]:
    out = []
    for t in times:
        out += [(t, dev, E.DETECTOR_ON, channel), (t + hold_s, dev, E.DETECTOR_OFF, channel)]
    return out


# ---------------------------------------------------------------------------------------------
# PCD, arrivals on green, platoon ratio, approach delay
# ---------------------------------------------------------------------------------------------
# Two 60 s red-to-red cycles of phase 2: red from the end of yellow, 26 s red, 30 s green, 4 s yellow.
#   cycle 1: r=0  g=26 y=56 r'=60      cycle 2: r=60 g=86 y=116 r'=120
PCD_SIGNALS = _phase(
    [(0, E.END_YELLOW), (26, E.BEGIN_GREEN), (56, E.BEGIN_YELLOW), (60, E.END_YELLOW), (60, E.BEGIN_RED_CLEARANCE),
     (62, E.END_RED_CLEARANCE), (86, E.BEGIN_GREEN), (116, E.BEGIN_YELLOW), (120, E.END_YELLOW)],
    2,
)  # fmt: skip
# Advance detector 100 m upstream at 10 m/s: every hit reaches the stop bar 10 s later.
PCD_HITS = [0, 5, 20, 30, 40, 47, 55, 76, 100, 115]
#   projected: 10 15 | 30 40 50 | 57 | 65 | 86 110 | 125 (after the last cycle: left out)
#   kinds:     R  R  | G  G  G  | Y  | R  | G  G
ADV = DetectorConfig(channel=5, phase=2, types=frozenset({AC}), distance_m=100.0, speed_m_s=10.0, approach="EB")


def _pcd_log() -> EventTable:
    other = _det([30.0], 6)  # another phase's detector: never counted for phase 2
    plans = [(0.0, "J1", E.PATTERN_CHANGE, 3), (60.0, "J1", E.PATTERN_CHANGE, 4)]
    return EventTable.from_records(PCD_SIGNALS + _det(PCD_HITS, 5) + other + plans)


def test_red_to_red_cycles_start_at_end_of_yellow() -> None:
    cyc = red_to_red_cycles(_pcd_log(), 2)
    assert cyc.t.tolist() == [[0, 26, 56, 60], [60, 86, 116, 120]]


def test_pcd_points_and_arrival_types() -> None:
    pcd = purdue_coordination(_pcd_log(), 2, [ADV])
    assert pcd.arrival_s.tolist() == [10, 15, 30, 40, 50, 57, 65, 86, 110]
    assert pcd.in_cycle_s.tolist() == [10, 15, 30, 40, 50, 57, 5, 26, 50]  # the PCD's y: seconds since red began
    assert pcd.kind.tolist() == [0, 0, 1, 1, 1, 2, 0, 1, 1]  # red, green, yellow; a hit exactly at green is green
    assert pcd.delay_s.tolist() == [16, 11, 0, 0, 0, 0, 21, 0, 0]  # g - t for arrivals on red


def test_arrivals_on_green_platoon_ratio_and_delay() -> None:
    s = purdue_coordination(_pcd_log(), 2, [ADV]).summary()
    assert (s["arrivals"], s["aog"], s["aor"], s["aoy"]) == (9, 5, 3, 1)
    assert s["aog_pct"] == pytest.approx(100 * 5 / 9)
    assert s["gt_pct"] == pytest.approx(50.0)  # 60 s of green in 120 s
    assert s["platoon_ratio"] == pytest.approx((5 / 9) / 0.5)  # AoG share / (g/C) = 1.111
    assert s["total_delay_s"] == pytest.approx(48.0)
    assert s["delay_per_vehicle_s"] == pytest.approx(48.0 / 9)  # every arrival counts, not only the red ones


def test_per_plan_ratios() -> None:
    plans = purdue_coordination(_pcd_log(), 2, [ADV]).per_plan()
    assert [p["plan"] for p in plans] == [3, 4]
    assert (plans[0]["arrivals"], plans[0]["aog"], plans[0]["aog_pct"]) == (6, 3, pytest.approx(50.0))
    assert plans[0]["platoon_ratio"] == pytest.approx(1.0)
    assert (plans[1]["arrivals"], plans[1]["aog"]) == (3, 2)
    assert plans[1]["platoon_ratio"] == pytest.approx((2 / 3) / 0.5)


def test_pcd_bins_give_volume_per_hour() -> None:
    b = purdue_coordination(_pcd_log(), 2, [ADV], start_s=0, end_s=120).bins(60.0)
    assert b["start_s"] == [0.0, 60.0]
    assert b["arrivals"] == [6.0, 3.0]
    assert b["volume_veh_h"] == [360.0, 180.0]  # 6 in a minute = 360 veh/h
    assert b["delay_per_vehicle_s"] == pytest.approx([27 / 6, 21 / 3])


# ---------------------------------------------------------------------------------------------
# Split failure: GOR and ROR5 > 0.79
# ---------------------------------------------------------------------------------------------
SF_SIGNALS = _phase(
    [(0, E.BEGIN_GREEN), (30, E.BEGIN_YELLOW), (34, E.END_YELLOW),
     (60, E.BEGIN_GREEN), (90, E.BEGIN_YELLOW), (94, E.END_YELLOW),
     (120, E.BEGIN_GREEN), (150, E.BEGIN_YELLOW), (154, E.END_YELLOW),
     (180, E.BEGIN_GREEN), (280, E.BEGIN_YELLOW), (284, E.END_YELLOW),
     (300, E.BEGIN_GREEN)],
    2,
)  # fmt: skip


def _on_off(intervals: list[tuple[float, float]], channel: int) -> list[tuple[float, str, int, int]]:
    out = []
    for a, b in intervals:
        out += [(a, "J1", E.DETECTOR_ON, channel), (b, "J1", E.DETECTOR_OFF, channel)]
    return out


def test_split_failures_gor_ror5() -> None:
    occ = _on_off([(0, 25), (33, 37.5), (60, 90), (120, 140), (154, 159), (180, 259), (284, 290)], 1)
    occ += _on_off([(20, 28), (93, 100)], 2)  # a second lane of the group; presence = either lane
    ev = EventTable.from_records(SF_SIGNALS + occ)
    dets = [DetectorConfig(c, 2, frozenset({SBP})) for c in (1, 2)]
    sf = split_failures(ev, 2, dets)
    # cycle 1: [0,28) of 30 s green -> 0.933; red [34,39): [34,37.5) -> 0.7      -> no fail
    # cycle 2: green fully occupied -> 1.0; red [94,99) covered by lane 2 -> 1.0 -> FAIL
    # cycle 3: [120,140) of 30 s -> 0.667; red fully occupied -> 1.0           -> no fail (green not saturated)
    # cycle 4: [180,259) of 100 s -> exactly 0.79; red 1.0                      -> no fail (needs > 0.79)
    assert sf.gor == pytest.approx([28 / 30, 1.0, 20 / 30, 0.79])
    assert sf.ror5 == pytest.approx([0.7, 1.0, 1.0, 1.0])
    assert sf.failed.tolist() == [False, True, False, False]
    s = sf.summary()
    assert (s["cycles"], s["failures"], s["failure_pct"]) == (4, 1, 25.0)


def test_occupancy_of_merged_intervals_for_many_windows() -> None:
    on, off = merge_intervals(np.array([0.0, 20, 50]), np.array([25.0, 28, 60]))
    assert on.tolist() == [0, 50] and off.tolist() == [28, 60]
    got = occupied_time(on, off, np.array([0.0, 10, 27, 40, 55]), np.array([30.0, 20, 52, 45, 100]))
    assert got.tolist() == [28, 10, 3, 0, 5]


# ---------------------------------------------------------------------------------------------
# Split monitor and phase termination
# ---------------------------------------------------------------------------------------------
def test_split_monitor_splits_terminations_and_percentile() -> None:
    signals = _phase(
        [(0, E.BEGIN_GREEN), (25, E.GAP_OUT), (25, E.BEGIN_YELLOW), (29, E.END_YELLOW),
         (29, E.BEGIN_RED_CLEARANCE), (31, E.END_RED_CLEARANCE),
         (60, E.BEGIN_GREEN), (95, E.MAX_OUT), (95, E.BEGIN_YELLOW), (99, E.END_YELLOW), (101, E.END_RED_CLEARANCE),
         (130, E.BEGIN_GREEN), (150, E.FORCE_OFF), (150, E.BEGIN_YELLOW), (154, E.END_YELLOW),  # no 11 logged
         (200, E.BEGIN_GREEN)],  # incomplete: no yellow in the log
        2,
    )  # fmt: skip
    ev = EventTable.from_records([*signals, (0.0, "J1", 135, 35)])  # "split 2 change": programmed 35 s
    sm = split_monitor(ev, 2)
    assert sm.split_s.tolist() == [31, 41, 24]  # green + yellow + red clearance (end of yellow without an 11)
    assert sm.cycles.termination.tolist() == [E.GAP_OUT, E.MAX_OUT, E.FORCE_OFF]
    s = sm.summary()
    assert s["p85_split_s"] == pytest.approx(38.0)  # sorted 24, 31, 41: 31 + 0.7 * 10
    assert s["mean_split_s"] == pytest.approx(32.0)
    assert s["gap_out_pct"] == s["max_out_pct"] == s["force_off_pct"] == pytest.approx(100 / 3)
    assert sm.programmed_split_s.tolist() == [35.0]


# ---------------------------------------------------------------------------------------------
# Yellow and red actuations
# ---------------------------------------------------------------------------------------------
def test_yellow_and_red_actuations() -> None:
    signals = _phase(
        [(60, E.BEGIN_GREEN), (100, E.BEGIN_YELLOW), (104, E.END_YELLOW), (104, E.BEGIN_RED_CLEARANCE),
         (106, E.END_RED_CLEARANCE), (140, E.BEGIN_GREEN), (200, E.BEGIN_YELLOW), (204, E.END_YELLOW),
         (206, E.END_RED_CLEARANCE), (240, E.BEGIN_GREEN)],
        2,
    )  # fmt: skip
    hits = [50, 101, 103.9, 104, 105, 107, 109.5, 150, 202, 230]
    ev = EventTable.from_records(signals + _det(hits, 7, hold_s=0.2))
    yr = yellow_red_actuations(ev, 2, [DetectorConfig(7, 2, frozenset({LLS}))], severe_s=4.0)
    # 50 and 150 fall in green (no yellow-red cycle); 101, 103.9, 202 in yellow; 104, 105 in red clearance
    # (time into red 0 and 1 s); 107, 109.5, 230 in red (3, 5.5, 26 s): 109.5 and 230 are severe (> 4 s).
    assert yr.kind.tolist() == [0, 0, 1, 1, 2, 2, 0, 2]
    assert yr.into_red_s == pytest.approx([-3, -0.1, 0, 1, 3, 5.5, -2, 26])
    s = yr.summary()
    assert (s["yellow"], s["red_clearance"], s["red"], s["violations"], s["severe_violations"]) == (3, 2, 3, 5, 2)
    assert s["volume"] == 9  # every hit from the first yellow (100) to the last cycle's green (240)
    assert s["violation_pct"] == pytest.approx(100 * 5 / 9)
    assert s["mean_time_into_red_s"] == pytest.approx((0 + 1 + 3 + 5.5 + 26) / 5)


# ---------------------------------------------------------------------------------------------
# Approach volume and turning movement counts
# ---------------------------------------------------------------------------------------------
def _spread(n: int, a: float, b: float) -> list[float]:
    return list(np.linspace(a, b, n, endpoint=False) + 1.0)


def test_approach_volume_per_hour_phf_k_and_d() -> None:
    eb1 = _spread(30, 0, 900) + _spread(60, 900, 1800) + _spread(45, 1800, 2700) + _spread(15, 2700, 3600)
    eb2 = [t for q in range(4) for t in _spread(10, 900 * q, 900 * (q + 1))]
    wb = [t for q in range(4) for t in _spread(20, 900 * q, 900 * (q + 1))]
    ev = EventTable.from_records(_det(eb1, 1) + _det(eb2, 2) + _det(eb1, 3) + _det(wb, 4))
    dets = [
        DetectorConfig(1, 2, frozenset({AC}), approach="EB", lane="EB-1"),
        DetectorConfig(2, 2, frozenset({AC}), approach="EB", lane="EB-2"),
        DetectorConfig(3, 6, frozenset({AC}), approach="EB", lane="EB-1"),  # same lane, another phase: counted once
        DetectorConfig(4, 6, frozenset({AC}), approach="WB", lane="WB-1"),
    ]
    vol = approach_volume(ev, dets, bin_s=900, start_s=0, end_s=3600)
    eb = vol["approaches"]["EB"]
    assert eb["counts"] == [40, 70, 55, 25]
    assert eb["volume_veh_h"] == [160, 280, 220, 100]
    assert eb["peak_hour"]["volume_veh_h"] == 190
    assert eb["peak_hour"]["phf"] == pytest.approx(190 / (4 * 70))
    assert eb["k_factor"] == pytest.approx(1.0)
    assert eb["d_factor"] == pytest.approx(190 / (190 + 80))
    assert vol["approaches"]["WB"]["peak_hour"]["phf"] == pytest.approx(1.0)


def test_peak_hour_slides_over_quarters() -> None:
    ph = peak_hour(np.array([10, 20, 30, 40, 50, 10.0]), np.arange(6) * 900.0)
    assert ph["start_s"] == 900.0 and ph["volume_veh_h"] == 140.0
    assert ph["phf"] == pytest.approx(140 / (4 * 50))


def test_turning_movement_counts_and_lane_utilisation() -> None:
    ev = EventTable.from_records(_det(_spread(60, 0, 3600), 1) + _det(_spread(40, 0, 3600), 2))
    dets = [DetectorConfig(c, 2, frozenset({LLC}), approach="EB", lane=f"EB-{c}", movement="T") for c in (1, 2)]
    tmc = turning_movement_counts(ev, dets, bin_s=3600, start_s=0, end_s=3600)
    (mv,) = tmc["movements"]
    assert (mv["approach"], mv["movement"], mv["total"]) == ("EB", "T", 100)
    assert mv["lane_volume_veh_h"] == [[60.0], [40.0]]
    assert mv["f_lu"] == pytest.approx(100 / (2 * 60))


# ---------------------------------------------------------------------------------------------
# Files and the intersection model
# ---------------------------------------------------------------------------------------------
def test_engine_log_through_file_gives_the_plans_splits(tmp_path: Path) -> None:
    """The engine's own recorder -> gzip CSV -> measures: fixed 60 s plan, 25 s green + 3 s yellow + 2 s red."""
    net = Network((two_phase("J"),), nx.DiGraph())
    plan = {"J": TimingPlan("J", 60, 0, (PlanStage("SA", 25, 5), PlanStage("SB", 25, 5)))}
    with FakeBackend(net, arrival_rate_veh_s=0.2, seed=2) as be:
        eng = Engine(be, make_policy("fixed", plans=plan), hires=True)
        eng.run(until_s=605)
    assert isinstance(eng.hires, EventRecorder)
    path = eng.hires.write_csv(tmp_path / "events.csv.gz")
    ev = read_events(path)
    assert ev.devices == ("J",) and len(ev) == len(eng.hires)
    sm = split_monitor(ev, 1)
    assert sm.split_s[0] == 25.0  # start-up: the first green begins at 5 s, when stage SA is already due
    assert len(sm.split_s) >= 9 and np.allclose(sm.split_s[1:], 30.0)
    cyc = red_to_red_cycles(ev, 2)
    assert np.allclose(cyc.end_s - cyc.start_s, 60.0)


def test_config_from_the_model_uses_the_recorders_numbering(tmp_path: Path) -> None:
    net = Network((four_leg("J1"),), nx.DiGraph())
    with FakeBackend(net) as be:
        rec = EventRecorder(net, be.packed, be.detectors)
    cfg = config_from_network(net)["J1"]
    assert [d.channel for d in cfg.detectors] == rec.channel.tolist()
    assert [d.phase for d in cfg.detectors] == [1, 2, 3, 4]  # groups NS, EW, NL, EL: position + 1
    assert {d.movement for d in cfg.detectors} == {"T", "L"}
    # 2 m stop-line loops are stop-bar presence; a JSON round trip keeps everything.
    assert all(DetectionType.STOP_BAR_PRESENCE in d.types for d in cfg.detectors)
    path = save_detector_config({"J1": cfg}, tmp_path / "det.json")
    assert load_detector_config(path)["J1"].detectors == cfg.detectors


def test_bad_inputs_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "x.csv.gz"
    with gzip.open(bad, "wt") as f:
        f.write("time,device,code,param\n")
    with pytest.raises(InputError, match="not an ATSPM event file"):
        read_events(bad)
    with pytest.raises(InputError, match="not found"):
        read_events(tmp_path / "missing.csv.gz")
    cfg = tmp_path / "det.json"
    cfg.write_text(json.dumps({"intersections": {"J1": {"detectors": [{"channel": 1, "phase": 2}]}}}))
    with pytest.raises(InputError, match=r"detectors\[0\]"):
        load_detector_config(cfg)
    with pytest.raises(InputError, match="no events for intersection 'J9'"):
        _pcd_log().for_device("J9")


def test_report_writes_json_and_pngs(tmp_path: Path) -> None:
    ev = _pcd_log()
    cfg = IntersectionDetectors("J1", (ADV, DetectorConfig(9, 2, frozenset({SBP}))), {2: "EB T"})
    doc = intersection_measures(ev, "J1", cfg, bin_s=60)
    assert doc["skipped"].keys() == {"tmc", "yellow_red"}
    files = write_report(doc, tmp_path / "rep")
    names = {f.name for f in files}
    assert {"measures.json", "pcd_phase2.png", "split_monitor.png", "split_failure_phase2.png"} <= names
    back = json.loads((tmp_path / "rep" / "measures.json").read_text())
    assert back["measures"]["pcd"]["2"]["summary"]["aog"] == 5
    assert all((tmp_path / "rep" / n).read_bytes()[:4] == b"\x89PNG" for n in names if n.endswith(".png"))


def _write_log(path: Path, ev: EventTable) -> None:
    from datetime import timedelta

    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("TimeStamp,DeviceId,EventId,Parameter\n")
        for t, d, c, p in zip(ev.time_s, ev.device, ev.code, ev.param, strict=True):
            ts = (ev.origin + timedelta(seconds=float(t))).isoformat(timespec="milliseconds")
            f.write(f"{ts},{ev.devices[d]},{c},{p}\n")


def test_report_command_reads_the_log_and_the_detector_sidecar(tmp_path: Path) -> None:
    from api.cli import main
    from scenarios.atspm.detectors import sidecar_path

    log = tmp_path / "run" / "events.csv.gz"
    log.parent.mkdir()
    _write_log(log, _pcd_log())
    assert main(["report", "--events", str(log), "--intersection", "J1", "--out", str(tmp_path / "a")]) == 0
    doc = json.loads((tmp_path / "a" / "measures.json").read_text())
    assert "pcd" in doc["skipped"] and doc["detector_source"] is None  # no configuration: phase-only measures
    save_detector_config({"J1": IntersectionDetectors("J1", (ADV,))}, sidecar_path(log))
    assert (
        main(["report", "--events", str(log), "--intersection", "J1", "--out", str(tmp_path / "b"), "--bin-min", "1"])
        == 0
    )
    doc = json.loads((tmp_path / "b" / "measures.json").read_text())
    assert doc["measures"]["pcd"]["2"]["summary"]["aog"] == 5
    assert (tmp_path / "b" / "pcd_phase2.png").is_file()
    assert main(["report", "--events", str(log), "--intersection", "J9", "--out", str(tmp_path / "c")]) == 2
