"""Every registered policy, found through the registry, is safe through the supervisor.

A new policy registered in ``controller/policies/`` is picked up here without being
listed: random intersections, random observations with persistent demand, and the
independent MMU check on every transition. Policies that play plans (``plans`` in
their constructor: fixed time, Webster) get a Webster plan for the intersection, as
their ``plans_from_demand`` declaration asks of whoever starts a run.
"""

from __future__ import annotations

import inspect
import os

import networkx as nx
import numpy as np
import pytest
from gwstrategies import random_intersection
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from controller.arrays import pack
from controller.backend import FakeBackend
from controller.engine import Engine
from controller.policies import Policy, policy_factory, policy_names
from controller.policies.base import declared
from controller.safety import mmu_faults
from controller.timing import Demand, compute_plans
from intersections.errors import PlanError
from intersections.model import SignalState
from intersections.network import Network

GREEN, YELLOW = int(SignalState.GREEN), int(SignalState.YELLOW)
CASES = int(os.environ.get("GW_POLICY_CASES", "25"))
POLICIES = policy_names()


def build(name: str, net: Network) -> Policy:
    factory = policy_factory(name)
    params = {}
    if "plans" in inspect.signature(factory).parameters:
        flows = {i.id: {g.id: 300.0 for g in i.groups if g.movements} for i in net.intersections}
        demand = Demand.from_group_flows(net, flows)
        try:
            plans = compute_plans(net, demand, method="webster")
        except PlanError:
            # Plan design is the timing tests' business (tests/controller/test_webster.py); here
            # only what a policy does with a sound plan is tested.
            reject()
        params["plans"] = {p.intersection_id: p for p in plans}
    return factory(**params)


def test_the_registry_holds_the_built_in_policies() -> None:
    assert {"actuated", "adaptive", "fixed", "max-pressure", "sumo", "webster"} <= set(POLICIES)


@pytest.mark.parametrize("name", POLICIES)
def test_every_policy_declares_what_the_engine_asks(name: str) -> None:
    factory = policy_factory(name)
    for member in ("reads", "passive", "plans_from_demand", "last_termination", "detector_failed", "pending_events"):
        declared(factory, member)  # a default or the policy's own; never an AttributeError


@pytest.mark.parametrize("name", POLICIES)
@settings(max_examples=CASES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inter=random_intersection("J1"), seed=st.integers(0, 2**31 - 1))
def test_every_policy_is_safe_through_the_supervisor(name: str, inter: object, seed: int) -> None:
    net = Network((inter,), nx.DiGraph())  # type: ignore[arg-type]
    packed = pack(net.intersections)
    rates = np.random.default_rng(seed).uniform(0.05, 0.3, (packed.n, packed.g)) * packed.group_valid
    policy = build(name, net)
    with FakeBackend(net, arrival_rate_veh_s=rates, seed=seed) as be:
        engine = Engine(be, policy)
        sup = engine.supervisor
        prev_state, prev_time = sup.state.copy(), sup.state_time_s.copy()
        for t in range(200):
            res = engine.tick()
            shown = (res.states == GREEN) | (res.states == YELLOW)
            assert not (packed.conflicts & shown[:, :, None] & shown[:, None, :]).any(), f"{name} at t={t}"
            assert not res.report.violation.any()
            dt = 1.0 if t else 0.0
            assert not mmu_faults(packed, prev_state, prev_time, sup.since_green_end_s, res.states, dt).any()
            prev_state, prev_time = res.states.copy(), sup.state_time_s.copy()
