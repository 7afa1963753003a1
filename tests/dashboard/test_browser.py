"""The dashboard in headless Chromium against a real API process and real consumers: sign
in, watch a job go from queued to completed without a reload, cancel a running job with
the keyboard alone, replay a dead letter, and a POST without the CSRF token refused.

Screenshots (1280 px and phone width) are saved in each test's folder (pytest keeps the
last three runs' under its base temporary directory); with ``AGENTLINK_KEEP_SCREENSHOTS=<dir>``
they are copied there too, e.g. ``samples/dashboard`` (git-ignored), to be looked at.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from agentlink.settings import Settings
from agentlink.stream.keys import Keys
from tests.conftest import Processes, job_hash, skip_without, wait_status
from tests.support.consumers import stalled_consumer
from tests.support.dashboard import OPERATOR_KEY, PASSWORD, TENANT_KEY, bury

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
KEEP = os.environ.get("AGENTLINK_KEEP_SCREENSHOTS", "")
"""Where to copy the screenshots as well (nowhere by default: the checkout stays clean)."""
pytestmark = pytest.mark.slow


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and Path("/usr/bin/chromium").exists():
        found = "/usr/bin/chromium"
    if found is None:
        skip_without("chromium", "chromium")
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright (no browser download)."""
    executable = _chromium()
    with sync_api.sync_playwright() as playwright:
        running = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield running
        running.close()


@pytest.fixture
def live(settings: Settings, processes: Processes) -> str:
    """``agentlink api`` with a tenant key, an operator key, the dashboard password and a
    one-second refresh; its base URL."""
    return processes.api(
        settings,
        AGENTLINK_API_KEYS=TENANT_KEY,
        AGENTLINK_OPERATOR_KEYS=OPERATOR_KEY,
        AGENTLINK_DASHBOARD_PASSWORD=PASSWORD,
        AGENTLINK_DASHBOARD_REFRESH_S="1",
        AGENTLINK_RATE_LIMIT="0",
    )


@pytest.fixture
def page(browser: Any, live: str) -> Iterator[Any]:
    """A fresh browser context, signed in through the form."""
    context = browser.new_context(viewport=DESKTOP, base_url=live)
    opened = context.new_page()
    opened.goto("/dashboard")
    sync_api.expect(opened).to_have_url(f"{live}/dashboard/login?next=%2Fdashboard")
    opened.fill("#secret", PASSWORD)
    opened.press("#secret", "Enter")
    sync_api.expect(opened.locator("h1")).to_have_text("Queue and workers")
    yield opened
    context.close()


def shoot(page: Any, tmp_path: Path, name: str, *, full: bool = True) -> None:
    """A screenshot at the page's size and one at phone width, kept as artifacts."""
    keep = Path(KEEP) if KEEP else None
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    for label, viewport in (("desktop", size), ("phone", PHONE)):
        page.set_viewport_size(viewport)
        path = tmp_path / f"{name}-{label}.png"
        page.screenshot(path=str(path), full_page=full)
        if keep is not None:
            shutil.copy(path, keep / path.name)
    page.set_viewport_size(size)


def submit(base: str) -> str:
    answer = httpx.post(
        f"{base}/api/generate-agents-report",
        json={"suburb": "Manly", "state": "NSW"},
        headers={"X-API-Key": TENANT_KEY},
        timeout=10,
    )
    assert answer.status_code == 202, answer.text
    return str(answer.json()["job_id"])


class TestInTheBrowser:
    def test_a_queued_job_turns_completed_without_a_reload(
        self,
        page: Any,
        live: str,
        settings: Settings,
        processes: Processes,
        tmp_path: Path,
    ) -> None:
        """The job list shows a new job queued, then completed, on the same page."""
        page.evaluate("window.samePage = true")
        job_id = submit(live)
        status = page.locator(f'tr[data-job="{job_id}"] .status')
        sync_api.expect(status).to_have_text("queued", timeout=20_000)
        processes.consumer(settings)
        sync_api.expect(status).to_have_text("completed", timeout=120_000)
        assert page.evaluate("window.samePage") is True
        sync_api.expect(page.locator("#main")).to_contain_text("1 completed")
        shoot(page, tmp_path, "overview")

    def test_a_running_job_is_cancelled_with_the_keyboard(
        self,
        page: Any,
        live: str,
        settings: Settings,
        r: redis.Redis,
        processes: Processes,
        tmp_path: Path,
    ) -> None:
        """A held render; Tab to "Cancel job…", Enter, Tab to the confirmation, Enter: the
        page turns cancelled by itself, and no PDF is stored."""
        stalled_consumer(processes, settings, AGENTLINK_RENDER_TIMEOUT_S="600")
        job_id = submit(live)
        wait_status(r, job_id, "processing")
        page.goto(f"/dashboard/jobs/{job_id}")
        badge = page.locator("h1 .status")
        sync_api.expect(badge).to_have_text("processing")
        _tab_to(page, "Cancel job…")
        page.keyboard.press("Enter")
        sync_api.expect(page.locator("h1")).to_have_text(f"Cancel job {job_id[:8]}?")
        shoot(page, tmp_path, "confirm-cancel", full=False)
        _tab_to(page, "Cancel the job")
        page.keyboard.press("Enter")
        sync_api.expect(page.locator(".flash").first).to_contain_text("Cancel requested")
        sync_api.expect(badge).to_have_text("cancelled", timeout=30_000)
        sync_api.expect(page.locator(".timeline")).to_contain_text("cancel requested")
        assert not list(settings.output_dir.rglob("*.pdf"))
        assert job_hash(r, job_id)["status"] == "cancelled"
        shoot(page, tmp_path, "job-cancelled")

    def test_a_dead_letter_is_replayed(
        self, page: Any, live: str, r: redis.Redis, keys: Keys, tmp_path: Path
    ) -> None:
        """Dead letters → Replay… → Replay it: the letter is gone and its job queued."""
        job_id = submit(live)
        dead_id = bury(r, keys, job_id)
        page.goto("/dashboard/dead")
        sync_api.expect(page.locator("#main")).to_contain_text("1 dead letter(s).")
        page.locator("details summary").first.click()
        shoot(page, tmp_path, "dead-letters")
        page.get_by_label(f"Replay dead letter {dead_id}").click()
        page.get_by_role("button", name="Replay it").click()
        sync_api.expect(page.locator(".flash")).to_have_text("Dead letter queued again.")
        sync_api.expect(page.locator("#main")).to_contain_text("0 dead letter(s).")
        page.goto(f"/dashboard/jobs/{job_id}")
        sync_api.expect(page.locator("h1 .status")).to_have_text("queued")
        sync_api.expect(page.locator(".timeline")).to_contain_text("replayed")
        shoot(page, tmp_path, "job-replayed")

    def test_a_post_without_the_csrf_token_is_refused(
        self, page: Any, live: str, r: redis.Redis
    ) -> None:
        """The signed-in browser's own POST without the token: 403, the job still queued."""
        job_id = submit(live)
        status = page.evaluate(
            """async (url) => (await fetch(url, {
                method: "POST", credentials: "same-origin",
                body: new URLSearchParams({confirm: "yes"})})).status""",
            f"/dashboard/jobs/{job_id}/cancel",
        )
        assert status == 403
        assert job_hash(r, job_id)["status"] == "queued"


def _tab_to(page: Any, text: str, limit: int = 40) -> None:
    """Press Tab until the focused element reads ``text`` (keyboard only)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.trim()") == text:
            return
    pytest.fail(f"{text!r} cannot be reached with Tab")
