"""Detector fault injection: dead (NaN) and stuck-on detectors from a given time.

Field detectors fail in two ways that matter to a controller
(``../shared/reference/field-io.md`` §1.7: NTCIP 1202 detector alarms "no
activity" and "max presence"): they go silent, or they report presence all
the time. A scenario's ``[faults]`` table (``detector_fail_fraction``,
``at_s``, ``seed``, ``mode`` = dead | stuck | mixed) picks that share of the
detectors, seeded, and from ``at_s`` on rewrites what the backend reports for
them: NaN counts and occupancy (dead) or occupancy 1.0 and no counts (stuck).
A failed stop-line zone detector also takes its group's queue measurement with
it (the queue comes from those zones): that group's ``queue_veh`` becomes NaN,
as the field emulator reports it.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Mapping
from typing import Any

import numpy as np

from controller.backend import DetectorLayout, Observation

__all__ = ["DetectorFaults", "select_failed_detectors"]


def select_failed_detectors(n_detectors: int, faults: Mapping[str, Any]) -> dict[int, str]:
    """The detectors that fail under ``faults``: index -> ``"dead"`` / ``"stuck"``.

    ``round(detector_fail_fraction * n_detectors)`` detectors (at least one)
    are drawn without replacement by ``random.Random(seed)`` from
    ``range(n_detectors)`` (the backend's detector order); then
    ``round(stuck_share * failed)`` of them, drawn by the same generator, are
    stuck on and the rest dead (``mode`` = dead / stuck / mixed sets
    ``stuck_share`` 0 / 1 / 0.5 when it is not given). The same spec and count
    always give the same answer; an empty spec gives ``{}``.
    """
    if not faults or n_detectors <= 0:
        return {}
    fraction = float(faults.get("detector_fail_fraction", 0.0))
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"detector_fail_fraction must be in [0, 1], got {fraction}")
    mode = str(faults.get("mode", "mixed"))
    default_share = {"dead": 0.0, "stuck": 1.0, "mixed": 0.5}.get(mode)
    if default_share is None:
        raise ValueError(f"mode must be dead, stuck or mixed, got {mode!r}")
    share = float(faults.get("stuck_share", default_share))
    n_fail = min(n_detectors, max(1, math.floor(fraction * n_detectors + 0.5)))
    rng = random.Random(int(faults.get("seed", 0)))
    failed = sorted(rng.sample(range(n_detectors), n_fail))
    stuck = set(rng.sample(failed, math.floor(share * n_fail + 0.5)))
    return {i: "stuck" if i in stuck else "dead" for i in failed}


class DetectorFaults:
    """An observation filter for a backend (see ``SumoBackend.observation_filter``)."""

    def __init__(self, spec: Mapping[str, Any], n_detectors: int, layout: DetectorLayout | None = None) -> None:
        self.at_s = float(spec.get("at_s", 0.0))
        chosen = select_failed_detectors(n_detectors, spec)
        self.dead = np.zeros(n_detectors, bool)
        self.stuck = np.zeros(n_detectors, bool)
        for i, kind in chosen.items():
            (self.stuck if kind == "stuck" else self.dead)[i] = True
        self.layout = layout if layout is not None and len(layout.ids) == n_detectors else None

    def __call__(self, obs: Observation) -> Observation:
        if obs.time_s < self.at_s or not (self.dead.any() or self.stuck.any()):
            return obs
        counts = obs.counts.copy()
        occ = obs.occupancy.copy()
        counts[self.dead] = np.nan
        occ[self.dead] = np.nan
        counts[self.stuck] = 0.0
        occ[self.stuck] = 1.0
        if self.layout is None:
            return dataclasses.replace(obs, counts=counts, occupancy=occ)
        queue = np.array(obs.queue_veh, float, copy=True)
        queue[self.layout.stop_line_groups(self.dead | self.stuck, queue.shape)] = np.nan
        return dataclasses.replace(obs, counts=counts, occupancy=occ, queue_veh=queue)
