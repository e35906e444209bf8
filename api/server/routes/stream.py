"""Live status and alarms pushed to the dashboard as server-sent events."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials

from api.server.auth import resolve_token
from api.server.deps import ServiceState, bearer, service

router = APIRouter(prefix="/api", tags=["live"])
STREAM_MAX_S = 300.0  # then the browser's EventSource reconnects by itself


@router.get(
    "/stream",
    responses={200: {"content": {"text/event-stream": {}}, "description": "events: status, alarm, command"}},
)
async def stream(
    request: Request,
    access_token: str | None = Query(None, max_length=256, description="for EventSource, which cannot send headers"),
    once: bool = Query(False, description="send the current status and end"),
    creds: HTTPAuthorizationCredentials | None = Depends(bearer),
    svc: ServiceState = Depends(service),
) -> StreamingResponse:
    """``event: status`` (the full live snapshot, every tick), ``event: alarm``, ``event: approval`` and
    ``event: command`` (changes, as they happen)."""
    token = creds.credentials if creds is not None else access_token
    if not token or resolve_token(svc.db, token, svc.key) is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "not authenticated", headers={"WWW-Authenticate": "Bearer"})
    runner = svc.runner
    closing = request.app.state.closing

    async def events() -> AsyncIterator[bytes]:
        # Every tick's frame is encoded once and shared by all clients (SnapshotFrame); clients wake
        # together on the tick signal rather than polling, so each of them gets every tick.
        yield b"retry: 2000\n\n"
        seq = -1
        feed, _ = runner.feed_since(10**12)
        t0 = time.monotonic()
        while not closing.is_set() and time.monotonic() - t0 < STREAM_MAX_S:
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
