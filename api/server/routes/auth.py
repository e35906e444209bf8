"""Log in and out; users (admin)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy import select

from api.server.auth import AuthError, Permission, Principal, Role, authenticate, create_user, issue_token, revoke_token
from api.server.db import User
from api.server.deps import ServiceState, bearer, principal, require, service
from api.server.schemas import LoginIn, LoginOut, UserIn, UserOut

router = APIRouter(prefix="/api", tags=["auth"])


@router.post("/auth/login", response_model=LoginOut, responses={401: {"description": "wrong user or password"}})
def login(body: LoginIn, svc: ServiceState = Depends(service)) -> LoginOut:
    """Exchange a user name and password for a bearer token."""
    with svc.db.session() as s:
        user = authenticate(s, body.username, body.password)
        if user is None:
            svc.db.audit(s, body.username[:64], "auth.login_failed", "")
            s.commit()
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong user name or password")
        token, row = issue_token(s, user, svc.key, svc.settings.token_ttl_s)
        svc.db.audit(s, user.username, "auth.login", "")
        role = Role(user.role)
        from api.server.auth import ROLE_PERMISSIONS

        return LoginOut(
            access_token=token,
            expires_at=row.expires_at,
            user=UserOut(username=user.username, role=role, active=user.active),
            permissions=sorted(p.value for p in ROLE_PERMISSIONS[role]),
        )


@router.post("/auth/logout", status_code=204, responses={401: {"description": "not authenticated"}})
def logout(
    who: Principal = Depends(principal),
    creds: HTTPAuthorizationCredentials | None = Depends(bearer),
    svc: ServiceState = Depends(service),
) -> None:
    """Revoke the caller's token."""
    with svc.db.session() as s:
        if creds is not None:
            revoke_token(s, creds.credentials, svc.key)
        svc.db.audit(s, who.username, "auth.logout", "")


@router.get("/auth/me")
def me(who: Principal = Depends(principal)) -> dict[str, object]:
    return {"username": who.username, "role": who.role.value, "permissions": sorted(p.value for p in who.permissions)}


@router.get("/users", response_model=list[UserOut])
def list_users(
    _: Principal = Depends(require(Permission.USERS)), svc: ServiceState = Depends(service)
) -> list[UserOut]:
    with svc.db.session() as s:
        return [
            UserOut(
                username=u.username,
                role=Role(u.role),
                active=u.active,
                created_at=u.created_at,
                created_by=u.created_by,
            )
            for u in s.scalars(select(User).order_by(User.id))
        ]


@router.post("/users", response_model=UserOut, status_code=201, responses={409: {"description": "user exists"}})
def add_user(
    body: UserIn, who: Principal = Depends(require(Permission.USERS)), svc: ServiceState = Depends(service)
) -> UserOut:
    with svc.db.session() as s:
        try:
            u = create_user(s, body.username, body.password, body.role, created_by=who.username)
        except AuthError as e:
            raise HTTPException(status.HTTP_409_CONFLICT, str(e)) from None
        svc.db.audit(s, who.username, "user.create", body.username, role=body.role.value)
        return UserOut(
            username=u.username, role=Role(u.role), active=u.active, created_at=u.created_at, created_by=u.created_by
        )
