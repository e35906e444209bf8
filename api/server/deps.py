"""Request dependencies: the service state, the authenticated caller, role checks."""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Receive, Scope, Send

from api.server.auth import Permission, Principal, resolve_token
from api.server.db import Database
from api.server.live import EngineRunner
from api.server.settings import Settings

if TYPE_CHECKING:
    from api.server.auth import LoginThrottle
    from api.server.routes.stream import TicketBook

__all__ = ["ServiceState", "service", "principal", "require", "bearer", "WriteGate", "metrics_allowed"]

bearer = HTTPBearer(auto_error=False, description="token from POST /api/auth/login")


@dataclass
class ServiceState:
    settings: Settings
    db: Database
    runner: EngineRunner
    # Made on first use by their routes (routes/auth.py, routes/stream.py), one per service.
    login_throttle: LoginThrottle | None = field(default=None, repr=False)
    stream_tickets: TicketBook | None = field(default=None, repr=False)

    @property
    def key(self) -> str:
        return self.settings.secret_key.get_secret_value()


def service(request: Request) -> ServiceState:
    return request.app.state.gw


def _unauthorized(detail: str = "not authenticated") -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"})


def principal(
    creds: HTTPAuthorizationCredentials | None = Depends(bearer),
    svc: ServiceState = Depends(service),
) -> Principal:
    if creds is None or creds.scheme.lower() != "bearer":
        raise _unauthorized()
    who = resolve_token(svc.db, creds.credentials, svc.key)
    if who is None:
        raise _unauthorized("invalid or expired token")
    return who


def metrics_allowed(svc: ServiceState, authorization: str) -> bool:
    """``/metrics``: the settings' ``metrics_token`` (for the scraper) or any user's valid token."""
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return False
    want = svc.settings.metrics_token
    if want is not None and hmac.compare_digest(token.encode(), want.get_secret_value().encode()):
        return True
    return resolve_token(svc.db, token, svc.key) is not None


def require(perm: Permission) -> Callable[..., Principal]:
    """A dependency that admits callers whose role grants ``perm`` (403 otherwise)."""

    def dep(who: Principal = Depends(principal)) -> Principal:
        if not who.can(perm):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {who.role} may not {perm.value}")
        return who

    dep.__name__ = f"require_{perm.value}"
    return dep


class WriteGate:
    """ASGI middleware: an API write without a valid token gets 401 before anything reads its body.

    The role checks stay in the routes (:func:`require`); this gate only makes sure
    that no unauthenticated POST/PUT/PATCH/DELETE reaches them, whatever the body.
    """

    WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
    PUBLIC = frozenset({"/api/auth/login"})

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in self.WRITES
            and scope["path"].startswith("/api/")
            and scope["path"] not in self.PUBLIC
        ):
            auth = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
            scheme, _, token = auth.partition(" ")
            svc: ServiceState = scope["app"].state.gw
            ok = (
                scheme.lower() == "bearer"
                and token
                and await anyio.to_thread.run_sync(resolve_token, svc.db, token.strip(), svc.key)
            )
            if not ok:
                body = json.dumps({"detail": "not authenticated"}).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"www-authenticate", b"Bearer"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
