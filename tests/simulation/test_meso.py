"""The mesoscopic mode's pure parts: the input-output queue estimate, the model options, the refusal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from controller.backend import OBSERVATION_FIELDS, fields_read_by
from controller.policies import policy_factory, policy_names
from intersections.errors import InputError
from intersections.model import SignalState
from simulation.meso import (
    MESO_FIELDS,
    InputOutputQueue,
    MesoLoops,
    MesoReader,
    Model,
    Provision,
    estimated_fields,
    model_of,
    refuse_unmet,
)
from simulation.sumo_backend import sumo_command

G, R = int(SignalState.GREEN), int(SignalState.RED)


def _reference(
    arr: np.ndarray, dep: np.ndarray, green: np.ndarray, tau: int, storage: float, clear: int
) -> list[float]:
    """The same model for one group, a scalar loop, written from the equations (the slow oracle)."""
    q = n = 0.0
    quiet = 0
    hist: list[float] = []
    out = []
    for a, d, gr in zip(arr, dep, green, strict=True):
        hist.append(a)
        at_line = hist[-1 - tau] if len(hist) > tau else 0.0
        n = max(n + a - d, 0.0)
        q = min(max(q + at_line - d, 0.0), n)
        quiet = quiet + 1 if gr and d <= 0 else 0
        if quiet >= clear:
            q = 0.0
            n = min(n, sum(hist[-tau:]) if tau else 0.0)
        q = min(q, storage)
        out.append(q)
    return out


def test_a_red_queue_builds_after_the_zone_travel_time_and_a_green_discharges_it() -> None:
    est = InputOutputQueue(np.array([[3]]), np.array([[50.0]]), clear_ticks=5)
    qs = [float(est.update(np.array([[1.0]]), np.array([[0.0]]), np.array([[False]]))[0, 0]) for _ in range(10)]
    assert qs[:3] == [0.0, 0.0, 0.0]  # still travelling to the stop line
    assert qs[3:] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    assert est.in_zone_veh[0, 0] == 10.0  # ten entered, three of them not yet queued
    for _ in range(3):
        q = est.update(np.array([[0.0]]), np.array([[2.0]]), np.array([[True]]))
    assert q[0, 0] == pytest.approx(4.0)  # 7 + 3 joined - 6 left


def test_a_green_that_releases_nothing_has_no_queue_left() -> None:
    est = InputOutputQueue(np.array([[0]]), np.array([[50.0]]), clear_ticks=4)
    est.update(np.array([[8.0]]), np.array([[0.0]]), np.array([[False]]))  # a count error: 8 that never come
    q = [float(est.update(np.zeros((1, 1)), np.zeros((1, 1)), np.array([[True]]))[0, 0]) for _ in range(4)]
    assert q == [8.0, 8.0, 8.0, 0.0]
    assert est.in_zone_veh[0, 0] == 0.0


def test_the_queue_never_passes_the_zone_storage_nor_the_vehicles_in_the_zone() -> None:
    est = InputOutputQueue(np.array([[0, 0]]), np.array([[5.0, 100.0]]))
    for _ in range(20):
        q = est.update(np.array([[1.0, 1.0]]), np.array([[0.0, 0.0]]), np.array([[False, False]]))
    assert q.tolist() == [[5.0, 20.0]]
    q = est.update(np.array([[0.0, 0.0]]), np.array([[0.0, 25.0]]), np.array([[False, True]]))
    assert q[0, 1] == 0.0 and est.in_zone_veh[0, 1] == 0.0  # more left than were there: nothing below zero


@pytest.mark.parametrize("seed", range(5))
def test_the_vectorised_estimate_matches_the_scalar_equations(seed: int) -> None:
    rng = np.random.default_rng(seed)
    t, n, g = 300, 3, 4
    tau = rng.integers(0, 8, (n, g))
    storage = rng.uniform(3, 30, (n, g))
    arr = rng.poisson(0.4, (t, n, g)).astype(float)
    green = (np.arange(t)[:, None, None] // rng.integers(10, 40, (1, n, g))) % 2 == 1
    dep = np.where(green, rng.poisson(0.6, (t, n, g)), 0).astype(float)
    est = InputOutputQueue(tau, storage, clear_ticks=4)
    got = np.array([est.update(arr[k], dep[k], green[k]) for k in range(t)])
    for i in range(n):
        for j in range(g):
            ref = _reference(arr[:, i, j], dep[:, i, j], green[:, i, j], int(tau[i, j]), storage[i, j], 4)
            assert got[:, i, j] == pytest.approx(ref), (i, j)


def test_skipping_the_groups_never_fed_changes_no_queue() -> None:
    """Groups that get no arrival nor departure keep a zero queue; the fed ones are computed as before."""
    rng = np.random.default_rng(7)
    t, n, g = 200, 4, 5
    tau = rng.integers(0, 6, (n, g))
    storage = rng.uniform(3, 30, (n, g))
    fed = np.flatnonzero(rng.random(n * g) < 0.5)
    mask = np.zeros(n * g, bool)
    mask[fed] = True
    arr = rng.poisson(0.5, (t, n, g)) * mask.reshape(n, g)
    green = rng.random((t, n, g)) < 0.5
    dep = np.where(green, rng.poisson(0.7, (t, n, g)), 0) * mask.reshape(n, g)
    full, part = InputOutputQueue(tau, storage, clear_ticks=3), InputOutputQueue(tau, storage, clear_ticks=3, fed=fed)
    for k in range(t):
        q_full, q_part = full.update(arr[k], dep[k], green[k]), part.update(arr[k], dep[k], green[k])
        assert np.array_equal(q_full, q_part) and np.array_equal(full.in_zone_veh, part.in_zone_veh)
    assert q_full.reshape(-1)[mask].any() and not q_part.reshape(-1)[~mask].any()
    with pytest.raises(ValueError, match="fed"):
        InputOutputQueue(tau, storage, fed=np.array([n * g]))


def test_bad_estimator_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="delay_ticks"):
        InputOutputQueue(np.array([-1]), np.array([1.0]))
    with pytest.raises(ValueError, match="storage_veh"):
        InputOutputQueue(np.array([[1]]), np.array([[-1.0]]))
    with pytest.raises(ValueError, match="clear_ticks"):
        InputOutputQueue(np.array([[1]]), np.array([[1.0]]), clear_ticks=0)


def _loops() -> MesoLoops:
    """One intersection, two groups on one 2-lane approach (one lane each), loops 0 (entry) and 1, 2 (exits)."""
    return MesoLoops(
        additional=Path("x.add.xml"),
        loop_ids=("entry", "exit_a", "exit_b"),
        pair_loop=np.array([0, 0]),
        pair_flat=np.array([0, 1]),
        pair_w0=np.array([0.5, 0.5]),
        dep_loop=np.array([1, 2, 2]),  # exit_b is fed by both groups
        dep_pair=np.array([0, 0, 1]),
        dep_w=np.array([1.0, 1.0, 1.0]),
        det_pair=np.array([0, 1]),
        det_w=np.array([1.0, 1.0]),
        det_lane=("e_0", "e_1"),
        delay_s=np.array([[2.0, 2.0]]),
        storage_veh=np.array([[10.0, 10.0]]),
        stop_lanes=np.array([[1.0, 1.0]]),
        zone_m=np.array([75.0, 75.0]),
        movement={},
        edge_length_m={},
    )


class _Packed:  # the PackedNetwork members the reader uses
    n, g = 1, 2
    group_valid = np.array([[True, True]])


def _reader() -> MesoReader:
    from controller.backend import DetectorLayout

    layout = DetectorLayout(("e_0@a", "e_1@b"), np.array([0, 0]), np.array([0, 1]), np.array([True, True]))
    return MesoReader(_loops(), _Packed(), layout, 1.0, e2_lanes=("e_0", "e_1"))  # type: ignore[arg-type]


def test_the_reader_splits_arrivals_over_lanes_and_gives_exit_counts_to_the_green_feeders() -> None:
    reader = _reader()
    red_green = np.array([[R, G]], np.int8)
    counts, occ, q, lanes = reader.update(np.array([4.0, 0.0, 0.0]), red_green)
    assert counts.tolist() == [2.0, 2.0] and q.tolist() == [[0.0, 0.0]]  # still on their way (2 s)
    reader.update(np.zeros(3), red_green)
    counts, occ, q, lanes = reader.update(np.array([0.0, 0.0, 1.0]), red_green)
    # Group 0 (red) keeps its 2; exit_b's vehicle left on group 1's green (group 0 is red, not recent).
    assert q.tolist() == [[2.0, 1.0]]
    assert lanes.tolist() == [2.0, 1.0]
    assert occ[0] == pytest.approx(2.0 * 5.0 / 75.0)


def test_lanes_count_whole_vehicles_and_a_green_that_releases_nothing_clears_its_queue() -> None:
    reader = _reader()
    green_b, green_a = np.array([[R, G]], np.int8), np.array([[G, R]], np.int8)
    seen, red_queue = [], []
    for t in range(1200):  # every other second a vehicle enters, and one leaves through group 1 on its green
        a_turn = t % 120 >= 112  # group 0 gets 8 s of green a cycle: nobody leaves through it
        c = np.array([float(t % 2 == 0), 0.0, float(t % 2 == 1 and not a_turn)])
        counts, _occ, q, _lanes = reader.update(c, green_a if a_turn else green_b)
        seen.append(counts)
        red_queue.append(q[0, 0])
    counts = np.array(seen)
    assert np.array_equal(counts, np.round(counts))  # whole vehicles, never a fraction of one
    assert counts.sum(axis=0).tolist() == [300.0, 300.0]  # each lane every other vehicle: its gaps are 4 s
    assert np.all(np.diff(np.flatnonzero(counts[:, 0])) == 4)
    # Lane shares credit group 0 with half the arrivals: its queue builds while red and is gone
    # once its green has released nothing for CLEAR_S.
    assert max(red_queue) >= 10 and red_queue[119] == 0.0


def test_meso_options_come_from_one_table_and_a_user_mesosim_means_meso() -> None:
    micro = sumo_command(net="a.net.xml", seed=1, step_length_s=1.0, log_file="l")
    meso = sumo_command(net="a.net.xml", seed=1, step_length_s=1.0, log_file="l", model="meso")
    assert "--mesosim" not in micro
    assert meso[meso.index("--mesosim") + 1] == "true"
    assert meso[meso.index("--meso-junction-control") + 1] == "true"
    assert model_of(micro) is Model.MICRO and model_of(meso) is Model.MESO
    assert model_of(["--mesosim=true"]) is Model.MESO
    assert model_of(["--mesosim", "true", "--mesosim", "false"]) is Model.MICRO
    user = sumo_command(net="a.net.xml", seed=1, step_length_s=1.0, log_file="l", model="meso",
                        user_args=["--mesosim", "false"])  # fmt: skip
    assert model_of(user) is Model.MICRO
    sublane = ["--lateral-resolution", "0.8", "--step-method.ballistic", "true"]
    meso_sub = sumo_command(net="a.net.xml", seed=1, step_length_s=1.0, log_file="l", model="meso",
                            scenario_args=sublane)  # fmt: skip
    assert meso_sub[meso_sub.index("--lateral-resolution") + 1] == "-1" and meso_sub.count("--lateral-resolution") == 1
    assert "0.8" not in meso_sub and "--step-method.ballistic" in meso_sub
    micro_sub = sumo_command(net="a.net.xml", seed=1, step_length_s=1.0, log_file="l", scenario_args=sublane)
    assert micro_sub[-4:] == sublane


def test_every_observation_field_has_a_meso_provision_and_every_builtin_controller_runs() -> None:
    assert set(MESO_FIELDS) == set(OBSERVATION_FIELDS)
    for name in policy_names():
        refuse_unmet(name, fields_read_by(policy_factory(name)))  # declared on the class
    note = estimated_fields(frozenset({"queue_veh", "exit_blocked"}))
    assert set(note) == {"queue_veh", "exit_blocked"} and note["queue_veh"].startswith("estimated: ")


def test_a_controller_reading_what_meso_cannot_give_is_refused_in_one_line() -> None:
    table = {**MESO_FIELDS, "extra": (Provision.ABSENT, "no vehicle positions")}
    with pytest.raises(InputError) as e:
        refuse_unmet("adaptive", frozenset({"queue_veh", "extra"}), table)
    text = str(e.value)
    assert "\n" not in text and "'adaptive' reads extra" in text and "--model micro" in text
    refuse_unmet("max-pressure", frozenset({"queue_veh", "exit_blocked"}), table)  # unknown is a defined value
