"""Timing plans: validate (``check_plan``, field by field), version, compare, activate, schedule."""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.server.auth import Permission, Principal, Role
from api.server.db import Approval, IntersectionRow, PlanVersion, ScheduleEntry, utcnow
from api.server.deps import ServiceState, require, service
from api.server.live import Control, ControlKind, EngineRunner
from api.server.routes.network import known, network_or_503
from api.server.schemas import (
    ActivateIn,
    PendingOut,
    PlanCreateIn,
    PlanIn,
    PlanOut,
    Problem,
    ScheduleIn,
    ValidationOut,
    from_row,
)
from intersections.errors import InputError
from intersections.model import Intersection
from intersections.plan import MAX_CYCLE_S, TimingPlan, plan_from_json, plan_problems, plan_to_json

__all__ = [
    "router",
    "plan_diff",
    "split_problem",
    "check_activation",
    "apply_activation",
    "check_schedule",
    "apply_schedule",
]

router = APIRouter(prefix="/api", tags=["plans"])
reader = require(Permission.READ)
planner = require(Permission.PLAN)
REFUSED: dict[int | str, dict[str, Any]] = {
    422: {"description": "plan refused: ``problems`` lists every problem, field by field"}
}


def split_problem(text: str) -> Problem:
    """``"stages[0].green_s: ..."`` -> Problem(field="stages[0].green_s", message="...")."""
    field, sep, msg = text.partition(": ")
    if not sep or " " in field:
        return Problem(field="plan", message=text)
    return Problem(field=field, message=msg)


def _parse(
    plan_json: dict[str, Any], inter: Intersection | None, max_cycle_s: float = MAX_CYCLE_S
) -> tuple[TimingPlan | None, list[Problem]]:
    try:
        plan = plan_from_json(plan_json)
    except InputError as e:
        where = (e.where or "").split(": ", 1)
        prefix = where[1] + "." if len(where) > 1 else ""
        p = split_problem(e.message)
        return None, [
            Problem(field=prefix + p.field if p.field != "plan" else (prefix.rstrip(".") or "plan"), message=p.message)
        ]
    if inter is None:
        return plan, [Problem(field="intersection", message=f"unknown intersection {plan.intersection_id!r}")]
    return plan, [split_problem(t) for t in plan_problems(plan, inter, max_cycle_s=max_cycle_s)]


def _refuse(problems: list[Problem], **extra: Any) -> JSONResponse:
    return JSONResponse(
        status_code=422,
        content={"detail": "plan refused by check_plan", "problems": [p.model_dump() for p in problems], **extra},
    )


def plan_diff(old: dict[str, Any] | None, new: dict[str, Any]) -> list[dict[str, Any]]:
    """Field-by-field differences between two plan JSON documents."""
    if old is None:
        return [{"field": "plan", "old": None, "new": "created"}]
    out: list[dict[str, Any]] = []
    for f in ("intersection", "name", "cycle_s", "offset_s"):
        if old.get(f) != new.get(f):
            out.append({"field": f, "old": old.get(f), "new": new.get(f)})
    a, b = old.get("stages", []), new.get("stages", [])
    for k in range(max(len(a), len(b))):
        if k >= len(a):
            out.append({"field": f"stages[{k}]", "old": None, "new": b[k]})
        elif k >= len(b):
            out.append({"field": f"stages[{k}]", "old": a[k], "new": None})
        else:
            for key in ("stage", "green_s", "intergreen_s", "groups"):
                if a[k].get(key) != b[k].get(key):
                    out.append({"field": f"stages[{k}].{key}", "old": a[k].get(key), "new": b[k].get(key)})
    return out


def _out(pv: PlanVersion, row: IntersectionRow | None) -> PlanOut:
    active = row is not None and row.standing_mode == "fixed" and row.active_plan_id == pv.id
    return from_row(PlanOut, pv, intersection=pv.intersection_id, active=active)


def _save_version(s: Session, plan: TimingPlan, comment: str, who: str) -> PlanVersion:
    iid = plan.intersection_id
    prev = s.scalars(
        select(PlanVersion).where(PlanVersion.intersection_id == iid).order_by(PlanVersion.version.desc()).limit(1)
    ).first()
    doc = plan_to_json(plan)
    pv = PlanVersion(
        intersection_id=iid,
        version=(prev.version + 1) if prev else 1,
        name=plan.name,
        plan=doc,
        comment=comment,
        diff=plan_diff(prev.plan if prev else None, doc),
        previous_id=prev.id if prev else None,
        created_by=who,
    )
    s.add(pv)
    s.flush()
    return pv


@router.post("/plans/validate", response_model=ValidationOut)
def validate(body: PlanIn, _: Principal = Depends(reader), svc: ServiceState = Depends(service)) -> ValidationOut:
    """Run ``check_plan`` and list every problem, field by field (nothing is saved)."""
    net = network_or_503(svc.runner)
    _plan, problems = _parse(body.as_json(), net.by_id.get(body.intersection), svc.settings.max_cycle_s)
    return ValidationOut(valid=not problems, problems=problems)


@router.post("/plans", response_model=PlanOut, status_code=201, responses=REFUSED)
def create_plan(body: PlanCreateIn, who: Principal = Depends(planner), svc: ServiceState = Depends(service)) -> Any:
    """Save a new version of an intersection's plan (who, when, comment, diff against the previous)."""
    net = network_or_503(svc.runner)
    plan, problems = _parse(body.plan.as_json(), net.by_id.get(body.plan.intersection), svc.settings.max_cycle_s)
    if problems or plan is None:
        return _refuse(problems)
    with svc.db.session() as s:
        pv = _save_version(s, plan, body.comment, who.username)
        svc.db.audit(
            s, who.username, "plan.create", pv.intersection_id, plan_id=pv.id, version=pv.version, comment=body.comment
        )
        return _out(pv, s.get(IntersectionRow, pv.intersection_id))


@router.get("/plans", response_model=list[PlanOut])
def list_plans(
    intersection: str | None = Query(None, min_length=1, max_length=64),
    limit: int = Query(200, ge=1, le=1000),
    _: Principal = Depends(reader),
    svc: ServiceState = Depends(service),
) -> list[PlanOut]:
    with svc.db.session() as s:
        q = select(PlanVersion).order_by(PlanVersion.id.desc()).limit(limit)
        if intersection:
            q = q.where(PlanVersion.intersection_id == intersection)
        rows = {r.id: r for r in s.scalars(select(IntersectionRow))}
        return [_out(pv, rows.get(pv.intersection_id)) for pv in s.scalars(q)]


@router.get("/plans/compare", responses={404: {"description": "unknown plan"}})
def compare(
    a: int = Query(ge=1, le=2**31 - 1),
    b: int = Query(ge=1, le=2**31 - 1),
    _: Principal = Depends(reader),
    svc: ServiceState = Depends(service),
) -> dict[str, Any]:
    """Field-by-field differences from plan ``a`` to plan ``b``."""
    with svc.db.session() as s:
        pa, pb = s.get(PlanVersion, a), s.get(PlanVersion, b)
        if pa is None or pb is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "unknown plan id")
        return {
            "a": _out(pa, None).model_dump(mode="json"),
            "b": _out(pb, None).model_dump(mode="json"),
            "diff": plan_diff(pa.plan, pb.plan),
        }


@router.get("/plans/{plan_id}", response_model=PlanOut, responses={404: {"description": "unknown plan"}})
def get_plan(
    plan_id: int = Path(ge=1, le=2**31 - 1), _: Principal = Depends(reader), svc: ServiceState = Depends(service)
) -> PlanOut:
    with svc.db.session() as s:
        pv = s.get(PlanVersion, plan_id)
        if pv is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "unknown plan id")
        return _out(pv, s.get(IntersectionRow, pv.intersection_id))


def check_activation(
    net: Any, pv: PlanVersion, targets: list[str], max_cycle_s: float = MAX_CYCLE_S
) -> tuple[dict[str, TimingPlan], list[Problem]]:
    """``check_plan`` of ``pv`` on every target (a copy of its stages and timings on the others)."""
    problems: list[Problem] = []
    plans: dict[str, TimingPlan] = {}
    for iid in targets:
        plan, probs = _parse({**pv.plan, "intersection": iid}, net.by_id.get(iid), max_cycle_s)
        problems += [Problem(field=f"{iid}: {p.field}", message=p.message) for p in probs]
        if plan is not None and not probs:
            plans[iid] = plan
    return plans, problems


def apply_activation(
    s: Session,
    svc: ServiceState,
    pv: PlanVersion,
    targets: list[str],
    plans: dict[str, TimingPlan],
    username: str,
    comment: str,
    **audit: Any,
) -> list[dict[str, Any]]:
    """Make ``pv`` the standing plan of ``targets`` (checked already), audit it and tell the engine."""
    done = []
    for iid in targets:
        if iid == pv.intersection_id:
            target = pv
        else:
            note = f"copy of plan #{pv.id} ({pv.intersection_id} v{pv.version}) for activation"
            target = _save_version(s, plans[iid], note, username)
        row = s.get(IntersectionRow, iid)
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown intersection {iid!r}")
        row.standing_mode, row.active_plan_id, row.updated_at = "fixed", target.id, utcnow()
        svc.db.audit(
            s, username, "plan.activate", iid, plan_id=target.id, version=target.version, comment=comment, **audit
        )
        done.append({"intersection": iid, "plan_id": target.id, "version": target.version})
        ctl = Control(ControlKind.FIXED, "standing", target.id, target.version, plans[iid])
        svc.runner.post(partial(EngineRunner.set_standing, intersection_id=iid, control=ctl))
    return done


def emergency_or_403(who: Principal, emergency: bool, comment: str) -> None:
    """An override of the two-person rule is an admin's, and says why."""
    if not emergency:
        return
    if who.role != Role.ADMIN:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"emergency: role {who.role} may not override the two-person rule"
        )
    if not comment.strip():
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "comment: an emergency override must say why (empty comment)"
        )


def propose(s: Session, svc: ServiceState, who: Principal, kind: str, **fields: Any) -> JSONResponse:
    """Record a pending activation for a second engineer; 202 with the approval."""
    from api.server.routes.approvals import approval_out

    ap = Approval(kind=kind, proposed_by=who.username, status="pending", **fields)
    s.add(ap)
    s.flush()
    svc.db.audit(
        s, who.username, "approval.propose", f"approval:{ap.id}", kind=kind, plan_id=ap.plan_id,
        intersections=ap.intersections, comment=ap.comment,
    )  # fmt: skip
    out = PendingOut(pending=approval_out(ap))
    svc.runner.publish("approval", out.pending.model_dump(mode="json"))
    return JSONResponse(status_code=202, content=out.model_dump(mode="json"))


@router.post(
    "/plans/{plan_id}/activate",
    responses={
        **REFUSED,
        202: {"model": PendingOut, "description": "two-person rule: waiting for a second engineer"},
        404: {"description": "unknown plan"},
    },
)
def activate(
    body: ActivateIn,
    plan_id: int = Path(ge=1, le=2**31 - 1),
    who: Principal = Depends(planner),
    svc: ServiceState = Depends(service),
) -> Any:
    """Activate a plan on its intersection, or on several (checked against each first; all or none).

    On another intersection the plan is saved as a new version of that
    intersection's plan (the same stages and timings), then activated. The
    intersection then runs the plan (standing mode ``fixed``) until a command or
    a time-of-day schedule entry says otherwise.

    With the two-person rule on (``two_person_rule``, the default) nothing goes
    live yet: the checked request waits (202) until another engineer approves it
    (``/api/approvals``), so no single account can change what the street runs;
    an admin may override with ``emergency: true`` and a comment, audited as such.
    """
    net = network_or_503(svc.runner)
    emergency_or_403(who, body.emergency, body.comment)
    with svc.db.session() as s:
        pv = s.get(PlanVersion, plan_id)
        if pv is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "unknown plan id")
        targets = list(dict.fromkeys(body.intersections or [pv.intersection_id]))
        plans, problems = check_activation(net, pv, targets, svc.settings.max_cycle_s)
        if problems:
            return _refuse(problems)
        if svc.settings.two_person_rule and not body.emergency:
            return propose(s, svc, who, "plan", plan_id=pv.id, intersections=targets, comment=body.comment)
        extra: dict[str, Any] = {"emergency": True} if body.emergency else {}
        if body.emergency and svc.settings.two_person_rule:
            svc.db.audit(
                s, who.username, "approval.override", f"plan:{pv.id}", intersections=targets, reason=body.comment
            )
        done = apply_activation(s, svc, pv, targets, plans, who.username, body.comment, **extra)
    return {"activated": done}


@router.post("/intersections/{intersection_id}/adaptive", responses={404: {"description": "unknown intersection"}})
def make_adaptive(
    intersection_id: str = Path(min_length=1, max_length=64),
    who: Principal = Depends(planner),
    svc: ServiceState = Depends(service),
) -> dict[str, Any]:
    """Standing mode back to adaptive (the configured policy); the last activated plan stays on record."""
    known(svc.runner, intersection_id)
    with svc.db.session() as s:
        row = s.get(IntersectionRow, intersection_id)
        if row is not None:
            row.standing_mode, row.updated_at = "adaptive", utcnow()
        svc.db.audit(s, who.username, "plan.deactivate", intersection_id)
    svc.runner.post(lambda r: r.set_standing(intersection_id, Control(ControlKind.ADAPTIVE)))
    return {"intersection": intersection_id, "standing_mode": "adaptive"}


@router.get("/intersections/{intersection_id}/plan-template", responses={404: {"description": "unknown intersection"}})
def plan_template(
    intersection_id: str = Path(min_length=1, max_length=64),
    _: Principal = Depends(reader),
    svc: ServiceState = Depends(service),
) -> dict[str, Any]:
    """A sound starting plan: every stage in order, 20 s green (or the minimum), the required intergreens."""
    known(svc.runner, intersection_id)
    inter = network_or_503(svc.runner).get(intersection_id)
    stages: list[dict[str, Any]] = []
    n = len(inter.stages)
    for k, st in enumerate(inter.stages):
        nxt = inter.stages[(k + 1) % n]
        need_green = max((inter.groups[inter.group_index(g)].required_green_s for g in st.groups), default=5.0)
        ig = inter.clearance_between_s(st.groups, nxt.groups) if n > 1 else 0.0
        stages.append({"stage": st.id, "green_s": float(max(20.0, need_green)), "intergreen_s": float(ig)})
    cycle = sum(x["green_s"] + x["intergreen_s"] for x in stages)
    return {"intersection": intersection_id, "cycle_s": round(cycle, 3), "offset_s": 0.0, "stages": stages, "name": ""}


@router.get("/intersections/{intersection_id}/schedule", responses={404: {"description": "unknown intersection"}})
def get_schedule(
    intersection_id: str = Path(min_length=1, max_length=64),
    _: Principal = Depends(reader),
    svc: ServiceState = Depends(service),
) -> dict[str, Any]:
    known(svc.runner, intersection_id)
    with svc.db.session() as s:
        rows = s.scalars(select(ScheduleEntry).where(ScheduleEntry.intersection_id == intersection_id)).all()
        return {
            "intersection": intersection_id,
            "entries": sorted(({"start": e.start, "plan_id": e.plan_id} for e in rows), key=lambda e: e["start"]),
        }


def check_schedule(
    s: Session, intersection_id: str, entries: list[dict[str, Any]]
) -> tuple[list[tuple[str, Control]], list[Problem]]:
    """Each entry's plan must be a version of this intersection; starts must differ."""
    problems: list[Problem] = []
    starts = [e["start"] for e in entries]
    for k, st in enumerate(starts):
        if starts.index(st) != k:
            problems.append(Problem(field=f"entries[{k}].start", message=f"{st} appears twice"))
    out: list[tuple[str, Control]] = []
    for k, e in enumerate(entries):
        if e["plan_id"] is None:
            out.append((e["start"], Control(ControlKind.ADAPTIVE, "schedule")))
            continue
        pv = s.get(PlanVersion, e["plan_id"])
        if pv is None or pv.intersection_id != intersection_id:
            problems.append(
                Problem(field=f"entries[{k}].plan_id", message=f"no plan {e['plan_id']} for {intersection_id}")
            )
            continue
        out.append((e["start"], Control(ControlKind.FIXED, "schedule", pv.id, pv.version, plan_from_json(pv.plan))))
    return out, problems


def apply_schedule(
    s: Session,
    svc: ServiceState,
    intersection_id: str,
    entries: list[dict[str, Any]],
    controls: list[tuple[str, Control]],
    username: str,
    comment: str,
    **audit: Any,
) -> None:
    """Replace the stored schedule (checked already), audit it and tell the engine."""
    for old in s.scalars(select(ScheduleEntry).where(ScheduleEntry.intersection_id == intersection_id)):
        s.delete(old)
    for e in entries:
        s.add(
            ScheduleEntry(intersection_id=intersection_id, start=e["start"], plan_id=e["plan_id"], created_by=username)
        )
    svc.db.audit(s, username, "schedule.set", intersection_id, entries=entries, comment=comment, **audit)
    svc.runner.post(lambda r: r.set_schedule(intersection_id, controls))


@router.put(
    "/intersections/{intersection_id}/schedule",
    responses={
        **REFUSED,
        202: {"model": PendingOut, "description": "two-person rule: waiting for a second engineer"},
        404: {"description": "unknown intersection"},
    },
)
def set_schedule(
    body: ScheduleIn,
    intersection_id: str = Path(min_length=1, max_length=64),
    who: Principal = Depends(planner),
    svc: ServiceState = Depends(service),
) -> Any:
    """Replace the time-of-day schedule: from each ``start`` (controller clock) run a plan, or adaptive (null).

    Under the two-person rule the checked schedule waits (202) for a second
    engineer, as a plan activation does.
    """
    known(svc.runner, intersection_id)
    emergency_or_403(who, body.emergency, body.comment)
    entries = [e.model_dump() for e in body.entries]
    with svc.db.session() as s:
        controls, problems = check_schedule(s, intersection_id, entries)
        if problems:
            return JSONResponse(
                status_code=422, content={"detail": "schedule refused", "problems": [p.model_dump() for p in problems]}
            )
        if svc.settings.two_person_rule and not body.emergency:
            return propose(
                s, svc, who, "schedule", intersections=[intersection_id], payload={"entries": entries},
                comment=body.comment,
            )  # fmt: skip
        extra: dict[str, Any] = {"emergency": True} if body.emergency else {}
        if body.emergency and svc.settings.two_person_rule:
            svc.db.audit(s, who.username, "approval.override", f"schedule:{intersection_id}", reason=body.comment)
        apply_schedule(s, svc, intersection_id, entries, controls, who.username, body.comment, **extra)
    return {"intersection": intersection_id, "entries": entries}
