"""The dashboard in a real browser: Debian's headless Chromium driven by Playwright (no browser download).

The server is ``greenwave serve`` in a subprocess (libsumo runs one simulation
per process) on the embedded default: a SUMO digital twin of the demo network
driven through emulated controllers over Modbus TCP, in real time. The tests
log in, see the map, watch an intersection change state live, propose a plan
that a second engineer approves (two-person rule) and find it in the audit log,
cut an emulated controller off and acknowledge the comm-loss alarm, request a
confirmed flash, see a queued road coloured on the map and a Purdue
coordination diagram drawn from the stored events. Every page is watched for
requests that leave the machine: there must be none.

Screenshots go to the test's temporary folder; with ``GREENWAVE_SCREENSHOTS=1``
they also refresh ``docs/screenshots/``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.sumo, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
TIMEOUT_MS = 90_000  # real time: an adaptive green may run a minute before the lamps change

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        raise RuntimeError(f"{CHROMIUM} is missing: ./dev test installs Debian's chromium")
    pytest.skip(f"{CHROMIUM} not installed (./dev test installs it)", allow_module_level=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("browser-server")
    env = {**os.environ, "GREENWAVE_EVENT_FLUSH_S": "1"}
    cmd = [sys.executable, "-c", "import sys; from api.cli import main; sys.exit(main())", "serve", "--port", "0",
           "--data-dir", str(data)]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("greenwave control centre: http://"), line + (proc.stdout.read() if proc.poll() else "")
        url = line.split(": ", 1)[1].strip().rstrip("/")
        deadline = time.monotonic() + 90
        while True:  # a busy start may hold an answer past httpx's 5-s timeout: ask again
            try:
                if httpx.get(f"{url}/healthz", timeout=30).status_code == 200:
                    break
            except httpx.TimeoutException:
                pass
            assert time.monotonic() < deadline, "the engine did not start"
            time.sleep(0.25)
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:  # pragma: no cover - never seen; do not leave it behind
            proc.kill()
            proc.communicate()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    # Playwright starts the browser on a fresh, empty profile of its own (a new --user-data-dir).
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


def screenshot(page: Any, shots: Path, name: str) -> None:
    path = shots / f"{name}.png"
    page.screenshot(path=str(path))
    if os.environ.get("GREENWAVE_SCREENSHOTS") == "1":
        dest = ROOT / "docs" / "screenshots"
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, dest / path.name)


SECOND_ENGINEER = ("engineer2", "second-engineer-pass-2026")


@pytest.fixture(scope="module")
def second_engineer(server: str) -> tuple[str, str]:
    """A second engineer account (the demo has one per role), made by the admin through the API."""
    tok = httpx.post(f"{server}/api/auth/login", json={"username": "admin", "password": "greenwave"}).json()
    user, pw = SECOND_ENGINEER
    r = httpx.post(
        f"{server}/api/users",
        json={"username": user, "password": pw, "role": "engineer"},
        headers={"Authorization": f"Bearer {tok['access_token']}"},
    )
    assert r.status_code in (201, 409), r.text
    return SECOND_ENGINEER


def login(browser: Any, url: str, user: str, password: str = "greenwave") -> Any:
    # bypass_csp: Playwright's wait_for_function compiles its string predicates in the page, which the
    # dashboard's Content Security Policy (script-src 'self', #17) forbids; the policy itself is checked,
    # with no bypass, across every view in test_browser_accounts.py.
    page = browser.new_page(viewport={"width": 1400, "height": 860}, bypass_csp=True)
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # Nothing may leave the machine: every request goes to the server under test (or is inline data).
    page.on(
        "request",
        lambda r: None if r.url.startswith((url, "data:", "blob:")) else errors.append(f"outside request: {r.url}"),
    )
    page.goto(f"{url}/")
    page.fill("#login-user", user)
    page.fill("#login-pass", password)
    page.click("#login-submit")
    page.wait_for_selector("#login", state="hidden")
    page.errors = errors  # type: ignore[attr-defined]
    return page


def test_login_and_see_the_map(server: str, browser: Any, shots: Path) -> None:
    # bypass_csp: Playwright's wait_for_function compiles its string predicates in the page, which the
    # dashboard's Content Security Policy (script-src 'self', #17) forbids; the policy itself is checked,
    # with no bypass, across every view in test_browser_accounts.py.
    page = browser.new_page(viewport={"width": 1400, "height": 860}, bypass_csp=True)
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{server}/")
    page.fill("#login-user", "admin")
    page.fill("#login-pass", "wrong")
    page.click("#login-submit")
    page.wait_for_function("document.querySelector('#login-error').textContent.length > 0")
    page.close()
    page = login(browser, server, "admin")
    page.wait_for_selector(".marker[data-status=adaptive]")
    assert page.locator(".marker").count() == 9
    assert page.locator("polyline.road").count() > 10
    page.wait_for_function("document.querySelector('#engine-pill').textContent.startsWith('running')")
    assert "9/9 online" in page.inner_text("#online")
    page.click("#tabs button[data-view=users]")
    page.wait_for_selector("#users-table tbody tr")
    assert page.locator("#users-table tbody tr").count() >= 5
    assert not page.errors  # type: ignore[attr-defined]
    page.close()


def test_watch_an_intersection_change_state_live(server: str, browser: Any, shots: Path) -> None:
    page = login(browser, server, "operator")
    assert not page.is_visible("#tabs button[data-view=users]")  # admin only
    page.click(".marker[data-intersection=B1]")
    page.wait_for_selector("#p-status[data-status]")
    first = page.evaluate("() => [...document.querySelectorAll('#panel .lamp')].map(l => l.dataset.state).join('')")
    assert len(first) == 4 and set(first) <= set("RYGF")
    # The signals change by themselves as the twin runs (pushed over server-sent events).
    page.wait_for_function(
        "(first) => [...document.querySelectorAll('#panel .lamp')].map(l => l.dataset.state).join('') !== first",
        arg=first,
    )
    page.wait_for_selector("#p-timeline rect")
    screenshot(page, shots, "intersection")
    assert not page.errors  # type: ignore[attr-defined]
    page.close()


def test_an_engineer_proposes_a_second_approves_and_the_plan_goes_live(
    server: str, browser: Any, shots: Path, second_engineer: tuple[str, str]
) -> None:
    page = login(browser, server, "engineer")
    page.click("#tabs button[data-view=plans]")
    page.wait_for_selector("#plan-stages[data-intersection=A0] tbody tr .ps-green")
    page.select_option("#plan-inter", "A1")  # loads its active plan, or else the template
    page.wait_for_selector("#plan-stages[data-intersection=A1] tbody tr .ps-green")
    # A green below the minimum is refused field by field, and saving stays impossible.
    page.fill("#plan-stages tbody tr:first-child .ps-green", "1")
    page.click("#plan-validate")
    page.wait_for_selector("#plan-problems [data-valid='0']")
    assert "stages[0].green_s" in page.inner_text("#plan-problems")
    assert page.is_disabled("#plan-save")
    page.fill("#plan-stages tbody tr:first-child .ps-green", "25")
    page.fill("#plan-comment", "browser test: longer S1")
    page.click("#plan-validate")
    page.wait_for_selector("#plan-problems [data-valid='1']")
    page.click("#plan-save")
    page.wait_for_selector("#plan-activate-box:not([hidden])")
    page.check("#plan-targets input[value=C1]")
    page.fill("#plan-activate-comment", "evening peak trial")
    screenshot(page, shots, "plan-editor")
    page.click("#plan-activate")
    # Two-person rule: nothing goes live yet, and the proposer cannot approve it.
    page.wait_for_selector("#plan-activate-result[data-pending]")
    pending = page.get_attribute("#plan-activate-result", "data-pending")
    assert page.get_attribute(".marker[data-intersection=A1]", "data-status") != "fixed"
    assert not page.is_visible("#plan-emergency")  # the override is an admin's
    page.click("#tabs button[data-view=approvals]")
    row = f"#appr-table tr[data-approval-id='{pending}'][data-status=pending]"
    page.wait_for_selector(row)
    assert page.is_disabled(f"{row} button.appr-ok")
    assert not page.errors  # type: ignore[attr-defined]
    page.close()

    page = login(browser, server, *second_engineer)
    page.wait_for_selector("#appr-badge:not(:empty)")
    page.click("#tabs button[data-view=approvals]")
    page.wait_for_selector(row)
    assert "evening peak trial" in page.inner_text(row) and "engineer" in page.inner_text(row)
    screenshot(page, shots, "approvals")
    page.click(f"{row} button.appr-ok")
    page.wait_for_selector("#modal:not([hidden])")
    page.fill("#appr-note", "splits checked")
    page.click("#modal-ok")
    page.wait_for_function("document.querySelector('#appr-result').textContent.includes('activated on')")
    page.click("#tabs button[data-view=map]")
    page.wait_for_selector(".marker[data-intersection=A1][data-status=fixed]")
    page.wait_for_selector(".marker[data-intersection=C1][data-status=fixed]")
    # The panel compares the running timing with the plan.
    page.click(".marker[data-intersection=A1]")
    page.wait_for_selector("#p-timing")
    assert "plan" in page.inner_text("#p-timing")
    page.click("#tabs button[data-view=audit]")
    page.wait_for_selector("#audit-table tr[data-action='plan.activate'][data-target=A1]")
    row_a1 = page.inner_text("#audit-table tr[data-action='plan.activate'][data-target=A1]")
    assert "engineer2" in row_a1 and "evening peak trial" in row_a1 and '"proposed_by":"engineer"' in row_a1
    screenshot(page, shots, "audit")
    assert not page.errors  # type: ignore[attr-defined]
    page.close()


def test_an_admin_emergency_override_goes_live_at_once(server: str, browser: Any) -> None:
    page = login(browser, server, "admin")
    page.click("#tabs button[data-view=plans]")
    page.wait_for_selector("#plan-stages[data-intersection=A0] tbody tr .ps-green")
    page.select_option("#plan-inter", "B0")
    page.wait_for_selector("#plan-stages[data-intersection=B0] tbody tr .ps-green")
    page.click("#plan-template")
    page.click("#plan-validate")
    page.wait_for_selector("#plan-problems [data-valid='1']")
    page.click("#plan-save")
    page.wait_for_selector("#plan-activate-box:not([hidden])")
    page.check("#plan-emergency")
    page.fill("#plan-activate-comment", "signal cabinet hit: known-good plan now")
    page.click("#plan-activate")
    page.wait_for_function("document.querySelector('#plan-activate-result').textContent.startsWith('activated on B0')")
    page.click("#tabs button[data-view=audit]")
    page.wait_for_selector("#audit-table tr[data-action='approval.override']")
    assert "signal cabinet hit" in page.inner_text("#audit-table tr[data-action='approval.override']")
    assert not page.errors  # type: ignore[attr-defined]
    page.close()


def test_cut_a_controller_off_and_acknowledge_the_alarm(server: str, browser: Any, shots: Path) -> None:
    page = login(browser, server, "technician")
    page.click(".marker[data-intersection=C0]")
    page.wait_for_selector("#f-link[data-down='0']")
    page.click("#f-link")
    page.wait_for_selector(".marker[data-intersection=C0][data-status=comm_loss]")
    page.wait_for_selector(".marker[data-intersection=C0] .ring[visibility=visible]")
    page.wait_for_selector("#alarm-counter.has")
    page.wait_for_selector("#p-alarms tr[data-code=comm_loss]")
    page.evaluate("document.querySelector('#panel').scrollTop = 0")
    screenshot(page, shots, "map")
    page.click("#alarm-counter")
    row = "#alarm-table tr[data-code=comm_loss][data-acked='0']"
    page.wait_for_selector(row)
    screenshot(page, shots, "alarms")
    page.click(f"{row} button.ack")
    page.wait_for_selector("#modal:not([hidden])")
    page.fill("#ack-note", "field crew dispatched")
    page.click("#modal-ok")
    page.wait_for_selector("#alarm-table tr[data-code=comm_loss][data-acked='1']")
    cell = page.inner_text("#alarm-table tr[data-code=comm_loss][data-acked='1'] .ack-cell")
    assert "technician" in cell and "field crew dispatched" in cell
    # Restore the link: the intersection comes back under central control.
    page.click("#tabs button[data-view=map]")
    page.click(".marker[data-intersection=C0]")
    page.wait_for_selector("#f-link[data-down='1']")
    page.click("#f-link")
    page.wait_for_function("document.querySelector('.marker[data-intersection=C0]').dataset.status !== 'comm_loss'")
    assert not page.errors  # type: ignore[attr-defined]
    page.close()


def test_operator_flash_request_needs_confirmation(server: str, browser: Any, shots: Path) -> None:
    page = login(browser, server, "operator")
    page.click(".marker[data-intersection=A2]")
    page.wait_for_selector("#c-kind")
    page.select_option("#c-kind", "flash")
    page.fill("#c-min", "2")
    page.fill("#c-reason", "incident on the approach")
    page.click("#c-send")
    page.wait_for_selector("#modal:not([hidden])")
    page.click("#modal-cancel")  # not confirmed: nothing is sent
    page.wait_for_selector("#modal", state="hidden")
    time.sleep(1)
    assert page.get_attribute(".marker[data-intersection=A2]", "data-status") != "flash"
    page.click("#c-send")
    page.click("#modal-ok")
    page.wait_for_selector(".marker[data-intersection=A2][data-status=flash]")
    page.wait_for_selector("#p-cmds .c-cancel")
    page.click("#p-cmds .c-cancel")
    page.wait_for_function("document.querySelector('.marker[data-intersection=A2]').dataset.status !== 'flash'")
    page.click("#tabs button[data-view=kpis]")
    page.wait_for_selector("#kpi-table tbody tr")
    page.wait_for_selector("#chart-queue polyline")
    page.click("#kpi-table tbody tr[data-id=B1]")
    page.wait_for_selector("#chart-inter polyline")
    screenshot(page, shots, "kpis")
    page.click("#tabs button[data-view=corridor]")
    page.wait_for_selector("#tsd rect")
    screenshot(page, shots, "corridor")
    assert not page.errors  # type: ignore[attr-defined]
    page.close()


def test_the_map_colours_a_queued_road(server: str, browser: Any, shots: Path) -> None:
    """Hold B1 on one stage: the roads of the other stage queue up and turn from green on the map."""
    page = login(browser, server, "operator")
    page.click(".marker[data-intersection=B1]")
    page.wait_for_selector("#c-kind")
    page.select_option("#c-kind", "hold")
    page.fill("#c-min", "10")
    page.fill("#c-reason", "queue on the map")
    page.click("#c-send")
    page.wait_for_selector(".marker[data-intersection=B1][data-status=manual]")
    held = page.input_value("#c-stage")
    # Roads into B1 whose groups are not in the held stage.
    waiting = page.evaluate(
        """(held) => {
          const st = S.detail.model.stages.find((s) => s.id === held);
          const groups = S.detail.model.groups.filter((g) => !st.groups.includes(g.id));
          const from = new Set(groups.flatMap((g) => g.label.split(" ")[0].split("/")));
          return S.net.edges.filter((e) => e.to === "B1" && from.has(e.id)).map((e) => e.id);
        }""",
        held,
    )
    assert waiting, "no road into B1 waits for the other stage"
    coloured = ":not([data-level='0']):not([data-level='-1'])"
    sel = ", ".join(f"#map polyline.road[data-edge='{e}']{coloured}" for e in waiting)
    # "attached", not "visible": a straight horizontal road has a zero-height box (SVG boxes leave the stroke out).
    page.wait_for_selector(sel, state="attached", timeout=300_000)  # real time, light demand: a few held cycles
    el = page.query_selector(sel)
    assert el is not None and el.evaluate("(e) => getComputedStyle(e).stroke") != "rgb(47, 158, 91)"  # not green
    screenshot(page, shots, "map-queue")
    page.wait_for_selector("#p-cmds .c-cancel")
    page.click("#p-cmds .c-cancel")
    assert not page.errors  # type: ignore[attr-defined]
    page.close()


def test_a_pcd_renders_from_stored_events(server: str, browser: Any, shots: Path) -> None:
    page = login(browser, server, "viewer")
    page.click("#tabs button[data-view=measures]")
    page.select_option("#m-inter", "B1")
    page.select_option("#m-window", "15")
    deadline = time.monotonic() + 240  # real time: a few cycles must have been stored
    while True:
        page.click("#m-load")
        page.wait_for_function("document.querySelector('#m-status').textContent.includes('stored events')")
        if page.query_selector("#m-pcd[data-intersection=B1] circle.pcd-dot") and page.query_selector(
            "#m-pcd polyline.pcd-green_s"
        ):
            break
        assert time.monotonic() < deadline, "no PCD: " + page.inner_text("#m-aog")
        time.sleep(10)
    assert "arrivals on green" in page.inner_text("#m-aog")
    page.hover("#m-pcd circle.pcd-dot")
    page.wait_for_selector("#m-tip:not([hidden])")
    assert "into the cycle" in page.inner_text("#m-tip")
    page.wait_for_selector("#m-splits circle.split-dot")
    screenshot(page, shots, "measures")
    # KPI history: the stored 30-s samples of the last hour, read page by page from the database.
    page.click("#tabs button[data-view=kpis]")
    page.select_option("#kpi-range", "1")
    page.wait_for_function("Number(document.querySelector('#chart-queue').dataset.samples || 0) > 0")
    page.wait_for_selector("#chart-queue polyline", state="attached")
    assert "stored samples" in page.inner_text("#kpi-range-note")
    assert not page.errors  # type: ignore[attr-defined]
    page.close()
