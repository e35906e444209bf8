"""Timing plans and the one plan checker every producer and backend runs.

A :class:`TimingPlan` is a cyclic stage sequence for one intersection: each
:class:`PlanStage` shows its green for ``green_s`` seconds and is followed by
the transition (intergreen) ``intergreen_s`` to the next stage (the last wraps
to the first). So, by construction of the timeline::

    cycle_s = Σ green_s + Σ intergreen_s

:func:`plan_problems` lists everything wrong with a plan for an intersection;
:func:`check_plan` raises :class:`~intersections.errors.PlanError` carrying all
of them. The checks (``../shared/reference/field-io.md`` §3.4):

* the plan is for this intersection; every stage is known (or, when the plan
  names its own groups, every group is known and no two are in conflict);
* cycle equals greens plus intergreens (to 0.05 s); offset in ``[0, cycle)``;
* every green and intergreen is a finite, non-negative number;
* every transition is at least the required intergreen
  (:meth:`Intersection.transition_s`: the ITE clearance of conflicting groups);
* every signal group is served, and each of its contiguous greens (a group
  green in consecutive stages stays green through the transition) lasts at
  least its minimum green, or WALK for pedestrian groups;
* upper limits: the cycle is at most ``max_cycle_s`` (default
  :data:`MAX_CYCLE_S`, 240 s: the longest cycle a deployment accepts, a
  configured limit since a plan with a day-long green is well formed but
  never sane), and no contiguous green of a group lasts longer than its
  ``max_green_s`` (the controller's per-phase MaxGreen,
  ``../shared/reference/atspm-and-operations.md``). A group green in every
  stage (it conflicts with nothing the plan serves) is exempt: nothing waits
  for it to end. The safety supervisor enforces the same maxima again at run
  time, whatever the plan says (:mod:`controller.safety`, rule (e)).

Plans are read and written as JSON (schema in the README)::

    {"intersection": "J1", "cycle_s": 90, "offset_s": 0,
     "stages": [{"stage": "S1", "green_s": 40, "intergreen_s": 5}, ...]}

A plan *set* is ``{"plans": [plan, ...], "schedule": [{"start": "07:00",
"plan_set": "am"}]}``; ``schedule`` is optional.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from intersections.errors import InputError, PlanError
from intersections.model import Intersection

__all__ = [
    "PlanStage",
    "TimingPlan",
    "PlanSet",
    "plan_problems",
    "check_plan",
    "check_plan_set",
    "load_plans",
    "save_plans",
    "plan_from_json",
    "plan_to_json",
    "CYCLE_TOLERANCE_S",
    "MAX_CYCLE_S",
]

CYCLE_TOLERANCE_S = 0.05
MAX_CYCLE_S = 240.0


@dataclass(frozen=True)
class PlanStage:
    """One stage of a plan: which stage, its green, and the intergreen after it.

    ``groups`` is empty when the stage is one of the intersection's own stages
    (looked up by ``stage``); a plan may instead name the groups it turns green.
    """

    stage: str
    green_s: float
    intergreen_s: float
    groups: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "groups", frozenset(self.groups))


@dataclass(frozen=True)
class TimingPlan:
    intersection_id: str
    cycle_s: float
    offset_s: float
    stages: tuple[PlanStage, ...]
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", tuple(self.stages))

    @property
    def greens_s(self) -> np.ndarray:
        return np.array([s.green_s for s in self.stages], dtype=float)

    @property
    def intergreens_s(self) -> np.ndarray:
        return np.array([s.intergreen_s for s in self.stages], dtype=float)

    def stage_starts_s(self) -> np.ndarray:
        """Start of each stage's green within the cycle (offset not applied)."""
        spans = self.greens_s + self.intergreens_s
        return np.concatenate([[0.0], np.cumsum(spans)[:-1]])


@dataclass(frozen=True)
class PlanSet:
    plans: tuple[TimingPlan, ...]
    schedule: tuple[Mapping[str, Any], ...] = field(default_factory=tuple)

    def by_intersection(self) -> dict[str, TimingPlan]:
        return {p.intersection_id: p for p in self.plans}


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))


def _stage_groups(plan: TimingPlan, inter: Intersection, problems: list[str]) -> list[frozenset[str]]:
    groups: list[frozenset[str]] = []
    known_stages = {s.id: s for s in inter.stages}
    ids = set(inter.group_ids)
    for k, st in enumerate(plan.stages):
        if st.groups:
            unknown = sorted(st.groups - ids)
            if unknown:
                problems.append(f"stages[{k}].groups: unknown signal groups {unknown}")
                groups.append(frozenset(st.groups & ids))
                continue
            members = sorted(inter.group_index(g) for g in st.groups)
            sub = inter.conflicts[np.ix_(members, members)]
            for a, b in np.argwhere(np.triu(sub)):
                problems.append(
                    f"stages[{k}].groups: conflicting groups {inter.group_ids[members[a]]} and "
                    f"{inter.group_ids[members[b]]} are green together"
                )
            groups.append(st.groups)
        elif st.stage in known_stages:
            groups.append(known_stages[st.stage].groups)
        else:
            problems.append(f"stages[{k}].stage: unknown stage {st.stage!r} (known: {sorted(known_stages)})")
            groups.append(frozenset())
    return groups


def _green_runs(
    plan: TimingPlan, inter: Intersection, groups: list[frozenset[str]]
) -> list[list[tuple[float, float, int, int]]]:
    """Per group: its green runs as (start_s, end_s, first stage, last stage) within one cycle.

    A group green in consecutive stages stays green through the transition
    between them. Times are positions in the cycle; a run may end past
    ``cycle_s`` when it wraps around.
    """
    n = len(plan.stages)
    starts = plan.stage_starts_s()
    out: list[list[tuple[float, float, int, int]]] = []
    for grp in inter.groups:
        on = [grp.id in g for g in groups]
        if not any(on):
            out.append([])
            continue
        if all(on):
            out.append([(0.0, float(plan.cycle_s), 0, n - 1)])
            continue
        first_off = on.index(False)
        runs: list[tuple[float, float, int, int]] = []
        run_start: int | None = None
        run_t0 = 0.0
        length = 0.0
        for step in range(1, n + 1):
            k = (first_off + step) % n
            if not on[k]:
                continue
            if run_start is None:
                run_start, length = k, 0.0
                run_t0 = float(starts[k])
            length += plan.stages[k].green_s
            if on[(k + 1) % n]:
                length += plan.stages[k].intergreen_s
            else:
                runs.append((run_t0, run_t0 + length, run_start, k))
                run_start = None
        out.append(runs)
    return out


def plan_problems(plan: TimingPlan, inter: Intersection, *, max_cycle_s: float = MAX_CYCLE_S) -> list[str]:
    """Every problem of ``plan`` for ``inter``, each prefixed by its field.

    The checks run in order (numbers, cycle, stage-to-stage clearances, each group's greens,
    clearances across stages); the arithmetic ones need sound numbers, so a plan with a bad
    number reports its numbers and unknown stages only.
    """
    problems: list[str] = []
    if plan.intersection_id != inter.id:
        problems.append(f"intersection: plan is for {plan.intersection_id!r}, not {inter.id!r}")
    if not plan.stages:
        return [*problems, "stages: a plan needs at least one stage"]
    numbers_ok = _number_problems(plan, problems)
    groups = _stage_groups(plan, inter, problems)
    if not numbers_ok:
        return problems
    _cycle_problems(plan, max_cycle_s, problems)
    _transition_problems(plan, inter, groups, problems)
    runs = _green_runs(plan, inter, groups)
    _green_problems(inter, groups, runs, problems)
    _spanning_clearance_problems(plan, inter, runs, problems)
    return problems


def _number_problems(plan: TimingPlan, problems: list[str]) -> bool:
    """Every duration a non-negative number of seconds; False (and the problems) if not."""
    ok = True
    for name in ("cycle_s", "offset_s"):
        v = getattr(plan, name)
        if not _is_number(v) or float(v) < 0:
            problems.append(f"{name}: must be a non-negative number of seconds, got {v!r}")
            ok = False
    for k, st in enumerate(plan.stages):
        for name in ("green_s", "intergreen_s"):
            v = getattr(st, name)
            if not _is_number(v) or float(v) < 0:
                problems.append(f"stages[{k}].{name}: must be a non-negative number of seconds, got {v!r}")
                ok = False
    return ok


def _cycle_problems(plan: TimingPlan, max_cycle_s: float, problems: list[str]) -> None:
    """The cycle is the sum of the stages, at most the maximum, and holds the offset."""
    total = float(plan.greens_s.sum() + plan.intergreens_s.sum())
    if abs(total - plan.cycle_s) > CYCLE_TOLERANCE_S:
        problems.append(f"cycle_s: {plan.cycle_s:g} s does not equal greens + intergreens = {total:g} s")
    if plan.cycle_s > max_cycle_s + CYCLE_TOLERANCE_S:
        problems.append(f"cycle_s: {plan.cycle_s:g} s is above the maximum cycle {max_cycle_s:g} s")
    if plan.cycle_s > 0 and not (0 <= plan.offset_s < plan.cycle_s):
        problems.append(f"offset_s: {plan.offset_s:g} s must be in [0, cycle_s={plan.cycle_s:g})")


def _transition_problems(
    plan: TimingPlan, inter: Intersection, groups: list[frozenset[str]], problems: list[str]
) -> None:
    """Each stage's intergreen covers the clearance from its groups to the next stage's."""
    n = len(plan.stages)
    for k in range(n):
        a, b = groups[k], groups[(k + 1) % n]
        if n == 1 or not (a and b):
            continue
        need = inter.clearance_between_s(a, b)
        if plan.stages[k].intergreen_s + 1e-9 < need:
            problems.append(
                f"stages[{k}].intergreen_s: {plan.stages[k].intergreen_s:g} s is shorter than the "
                f"required clearance {need:g} s from {plan.stages[k].stage} to {plan.stages[(k + 1) % n].stage}"
            )


def _green_problems(
    inter: Intersection,
    groups: list[frozenset[str]],
    runs: list[list[tuple[float, float, int, int]]],
    problems: list[str],
) -> None:
    """Every group served, each contiguous green run between its minimum (or WALK) and maximum green."""
    for gi, grp in enumerate(inter.groups):
        if not runs[gi]:
            problems.append(f"stages: signal group {grp.id} is never served")
            continue
        need = grp.required_green_s
        always = all(grp.id in g for g in groups)
        for start_s, end_s, k_start, _k_end in runs[gi]:
            if end_s - start_s + 1e-9 < need:
                what = "WALK" if grp.is_pedestrian else "min green"
                problems.append(
                    f"stages[{k_start}].green_s: signal group {grp.id} gets {end_s - start_s:g} s of green, "
                    f"less than its {what} {need:g} s"
                )
            # A crossing shows WALK for its walk time and rests in DON'T WALK whatever the stage
            # lasts (controller.safety): the plan's run is not its displayed green.
            if not always and not grp.is_pedestrian and end_s - start_s > grp.max_green_s + CYCLE_TOLERANCE_S:
                problems.append(
                    f"stages[{k_start}].green_s: signal group {grp.id} gets {end_s - start_s:g} s of green, "
                    f"more than its max green {grp.max_green_s:g} s"
                )


def _spanning_clearance_problems(
    plan: TimingPlan, inter: Intersection, runs: list[list[tuple[float, float, int, int]]], problems: list[str]
) -> None:
    """Clearance from every end of green to the next start of every conflicting group,
    wherever in the sequence it falls (a pedestrian clearance can span a short stage)."""
    cycle = float(plan.cycle_s)
    if cycle <= 0:
        return
    n = len(plan.stages)
    ids = inter.group_ids
    for i, j in np.argwhere(inter.conflicts):
        if not runs[i] or not runs[j]:
            continue
        starts_j = np.array([r[0] for r in runs[j]])
        for _s, end_i, _ks, k_end in runs[i]:
            gap = np.mod(starts_j - end_i, cycle)
            m = int(np.argmin(gap))
            k_next = runs[j][m][2]
            if k_next == (k_end + 1) % n:
                continue  # an adjacent transition: checked stage by stage (_transition_problems)
            need = float(inter.intergreen_s[i, j])
            if gap[m] + 1e-9 < need:
                problems.append(
                    f"stages[{k_next}]: signal group {ids[j]} starts {gap[m]:g} s after conflicting group "
                    f"{ids[i]} ends (stages[{k_end}]), less than their intergreen {need:g} s"
                )


def check_plan(
    plan: TimingPlan, inter: Intersection, *, source: str | None = None, max_cycle_s: float = MAX_CYCLE_S
) -> TimingPlan:
    """Raise :class:`PlanError` listing every problem; return the plan if sound."""
    problems = plan_problems(plan, inter, max_cycle_s=max_cycle_s)
    if problems:
        where = f"intersection {inter.id}"
        raise PlanError(problems, where=f"{source}: {where}" if source else where)
    return plan


def check_plan_set(
    plans: Iterable[TimingPlan],
    intersections: Mapping[str, Intersection],
    *,
    source: str | None = None,
    max_cycle_s: float = MAX_CYCLE_S,
) -> list[str]:
    """Problems of a whole plan set, each prefixed with the intersection id."""
    out: list[str] = []
    for k, p in enumerate(plans):
        inter = intersections.get(p.intersection_id)
        if inter is None:
            out.append(f"plans[{k}].intersection: unknown intersection {p.intersection_id!r}")
            continue
        out.extend(f"intersection {p.intersection_id}: {m}" for m in plan_problems(p, inter, max_cycle_s=max_cycle_s))
    if source:
        out = [f"{source}: {m}" for m in out]
    return out


# ---- JSON ------------------------------------------------------------------


def _num(d: Mapping[str, Any], key: str, where: str, default: float | None = None) -> Any:
    if key not in d:
        if default is not None:
            return default
        raise InputError(f"missing field {key!r}", where=where)
    v = d[key]
    if not _is_number(v):
        raise InputError(f"{key}: must be a number of seconds, got {v!r}", where=where)
    if float(v) < 0:
        raise InputError(f"{key}: must be >= 0 seconds, got {v!r}", where=where)
    return float(v)


def plan_from_json(d: Mapping[str, Any], *, where: str = "plan") -> TimingPlan:
    """Parse one plan; malformed fields raise :class:`InputError` naming them."""
    if not isinstance(d, Mapping):
        raise InputError("a plan must be a JSON object", where=where)
    inter = d.get("intersection")
    if not isinstance(inter, str) or not inter:
        raise InputError("missing or empty field 'intersection'", where=where)
    where = f"{where} (intersection {inter})"
    stages_in = d.get("stages")
    if not isinstance(stages_in, list) or not stages_in:
        raise InputError("'stages' must be a non-empty list", where=where)
    stages = []
    for k, s in enumerate(stages_in):
        sw = f"{where}: stages[{k}]"
        if not isinstance(s, Mapping):
            raise InputError("each stage must be a JSON object", where=sw)
        groups = s.get("groups", [])
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise InputError("'groups' must be a list of signal group ids", where=sw)
        stage_id = s.get("stage", "+".join(sorted(groups)) if groups else None)
        if not isinstance(stage_id, str) or not stage_id:
            raise InputError("each stage needs 'stage' (a stage id) or 'groups'", where=sw)
        stages.append(
            PlanStage(
                stage=stage_id,
                green_s=_num(s, "green_s", sw),
                intergreen_s=_num(s, "intergreen_s", sw),
                groups=frozenset(groups),
            )
        )
    return TimingPlan(
        intersection_id=inter,
        cycle_s=_num(d, "cycle_s", where),
        offset_s=_num(d, "offset_s", where, default=0.0),
        stages=tuple(stages),
        name=str(d.get("name", "")),
    )


def plan_to_json(p: TimingPlan) -> dict[str, Any]:
    out: dict[str, Any] = {
        "intersection": p.intersection_id,
        # Not rounded: a rounded intergreen could fall below its required clearance.
        "cycle_s": float(p.cycle_s),
        "offset_s": float(p.offset_s),
        "stages": [],
    }
    if p.name:
        out["name"] = p.name
    for s in p.stages:
        st: dict[str, Any] = {
            "stage": s.stage,
            "green_s": float(s.green_s),
            "intergreen_s": float(s.intergreen_s),
        }
        if s.groups:
            st["groups"] = sorted(s.groups)
        out["stages"].append(st)
    return out


def load_plans(path: str | Path) -> PlanSet:
    """Read a plan file: one plan object, a list of plans, or ``{"plans": [...]}``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("file not found", where=str(path)) from None
    except json.JSONDecodeError as e:
        raise InputError(f"not valid JSON: {e.msg} at line {e.lineno} column {e.colno}", where=str(path)) from None
    schedule: Sequence[Any] = ()
    if isinstance(data, Mapping) and "plans" in data:
        items = data["plans"]
        schedule = data.get("schedule", ())
        if not isinstance(items, list):
            raise InputError("'plans' must be a list", where=str(path))
    elif isinstance(data, Mapping):
        items = [data]
    elif isinstance(data, list):
        items = data
    else:
        raise InputError("expected a plan object or a list of plans", where=str(path))
    plans = tuple(plan_from_json(d, where=f"{path}: plans[{k}]") for k, d in enumerate(items))
    return PlanSet(plans=plans, schedule=tuple(schedule))


def save_plans(plans: Iterable[TimingPlan], path: str | Path, *, extra: Mapping[str, Any] | None = None) -> None:
    doc: dict[str, Any] = {"plans": [plan_to_json(p) for p in plans]}
    if extra:
        doc.update(extra)
    Path(path).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
