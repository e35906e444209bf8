"""Log in and out; users (admin)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy import select

from api.server.auth import (
    AuthError,
    LoginThrottle,
    PasswordPolicyError,
    Permission,
    Principal,
    Role,
    authenticate,
    create_user,
    issue_token,
    revoke_token,
)
from api.server.db import User
from api.server.deps import ServiceState, bearer, principal, require, service
from api.server.schemas import LoginIn, LoginOut, UserIn, UserOut

router = APIRouter(prefix="/api", tags=["auth"])


def throttle(svc: ServiceState) -> LoginThrottle:
    """The service's login throttle (made on first use, from the settings)."""
    t = svc.login_throttle
    if t is None:
        st = svc.settings
        t = svc.login_throttle = LoginThrottle(st.login_max_failures, st.login_lock_s, st.login_lock_max_s)
    return t


@router.post(
    "/auth/login",
    response_model=LoginOut,
    responses={
        401: {"description": "wrong user or password (or a disabled account)"},
        429: {"description": "too many failed logins for this account or from this client: wait Retry-After s"},
    },
)
def login(body: LoginIn, request: Request, svc: ServiceState = Depends(service)) -> LoginOut:
    """Exchange a user name and password for a bearer token.

    Failed logins are throttled per account and per client address (exponential back-off, temporary
    lock: :class:`~api.server.auth.LoginThrottle`); each lock writes one ``auth.locked`` audit row,
    single failures write none (a login storm cannot grow the audit log)."""
    client = request.client.host if request.client else ""
    thr = throttle(svc)
    wait = thr.retry_after_s(body.username, client)
    if wait > 0:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"too many failed logins: try again in {wait:.0f} s",
            headers={"Retry-After": str(max(1, round(wait)))},
        )
    with svc.db.session() as s:
        user = authenticate(s, body.username, body.password)
        if user is None:
            name = body.username.encode("utf-8", "replace").decode("utf-8")[:64]  # any text a client sent
            for kind, key, secs in thr.fail(name, client):
                svc.db.audit(s, name, "auth.locked", f"{kind}:{key}"[:128], seconds=secs)
            s.commit()
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong user name or password")
        thr.succeed(body.username, client)
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


@router.post(
    "/users",
    response_model=UserOut,
    status_code=201,
    responses={
        409: {"description": "user exists (names ignore letter case)"},
        422: {"description": "password refused by the policy"},
    },
)
def add_user(
    body: UserIn, who: Principal = Depends(require(Permission.USERS)), svc: ServiceState = Depends(service)
) -> UserOut:
    with svc.db.session() as s:
        try:
            u = create_user(s, body.username, body.password, body.role, created_by=who.username)
        except PasswordPolicyError as e:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(e)) from None
        except AuthError as e:
            raise HTTPException(status.HTTP_409_CONFLICT, str(e)) from None
        svc.db.audit(s, who.username, "user.create", body.username, role=body.role.value)
        return UserOut(
            username=u.username, role=Role(u.role), active=u.active, created_at=u.created_at, created_by=u.created_by
        )
