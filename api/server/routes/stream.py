"""Live status and alarms pushed to the dashboard as server-sent events.

The browser's ``EventSource`` cannot send an ``Authorization`` header, and a
bearer token in a URL ends up in proxy and server logs and the browser's
history. So the dashboard first trades its token for a **stream ticket**
(``POST /api/stream/ticket``): random, good for one connection, within
:data:`TICKET_TTL_S` seconds. The stream remembers the token behind the ticket
and checks it every :data:`RECHECK_S` seconds: once the token is revoked
(logout, a disabled account) or has expired, it sends ``event: end`` and
closes, and a new ticket needs a valid token again.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import AsyncIterator

import anyio
from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel

from api.server.auth import Principal, resolve_token
from api.server.deps import ServiceState, bearer, principal, service

router = APIRouter(prefix="/api", tags=["live"])
STREAM_MAX_S = 300.0  # then the browser's EventSource reconnects by itself
TICKET_TTL_S = 30.0
RECHECK_S = 2.0


class TicketBook:
    """Stream tickets: ticket -> (the token it stands for, expiry on the monotonic clock); one use each."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tickets: dict[str, tuple[str, float]] = {}

    def issue(self, token: str) -> str:
        now = time.monotonic()
        ticket = secrets.token_urlsafe(24)
        with self._lock:
            self._tickets = {k: v for k, v in self._tickets.items() if v[1] > now}
            self._tickets[ticket] = (token, now + TICKET_TTL_S)
        return ticket

    def redeem(self, ticket: str) -> str | None:
        with self._lock:
            got = self._tickets.pop(ticket, None)
        return got[0] if got is not None and got[1] > time.monotonic() else None


class TicketOut(BaseModel):
    ticket: str
    expires_in_s: float


def _tickets(svc: ServiceState) -> TicketBook:
    book = svc.stream_tickets
    if book is None:
        book = svc.stream_tickets = TicketBook()
    return book


@router.post("/stream/ticket", response_model=TicketOut, responses={401: {"description": "not authenticated"}})
def stream_ticket(
    _: Principal = Depends(principal),
    creds: HTTPAuthorizationCredentials | None = Depends(bearer),
    svc: ServiceState = Depends(service),
) -> TicketOut:
    """A one-use ticket for ``GET /api/stream?ticket=...``, valid for 30 s (the token stays out of URLs)."""
    assert creds is not None  # principal() has checked it
    return TicketOut(ticket=_tickets(svc).issue(creds.credentials), expires_in_s=TICKET_TTL_S)


@router.get(
    "/stream",
    responses={200: {"content": {"text/event-stream": {}}, "description": "events: status, alarm, command"}},
)
async def stream(
    request: Request,
    ticket: str | None = Query(None, max_length=64, description="from POST /api/stream/ticket (EventSource)"),
    once: bool = Query(False, description="send the current status and end"),
    creds: HTTPAuthorizationCredentials | None = Depends(bearer),
    svc: ServiceState = Depends(service),
) -> StreamingResponse:
    """``event: status`` (the full live snapshot, every tick), ``event: alarm``, ``event: approval`` and
    ``event: command`` (changes, as they happen); ``event: end`` when the token behind the stream is
    revoked or expires (then the stream closes)."""
    token = creds.credentials if creds is not None else (_tickets(svc).redeem(ticket) if ticket else None)
    if not token or resolve_token(svc.db, token, svc.key) is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "not authenticated (or the ticket was used or expired)",
            headers={"WWW-Authenticate": "Bearer"},
        )  # fmt: skip
    runner = svc.runner
    closing = request.app.state.closing

    async def events() -> AsyncIterator[bytes]:
        # Every tick's frame is encoded once and shared by all clients (SnapshotFrame); clients wake
        # together on the tick signal rather than polling, so each of them gets every tick.
        yield b"retry: 2000\n\n"
        seq = -1
        feed, _ = runner.feed_since(10**12)
        t0 = checked = time.monotonic()
        while not closing.is_set() and time.monotonic() - t0 < STREAM_MAX_S:
            if time.monotonic() - checked >= RECHECK_S:
                checked = time.monotonic()
                if await anyio.to_thread.run_sync(resolve_token, svc.db, token, svc.key) is None:
                    yield b'event: end\ndata: {"reason":"token revoked or expired"}\n\n'
                    return
            frame = runner.frame
            if frame.seq != seq:
                seq = frame.seq
                yield frame.sse()
                if once:
                    return
            feed, items = runner.feed_since(feed)
            for _n, kind, payload in items:
                yield f"event: {kind}\ndata: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()
            if runner.frame.seq == seq:
                await runner.tick_signal.wait(1.0)

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
