"""Accounts in the dashboard, in Debian's headless Chromium (Playwright, no browser download): an admin
disables a user in the Users view and that user can no longer log in; re-enabled, the user can (#17).

The server is the in-process test server (fake backend over the demo network, real SQLite file): the
account rules do not depend on the twin, and a SUMO twin would only slow the test down.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gwlive import LiveServer, fake_settings

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
USER, PASSWORD = "ngoc.operator", "Hanoi-traffic-2026"

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        raise RuntimeError(f"{CHROMIUM} is missing: ./dev test installs Debian's chromium")
    pytest.skip(f"{CHROMIUM} not installed (./dev test installs it)", allow_module_level=True)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory, demo_net: Path) -> Iterator[LiveServer]:
    with LiveServer(**fake_settings(tmp_path_factory.mktemp("browser-acct"), demo_net)) as s:
        s.wait_healthy()
        with s.client(s.login("admin")) as c:
            r = c.post("/api/users", json={"username": USER, "password": PASSWORD, "role": "operator"})
            assert r.status_code == 201, r.text
        yield s


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield b
        finally:
            b.close()


def open_login(browser: Any, url: str, user: str, password: str) -> tuple[Any, Any, list[str]]:
    ctx = browser.new_context(viewport={"width": 1400, "height": 860})
    page = ctx.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(f"{url}/")
    page.fill("#login-user", user)
    page.fill("#login-pass", password)
    page.click("#login-form button[type=submit]")
    return ctx, page, errors


def test_a_disabled_user_cannot_log_in(srv: LiveServer, browser: Any) -> None:
    ctx, page, errors = open_login(browser, srv.url, USER, PASSWORD)
    page.wait_for_selector("#who:has-text('ngoc.operator')")
    ctx.close()

    ctx, admin, errors = open_login(browser, srv.url, "admin", "greenwave")
    admin.wait_for_selector("#who:has-text('admin')")
    admin.click("#tabs button[data-view=users]")
    row = admin.locator(f"#users-table tr[data-user='{USER}']")
    row.locator(".u-active").click()
    admin.click("#modal-ok")
    admin.wait_for_selector(f"#users-table tr[data-user='{USER}'] .u-active:has-text('Enable')")
    assert "disabled" in row.inner_text()

    ctx2, page, errors2 = open_login(browser, srv.url, USER, PASSWORD)
    page.wait_for_selector("#login-error:has-text('wrong user name or password')")
    assert page.is_visible("#login-form") and not page.is_visible("#who")
    ctx2.close()

    with srv.client(srv.login("admin")) as c:
        rows = c.get("/api/audit", params={"action": "user.disable"}).json()
        assert any(r["target"] == USER and r["username"] == "admin" for r in rows)

    row.locator(".u-active").click()  # enable again, from the dashboard
    admin.wait_for_selector(f"#users-table tr[data-user='{USER}'] .u-active:has-text('Disable')")
    ctx3, page, errors3 = open_login(browser, srv.url, USER, PASSWORD)
    page.wait_for_selector("#who:has-text('ngoc.operator')")
    ctx3.close()
    ctx.close()
    assert not (errors + errors2 + errors3), errors + errors2 + errors3
    assert httpx.get(f"{srv.url}/healthz").status_code == 200


def test_every_view_runs_under_the_content_security_policy(srv: LiveServer, browser: Any) -> None:
    """The dashboard's CSP (script-src 'self', no eval; #17) breaks none of its views: each tab is opened with
    no CSP bypass, and the console must report no violation and the page no error."""
    ctx, page, errors = open_login(browser, srv.url, "admin", "greenwave")
    page.wait_for_selector("#who:has-text('admin')")
    views = page.eval_on_selector_all("#tabs button[data-view]", "(bs) => bs.map((b) => b.dataset.view)")
    assert len(views) >= 8
    for v in views:
        page.click(f"#tabs button[data-view='{v}']")
        page.wait_for_selector(f"#view-{v}.active")
        page.wait_for_timeout(400)
    page.click("#tabs button[data-view='map']")
    page.locator(".marker").first.click()
    page.wait_for_timeout(800)
    ctx.close()
    assert not errors, errors
