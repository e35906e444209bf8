"""What every response and request goes through: security headers, clean 422s, only the dashboard's files.

* :class:`SecurityHeaders` (ASGI middleware) puts on every response a Content
  Security Policy (scripts, styles, images and connections from this origin
  only; ``frame-ancestors 'none'``, so no other site can frame the dashboard
  to click-jack an operator), ``X-Content-Type-Options: nosniff``,
  ``X-Frame-Options: DENY`` (older browsers), ``Referrer-Policy: no-referrer``,
  and ``Cache-Control: no-store`` on the authentication routes (a token or a
  user list must not stay in a shared cache). The API documentation page
  (Swagger UI starts itself from one inline script) gets that script allowed
  by ``'unsafe-inline'`` on that page only.
* :func:`validation_error` answers a request that fails validation with 422
  and the fields at fault, also where the body held ``NaN`` or ``Infinity``
  (Python's JSON parser accepts them; echoing them back used to fail in the
  response encoder and turn the 422 into a 500).
* :class:`BodyLimit` answers 413 to a request body above ``max_body_bytes``
  (1 MiB by default: the largest real body, a plan set for a city, is far
  smaller), by its ``Content-Length`` before reading anything, or while it
  streams in when it has none; nothing of it reaches a route.
* :class:`DashboardFiles` serves the dashboard's assets (scripts, styles,
  images, fonts, the vendored Swagger UI) and nothing else from its
  directory: not ``__init__.py``, not ``__pycache__``, not a licence file.

The rules follow the OWASP Secure Headers Project's recommendations.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "BodyLimit",
    "SecurityHeaders",
    "validation_error",
    "reject_nonfinite",
    "DashboardFiles",
    "CSP",
    "DASHBOARD_SUFFIXES",
    "NO_STORE_PREFIXES",
]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# Swagger UI's page starts the bundle from an inline <script>.
CSP_DOCS = CSP.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'")
NO_STORE_PREFIXES = ("/api/auth/", "/api/users", "/api/stream")
DASHBOARD_SUFFIXES = frozenset({".html", ".js", ".css", ".svg", ".png", ".ico", ".woff2", ".woff", ".map", ".json"})


class SecurityHeaders:
    """ASGI middleware: the headers above on every HTTP response, whatever produced it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        csp = (CSP_DOCS if path == "/docs" else CSP).encode()
        no_store = path.startswith(NO_STORE_PREFIXES)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if not (no_store and k == b"cache-control")]
                headers += [
                    (b"content-security-policy", csp),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"no-referrer"),
                ]
                if no_store:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """ASGI middleware: 413 for a request body above ``max_bytes`` (declared or streamed)."""

    def __init__(self, app: ASGIApp, max_bytes: int = 1 << 20) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _refuse(self, send: Send) -> None:
        body = (
            b'{"detail":[{"loc":["body"],"msg":"request body larger than ' + str(self.max_bytes).encode() + b' bytes",'
            b'"type":"too_large"}]}'
        )
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send)
            return
        if declared is not None or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)  # a body without a declared length only where one is expected
            return
        # No Content-Length (chunked): take the body in up to the limit before any route sees it.
        buffered: list[Message] = []
        seen = 0
        while True:
            message = await receive()
            buffered.append(message)
            if message["type"] != "http.request":
                break
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                await self._refuse(send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return buffered.pop(0) if buffered else await receive()

        await self.app(scope, replay, send)


def _finite(v: Any) -> Any:
    """The value with every non-finite float replaced by its name (JSON has no NaN or Infinity) and every
    lone surrogate in a string by U+FFFD (JSON may carry "\\ud800"; UTF-8 cannot encode it)."""
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, str):
        return v.encode("utf-8", "replace").decode("utf-8")
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    return v


def _has_nonfinite(v: Any) -> bool:
    if isinstance(v, float):
        return not math.isfinite(v)
    if isinstance(v, dict):
        return any(_has_nonfinite(x) for x in v.values())
    if isinstance(v, (list, tuple)):
        return any(_has_nonfinite(x) for x in v)
    return False


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """422 naming each field at fault; non-finite numbers are named as such, never echoed as NaN."""
    assert isinstance(exc, RequestValidationError)
    errors = []
    for err in exc.errors():
        err = dict(err)
        if _has_nonfinite(err.get("input")):
            where = ".".join(str(x) for x in err.get("loc", ()))
            err["msg"] = f"{where}: non-finite number (NaN or Infinity) is not allowed; {err.get('msg', '')}".rstrip(
                "; "
            )
        errors.append(_finite(jsonable_encoder(_finite(err))))
    return JSONResponse({"detail": errors}, status_code=422)


def reject_nonfinite(body: Any, where: str = "body") -> None:
    """Raise a 422 if a parsed JSON document holds NaN or Infinity anywhere (for routes that parse bodies by hand)."""
    if _has_nonfinite(body):
        raise RequestValidationError(
            [{"type": "finite_number", "loc": (where,), "msg": "non-finite number (NaN or Infinity)", "input": None}]
        )


class DashboardFiles(StaticFiles):
    """The dashboard directory, serving only asset files (by suffix) and nothing under a dot or dunder name."""

    def lookup_path(self, path: str) -> tuple[str, Any]:
        parts = [p for p in path.replace("\\", "/").split("/") if p]
        if (
            not parts
            or any(p.startswith((".", "__")) for p in parts)
            or "." + parts[-1].rsplit(".", 1)[-1].lower() not in DASHBOARD_SUFFIXES
        ):
            return "", None
        return super().lookup_path(path)
