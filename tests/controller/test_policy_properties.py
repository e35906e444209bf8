"""Every registered policy with a ``max_red_s`` (adaptive, max-pressure, ... found through the
registry) through the supervisor, on random intersections and observations.

Properties: (a) never an unsafe state (no conflicting groups green/yellow together, every
transition passes the independent MMU check); (b) with persistent demand on every group,
no group waits red longer than the policy's max_red_s plus what the supervisor must serve
first (a minimum green and an intergreen for each stage ahead of it).
"""

from __future__ import annotations

import inspect
import os

import networkx as nx
import numpy as np
from gwstrategies import random_intersection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.arrays import pack
from controller.backend import Observation, detector_layout
from controller.estimate import DemandEstimator
from controller.policies import make_policy, policy_factory, policy_names
from controller.policies.base import PolicyContext
from controller.safety import SafetySupervisor, mmu_faults
from intersections.model import SignalState
from intersections.network import Network

GREEN, YELLOW = int(SignalState.GREEN), int(SignalState.YELLOW)
CASES = int(os.environ.get("GW_POLICY_CASES", "150"))
MAX_RED = 60.0
# The starvation bound is a promise of policies that take max_red_s; safety of every policy:
# tests/controller/test_every_policy.py.
BOUNDED = [n for n in policy_names() if "max_red_s" in inspect.signature(policy_factory(n)).parameters]


@st.composite
def setups(draw: st.DrawFn) -> tuple[Network, str, int, int]:
    k = draw(st.integers(1, 3))
    inters = tuple(draw(random_intersection(f"J{i}")) for i in range(k))
    policy = draw(st.sampled_from(BOUNDED))
    return Network(inters, nx.DiGraph()), policy, draw(st.integers(0, 2**31 - 1)), draw(st.integers(200, 500))


@settings(max_examples=CASES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(setups())
def test_policy_is_safe_and_starves_nobody(setup: tuple[Network, str, int, int]) -> None:
    net, name, seed, ticks = setup
    rng = np.random.default_rng(seed)
    packed = pack(net.intersections)
    lay = detector_layout(net)
    pol = make_policy(name, max_red_s=MAX_RED)
    pol.reset(net, packed)
    sup = SafetySupervisor(packed)
    est = DemandEstimator(lay, packed.n, packed.g)
    d = len(lay.ids)
    red_for = np.zeros((packed.n, packed.g))
    worst_allowed = np.zeros(packed.n)
    for r, inter in enumerate(net.intersections):
        per_stage = max(g.required_green_s for g in inter.groups) + float(inter.intergreen_s.max()) + 2.0
        worst_allowed[r] = MAX_RED + len(inter.stages) * per_stage + 2.0
    prev_state = sup.state.copy()
    for t in range(ticks):
        # Persistent demand everywhere, with random bursts, random counts, some NaN detectors.
        queue = (1.0 + rng.poisson(rng.uniform(0, 8), (packed.n, packed.g))) * packed.group_valid
        counts = rng.poisson(0.5, d).astype(float)
        occ = rng.uniform(0, 1, d)
        if rng.uniform() < 0.1 and d:
            counts[rng.integers(0, d)] = np.nan
        obs = Observation(float(t), counts, occ, queue, sup.state.copy(), np.zeros(packed.n), np.zeros(packed.n, bool))
        e = est.update(obs, 1.0)
        ctx = PolicyContext(
            float(t), 1.0, sup.target.copy(), sup.state.copy(), sup.state_time_s + (1.0 if t else 0), sup.walked.copy()
        )
        req = pol.decide(obs, e, ctx)
        prev_time = sup.state_time_s.copy()
        states, rep = sup.step(req, 1.0 if t else 0.0)
        shown = (states == GREEN) | (states == YELLOW)
        assert not (packed.conflicts & shown[:, :, None] & shown[:, None, :]).any()
        assert not rep.violation.any()
        # The independent MMU check, re-run here on what was shown.
        assert not mmu_faults(packed, prev_state, prev_time, sup.since_green_end_s, states, 1.0 if t else 0.0).any()
        prev_state = states.copy()
        # A crossing resting in DON'T WALK after its WALK was served in this stage; its wait
        # starts when the stage ends.
        red_for = np.where((states == GREEN) | sup.walked, 0.0, red_for + 1.0) * packed.group_valid
        over = red_for > worst_allowed[:, None]
        assert not over.any(), f"{name}: group starved {red_for.max():.0f} s at t={t}"
