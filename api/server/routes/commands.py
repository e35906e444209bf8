"""Operator commands with expiry: adaptive, fixed plan, flash request, manual stage hold."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from fastapi.responses import JSONResponse
from sqlalchemy import select

from api.server.auth import Permission, Principal
from api.server.db import CommandRow, IntersectionRow, PlanVersion, utcnow
from api.server.deps import ServiceState, require, service
from api.server.live import Control, ControlKind, EngineRunner
from api.server.routes.network import network_or_503
from api.server.schemas import CommandIn, CommandKind, CommandOut, Problem, from_row
from api.server.settings import Settings
from intersections.network import Network
from intersections.plan import plan_from_json

router = APIRouter(prefix="/api", tags=["commands"])
reader = require(Permission.READ)
commander = require(Permission.COMMAND)


def command_out(c: CommandRow) -> CommandOut:
    return from_row(CommandOut, c, intersection=c.intersection_id)


@router.post("/commands", response_model=list[CommandOut], status_code=201, responses={422: {"description": "refused"}})
def create_commands(body: CommandIn, who: Principal = Depends(commander), svc: ServiceState = Depends(service)) -> Any:
    """Command one or many intersections for ``duration_s`` (then they fall back to their standing mode).

    * ``adaptive``: the adaptive policy;
    * ``fixed_plan``: a plan version (``plan_id``, default the intersection's active plan);
    * ``flash``: an operator flash request; needs ``confirm: true``; the safety
      supervisor clears (yellow, all-red) before flashing;
    * ``hold``: hold ``stage`` (manual control); bounded by ``max_hold_s``; the
      supervisor still serves minimum greens and clearances.

    The newest command on an intersection wins; all are listed and can be cancelled.
    """
    targets = list(dict.fromkeys(body.intersections))
    problems = _command_problems(body, targets, network_or_503(svc.runner), svc.settings)
    now = utcnow()
    expires = now + timedelta(seconds=body.duration_s)
    created: list[CommandRow] = []
    with svc.db.session() as s:
        plans: dict[str, PlanVersion] = {}
        if body.kind is CommandKind.FIXED_PLAN and not problems:
            for iid in targets:
                pid = body.plan_id
                if pid is None:
                    row = s.get(IntersectionRow, iid)
                    pid = row.active_plan_id if row else None
                pv = s.get(PlanVersion, pid) if pid else None
                if pv is None or pv.intersection_id != iid:
                    problems.append(
                        Problem(field="plan_id", message=f"no plan {pid} for {iid} (save and check one first)")
                    )
                else:
                    plans[iid] = pv
        if problems:
            return JSONResponse(
                status_code=422, content={"detail": "command refused", "problems": [p.model_dump() for p in problems]}
            )
        for iid in targets:
            pv = plans.get(iid)
            c = CommandRow(
                intersection_id=iid,
                kind=body.kind.value,
                plan_id=pv.id if pv else None,
                stage=body.stage if body.kind is CommandKind.HOLD else None,
                reason=body.reason,
                created_by=who.username,
                created_at=now,
                expires_at=expires,
            )
            s.add(c)
            s.flush()
            svc.db.audit(
                s, who.username, f"command.{body.kind.value}", iid,
                command_id=c.id, expires_at=expires.isoformat(), reason=body.reason, plan_id=c.plan_id, stage=c.stage,
                confirmed=body.confirm,
            )  # fmt: skip
            created.append(c)
            kw: dict[str, Any] = {"source": "command", "command_id": c.id, "expires_at": expires}
            if pv is not None:
                plan = plan_from_json(pv.plan)
                ctl = Control(ControlKind.FIXED, plan_id=pv.id, plan_version=pv.version, plan=plan, **kw)
            else:
                kind = ControlKind.FIXED if c.kind == CommandKind.FIXED_PLAN else ControlKind(c.kind)
                ctl = Control(kind, stage=c.stage, **kw)
            svc.runner.post(partial(EngineRunner.add_command, command_id=c.id, intersection_id=iid, control=ctl))
        out = [command_out(c) for c in created]
    for co in out:
        svc.runner.publish(
            "command", {"id": co.id, "status": co.status, "intersection": co.intersection, "kind": co.kind}
        )
    return out


def _command_problems(body: CommandIn, targets: list[str], net: Network, s_: Settings) -> list[Problem]:
    """Everything wrong with a command before the database is asked: its duration for its kind,
    a flash's confirmation, unknown intersections, a hold's stage on every target."""
    problems: list[Problem] = []
    limit = {CommandKind.HOLD: s_.max_hold_s, CommandKind.FLASH: s_.max_flash_s}.get(body.kind, s_.max_command_s)
    if body.duration_s > limit:
        problems.append(Problem(field="duration_s", message=f"at most {limit:g} s for {body.kind.value}"))
    if body.kind is CommandKind.FLASH and not body.confirm:
        problems.append(Problem(field="confirm", message="a flash request must be confirmed (confirm: true)"))
    for iid in targets:
        if iid not in net.by_id:
            problems.append(Problem(field="intersections", message=f"unknown intersection {iid!r}"))
    if body.kind is CommandKind.HOLD:
        if not body.stage:
            problems.append(Problem(field="stage", message="a hold names the stage to hold"))
        else:
            for iid in targets:
                if iid in net.by_id and body.stage not in [st.id for st in net.get(iid).stages]:
                    problems.append(Problem(field="stage", message=f"{iid} has no stage {body.stage!r}"))
    return problems


@router.get("/commands", response_model=list[CommandOut])
def list_commands(
    active: bool | None = Query(None, description="true: only active; false: only ended"),
    intersection: str | None = Query(None, min_length=1, max_length=64),
    limit: int = Query(200, ge=1, le=2000),
    _: Principal = Depends(reader),
    svc: ServiceState = Depends(service),
) -> list[CommandOut]:
    with svc.db.session() as s:
        q = select(CommandRow).order_by(CommandRow.id.desc()).limit(limit)
        if active is not None:
            q = q.where(CommandRow.status == "active") if active else q.where(CommandRow.status != "active")
        if intersection:
            q = q.where(CommandRow.intersection_id == intersection)
        now = utcnow()
        rows = list(s.scalars(q))
        # An expiry the engine has not processed yet (engine stopped) still shows as expired.
        return [
            command_out(c).model_copy(update={"status": "expired"})
            if c.status == "active" and c.expires_at <= now
            else command_out(c)
            for c in rows
        ]


@router.post(
    "/commands/{command_id}/cancel",
    response_model=CommandOut,
    responses={404: {"description": "unknown command"}, 409: {"description": "not active"}},
)
def cancel_command(
    command_id: int = Path(ge=1, le=2**31 - 1),
    who: Principal = Depends(commander),
    svc: ServiceState = Depends(service),
) -> CommandOut:
    with svc.db.session() as s:
        c = s.get(CommandRow, command_id)
        if c is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "unknown command")
        if c.status != "active":
            raise HTTPException(status.HTTP_409_CONFLICT, f"command is {c.status}")
        c.status, c.ended_at, c.ended_by = "cancelled", utcnow(), who.username
        svc.db.audit(s, who.username, "command.cancel", c.intersection_id, command_id=c.id, kind=c.kind)
        out = command_out(c)
    svc.runner.post(lambda r: r.end_command(command_id))
    svc.runner.publish("command", {"id": command_id, "status": "cancelled", "intersection": out.intersection})
    return out
