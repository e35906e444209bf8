"""The control-centre service: :func:`create_app` builds the FastAPI application.

The lifespan migrates the database, creates the demo users (demo mode only),
starts the :class:`~api.server.live.EngineRunner` thread and stops it (closing
SUMO) at shutdown. The dashboard (``api/dashboard``) and the API documentation
(Swagger UI, vendored: no CDN) are served by the same app.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
from sqlalchemy import select

from api.server.auth import Role, create_user
from api.server.db import Database, User
from api.server.deps import ServiceState, WriteGate, metrics_allowed
from api.server.hardening import BodyLimit, DashboardFiles, SecurityHeaders, validation_error
from api.server.live import EngineRunner
from api.server.routes import alarms, approvals, auth, commands, history, measures, network, plans, stream, users
from api.server.settings import Settings

__all__ = ["create_app", "DASHBOARD_DIR", "ensure_demo_users", "DEMO_USERS"]

DASHBOARD_DIR = Path(__file__).resolve().parents[1] / "dashboard"
DEMO_USERS = (
    ("admin", Role.ADMIN),
    ("engineer", Role.ENGINEER),
    ("operator", Role.OPERATOR),
    ("technician", Role.TECHNICIAN),
    ("viewer", Role.VIEWER),
)


def ensure_demo_users(db: Database, password: str) -> list[str]:
    """Demo mode: one user per role, named after it, with the demo password (if none exist yet)."""
    made: list[str] = []
    with db.session() as s:
        if s.scalar(select(User.id).limit(1)) is not None:
            return made
        for name, role in DEMO_USERS:
            create_user(s, name, password, role, created_by="demo", policy=False)  # a public password anyway
            db.audit(s, "system", "user.create", name, role=role.value, demo=True)
            made.append(name)
    return made


def create_app(settings: Settings, *, start_engine: bool = True) -> FastAPI:
    """The FastAPI app for ``settings``; the engine starts with the app's lifespan."""
    problems = settings.startup_problems()
    if problems:
        raise ValueError("refusing to start: " + "; ".join(problems))
    db = Database(settings.resolved_database_url)
    runner = EngineRunner(settings, db)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db.migrate()
        if settings.demo:
            ensure_demo_users(db, settings.demo_password.get_secret_value())
        if start_engine:
            runner.start()
        try:
            yield
        finally:
            app.state.closing.set()
            runner.stop()
            db.dispose()

    app = FastAPI(
        title="greenwave control centre",
        version="1",
        description="Adaptive traffic-signal control for Hanoi: live status, plans with audit, commands with "
        "expiry, alarms, high-resolution events. Authenticate with POST /api/auth/login, then send "
        "`Authorization: Bearer <token>`.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.gw = ServiceState(settings=settings, db=db, runner=runner)
    app.add_middleware(WriteGate)
    app.add_middleware(network.SnapshotFastPath)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders)  # outermost: every response, whoever answers it
    app.add_exception_handler(RequestValidationError, validation_error)
    app.state.closing = threading.Event()
    routers = (auth, users, network, plans, approvals, commands, alarms, stream, measures, history)
    for r in (m.router for m in routers):
        app.include_router(r)
    _add_health_routes(app, settings, db, runner)
    _add_page_routes(app, settings)
    app.mount("/static", DashboardFiles(directory=DASHBOARD_DIR), name="static")
    return app


def _add_health_routes(app: FastAPI, settings: Settings, db: Database, runner: EngineRunner) -> None:
    """What monitoring asks outside the API: Prometheus metrics (behind a token) and the health probe."""

    @app.get(
        "/metrics",
        tags=["health"],
        response_class=PlainTextResponse,
        responses={
            200: {"content": {"text/plain": {}}, "description": "Prometheus text exposition format"},
            401: {"description": "no metrics token (settings metrics_token) and no valid user token"},
        },
    )
    def metrics(request: Request) -> PlainTextResponse:
        """Prometheus metrics: tick duration, backend read latency, ticks, engine up, alarms open by kind.

        Needs ``Authorization: Bearer <metrics_token>`` (settings) or a user's token: the series
        describe the deployment (intersection count, alarms) and are nobody else's business."""
        from sqlalchemy import func, select

        if not metrics_allowed(request.app.state.gw, request.headers.get("authorization", "")):
            return PlainTextResponse(
                "metrics need a token\n", status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )

        from api.server.db import AlarmRow

        with db.session() as s:
            rows = s.execute(
                select(AlarmRow.code, func.count()).where(AlarmRow.cleared_at.is_(None)).group_by(AlarmRow.code)
            ).all()
        text = runner.metrics.exposition(
            ticks=runner.ticks,
            up=runner.running,
            intersections=len(runner.network or ()),
            alarms_open={str(k): int(n) for k, n in rows},
        )
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    @app.get("/healthz", tags=["health"], responses={503: {"description": "the engine is not running (yet)"}})
    def healthz() -> Any:
        """200 once the engine ticks; 503 while it starts, after it stopped, or when it failed."""
        body = {"status": "ok" if runner.running else runner.state, "engine": runner.state, "ticks": runner.ticks}
        if runner.error:
            body["error"] = runner.error
        if settings.demo:
            body["demo"] = True  # never the demo login: anyone may read this page
        return JSONResponse(body, status_code=200 if runner.running else 503)


def _add_page_routes(app: FastAPI, settings: Settings) -> None:
    """The pages a browser loads without a token: the dashboard, the API docs and base-map tiles."""

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="greenwave control centre API",
            swagger_js_url="/static/vendor/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/vendor/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
            swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": True},
        )

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(DASHBOARD_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/tiles/{z}/{x}/{y}.png", include_in_schema=False)
    def tile(z: int, x: int, y: int) -> Response:
        """A base-map tile from ``map_tiles_dir`` (XYZ layout); integers only, so no path escapes it.

        Public like the dashboard's assets: an ``<img>`` sends no bearer token, and a tile shows
        only what any street map shows."""
        tiles = settings.map_tiles_dir
        if tiles is None or not (0 <= z <= 24 and 0 <= x < 2**z and 0 <= y < 2**z):
            return Response(status_code=404)
        f = tiles / str(z) / str(x) / f"{y}.png"
        if not f.is_file():
            return Response(status_code=404)
        return FileResponse(f, media_type="image/png", headers={"Cache-Control": "public, max-age=86400"})
