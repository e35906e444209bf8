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
  ``max_red_s`` forces the stage that serves it.

Fully vectorised: one sparse product (downstream queues, weights and stage
sums folded into one map at reset) and a few
``(N, S, G)`` reductions per tick.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from controller.arrays import PackedNetwork, any_rows
from controller.backend import Observation
from controller.estimate import Estimate
from controller.policies import register_policy
from controller.policies.base import PolicyContext
from controller.policies.common import GREEN, SparseRows, downstream_matrix, group_lanes, starvation_score
from controller.safety import HOLD
from intersections.network import Network

__all__ = ["MaxPressurePolicy", "stage_pressure", "pressure_map"]


def stage_pressure(queue: np.ndarray, downstream: np.ndarray, weight: np.ndarray, stage_mask: np.ndarray) -> np.ndarray:
    """(N, S) pressure of each stage: Σ_g∈stage weight_g · (q_g − q_down_g) (``stage_mask`` as 0/1 floats)."""
    w = weight * (queue - downstream)
    return np.einsum("nsg,ng->ns", stage_mask, w)


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
class MaxPressurePolicy:
    name = "max-pressure"
    reads = frozenset({"queue_veh"})  # decides from queues alone

    def __init__(self, min_stage_s: float = 5.0, switch_margin: float = 1.0, max_red_s: float = 120.0) -> None:
        self.min_stage_s = float(min_stage_s)
        self.switch_margin = float(switch_margin)
        self.max_red_s = float(max_red_s)

    def reset(self, network: Network, packed: PackedNetwork) -> None:
        self.packed = packed
        self.weight = group_lanes(network, packed) * packed.group_valid
        self.red_s = np.zeros((packed.n, packed.g))
        self.pressure_map = pressure_map(downstream_matrix(network, packed), self.weight, packed.stage_mask)
        self.stage_ready_s = (packed.stage_min_green_s + self.min_stage_s).ravel()  # a stage may end after this
        # Padding stages score -inf; padding groups never wait (None / False: there are none).
        self.invalid_stage = None if packed.stage_valid.all() else np.where(packed.stage_valid, 0.0, -np.inf)
        self.padded_groups = not packed.group_valid.all()

    def decide(self, obs: Observation, est: Estimate, ctx: PolicyContext) -> np.ndarray:
        p = self.packed
        # The estimator's queue is the backend's where measured, its best estimate elsewhere.
        # Padding groups weigh nothing in the map and are masked below.
        q = est.queue_veh
        # = stage_pressure(q, down(q), ...), with -inf for the padding stages.
        pressure = (self.pressure_map @ q.ravel()).reshape(p.n, p.s)
        if self.invalid_stage is not None:
            pressure = pressure + self.invalid_stage

        green = ctx.state == GREEN
        waiting = (q > 0.5) > green  # a queue held at red
        if self.padded_groups:
            waiting &= p.group_valid
        self.red_s = np.where(waiting, self.red_s + ctx.dt_s, 0.0)
        # Starved stages outrank every pressure, the longest-starved first.
        score, _starving_stage = starvation_score(pressure, p, self.red_s, self.max_red_s)
        best = score.argmax(axis=1)

        cur = ctx.target
        has = cur >= 0
        # Flat indices of (row, stage): one take each, cheaper than two-array indexing.
        at_cur = p.stage_base + np.where(has, cur, 0)
        flat_score = score.ravel()
        # The current stage may end once every group of it has been green for its stage_ready_s:
        # min over members of the green time >= threshold (stage_green_elapsed_s), tested per group.
        served = green & (ctx.state_time_s >= self.stage_ready_s.take(at_cur)[:, None])
        ready = ~any_rows(p.stage_groups(cur) > served)
        better = flat_score.take(p.stage_base + best) > flat_score.take(at_cur) + self.switch_margin
        go = (ready & better & (best != cur)) | ~has  # no stage yet: take the best at once
        return np.where(go, best, HOLD)
