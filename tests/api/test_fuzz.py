"""API fuzzing with schemathesis against the app's own OpenAPI schema (real server, bounded examples).

* authenticated as admin, generated requests (valid and invalid) never get a 5xx;
* unauthenticated, no write is accepted: every POST/PUT/PATCH/DELETE but the login answers 401;
* as a viewer, every write but validation and logout answers 403.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from gwlive import LiveServer, fake_settings
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

pytestmark = pytest.mark.slow

WRITES = {"POST", "PUT", "PATCH", "DELETE"}
SKIP = {("GET", "/api/stream"), ("POST", "/api/auth/logout")}  # endless stream; would revoke the fuzzing token
PUBLIC_WRITES = {("POST", "/api/auth/login")}
# Writes every role may make: validation, logout, a stream ticket, one's own password (403 on a wrong current one).
VIEWER_WRITES = {("POST", "/api/plans/validate"), ("POST", "/api/auth/logout"), ("POST", "/api/stream/ticket"),
                 ("POST", "/api/auth/password")}  # fmt: skip


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory, demo_net: Path) -> Iterator[LiveServer]:
    with LiveServer(**fake_settings(tmp_path_factory.mktemp("fuzz"), demo_net, speed=10.0)) as srv:
        srv.wait_healthy()
        # Log in before any fuzzing: the fuzzer's random logins fail from this same client and
        # lock it out (login throttling, as it should), which must not stop the tests' own.
        srv.tokens = {user: srv.login(user) for user in ("admin", "viewer")}  # type: ignore[attr-defined]
        yield srv


@pytest.fixture(scope="module")
def operations(fuzz_server: LiveServer) -> list[Any]:
    schema = schemathesis.openapi.from_dict(httpx.get(f"{fuzz_server.url}/openapi.json").json())
    return [r.ok() for r in schema.get_all_operations()]


def _label(op: Any) -> tuple[str, str]:
    return op.method.upper(), op.path


def _run(op: Any, mode: GenerationMode, n: int, check: Any) -> None:
    @settings(max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=op.as_strategy(generation_mode=mode))
    def inner(case: Any) -> None:
        check(case)

    try:
        inner()
    except Unsatisfiable:
        # Nothing to negate (an operation without parameters): no invalid request exists.
        assert mode is GenerationMode.NEGATIVE


def test_no_server_errors(fuzz_server: LiveServer, operations: list[Any]) -> None:
    token = fuzz_server.tokens["admin"]  # type: ignore[attr-defined]
    auth = {"Authorization": f"Bearer {token}"}
    failures: list[str] = []

    def check(case: Any) -> None:
        r = case.call(base_url=fuzz_server.url, headers=auth, timeout=30)
        if r.status_code >= 500:
            failures.append(f"{case.method} {case.formatted_path} -> {r.status_code}: {case.as_curl_command()}")
        assert r.status_code < 500, failures[-1]

    tested = 0
    for op in operations:
        if _label(op) in SKIP:
            continue
        _run(op, GenerationMode.POSITIVE, 25, check)
        _run(op, GenerationMode.NEGATIVE, 10, check)
        tested += 1
    assert tested >= 25 and not failures


def test_no_unauthenticated_write_is_accepted(fuzz_server: LiveServer, operations: list[Any]) -> None:
    viewer = {"Authorization": f"Bearer {fuzz_server.tokens['viewer']}"}  # type: ignore[attr-defined]
    writes = [op for op in operations if op.method.upper() in WRITES and _label(op) not in PUBLIC_WRITES]
    assert len(writes) >= 10

    def unauthenticated(case: Any) -> None:
        r = case.call(base_url=fuzz_server.url, headers={"Authorization": ""}, timeout=30)
        assert r.status_code == 401, f"{case.method} {case.formatted_path} accepted without a token: {r.status_code}"

    def as_viewer(case: Any) -> None:
        r = case.call(base_url=fuzz_server.url, headers=viewer, timeout=30)
        assert r.status_code == 403, f"{case.method} {case.formatted_path} as viewer: {r.status_code}"

    for op in writes:
        _run(op, GenerationMode.POSITIVE, 8, unauthenticated)
        _run(op, GenerationMode.NEGATIVE, 4, unauthenticated)
        if _label(op) not in VIEWER_WRITES:
            _run(op, GenerationMode.POSITIVE, 5, as_viewer)
