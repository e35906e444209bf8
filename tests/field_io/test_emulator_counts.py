"""Honest detection (#16): the emulator counts every vehicle its plant releases, in whole vehicles."""

from __future__ import annotations

import numpy as np

from controller.backend import FakeBackend
from controller.engine import Engine
from field_io.emulator.core import EmulatorConfig, LocalController


def _run(net, ticks: int, **plant):
    t = [0.0]
    core = LocalController(net, config=EmulatorConfig(backup_time_s=3.0), clock=lambda: t[0])
    with FakeBackend(net, record=False, **plant) as fake:
        eng = Engine(fake, core)
        per_tick = []
        released = np.zeros(len(core.layout.ids))
        for _ in range(ticks):
            res = eng.tick()
            core.publish(res)
            released += np.nan_to_num(res.observation.counts)
            per_tick.append(core.snapshot.period_count.copy())
            t[0] += 1.0
    return core, np.array(per_tick), released


def test_half_a_vehicle_per_tick_is_counted_not_rounded_away(example_net) -> None:
    # Saturation flow 0.5 veh/s and 1-s ticks: the fluid plant releases 0.5 vehicle per tick of green.
    core, per_tick, released = _run(example_net, 300, arrival_rate_veh_s=0.3, seed=None)
    assert released.sum() > 50  # the plant did discharge queues
    assert np.all(per_tick == np.floor(per_tick))  # whole vehicles only
    total = per_tick.sum(axis=0)
    assert np.all(np.abs(total - released) < 1.0 + 1e-9)  # every vehicle but the fraction in hand
    assert np.array_equal(core.snapshot.volume, total.astype(np.int64) & 0xFFFF)


def test_poisson_plant_counts_match_the_departures(example_net) -> None:
    _core, per_tick, released = _run(example_net, 200, arrival_rate_veh_s=0.2, seed=3)
    assert np.all(np.abs(per_tick.sum(axis=0) - released) < 1.0 + 1e-9)
