"""Request and response bodies (the API's JSON contracts)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from api.server.auth import Role

__all__ = [
    "LoginIn",
    "LoginOut",
    "UserIn",
    "UserOut",
    "PlanStageIn",
    "PlanIn",
    "PlanCreateIn",
    "Problem",
    "ValidationOut",
    "PlanOut",
    "ActivateIn",
    "ScheduleEntryIn",
    "ScheduleIn",
    "CommandKind",
    "CommandIn",
    "CommandOut",
    "AckIn",
    "LinkIn",
    "ApprovalOut",
    "PendingOut",
    "DecisionIn",
    "ShelveIn",
    "from_row",
]

ID = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:+#\-]+$")
Out = TypeVar("Out", bound=BaseModel)


def from_row(model: type[Out], row: object, **given: Any) -> Out:
    """``model`` from a database row's attributes of the same names; ``given`` sets the others."""
    return model(**{name: getattr(row, name) for name in model.model_fields if name not in given}, **given)
SECONDS = Field(ge=0, le=86_400, allow_inf_nan=False)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginIn(Strict):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class UserOut(BaseModel):
    username: str
    role: Role
    active: bool = True
    created_at: datetime | None = None
    created_by: str | None = None


class LoginOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: datetime
    user: UserOut
    permissions: list[str]


class UserIn(Strict):
    username: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    password: str = Field(min_length=8, max_length=256)
    role: Role


class PlanStageIn(Strict):
    stage: str | None = Field(None, min_length=1, max_length=64)
    green_s: float = SECONDS
    intergreen_s: float = SECONDS
    groups: list[str] = Field(default_factory=list, max_length=64)


class PlanIn(Strict):
    """A timing plan, as ``intersections.plan.plan_from_json`` reads it."""

    intersection: str = ID
    cycle_s: float = SECONDS
    offset_s: float = Field(0.0, ge=0, le=86_400, allow_inf_nan=False)
    stages: list[PlanStageIn] = Field(min_length=1, max_length=32)
    name: str = Field("", max_length=128)

    def as_json(self) -> dict[str, Any]:
        d = self.model_dump()
        for st in d["stages"]:
            if st["stage"] is None:
                st.pop("stage")
            if not st["groups"]:
                st.pop("groups")
        return d


class PlanCreateIn(Strict):
    plan: PlanIn
    comment: str = Field("", max_length=2000)


class Problem(BaseModel):
    field: str
    message: str


class ValidationOut(BaseModel):
    valid: bool
    problems: list[Problem]


class PlanOut(BaseModel):
    id: int
    intersection: str
    version: int
    name: str
    plan: dict[str, Any]
    comment: str
    diff: list[dict[str, Any]]
    previous_id: int | None
    created_by: str
    created_at: datetime
    active: bool = False


EMERGENCY = Field(
    False,
    description="admin only, with the two-person rule on: go live now without a second engineer "
    "(audited as an override; the comment must say why)",
)


class ActivateIn(Strict):
    intersections: list[str] | None = Field(None, max_length=1000, description="default: the plan's own")
    comment: str = Field("", max_length=2000)
    emergency: bool = EMERGENCY


class ScheduleEntryIn(Strict):
    start: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="HH:MM, controller clock")
    plan_id: int | None = Field(
        None, ge=1, le=2**31 - 1, description="a plan version of this intersection; null = adaptive"
    )


class ScheduleIn(Strict):
    entries: list[ScheduleEntryIn] = Field(max_length=48)
    comment: str = Field("", max_length=2000)
    emergency: bool = EMERGENCY


class ApprovalOut(BaseModel):
    """A proposed activation; ``status``: pending, approved, rejected, withdrawn."""

    id: int
    kind: str
    plan_id: int | None
    intersections: list[str]
    entries: list[dict[str, Any]] | None = None
    comment: str
    status: str
    proposed_by: str
    proposed_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str | None


class PendingOut(BaseModel):
    """202: the activation waits for a second engineer (``POST /api/approvals/{id}/approve``)."""

    pending: ApprovalOut


class DecisionIn(Strict):
    note: str = Field("", max_length=2000)


class ShelveIn(Strict):
    minutes: float = Field(ge=1, le=7 * 24 * 60, allow_inf_nan=False, description="the shelf expires after this")
    note: str = Field(min_length=1, max_length=2000, description="why it is shelved")


class CommandKind(StrEnum):
    ADAPTIVE = "adaptive"
    FIXED_PLAN = "fixed_plan"
    FLASH = "flash"
    HOLD = "hold"


class CommandIn(Strict):
    intersections: list[str] = Field(min_length=1, max_length=1000)
    kind: CommandKind
    duration_s: float = Field(ge=1, le=7 * 86_400, allow_inf_nan=False, description="the command expires after this")
    plan_id: int | None = Field(
        None, ge=1, le=2**31 - 1, description="fixed_plan: a plan version (default: active plan)"
    )
    stage: str | None = Field(None, min_length=1, max_length=64, description="hold: the stage to hold")
    reason: str = Field(min_length=1, max_length=2000)
    confirm: bool = Field(False, description="must be true for a flash request")


class CommandOut(BaseModel):
    id: int
    intersection: str
    kind: str
    plan_id: int | None
    stage: str | None
    reason: str
    status: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    ended_at: datetime | None
    ended_by: str | None


class AckIn(Strict):
    note: str = Field("", max_length=2000)


class LinkIn(Strict):
    down: bool = Field(description="true: cut the emulated controller's link; false: restore it")
    reason: str = Field("", max_length=2000)
