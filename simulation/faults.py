"""Detector fault injection: dead (NaN) and stuck-on detectors from a given time.

Field detectors fail in two ways that matter to a controller
(``../shared/reference/field-io.md`` §1.7: NTCIP 1202 detector alarms "no
activity" and "max presence"): they go silent, or they report presence all
the time. A scenario's ``[faults]`` table (``detector_fail_fraction``,
``at_s``, ``seed``, ``mode`` = dead | stuck | mixed) picks that share of the
detectors, seeded, and from ``at_s`` on rewrites what the backend reports for
them: NaN counts and occupancy (dead) or occupancy 1.0 and no counts (stuck).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from controller.backend import Observation

__all__ = ["DetectorFaults"]


class DetectorFaults:
    """An observation filter for a backend (see ``SumoBackend.observation_filter``)."""

    def __init__(self, spec: Mapping[str, Any], n_detectors: int) -> None:
        self.fraction = float(spec.get("detector_fail_fraction", 0.0))
        self.at_s = float(spec.get("at_s", 0.0))
        mode = str(spec.get("mode", "mixed"))
        if not 0.0 <= self.fraction <= 1.0:
            raise ValueError(f"detector_fail_fraction must be in [0, 1], got {self.fraction}")
        if mode not in ("dead", "stuck", "mixed"):
            raise ValueError(f"mode must be dead, stuck or mixed, got {mode!r}")
        rng = np.random.default_rng(int(spec.get("seed", 0)))
        k = round(self.fraction * n_detectors)
        chosen = rng.choice(n_detectors, size=k, replace=False) if k else np.zeros(0, int)
        self.dead = np.zeros(n_detectors, bool)
        self.stuck = np.zeros(n_detectors, bool)
        if mode == "dead":
            self.dead[chosen] = True
        elif mode == "stuck":
            self.stuck[chosen] = True
        else:
            half = len(chosen) // 2
            self.dead[chosen[:half]] = True
            self.stuck[chosen[half:]] = True

    def __call__(self, obs: Observation) -> Observation:
        if obs.time_s < self.at_s or not (self.dead.any() or self.stuck.any()):
            return obs
        counts = obs.counts.copy()
        occ = obs.occupancy.copy()
        counts[self.dead] = np.nan
        occ[self.dead] = np.nan
        counts[self.stuck] = 0.0
        occ[self.stuck] = 1.0
        return dataclasses.replace(obs, counts=counts, occupancy=occ)
