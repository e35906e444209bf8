"""SUMO in the loop, for real: libsumo and TraCI, KPIs checked against SUMO's own files."""

from __future__ import annotations

import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import sumo_nets

from controller.backend import OBSERVATION_FIELDS
from intersections.errors import InputError, NetworkFileError, SimulationError
from intersections.loaders.sumo_net import load_sumo_net
from intersections.model import SignalState
from simulation import sumo_backend
from simulation.runner import resolve_run, simulate
from simulation.sumo_backend import merge_sumo_args
from simulation.sumo_home import sumo_binary

pytestmark = pytest.mark.sumo


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("small")
    net = sumo_nets.grid(d)
    return net, sumo_nets.flows(d, net, veh_h=300.0, end_s=300.0)


def _trips(path: Path) -> list[dict[str, str]]:
    return [dict(el.attrib) for el in ET.parse(path).getroot().iter("tripinfo")]


def test_sumo_controller_reproduces_plain_sumo(small: tuple[Path, Path], tmp_path: Path) -> None:
    net, routes = small
    plain = tmp_path / "plain.xml"
    subprocess.run(
        [sumo_binary("sumo"), "-n", str(net), "-r", str(routes), "--seed", "7", "--end", "400",
         "--tripinfo-output", str(plain), "--tripinfo-output.write-unfinished", "true", "--no-step-log", "true"],
        check=True, capture_output=True,
    )  # fmt: skip
    ours = tmp_path / "ours.xml"
    spec = resolve_run(net=net, routes=[routes], seed=7, end_s=400, tripinfo_output=ours)
    simulate(spec, "sumo", out_dir=tmp_path / "run")
    a, b = _trips(plain), _trips(ours)
    assert len(a) > 50
    assert a == b  # every attribute of every vehicle, identical


def test_a_relative_out_dir_works_from_any_working_directory(
    small: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The control centre's default data directory is relative (out/control-centre); SUMO resolves
    # relative output paths against its own additional files, which once doubled the path.
    net, routes = small
    monkeypatch.chdir(tmp_path)
    spec = resolve_run(net=net, routes=[routes], seed=7, end_s=60)
    k = simulate(spec, "actuated", out_dir=Path("out") / "run")
    assert (tmp_path / "out" / "run" / "tripinfo.xml").exists() and k["throughput_veh"] >= 0


def test_kpis_match_an_independent_reading_of_tripinfo(small: tuple[Path, Path], tmp_path: Path) -> None:
    net, routes = small
    ti = tmp_path / "ti.xml"
    k = simulate(resolve_run(net=net, routes=[routes], seed=3, end_s=300, tripinfo_output=ti), "actuated",
                 out_dir=tmp_path / "run")  # fmt: skip
    trips = _trips(ti)
    delay = np.array([float(t["timeLoss"]) + float(t["departDelay"]) for t in trips])
    pending = k["unfinished_veh"] - sum(1 for t in trips if t.get("vaporized"))
    assert pending >= 0
    if pending == 0:
        assert k["mean_delay_s"] == pytest.approx(delay.mean(), rel=1e-9)
        assert k["p95_delay_s"] == pytest.approx(np.percentile(delay, 95), rel=1e-9)
    finished = [t for t in trips if float(t["arrival"]) >= 0]
    assert k["throughput_veh"] == len(finished)
    assert k["mean_travel_time_s"] == pytest.approx(np.mean([float(t["duration"]) for t in trips]))
    assert k["mean_stops"] == pytest.approx(np.mean([float(t["waitingCount"]) for t in trips]))
    moto = [t for t in trips if t["vType"] == "motorcycle"]
    assert k["by_class"]["motorcycle"]["mean_travel_time_s"] == pytest.approx(
        np.mean([float(t["duration"]) for t in moto])
    )
    buses = [t for t in trips if t["vType"] == "bus"]
    assert k["bus_person_delay_s"] == pytest.approx(
        np.mean([float(t["timeLoss"]) + float(t["departDelay"]) for t in buses])
    )
    for key in (
        "mean_delay_s",
        "mean_travel_time_s",
        "mean_waiting_time_s",
        "mean_stops",
        "throughput_veh",
        "unfinished_veh",
        "teleports",
        "p95_delay_s",
        "by_class",
    ):
        assert key in k
    assert set(k["intersections"]) == {"A0", "A1", "B0", "B1"}
    assert all(v["los"] in "ABCDEF" for v in k["intersections"].values())
    assert k["queues"]["A0"]


@pytest.mark.parametrize("controller", ["actuated", "max-pressure"])
def test_controllers_drive_sumo_safely(small: tuple[Path, Path], tmp_path: Path, controller: str) -> None:
    net, routes = small
    network = load_sumo_net(net)
    conflicts = {i.id: i.conflicts for i in network.intersections}
    seen: list[np.ndarray] = []
    k = simulate(resolve_run(net=net, routes=[routes], seed=1, end_s=300), controller, out_dir=tmp_path,
                 on_tick=lambda r: seen.append(r.observation.signal_state.copy()))  # fmt: skip
    assert k["throughput_veh"] > 50 and k["teleports"] == 0 and k["collisions"] == 0
    states = np.array(seen)
    on = (states == int(SignalState.GREEN)) | (states == int(SignalState.YELLOW))
    for row, inter in enumerate(network.intersections):
        m = len(inter.groups)
        both = on[:, row, :m, None] & on[:, row, None, :m] & conflicts[inter.id][None]
        assert not both.any(), f"{inter.id} showed conflicting groups together"
    # What SUMO showed changed over time: the controller really drove the lights.
    assert len({s.tobytes() for s in states}) > 4


def test_traci_and_libsumo_agree(small: tuple[Path, Path], tmp_path: Path) -> None:
    net, routes = small
    a = simulate(resolve_run(net=net, routes=[routes], seed=2, end_s=200), "actuated", out_dir=tmp_path / "l")
    b = simulate(resolve_run(net=net, routes=[routes], seed=2, end_s=200, traci=True), "actuated",
                 out_dir=tmp_path / "t")  # fmt: skip
    for key in ("mean_delay_s", "throughput_veh", "unfinished_veh"):
        assert a[key] == pytest.approx(b[key])


def test_merge_sumo_args_replaces_our_default() -> None:
    ours = ["--time-to-teleport", "300", "--seed", "1", "--no-step-log", "true"]
    merged = merge_sumo_args(ours, ["--time-to-teleport=-1", "--lateral-resolution", "0.8"])
    assert merged == ["--seed", "1", "--no-step-log", "true", "--time-to-teleport=-1", "--lateral-resolution", "0.8"]
    assert merge_sumo_args(["-n", "a.net.xml", "--end", "5"], ["--net-file=b.net.xml"]) == [
        "--end", "5", "--net-file=b.net.xml"]  # fmt: skip


def test_user_sumo_arg_reaches_sumo(small: tuple[Path, Path], tmp_path: Path) -> None:
    net, routes = small
    spec = resolve_run(net=net, routes=[routes], seed=1, end_s=60, sumo_args=("--time-to-teleport=-1",))
    simulate(spec, "sumo", out_dir=tmp_path)  # SUMO would refuse the option given twice


# ---- bad input ------------------------------------------------------------------------


def test_missing_and_malformed_network(tmp_path: Path) -> None:
    with pytest.raises(NetworkFileError, match="file not found"):
        resolve_run(net=tmp_path / "nope.net.xml")
    bad = tmp_path / "bad.net.xml"
    bad.write_text("<net><edge id='a'")
    with pytest.raises(NetworkFileError, match=r"bad\.net\.xml"):
        simulate(resolve_run(net=bad), "sumo", out_dir=tmp_path / "o")


def test_network_without_traffic_lights(tmp_path: Path) -> None:
    net = sumo_nets.grid(tmp_path, tls=False)
    with pytest.raises(NetworkFileError, match="no traffic-light-controlled junctions"):
        simulate(resolve_run(net=net), "sumo", out_dir=tmp_path / "o")


def test_unknown_controller_and_inputs(small: tuple[Path, Path], tmp_path: Path) -> None:
    net, routes = small
    with pytest.raises(InputError, match="unknown controller 'nope'"):
        simulate(resolve_run(net=net, routes=[routes]), "nope", out_dir=tmp_path)
    with pytest.raises(InputError, match="give exactly one of"):
        resolve_run(net=net, sumocfg=net)
    with pytest.raises(InputError, match="route file not found"):
        resolve_run(net=net, routes=[tmp_path / "missing.rou.xml"])


def _sumo_children() -> list[int]:
    me = os.getpid()
    out = subprocess.run(["ps", "-o", "pid=,ppid=,stat=,comm=", "--ppid", str(me)], capture_output=True, text=True)
    return [int(ln.split()[0]) for ln in out.stdout.splitlines() if "sumo" in ln]


@pytest.mark.parametrize("traci", [False, True])
def test_sumo_refusing_to_start_is_reported_with_its_own_error(
    small: tuple[Path, Path], tmp_path: Path, traci: bool
) -> None:
    net, routes = small
    spec = resolve_run(net=net, routes=[routes], sumo_args=("--no-such-option",), traci=traci)
    with pytest.raises(SimulationError, match="SUMO failed to start") as e:
        simulate(spec, "actuated", out_dir=tmp_path)
    assert "no-such-option" in str(e.value)
    assert _sumo_children() == []


def test_sumo_dying_mid_run_leaves_no_zombie(small: tuple[Path, Path], tmp_path: Path) -> None:
    net, routes = small
    killed = []

    def kill(res):  # type: ignore[no-untyped-def]
        if res.time_s >= 20 and not killed:
            for pid in _sumo_children():
                os.kill(pid, 9)
                killed.append(pid)

    with pytest.raises(SimulationError, match="SUMO died at t="):
        simulate(resolve_run(net=net, routes=[routes], traci=True, end_s=200), "actuated", out_dir=tmp_path,
                 on_tick=kill)  # fmt: skip
    assert killed
    assert _sumo_children() == []


def _loop_counts(
    small: tuple[Path, Path], tmp: Path, monkeypatch: pytest.MonkeyPatch, **kw: object
) -> tuple[float, float]:
    """(sum of the backend's E1 counts over the run, SUMO's cumulative E1 count at the end).

    The backend counts a loop's new vehicles from its last-step vehicle data (SUMO recomputes an
    E1's interval count from every vehicle since the interval began, so reading that grew dearer
    all run); this holds the sum to SUMO's own counter, read once at the end.
    """
    net, routes = small
    seen = {"ours": 0.0, "sumo": 0.0}
    orig_read = sumo_backend.SumoBackend._read_detectors
    orig_close = sumo_backend.SumoBackend._shutdown

    def read(self: sumo_backend.SumoBackend) -> tuple[np.ndarray | None, ...]:
        values = orig_read(self)
        seen["ours"] += float(values[3].sum())
        return values

    def shutdown(self: sumo_backend.SumoBackend) -> None:
        if self._conn is not None and self.sumo_detectors is not None and not seen["sumo"]:
            il = self._conn.inductionloop
            seen["sumo"] = float(sum(il.getIntervalVehicleNumber(i) for i in self.sumo_detectors.e1_ids))
        orig_close(self)

    monkeypatch.setattr(sumo_backend.SumoBackend, "_read_detectors", read)
    monkeypatch.setattr(sumo_backend.SumoBackend, "_shutdown", shutdown)
    traci = bool(kw.pop("traci", False))
    spec = resolve_run(net=net, routes=[routes], seed=3, end_s=300, traci=traci)
    simulate(spec, "actuated", out_dir=tmp, **kw)  # type: ignore[arg-type]
    return seen["ours"], seen["sumo"]


@pytest.mark.parametrize("traci", [False, True])
def test_loop_counts_add_up_to_sumos_counter(
    small: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, traci: bool
) -> None:
    ours, theirs = _loop_counts(small, tmp_path, monkeypatch, traci=traci)
    assert theirs > 100  # the loops saw real traffic
    # The last tick's vehicles are read after SUMO's final step: at most a handful of loops differ by one.
    assert abs(ours - theirs) <= 3


def test_ticks_longer_than_a_step_count_every_vehicle(
    small: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours, theirs = _loop_counts(small, tmp_path, monkeypatch, dt_s=2.0)
    assert theirs > 100
    assert abs(ours - theirs) <= 3


@pytest.mark.parametrize("traci", [False, True])
def test_sumo_is_asked_only_for_what_the_policy_reads(small: tuple[Path, Path], tmp_path: Path, traci: bool) -> None:
    """max-pressure decides from queues alone: counts, occupancy and bus records stay unread (NaN,
    not a made-up zero), and the run is exactly the one that reading everything gives."""
    net, routes = small

    def run(tag: str, also: frozenset[str] = frozenset()) -> tuple[dict, list]:
        seen: list = []
        spec = resolve_run(net=net, routes=[routes], seed=3, end_s=200, traci=traci)
        k = simulate(
            spec, "max-pressure", out_dir=tmp_path / tag, on_tick=lambda r: seen.append(r.observation), also_read=also
        )
        return k, seen

    lean, lean_obs = run("lean")
    assert all(np.isnan(o.counts).all() and np.isnan(o.occupancy).all() and not o.extra for o in lean_obs)
    assert all(np.isfinite(o.queue_veh).all() for o in lean_obs)
    assert max(float(o.queue_veh.sum()) for o in lean_obs) > 0
    full, full_obs = run("full", OBSERVATION_FIELDS)
    assert sum(float(np.nansum(o.counts)) for o in full_obs) > 50
    assert len(full_obs) == len(lean_obs)
    for a, b in zip(lean_obs, full_obs, strict=True):
        np.testing.assert_array_equal(a.queue_veh, b.queue_veh)
    trips = [
        [ln for ln in (tmp_path / tag / "tripinfo.xml").read_text().splitlines() if "<tripinfo " in ln]
        for tag in ("lean", "full")
    ]
    assert trips[0] and trips[0] == trips[1]
    assert lean["mean_delay_s"] == full["mean_delay_s"]
