"""A real control-centre server for tests: uvicorn in a thread, ephemeral port, clean stop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from api.server import create_app, load_settings

__all__ = ["LiveServer", "wait_for", "fake_settings"]


class LiveServer:
    """``create_app(settings)`` under uvicorn in a thread on an ephemeral port; stops cleanly."""

    def __init__(self, **settings: Any) -> None:
        self.settings = load_settings(**settings)
        self.app = create_app(self.settings)
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=0, log_level="warning", access_log=False, ws="none",
            lifespan="on", timeout_graceful_shutdown=2,
        )  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="test-uvicorn", daemon=True)
        self.url = ""

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.app.state.closing.set()
        self.server.should_exit = True
        self.thread.join(30)
        assert not self.thread.is_alive(), "server thread did not stop"

    @property
    def runner(self) -> Any:
        return self.app.state.gw.runner

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def login(self, user: str, password: str = "greenwave") -> str:
        with self.client() as c:
            r = c.post("/api/auth/login", json={"username": user, "password": password})
            r.raise_for_status()
            return str(r.json()["access_token"])

    def wait_healthy(self, timeout_s: float = 60) -> None:
        with self.client() as c:
            wait_for(lambda: c.get("/healthz").status_code == 200, timeout_s, "engine running")


def wait_for(pred: Callable[[], Any], timeout_s: float = 20, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.1)


def fake_settings(tmp: Path, net: Path, **kw: Any) -> dict[str, Any]:
    return {"data_dir": tmp, "backend": "fake", "net_file": net, "speed": 20.0, "event_flush_s": 0.5, **kw}
