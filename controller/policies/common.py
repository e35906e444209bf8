"""Array helpers shared by the actuated, max-pressure and adaptive policies."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from controller.arrays import PackedNetwork, any_rows, any_set, min_rows, read_only
from controller.backend import DetectorLayout, Observation
from controller.policies.base import PolicyContext
from controller.policies.kernels import starve_rows
from intersections.model import SignalState
from intersections.network import Network

__all__ = [
    "stage_green_elapsed_s",
    "actuations",
    "presence",
    "next_stage_with_demand",
    "downstream_matrix",
    "group_lanes",
]

GREEN = int(SignalState.GREEN)


def stage_green_elapsed_s(ctx: PolicyContext, packed: PackedNetwork) -> np.ndarray:
    """Seconds the current target stage has been fully green; -1 if it is not (yet).

    The youngest green of the stage's groups counts: a stage is only as old as
    its last group to start. A crossing that has walked and rests in DON'T WALK
    (``ctx.served``) no longer counts; a stage whose every group has been served
    (an exclusive pedestrian stage after its WALK) is as old as it can be.
    """
    members = packed.stage_groups(ctx.target)
    served = ctx.served if ctx.served is not None and any_set(ctx.served) else None
    left = members & ~served if served is not None else members
    # A member not green pulls the minimum to -inf; a row with no stage (no members) stays at +inf.
    t = np.where(left & (ctx.state != GREEN), -np.inf, np.where(left, ctx.state_time_s, np.inf))
    youngest = min_rows(t)
    elapsed = np.where(np.isfinite(youngest), youngest, -1.0)
    if served is not None:  # a stage whose every group has been served is as old as it can be
        return np.where(any_rows(members) & ~any_rows(left), np.inf, elapsed)
    return elapsed


def _any_per_group(hit: np.ndarray, layout: DetectorLayout, n: int, g: int) -> np.ndarray:
    """(N, G) bool: any detector of the group has ``hit`` set."""
    if not len(layout.ids):
        return np.zeros((n, g), bool)
    flat = np.bincount(layout.row * g + layout.group, weights=hit.astype(float), minlength=n * g)
    return flat.reshape(n, g) > 0


def actuations(obs: Observation, layout: DetectorLayout, n: int, g: int) -> np.ndarray:
    """(N, G) bool: a vehicle arrived at one of the group's detectors this tick.

    Arrivals are counts (a vehicle crossing a loop, entering a detection
    zone): the event that extends a green (NTCIP phasePassage).
    """
    return _any_per_group(np.nan_to_num(obs.counts) > 0, layout, n, g)


def presence(obs: Observation, layout: DetectorLayout, n: int, g: int) -> np.ndarray:
    """(N, G) bool: a vehicle is on one of the group's detectors (a call)."""
    hit = (np.nan_to_num(obs.occupancy) > 0) | (np.nan_to_num(obs.counts) > 0)
    return _any_per_group(hit, layout, n, g)


def next_stage_with_demand(current: np.ndarray, stage_demand: np.ndarray, stage_valid: np.ndarray) -> np.ndarray:
    """First stage after ``current`` (cyclically) with demand; -1 where none.

    Vectorised: rotate each row so the stage after ``current`` comes first,
    then ``argmax`` finds the first True.
    """
    n, s = stage_demand.shape
    order = (np.maximum(current, -1)[:, None] + 1 + np.arange(s)[None, :]) % s
    cand = np.take_along_axis(stage_demand & stage_valid, order, axis=1)
    first = cand.argmax(axis=1)
    found = cand[np.arange(n), first]
    return np.where(found, order[np.arange(n), first], -1)


def group_lanes(network: Network, packed: PackedNetwork) -> np.ndarray:
    """(N, G) number of incoming lanes each group serves (>= 1 for valid groups)."""
    out = np.zeros((packed.n, packed.g))
    for r, inter in enumerate(network.intersections):
        for k, grp in enumerate(inter.groups):
            lanes = {ln for m in grp.movements for ln in m.lanes}
            out[r, k] = max(1, len(lanes))
    return out


@functools.cache
def _no_stage(shape: tuple[int, ...]) -> np.ndarray:
    """An all-False stage mask, read-only (handed out every tick, so shared)."""
    return read_only(np.zeros(shape, bool))[0]


def starvation_score(
    pressure: np.ndarray,
    packed: PackedNetwork,
    red_s: np.ndarray,
    max_red_s: float,
    members: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(stage score, starving-stage mask): starving stages first, the longest-waiting first among them.

    A stage with a group red (with demand) beyond ``max_red_s`` outranks every
    pressure; among several starving stages the one whose group has waited
    longest wins. Ranking them all equal (an infinite score) let the
    lowest-numbered starving stage win every tie, so a starving group in a
    later stage could lose to newly starving ones again and again (found by the
    hypothesis property test: 183 s red against a 60 s bound). ``members``
    (default: every stage's groups) says which stages end a group's wait: a
    permissive movement's is ended by the stage that protects it. The rule itself
    is :func:`controller.policies.kernels.starve_row`, which compiled policies call row by row.
    """
    starving = red_s > max_red_s
    if not any_set(starving):  # the usual tick: skip the (N, S, G) work
        return pressure, _no_stage(pressure.shape)
    score = np.ascontiguousarray(pressure, dtype=np.float64).copy()
    starving_stage = np.zeros(score.shape, np.bool_)
    starve_rows(
        score,
        np.ascontiguousarray(packed.stage_mask if members is None else members, dtype=np.bool_),
        np.ascontiguousarray(packed.stage_valid, dtype=np.bool_),
        np.ascontiguousarray(red_s, dtype=np.float64),
        float(max_red_s),
        starving_stage,
    )
    return score, starving_stage


def group_roads(network: Network, packed: PackedNetwork) -> np.ndarray:
    """(N, G) number of approaches (incoming roads) each group serves, >= 1.

    A signal group often serves two opposing approaches at once; quantities
    that belong to one approach (the lanes whose detectors feed one gap timer)
    are divided by this.
    """
    out = np.ones((packed.n, packed.g))
    for r, inter in enumerate(network.intersections):
        for k, grp in enumerate(inter.groups):
            roads = {m.from_edge for m in grp.movements if m.turn != "p"}
            out[r, k] = max(1, len(roads))
    return out


@dataclass(frozen=True)
class SparseRows:
    """A fixed sparse matrix, applied as ``A @ x`` by one gather and one ``bincount``.

    scipy's sparse product spends ~20 µs per call on argument checks, more
    than the product itself on a 100-intersection grid, and it runs every tick.
    """

    rows: np.ndarray
    cols: np.ndarray
    vals: np.ndarray
    size: int

    def __matmul__(self, x: np.ndarray) -> np.ndarray:
        return np.bincount(self.rows, weights=self.vals * x.take(self.cols), minlength=self.size)


def downstream_matrix(network: Network, packed: PackedNetwork, *, look_through_m: float = 0.0) -> SparseRows:
    """Sparse (N·G, N·G) matrix ``D`` so that ``D @ q.ravel()`` is each movement's downstream queue.

    A movement (from_edge -> to_edge) discharges into the intersection that
    ``to_edge`` leads to; its downstream queue is the mean queue of the groups
    there that serve traffic coming from ``to_edge`` (Varaiya 2013's
    ``x_m`` for the receiving link, averaged over its turning movements).

    ``look_through_m``: a receiving link shorter than this that is an approach
    of the movement's own intersection (the link between two junctions modelled
    as one, :data:`intersections.loaders.sumo_net.JOINED_PART_LINK_M`) is
    replaced by the links the movements leaving it discharge into, transitively.
    Such a link holds no queue of its own: the queue measured at its stop line
    is the approach feeding it (the zone extends upstream, ``simulation.detectors``),
    often the very approach whose pressure is computed. With 0 (the default), or
    where no such link exists, ``D`` is the plain matrix entry for entry.
    """
    g = packed.g
    edges = network.graph.edges(data=True) if look_through_m > 0 else ()  # the plain matrix reads no lengths
    length_m = {d["id"]: float(d["length_m"]) for _, _, d in edges if "id" in d}
    by_from_edge: dict[str, list[int]] = {}
    own_from: dict[tuple[int, str], list[int]] = {}  # (intersection, link) -> its groups taking traffic from it
    for r, inter in enumerate(network.intersections):
        for k, grp in enumerate(inter.groups):
            for m in grp.movements:
                if m.turn != "p":
                    by_from_edge.setdefault(m.from_edge, []).append(r * g + k)
                    own_from.setdefault((r, m.from_edge), []).append(k)
    rows, cols, vals = [], [], []
    for r, inter in enumerate(network.intersections):
        for k, grp in enumerate(inter.groups):
            targets: set[int] = set()
            seen: set[str] = set()
            todo = [m.to_edge for m in grp.movements if m.turn != "p"]
            for edge in todo:  # first in, first out (todo grows): the plain order where nothing is looked through
                if edge in seen:
                    continue
                seen.add(edge)
                inner = own_from.get((r, edge))
                if inner and length_m.get(edge, np.inf) < look_through_m:
                    for kk in inner:
                        todo.extend(m.to_edge for m in inter.groups[kk].movements if m.turn != "p")
                else:
                    targets.update(by_from_edge.get(edge, ()))
            for t in targets:
                rows.append(r * g + k)
                cols.append(t)
                vals.append(1.0 / len(targets))
    return SparseRows(np.asarray(rows, np.int64), np.asarray(cols, np.int64), np.asarray(vals, float), packed.n * g)
