"""``greenwave serve``: the control centre (FastAPI + uvicorn) with the live engine."""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["register", "run", "build_settings"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="run the control centre: live engine, API and dashboard",
        description="Start the control centre. With no settings it runs the embedded demo: a SUMO digital twin of "
        "the demo network driven through emulated field controllers over Modbus TCP, in real time (as the street "
        "would run; --backend sumo or fake runs the twin at --speed instead), with demo users (admin, engineer, "
        "operator, technician, viewer; password 'greenwave'), on 127.0.0.1 only. Settings come from --config FILE "
        "(TOML), GREENWAVE_* environment variables and these flags. The database lives in --data-dir (default "
        "$XDG_DATA_HOME/greenwave/control-centre, i.e. ~/.local/share/greenwave/control-centre; not the current "
        "directory).",
    )
    p.add_argument("--host", help="address to bind (default 127.0.0.1; demo mode refuses others, see below)")
    p.add_argument(
        "--allow-remote-demo",
        dest="allow_remote_demo",
        action="store_true",
        default=None,
        help="let demo mode (public users and password) bind a non-loopback address",
    )
    p.add_argument("--port", type=int, help="port (default 8000; 0 = any free port)")
    p.add_argument("--config", metavar="FILE", help="settings file (TOML); also $GREENWAVE_CONFIG")
    p.add_argument("--database-url", metavar="URL", help="SQLAlchemy URL (default: SQLite in the data directory)")
    p.add_argument(
        "--data-dir",
        metavar="DIR",
        help="database, scenario build and logs (default ~/.local/share/greenwave/control-centre)",
    )
    p.add_argument(
        "--backend",
        choices=["sumo", "fake", "modbus"],
        help="what the engine drives (default modbus: the twin through emulated controllers)",
    )
    p.add_argument("--scenario", metavar="NAME|FILE", help="scenario of the digital twin (default demo)")
    p.add_argument("--controller", metavar="NAME", help="adaptive policy name (default auto)")
    p.add_argument(
        "--speed",
        type=float,
        metavar="X",
        help="simulated seconds per wall second for --backend sumo or fake (default 5; 0 = flat out); "
        "the modbus backend always runs in real time",
    )
    p.add_argument(
        "--model",
        choices=["micro", "meso"],
        help="SUMO's traffic model of the twin with --backend sumo (default micro; meso for a whole city)",
    )
    p.add_argument("--no-demo", dest="demo", action="store_false", default=None, help="production mode: no demo users")
    p.add_argument("--log-level", default="warning", help="uvicorn log level (default warning)")
    p.add_argument(
        "--log-format",
        choices=["json", "text"],
        default="json",
        help="logs on stderr (greenwave's, uvicorn's, every library's): JSON lines (default, for log shippers) "
        "or text",
    )
    p.set_defaults(func=run)


def build_settings(args: argparse.Namespace) -> Any:
    from api.server.settings import load_settings

    return load_settings(
        args.config,
        host=args.host,
        port=args.port,
        database_url=args.database_url,
        data_dir=args.data_dir,
        backend=args.backend,
        scenario=args.scenario,
        controller=args.controller,
        speed=args.speed,
        model=getattr(args, "model", None),
        demo=args.demo,
        allow_remote_demo=getattr(args, "allow_remote_demo", None),
    )


def run(args: argparse.Namespace) -> int:
    json_logs = getattr(args, "log_format", "json") == "json"
    if json_logs:
        from api.server.metrics import configure_json_logging

        configure_json_logging(everything=True)
    import uvicorn

    from api.server.app import create_app
    from api.server.db import Database, first_user_exists

    settings = build_settings(args)  # a bad file or value: InputError, one line (api/cli.py)
    problems = settings.startup_problems()
    if problems:
        print("greenwave serve: refusing to start:", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 2
    if not settings.demo:
        db = Database(settings.resolved_database_url)
        try:
            db.migrate()
            if not first_user_exists(db):
                print(
                    "greenwave serve: no users yet: nobody can log in. Create the first admin with\n"
                    f"  greenwave users create-admin --data-dir {settings.data_dir}"
                    + (" --database-url URL" if settings.database_url else ""),
                    file=sys.stderr,
                    flush=True,
                )
        finally:
            db.dispose()
    app = create_app(settings)

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            app.state.closing.set()  # ends the live streams so shutdown does not wait for them
            super().handle_exit(sig, frame)

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started:
                bound = self.servers[0].sockets[0].getsockname() if self.servers else (settings.host, settings.port)
                host, port = bound[0], bound[1]
                shown = f"[{host}]" if ":" in host else host
                print(f"greenwave control centre: http://{shown}:{port}/", flush=True)
                if host in ("0.0.0.0", "::"):
                    print(f"  bound to {host}: every network interface of this machine", flush=True)
                print(f"  API docs: http://{host}:{port}/docs   health: http://{host}:{port}/healthz", flush=True)
                if settings.demo:
                    pw = settings.demo_password.get_secret_value()
                    print(
                        f"  demo mode: log in as admin / {pw} (also engineer, operator, technician, viewer)", flush=True
                    )
                pace = "real time" if settings.backend == "modbus" else f"speed {settings.speed:g}x"
                model = settings.model if settings.backend == "sumo" else None
                print(
                    f"  engine: {settings.backend} backend{' (meso)' if model == 'meso' else ''}, scenario "
                    f"{settings.scenario}, controller "
                    f"{settings.policy_name}, {pace}; Ctrl-C stops",
                    flush=True,
                )

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=args.log_level,
        access_log=False,
        timeout_graceful_shutdown=3,
        log_config=None if json_logs else uvicorn.config.LOGGING_CONFIG,  # JSON: our handler on every logger
    )
    Server(config).run()
    return 0
