"""Per-tick cost of the vectorised policies for a 1,000-intersection city.

Builds 1,000 synthetic intersections (benchmarks/synthetic.py), drives them
through the safety supervisor with random but realistic observations, and
times ``decide`` of the adaptive and max-pressure policies, and of the
straightforward per-intersection Python loop implementation of the adaptive
policy (controller/policies/adaptive_reference.py, the one the tests check
decision for decision), all in the same run on the same inputs.

Usage:  python benchmarks/bench_policy.py [--n 1000] [--ticks 200]
Prints ``name: value`` lines; last ``adaptive_ms_per_tick_1000`` and ``speedup_vs_loop``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from synthetic import synthetic_city

from controller.arrays import pack
from controller.backend import Observation, detector_layout
from controller.estimate import DemandEstimator
from controller.policies.adaptive import AdaptivePolicy
from controller.policies.adaptive_reference import AdaptiveReference
from controller.policies.base import PolicyContext
from controller.policies.max_pressure import MaxPressurePolicy
from controller.safety import SafetySupervisor


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--ticks", type=int, default=200)
    ap.add_argument("--loop-ticks", type=int, default=20)
    a = ap.parse_args()
    net = synthetic_city(a.n)
    packed = pack(net.intersections)
    lay = detector_layout(net)
    rng = np.random.default_rng(1)
    policies = {"adaptive": AdaptivePolicy(), "max_pressure": MaxPressurePolicy(), "loop": AdaptiveReference()}
    for p in policies.values():
        p.reset(net, packed)
    sup = SafetySupervisor(packed)
    est = DemandEstimator(lay, packed.n, packed.g)
    spent = {k: 0.0 for k in policies}
    calls = {k: 0 for k in policies}
    d = len(lay.ids)
    for t in range(a.ticks):
        obs = Observation(
            time_s=float(t),
            counts=rng.poisson(0.3, d).astype(float),
            occupancy=rng.uniform(0, 1, d) * (rng.uniform(0, 1, d) < 0.4),
            queue_veh=rng.poisson(4.0, (packed.n, packed.g)).astype(float),
            signal_state=sup.state.copy(),
            comm_age_s=np.zeros(packed.n),
            fault=np.zeros(packed.n, bool),
        )
        e = est.update(obs, 1.0)
        ctx = PolicyContext(
            float(t), 1.0, sup.target.copy(), sup.state.copy(), sup.state_time_s + 1.0, sup.walked.copy()
        )
        req = None
        for name, pol in policies.items():
            if name == "loop" and t >= a.loop_ticks:
                continue
            t0 = time.perf_counter()
            out = pol.decide(obs, e, ctx)
            spent[name] += time.perf_counter() - t0
            calls[name] += 1
            if name == "adaptive":
                req = out
        sup.step(req, 1.0 if t else 0.0)
    ms = {k: 1000 * spent[k] / max(calls[k], 1) for k in policies}
    n = a.n
    print(f"intersections: {n}")
    print(f"loop_ms_per_tick_{n}: {ms['loop']:.2f}")
    print(f"max_pressure_ms_per_tick_{n}: {ms['max_pressure']:.3f}")
    print(f"adaptive_ms_per_tick_{n}: {ms['adaptive']:.3f}")
    print(f"speedup_vs_loop: {ms['loop'] / ms['adaptive']:.1f}")


if __name__ == "__main__":
    main()
