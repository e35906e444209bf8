"""The preempt table over real UDP sockets: preemptDelay, preemptMinimumDuration and preemptLink.

The emulator runs each preempt of its table (NTCIP 1202 ``preemptTable``,
field-io.md §1.9); central reads the configuration when it reaches the
controller and ``preemptState`` of every preempt each tick, and reports which
preempt runs, a call timing its delay and a link standing. Times are
simulated seconds: the emulator ticks at 20x real time.
"""

from __future__ import annotations

import pytest

from controller.engine import Engine
from controller.policies import make_policy
from field_io.emulator.core import EmulatorConfig, LocalController, PreemptConfig, PreemptState
from field_io.ntcip.backend import NtcipBackend
from intersections.errors import InputError
from intersections.loaders import load_inventory
from intersections.model import SignalState

from .conftest import EXAMPLE

GREEN = int(SignalState.GREEN)
IDLE, CALL, DWELL, LINK = (int(s) for s in (PreemptState.NOT_ACTIVE, PreemptState.NOT_ACTIVE_WITH_CALL,
                                            PreemptState.DWELL, PreemptState.LINK_ACTIVE))  # fmt: skip


def _run(emu, net, script: dict[int, tuple[int, bool]], *, stop, max_polls: int = 400):
    """Poll through central every 50 ms; ``script``: emulator tick -> (preempt number, input on)."""
    core = emu.core
    rows = []
    backend = NtcipBackend(net, emu.endpoints, dt_s=0.05)
    with backend:
        eng = Engine(backend, make_policy("actuated"))
        done: set[int] = set()
        for _ in range(max_polls):
            tick = int(core.snapshot.tick)
            for at, (number, on) in script.items():
                if tick >= at and at not in done:
                    core.set_preempt(0, on, number)
                    done.add(at)
            obs = eng.tick().observation
            st = backend.status("J1")
            rows.append(
                {
                    "tick": tick,
                    "states": tuple(int(x) for x in st.preempt_states),
                    "number": int(obs.extra["preempt_number"][0]),
                    "state": int(obs.extra["preempt_state"][0]),
                    "active": int(obs.extra["preempt_active"][0]),
                    "signals": obs.signal_state[0].copy(),
                }
            )
            if len(done) == len(script) and stop(rows):
                break
        table = dict(backend.links[0].preempt_table)
        alarms = [m for _t, i, m in backend.alarms if i == "J1"]
    return rows, table, alarms


def _first(rows, pred) -> int:
    return next(r["tick"] for r in rows if pred(r))


def test_preempt_delay_holds_the_call_and_a_shorter_call_never_starts(example_net, emulator) -> None:
    pre = PreemptConfig(track_green_s=2.0, min_dwell_s=2.0, delay_s=6.0)
    emu = emulator(example_net, "ntcip", speed=20.0, preempts=(pre,))
    # A 2-s call, shorter than the 6-s delay: notActiveWithCall, then notActive, never a sequence.
    rows, table, alarms = _run(emu, example_net, {3: (1, True), 5: (1, False)}, stop=lambda rs: rs[-1]["tick"] > 14)
    assert table == {1: {"preemptLink": 0, "preemptDelay": 6, "preemptMinimumDuration": 0}}
    seen = {r["states"][0] for r in rows}
    assert CALL in seen and seen <= {IDLE, CALL}, seen
    assert max(r["active"] for r in rows) == 0  # a call timing its delay is not a preempt yet: central keeps control
    assert any(m.startswith("preempt 1 called, timing its preemptDelay of 6 s") for m in alarms), alarms
    # A standing call starts the sequence once the delay has run.
    rows, _table, alarms = _run(emu, example_net, {3: (1, True)}, stop=lambda rs: rs[-1]["states"][0] == DWELL)
    called = _first(rows, lambda r: r["states"][0] == CALL)
    started = _first(rows, lambda r: r["states"][0] > CALL)
    assert called < started <= called + 10, (called, started)  # as seen through polls; the exact times below
    core = emu.core
    assert core._preempt_start_t[0, 0] - core._preempt_call_t[0, 0] >= 6.0 - 1e-9
    assert any(m.startswith("preempt active (preempt 1,") for m in alarms), alarms
    core.set_preempt(0, False)


def test_minimum_duration_keeps_a_short_preempt_in_dwell(example_net, emulator) -> None:
    pre = PreemptConfig(track_green_s=1.0, min_dwell_s=1.0, min_duration_s=45.0)
    emu = emulator(example_net, "ntcip", speed=20.0, preempts=(pre,))
    inter = example_net.intersections[0]
    dwell_groups = [inter.group_index(g) for g in ("P2", "P6")]
    rows, table, _alarms = _run(
        emu, example_net, {3: (1, True), 5: (1, False)}, stop=lambda rs: rs[-1]["tick"] > 8 and rs[-1]["active"] == 0
    )
    assert table[1]["preemptMinimumDuration"] == 45
    core = emu.core
    start = _first(rows, lambda r: r["active"] == 1)
    end = _first(rows, lambda r: r["tick"] > start and r["active"] == 0)
    # The input stood 2 s; the preempt ran 45 s from its start (entry and track service take some 25 s
    # of minimum greens and clearances; the dwell held the rest, far past its 1-s minimum dwell).
    assert end - start >= 44, (start, end)
    dwell = [r for r in rows if r["states"][0] == DWELL]
    assert dwell[-1]["tick"] - dwell[0]["tick"] >= 10  # some 20 s of dwell, seen through polls (slower under load)
    assert all((r["signals"][dwell_groups] == GREEN).all() for r in dwell[2:])
    assert core.preempt_state[0, 0] in (IDLE, int(PreemptState.EXIT_STARTED))


def test_linked_preempt_takes_over_while_the_linking_call_stands(example_net, emulator) -> None:
    """Preempt 2 (a railway crossing, say) links to preempt 1: after preempt 2's minimum dwell, preempt 1
    runs on an automatic call (its own dwell stage, S3) for as long as preempt 2's input stands."""
    p1 = PreemptConfig(track_stage=0, dwell_stage=2, track_green_s=1.0, min_dwell_s=2.0)
    p2 = PreemptConfig(track_stage=0, dwell_stage=1, track_green_s=1.0, min_dwell_s=3.0, link=1)
    emu = emulator(example_net, "ntcip", speed=20.0, preempts=(p1, p2))
    inter = example_net.intersections[0]
    s3 = [inter.group_index(g) for g in ("P4", "P8")]
    linked = []

    def stop(rs) -> bool:
        if rs[-1]["states"] == (DWELL, LINK):
            linked.append(rs[-1]["tick"])
            if len(set(linked)) == 6:
                emu.core.set_preempt(0, False, 2)  # the linking call drops: both end
        return bool(linked) and rs[-1]["states"] == (IDLE, IDLE)

    rows, table, alarms = _run(emu, example_net, {3: (2, True)}, stop=stop)
    assert table[2]["preemptLink"] == 1 and table[1]["preemptLink"] == 0
    states = [r["states"] for r in rows]
    assert any(s[1] == DWELL and s[0] == IDLE for s in states), "preempt 2 dwells first, on its own"
    first_link = next(k for k, s in enumerate(states) if s[1] == LINK)
    assert any(s == (IDLE, DWELL) for s in states[:first_link]), "the link comes after preempt 2's own dwell"
    during = [r for r in rows if r["states"] == (DWELL, LINK)]
    assert all(r["number"] == 1 and r["state"] == DWELL and r["active"] == 1 for r in during)
    assert all((r["signals"][s3] == GREEN).all() for r in during[1:])  # preempt 1's dwell stage
    assert states[-1] == (IDLE, IDLE) and rows[-1]["active"] == 0
    assert any(m.startswith("preempt 2 linked to preempt 1") for m in alarms), alarms


def test_preempt_table_errors_are_one_line() -> None:
    with pytest.raises(InputError, match=r"preempt 2.*preemptLink 3: a link names a higher-priority preempt, 1\.\.1"):
        EmulatorConfig(preempts=(PreemptConfig(), PreemptConfig(link=3)))
    with pytest.raises(InputError, match=r"preempt 1.*preemptDelay must be 0-600 s, got 900"):
        EmulatorConfig(preempts=(PreemptConfig(delay_s=900),))
    with pytest.raises(InputError, match="preemptMinimumDuration must be 0-65535 s, got -1"):
        EmulatorConfig(preempts=(PreemptConfig(min_duration_s=-1),))
    core = LocalController(load_inventory(EXAMPLE), config=EmulatorConfig(preempts=(PreemptConfig(),)))
    with pytest.raises(InputError, match="no preempt 2: the controllers have 1"):
        core.set_preempt(0, True, 2)
