"""Max-pressure control (Varaiya 2013, Transp. Res. C 36:177-195).

Each movement's *pressure* is its upstream queue minus the queue of the link
it discharges into, weighted by its saturation flow (here: its lane count);
a stage's pressure is the sum over its groups. Varaiya proves that serving
the stage of maximum pressure stabilises every demand that any policy can
stabilise (throughput-optimal in the store-and-forward model), using only
local measurements. Practical additions, as in the field trials (Mercader et
al. 2020, Transp. Res. C 110; ``../shared/reference/motorcycles-and-algorithms.md`` §C):

* decisions are taken only once the current stage has shown its minimum
  green plus ``min_stage_s`` (every switch costs an intergreen of lost time);
* a switch needs the best stage to beat the current one by ``switch_margin``
  (hysteresis);
* anti-starvation: a group kept red with a queue for longer than
  ``max_red_s`` forces the stage that serves it;
* capacity awareness: a movement whose exit is jammed back to the junction
  (``Observation.exit_blocked``, measured by exit zones just past the
  junction) contributes no pressure: a group's pressure is scaled by the
  share of its queue that can leave. Varaiya's proof assumes unlimited link
  storage; with short links the green goes to vehicles that cannot leave and block the
  junction (capacity-aware back-pressure: Gregoire, Qian, Frazzoli, de La
  Fortelle, Wongpiromsarn, IEEE Trans. Control of Network Systems, 2015;
  ``../shared/reference/real-networks.md``). A group whose every exit is
  jammed keeps its red wait but does not force its stage until the jam clears.
* links inside an intersection: where one intersection is several junctions (a
  light's parts closer than ``JOINED_PART_LINK_M``, e.g. grid06's B0+B1, 0.2 m
  apart), a movement into the link between them discharges, in effect, into
  the exits of the movements that leave that link: its downstream queue is
  theirs (:func:`~controller.policies.common.downstream_matrix` with
  ``look_through_m``). The link stores nothing, and the
  queue measured for it is the approach behind it (its stop-line zone reaches
  upstream over the feeding lanes), so Varaiya's ``x_m`` of the "receiving
  link" would subtract an approach's own queue from its pressure.

Per tick: the pressure map (downstream queues, weights and stage sums
folded into one sparse map at reset) and the decisions, in one compiled
kernel (:func:`controller.policies.kernels.max_pressure_decide`) that goes row by row instead of
~25 numpy calls a tick, with the decisions of the numpy form (:func:`stage_pressure`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from controller.arrays import PackedNetwork
from controller.backend import Observation, exit_blocked_share
from controller.estimate import Estimate
from controller.policies import register_policy
from controller.policies.base import Policy, PolicyContext
from controller.policies.common import SparseRows, downstream_matrix, group_lanes
from controller.policies.kernels import max_pressure_decide
from intersections.loaders.sumo_net import JOINED_PART_LINK_M
from intersections.network import Network

__all__ = ["MaxPressurePolicy", "stage_pressure", "pressure_map", "group_pressure_map"]


def stage_pressure(queue: np.ndarray, downstream: np.ndarray, weight: np.ndarray, stage_mask: np.ndarray) -> np.ndarray:
    """(N, S) pressure of each stage: Σ_g∈stage weight_g · (q_g − q_down_g) (``stage_mask`` as 0/1 floats)."""
    w = weight * (queue - downstream)
    result: np.ndarray = np.einsum("nsg,ng->ns", stage_mask, w)
    return result


def group_pressure_map(down: SparseRows, weight: np.ndarray) -> SparseRows:
    """The linear map ``q.ravel() -> group pressure (N·G,)``: weight_g · (q_g − (D q)_g)."""
    size = weight.size
    d = sp.csr_matrix((down.vals, (down.rows, down.cols)), shape=(size, size))
    m = (sp.diags(weight.ravel()) @ (sp.identity(size, format="csr") - d)).tocoo()
    return SparseRows(m.row.astype(np.int64), m.col.astype(np.int64), m.data, size)


def pressure_map(down: SparseRows, weight: np.ndarray, stage_mask: np.ndarray) -> SparseRows:
    """The linear map ``q.ravel() -> stage pressure (N·S,)``: :func:`stage_pressure` folded into one matrix.

    Pressure is linear in the queues (Σ_g∈s w_g (q_g − (D q)_g)), so the per-tick
    downstream product, the weighting and the stage sums collapse into one sparse
    product built here once: a gather and a ``bincount`` per tick instead of six
    array operations.
    """
    n, s, g = stage_mask.shape
    size = n * g
    d = sp.csr_matrix((down.vals, (down.rows, down.cols)), shape=(size, size))
    m = sp.diags(weight.ravel()) @ (sp.identity(size, format="csr") - d)
    rows, cols = np.nonzero(stage_mask.reshape(n * s, g))  # stage (n, s) -> its groups (n, g)
    stages = sp.csr_matrix((np.ones(len(rows)), (rows, (rows // s) * g + cols)), shape=(n * s, size))
    pm = (stages @ m).tocoo()
    return SparseRows(pm.row.astype(np.int64), pm.col.astype(np.int64), pm.data, n * s)


@register_policy("max-pressure")
class MaxPressurePolicy(Policy):
    name = "max-pressure"
    reads = frozenset({"queue_veh", "exit_blocked"})  # decides from queues, and exits jammed to the junction

    def __init__(self, min_stage_s: float = 5.0, switch_margin: float = 1.0, max_red_s: float = 120.0) -> None:
        self.min_stage_s = float(min_stage_s)
        self.switch_margin = float(switch_margin)
        self.max_red_s = float(max_red_s)

    def reset(self, network: Network, packed: PackedNetwork) -> None:
        self.packed = packed
        weight = group_lanes(network, packed) * packed.group_valid
        self.red_s = np.zeros((packed.n, packed.g))
        down = downstream_matrix(network, packed, look_through_m=JOINED_PART_LINK_M)
        m = pressure_map(down, weight, packed.stage_mask)
        gm = group_pressure_map(down, weight)
        stage_rows, stage_base = packed.stage_rows
        # Everything the kernel reads of the network, contiguous and in its dtypes, built once.
        self._tables = (
            m.rows, m.cols, np.ascontiguousarray(m.vals, dtype=np.float64),
            gm.rows, gm.cols, np.ascontiguousarray(gm.vals, dtype=np.float64),
            np.ascontiguousarray(packed.stage_mask, dtype=np.bool_),
            np.ascontiguousarray(packed.stage_valid, dtype=np.bool_),
            np.ascontiguousarray(packed.group_valid, dtype=np.bool_),
            np.ascontiguousarray(stage_rows), np.ascontiguousarray(stage_base, dtype=np.int64),
            (packed.stage_min_green_s + self.min_stage_s).ravel(),  # a stage may end after this
            self.max_red_s, self.switch_margin,
        )  # fmt: skip
        self._pressure = np.zeros((packed.n, packed.s))
        self._group_p = np.zeros((packed.n, packed.g))  # scratch: group pressures, where an exit is jammed
        self._red_forcing = np.zeros((packed.n, packed.g))  # scratch: the red waits the starvation rule sees
        self._none_served = np.zeros((packed.n, packed.g), np.bool_)
        # Load (or compile) the kernel now, not in the first tick: a dry run on copies.
        n, g = packed.n, packed.g
        self._run(
            np.zeros((n, g)), np.zeros((n, g), np.int8), np.zeros((n, g)), np.full(n, -1), np.zeros((n, g), bool),
            0.0, self.red_s.copy(),
            np.zeros((n, g)),
        )  # fmt: skip

    def _run(
        self,
        q: np.ndarray,
        state: np.ndarray,
        state_time_s: np.ndarray,
        target: np.ndarray,
        served: np.ndarray,
        dt_s: float,
        red_s: np.ndarray,
        exit_share: np.ndarray,
    ) -> np.ndarray:
        out = np.empty(self.packed.n, np.int64)
        max_pressure_decide(
            np.ascontiguousarray(q, dtype=np.float64),
            np.ascontiguousarray(state, dtype=np.int8),
            np.ascontiguousarray(state_time_s, dtype=np.float64),
            np.ascontiguousarray(target, dtype=np.int64),
            np.ascontiguousarray(served, dtype=np.bool_),
            float(dt_s), red_s, self._pressure,
            np.ascontiguousarray(exit_share, dtype=np.float64), self._group_p, self._red_forcing,
            *self._tables, out,
        )  # fmt: skip
        return out

    def decide(self, obs: Observation, est: Estimate, ctx: PolicyContext) -> np.ndarray:
        # The estimator's queue is the backend's where measured, its best estimate elsewhere.
        exit_share = exit_blocked_share(obs, self.red_s.shape)
        served = self._none_served if ctx.served is None else ctx.served
        return self._run(
            est.queue_veh, ctx.state, ctx.state_time_s, ctx.target, served, ctx.dt_s, self.red_s, exit_share
        )
