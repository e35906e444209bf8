"""The two-person rule: a plan or schedule activation goes live only when a second engineer approves it.

A traffic engineer's change of what the street runs is checked by a colleague
before it takes effect, as change control in SCATS/SCOOT centres and the
four-eyes principle of safety-relevant configuration (IEC 61508's independent
verification) require. The proposer cannot approve their own request (names
compared case-insensitively); approval re-runs ``check_plan`` on every target
first (all or none) and audits who proposed and who approved. The proposer or
any other engineer may reject (the proposer's rejection is recorded as
``withdrawn``). An admin's emergency override bypasses the queue at the
activation itself (``emergency: true``) and is audited as ``approval.override``.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.server.auth import Permission, Principal
from api.server.db import Approval, PlanVersion, utcnow
from api.server.deps import ServiceState, require, service
from api.server.routes.network import network_or_503
from api.server.schemas import ApprovalOut, DecisionIn

__all__ = ["router", "approval_out"]

router = APIRouter(prefix="/api", tags=["approvals"])
reader = require(Permission.READ)
planner = require(Permission.PLAN)
ApprovalId = Path(ge=1, le=2**31 - 1)
NOT_PENDING: dict[int | str, dict[str, Any]] = {
    409: {"description": "already approved, rejected or withdrawn"},
    404: {"description": "unknown id"},
}


def approval_out(a: Approval) -> ApprovalOut:
    return ApprovalOut(
        id=a.id,
        kind=a.kind,
        plan_id=a.plan_id,
        intersections=list(a.intersections or []),
        entries=(a.payload or {}).get("entries"),
        comment=a.comment,
        status=a.status,
        proposed_by=a.proposed_by,
        proposed_at=a.proposed_at,
        decided_by=a.decided_by,
        decided_at=a.decided_at,
        decision_note=a.decision_note,
    )


def _pending(s: Session, approval_id: int) -> Approval:
    a = s.get(Approval, approval_id)
    if a is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown approval {approval_id}")
    if a.status != "pending":
        raise HTTPException(status.HTTP_409_CONFLICT, f"approval {approval_id} is already {a.status}")
    return a


@router.get("/approvals", response_model=list[ApprovalOut])
def list_approvals(
    state: Literal["pending", "approved", "rejected", "withdrawn", "all"] = Query("pending", alias="status"),
    limit: int = Query(100, ge=1, le=1000),
    _: Principal = Depends(reader),
    svc: ServiceState = Depends(service),
) -> list[ApprovalOut]:
    """Proposed activations, newest first (default: those still waiting)."""
    with svc.db.session() as s:
        q = select(Approval).order_by(Approval.id.desc()).limit(limit)
        if state != "all":
            q = q.where(Approval.status == state)
        return [approval_out(a) for a in s.scalars(q)]


@router.post(
    "/approvals/{approval_id}/approve",
    responses={**NOT_PENDING, 403: {"description": "the proposer cannot approve"}, 422: {"description": "refused"}},
)
def approve(
    body: DecisionIn,
    approval_id: int = ApprovalId,
    who: Principal = Depends(planner),
    svc: ServiceState = Depends(service),
) -> Any:
    """A second engineer approves: the plan or schedule goes live now (checked again first)."""
    from api.server.routes.plans import _refuse, apply_activation, apply_schedule, check_activation, check_schedule

    net = network_or_503(svc.runner)
    with svc.db.session() as s:
        a = _pending(s, approval_id)
        if a.proposed_by.casefold() == who.username.casefold():
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"approval {approval_id}: the proposer cannot approve their own request"
            )
        extra = {"approval_id": a.id, "proposed_by": a.proposed_by, "approved_by": who.username}
        result: dict[str, Any]
        if a.kind == "plan":
            pv = s.get(PlanVersion, a.plan_id)
            if pv is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"plan {a.plan_id} no longer exists")
            targets = list(a.intersections)
            plans, problems = check_activation(net, pv, targets)
            if problems:
                return _refuse(problems, approval_id=a.id)
            result = {"activated": apply_activation(s, svc, pv, targets, plans, who.username, a.comment, **extra)}
        else:
            iid = a.intersections[0]
            entries = list(a.payload.get("entries", []))
            controls, problems = check_schedule(s, iid, entries)
            if problems:
                return JSONResponse(
                    status_code=422,
                    content={"detail": "schedule refused", "problems": [p.model_dump() for p in problems]},
                )
            apply_schedule(s, svc, iid, entries, controls, who.username, a.comment, **extra)
            result = {"intersection": iid, "entries": entries}
        a.status, a.decided_by, a.decided_at, a.decision_note = "approved", who.username, utcnow(), body.note
        svc.db.audit(s, who.username, "approval.approve", f"approval:{a.id}", kind=a.kind, note=body.note)
        out = approval_out(a)
    svc.runner.publish("approval", out.model_dump(mode="json"))
    return {"approval": out.model_dump(mode="json"), **result}


@router.post("/approvals/{approval_id}/reject", response_model=ApprovalOut, responses=NOT_PENDING)
def reject(
    body: DecisionIn,
    approval_id: int = ApprovalId,
    who: Principal = Depends(planner),
    svc: ServiceState = Depends(service),
) -> ApprovalOut:
    """Refuse a proposal (by its proposer: withdraw it); nothing goes live."""
    with svc.db.session() as s:
        a = _pending(s, approval_id)
        own = a.proposed_by.casefold() == who.username.casefold()
        a.status = "withdrawn" if own else "rejected"
        a.decided_by, a.decided_at, a.decision_note = who.username, utcnow(), body.note
        action = "approval.withdraw" if own else "approval.reject"
        svc.db.audit(s, who.username, action, f"approval:{a.id}", kind=a.kind, note=body.note)
        out = approval_out(a)
    svc.runner.publish("approval", out.model_dump(mode="json"))
    return out
