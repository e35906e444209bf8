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
        "the demo network, accelerated, with demo users (admin, engineer, operator, technician, viewer; password "
        "'greenwave'). Settings come from --config FILE (TOML), GREENWAVE_* environment variables and these flags.",
    )
    p.add_argument("--host", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 8000; 0 = any free port)")
    p.add_argument("--config", metavar="FILE", help="settings file (TOML); also $GREENWAVE_CONFIG")
    p.add_argument("--database-url", metavar="URL", help="SQLAlchemy URL (default: SQLite in the data directory)")
    p.add_argument("--data-dir", metavar="DIR", help="database, scenario build and logs (default out/control-centre)")
    p.add_argument(
        "--backend",
        choices=["sumo", "fake", "modbus"],
        help="what the engine drives (default modbus: the twin through emulated controllers)",
    )
    p.add_argument("--scenario", metavar="NAME|FILE", help="scenario of the digital twin (default demo)")
    p.add_argument("--controller", metavar="NAME", help="adaptive policy name (default auto)")
    p.add_argument(
        "--speed", type=float, metavar="X", help="simulated seconds per wall second (default 5; 0 = flat out)"
    )
    p.add_argument("--no-demo", dest="demo", action="store_false", default=None, help="production mode: no demo users")
    p.add_argument("--log-level", default="warning", help="uvicorn log level (default warning)")
    p.add_argument(
        "--log-format",
        choices=["json", "text"],
        default="json",
        help="greenwave's own logs on stderr: JSON lines (default, for log shippers) or text",
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
        demo=args.demo,
    )


def run(args: argparse.Namespace) -> int:
    if getattr(args, "log_format", "json") == "json":
        from api.server.metrics import configure_json_logging

        configure_json_logging()
    import uvicorn
    from pydantic import ValidationError

    from api.server.app import create_app

    try:
        settings = build_settings(args)
    except ValidationError as e:
        for err in e.errors():
            print(f"greenwave serve: settings: {'.'.join(str(x) for x in err['loc'])}: {err['msg']}", file=sys.stderr)
        return 2
    problems = settings.startup_problems()
    if problems:
        print("greenwave serve: refusing to start:", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 2
    app = create_app(settings)

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            app.state.closing.set()  # ends the live streams so shutdown does not wait for them
            super().handle_exit(sig, frame)

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started:
                port = self.servers[0].sockets[0].getsockname()[1] if self.servers else settings.port
                host = settings.host if settings.host not in ("0.0.0.0", "::") else "127.0.0.1"
                print(f"greenwave control centre: http://{host}:{port}/", flush=True)
                print(f"  API docs: http://{host}:{port}/docs   health: http://{host}:{port}/healthz", flush=True)
                if settings.demo:
                    pw = settings.demo_password.get_secret_value()
                    print(
                        f"  demo mode: log in as admin / {pw} (also engineer, operator, technician, viewer)", flush=True
                    )
                pace = "real time" if settings.backend == "modbus" else f"speed {settings.speed:g}x"
                print(
                    f"  engine: {settings.backend} backend, scenario {settings.scenario}, controller "
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
    )
    Server(config).run()
    return 0
