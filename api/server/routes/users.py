"""Account management: disable and enable, role changes, password change (own) and reset (admin).

Every change writes one audit row (``user.disable``, ``user.enable``, ``user.role``,
``user.password_reset``, ``auth.password_change``). Disabling an account, resetting
or changing a password revokes the account's tokens (the caller keeps the token it
changed its own password with), so an open dashboard or live stream of a disabled
user stops at once. The last active admin can be neither disabled nor demoted: a
deployment without an admin could never manage its users again.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Path, status
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.server.auth import (
    PasswordPolicyError,
    Permission,
    Principal,
    Role,
    find_user,
    revoke_user_tokens,
    set_password,
    token_digest,
    verify_password,
)
from api.server.db import User
from api.server.deps import ServiceState, bearer, principal, require, service
from api.server.schemas import UserOut

router = APIRouter(prefix="/api", tags=["auth"])

USERNAME = Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    active: bool | None = Field(None, description="false disables the account (its tokens are revoked)")
    role: Role | None = None


class PasswordReset(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: str = Field(min_length=1, max_length=256)


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=1, max_length=256)


def _out(u: User) -> UserOut:
    return UserOut(username=u.username, role=Role(u.role), active=u.active, created_at=u.created_at,
                   created_by=u.created_by)  # fmt: skip


def _get(s: Session, username: str) -> User:
    u = find_user(s, username)
    if u is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"username: no user {username!r}")
    return u


def _policy(e: PasswordPolicyError) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(e))


@router.patch(
    "/users/{username}",
    response_model=UserOut,
    responses={404: {"description": "no such user"}, 409: {"description": "would leave no active admin"}},
)
def patch_user(
    body: UserPatch,
    username: str = USERNAME,
    who: Principal = Depends(require(Permission.USERS)),
    svc: ServiceState = Depends(service),
) -> UserOut:
    """Disable or enable an account, or change its role (admin)."""
    with svc.db.session() as s:
        u = _get(s, username)
        leaves_admin = (body.active is False or (body.role is not None and body.role != Role.ADMIN)) and (
            u.role == Role.ADMIN.value and u.active
        )
        if leaves_admin:
            admins = s.scalar(select(func.count()).select_from(User).where(User.role == "admin", User.active))
            if (admins or 0) <= 1:
                raise HTTPException(status.HTTP_409_CONFLICT, f"{u.username} is the last active admin")
        if body.active is not None and body.active != u.active:
            u.active = body.active
            if not body.active:
                revoke_user_tokens(s, u.id)
            svc.db.audit(s, who.username, "user.enable" if body.active else "user.disable", u.username)
        if body.role is not None and body.role.value != u.role:
            old, u.role = u.role, body.role.value
            svc.db.audit(s, who.username, "user.role", u.username, old=old, new=body.role.value)
        return _out(u)


@router.post(
    "/users/{username}/password",
    status_code=204,
    responses={404: {"description": "no such user"}, 422: {"description": "password refused by the policy"}},
)
def reset_password(
    body: PasswordReset,
    username: str = USERNAME,
    who: Principal = Depends(require(Permission.USERS)),
    svc: ServiceState = Depends(service),
) -> None:
    """Reset a user's password (admin); the user's sessions end."""
    with svc.db.session() as s:
        u = _get(s, username)
        try:
            set_password(s, u, body.password)
        except PasswordPolicyError as e:
            raise _policy(e) from None
        svc.db.audit(s, who.username, "user.password_reset", u.username)


@router.post(
    "/auth/password",
    status_code=204,
    responses={403: {"description": "current password wrong"}, 422: {"description": "password refused by the policy"}},
)
def change_password(
    body: PasswordChange,
    who: Principal = Depends(principal),
    creds: HTTPAuthorizationCredentials | None = Depends(bearer),
    svc: ServiceState = Depends(service),
) -> None:
    """Change one's own password; one's other sessions end, this one stays."""
    with svc.db.session() as s:
        u = s.get(User, who.user_id)
        if u is None or not verify_password(body.current_password, u.password_hash):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "current_password: wrong password")
        keep = token_digest(creds.credentials, svc.key) if creds is not None else None
        try:
            set_password(s, u, body.new_password, keep_digest=keep)
        except PasswordPolicyError as e:
            raise _policy(e) from None
        svc.db.audit(s, who.username, "auth.password_change", who.username)
