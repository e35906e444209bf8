"""How operator decisions reach the engine without bypassing the safety supervisor.

:class:`OverridePolicy` wraps the adaptive policy (whatever ``make_policy``
returns for the configured name). Per intersection it either passes the
adaptive request through, plays an activated fixed-time plan (the same
arithmetic as :class:`~controller.policies.fixed_time.FixedTimePolicy`, per
row), or requests a held stage (manual stage hold). Its output is only a
*request*: the engine hands it to :class:`~controller.safety.SafetySupervisor`,
which still serves every minimum green, yellow and all-red.

:class:`CentreBackend` wraps the real backend and adds what the control centre
needs to see and do at the backend seam:

* an operator **flash request** marks the intersection as out of central
  control (``fault``), so the supervisor runs its orderly clearance (yellow,
  all-red) to flash, exactly as for a lost controller, and leaves flash through
  all-red when the request ends (never automated: only an operator command,
  with confirmation and expiry, sets it);
* a technician can **cut a controller's link** (the emulated controller stops
  answering): its communication age grows, its detector data stop, and after
  the engine's stale-data limit the supervisor puts it into its fail-safe and
  the control centre raises a comm-loss alarm;
* it **times** every read (the backend latency metric) and every wait for the
  next real-time tick inside ``advance`` (field backends), through the
  ``on_read`` and ``on_wait`` callbacks, so the tick metric can leave the wait out.

:class:`Control` is what one intersection should run (a :class:`ControlKind`, its source and
plan), as the operator's standing choice, the schedule or a command decides it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import TYPE_CHECKING, Any

import networkx as nx
import numpy as np

from controller.arrays import PackedNetwork
from controller.backend import BaseBackend, Commands, Observation
from controller.estimate import Estimate
from controller.policies import Policy
from controller.policies.base import PolicyContext, declared
from controller.policies.fixed_time import plan_arrays
from controller.safety import HOLD
from intersections.network import Network
from intersections.plan import TimingPlan

if TYPE_CHECKING:
    from field_io.vehicle_feed import FeedBackend

__all__ = ["ADAPTIVE", "CentreBackend", "Control", "ControlKind", "OverrideMode", "OverridePolicy"]


class ControlKind(StrEnum):
    """What the control centre runs at an intersection (``Control.kind``; the dashboard shows the value)."""

    ADAPTIVE = "adaptive"
    FIXED = "fixed"
    HOLD = "hold"
    FLASH = "flash"


@dataclass(frozen=True)
class Control:
    """What one intersection should run, and why."""

    kind: ControlKind
    source: str = "standing"  # standing | schedule | command
    plan_id: int | None = None
    plan_version: int | None = None
    plan: TimingPlan | None = field(default=None, compare=False)
    stage: str | None = None
    command_id: int | None = None
    expires_at: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", ControlKind(self.kind))  # a stored mode read back as text

    def public(self) -> dict[str, Any]:
        """``kind`` and ``source`` always; the other fields only when set.

        Made once per control and shared (read-only) by every snapshot that shows it: the
        snapshot repeats it for every intersection every tick, and controls seldom change.
        """
        cached = self.__dict__.get("_public")
        if cached is not None:
            return cached
        out: dict[str, Any] = {"kind": self.kind, "source": self.source}
        for k in ("plan_id", "plan_version", "stage", "command_id"):
            v = getattr(self, k)
            if v is not None:
                out[k] = v
        if self.expires_at is not None:
            out["expires_at"] = self.expires_at.isoformat()
        object.__setattr__(self, "_public", out)  # frozen: the cache is not a field (no compare, no repr)
        return out


#: The control an intersection runs when nobody chose another.
ADAPTIVE = Control(ControlKind.ADAPTIVE)


class OverrideMode(IntEnum):
    ADAPTIVE = 0
    FIXED = 1
    HOLD = 2
    FLASH = 3


_FIXED = int(OverrideMode.FIXED)


class OverridePolicy(Policy):
    """The configured policy, overridden per intersection by the control centre."""

    name = "control-centre"
    passive = False

    def __init__(self, base: Policy) -> None:
        self.base = base
        self.network: Network | None = None
        self.mode = np.zeros(0, np.int8)

    # ---- binding ---------------------------------------------------------------------
    def reset(self, network: Network, packed: PackedNetwork) -> None:
        """Bind to the network; overrides survive a re-bind to the same network (twin restart)."""
        self.base.reset(network, packed)
        same = self.network is not None and self.network.ids == network.ids
        self.network = network
        self.packed = packed
        if not same:
            n = packed.n
            self.mode = np.zeros(n, np.int8)
            self.hold_stage = np.full(n, -1, np.int64)
            self.plans: list[TimingPlan | None] = [None] * n
            self._rebuild()

    def _row(self, intersection_id: str) -> int:
        assert self.network is not None
        return self.network.ids.index(intersection_id)

    def _rebuild(self) -> None:
        n = self.packed.n
        k_max = max((len(p.stages) for p in self.plans if p is not None), default=1)
        self.cycle_s = np.ones(n)
        self.offset_s = np.zeros(n)
        self.green_end_s = np.full((n, k_max), np.inf)
        self.stage_index = np.zeros((n, k_max), np.int64)
        self.n_stages = np.ones(n, np.int64)
        assert self.network is not None
        for r, plan in enumerate(self.plans):
            if plan is None:
                continue
            inter = self.network.intersections[r]
            one = Network((inter,), nx.DiGraph())
            cyc, off, ends, idx = plan_arrays(one, {inter.id: plan})
            k = ends.shape[1]
            self.cycle_s[r], self.offset_s[r] = cyc[0], off[0]
            self.green_end_s[r, :k] = ends[0]
            self.stage_index[r, :k] = idx[0]
            self.n_stages[r] = int((idx[0] >= 0).sum())

    # ---- what the control centre sets ------------------------------------------------------
    def set_adaptive(self, row: int) -> None:
        self.mode[row] = OverrideMode.ADAPTIVE

    def set_fixed(self, row: int, plan: TimingPlan) -> None:
        """Run ``plan`` at ``row``; raises PlanError (check_plan) before changing anything."""
        assert self.network is not None
        inter = self.network.intersections[row]
        plan_arrays(Network((inter,), nx.DiGraph()), {inter.id: plan})  # validates
        self.plans[row] = plan
        self._rebuild()
        self.mode[row] = OverrideMode.FIXED

    def set_hold(self, row: int, stage_index: int) -> None:
        if not (0 <= stage_index < self.packed.s) or not self.packed.stage_valid[row, stage_index]:
            raise ValueError(f"no stage {stage_index} at row {row}")
        self.hold_stage[row] = stage_index
        self.mode[row] = OverrideMode.HOLD

    def set_flash(self, row: int) -> None:
        self.mode[row] = OverrideMode.FLASH

    def fixed_plan(self, row: int) -> TimingPlan | None:
        # A plain int: numpy's int8 against an IntEnum member goes through enum lookups (~10x slower),
        # and the snapshot asks this of every intersection every tick.
        return self.plans[row] if int(self.mode[row]) == _FIXED else None

    # ---- policy protocol ---------------------------------------------------------------
    def fixed_requests_at(self, time_s: float) -> np.ndarray:
        pos = np.mod(time_s - self.offset_s, self.cycle_s)
        k = (self.green_end_s <= pos[:, None]).sum(axis=1) % self.n_stages
        return self.stage_index[np.arange(len(k)), k]

    def decide(self, obs: Observation, est: Estimate, ctx: PolicyContext) -> np.ndarray:
        out = np.asarray(self.base.decide(obs, est, ctx), dtype=np.int64).copy()
        mode = self.mode
        fixed = mode == OverrideMode.FIXED
        if fixed.any():
            out[fixed] = self.fixed_requests_at(ctx.time_s)[fixed]
        hold = mode == OverrideMode.HOLD
        out[hold] = self.hold_stage[hold]
        out[mode == OverrideMode.FLASH] = HOLD
        # Why a stage ended is the base policy's only where the base policy decided it.
        term = declared(self.base, "last_termination")
        self.last_termination = None if term is None else np.where(mode == OverrideMode.ADAPTIVE, term, 0)
        return out


class CentreBackend(BaseBackend):
    """The real backend plus operator flash and simulated link cuts (see module docstring)."""

    def __init__(
        self,
        inner: BaseBackend | FeedBackend,
        *,
        on_read: Callable[[float], None] | None = None,
        on_wait: Callable[[float], None] | None = None,
    ) -> None:
        self.inner = inner
        self.on_read = on_read
        self.on_wait = on_wait
        self.network = inner.network
        self.dt_s = inner.dt_s
        self.packed = inner.packed
        self.detectors = inner.detectors
        self.lifecycle = inner.lifecycle
        n = self.packed.n
        self.link_down = np.zeros(n, bool)
        self.flash_request = np.zeros(n, bool)
        self.down_age_s = np.zeros(n)
        self.controller_fault = np.zeros(n, bool)

    def open(self) -> None:
        self.inner.open()
        self.lifecycle = self.inner.lifecycle

    def close(self) -> None:
        self.inner.close()
        self.lifecycle = self.inner.lifecycle

    def copy_state_from(self, other: CentreBackend) -> None:
        self.link_down[:] = other.link_down
        self.flash_request[:] = other.flash_request
        self.down_age_s[:] = other.down_age_s

    def read(self) -> Observation:
        t0 = time.perf_counter()
        try:
            return self._read()
        finally:
            if self.on_read is not None:
                self.on_read(time.perf_counter() - t0)

    def _read(self) -> Observation:
        obs = self.inner.read()
        self.controller_fault = obs.fault.copy()  # what the controllers themselves report
        down, flash = self.link_down, self.flash_request
        if not (down.any() or flash.any()):
            return obs
        d_rows = self.detectors.row
        lost_det = down[d_rows] if len(d_rows) else np.zeros(0, bool)
        return replace(
            obs,
            comm_age_s=np.where(down, np.maximum(obs.comm_age_s, self.down_age_s), obs.comm_age_s),
            fault=obs.fault | flash,
            counts=np.where(lost_det, 0.0, obs.counts),
            occupancy=np.where(lost_det, 0.0, obs.occupancy),
            queue_veh=np.where(down[:, None], np.nan, obs.queue_veh),
        )

    def apply(self, commands: Commands) -> None:
        self.inner.apply(commands)

    def advance(self) -> float:
        t0 = time.perf_counter()
        try:
            t = self.inner.advance()
        finally:
            if self.on_wait is not None:
                self.on_wait(time.perf_counter() - t0)
        self.down_age_s = np.where(self.link_down, self.down_age_s + self.dt_s, 0.0)
        return t
