"""The console as an operator uses it: a real Chromium against ``codat-webhooks serve
--console --app ...`` (a real server process), deliveries sent to it over real HTTP.

Log in, see the counts, filter, open a parked delivery whose body carries ``<script>`` (shown
as text, never run), replay a failed one after "fixing" the handler and see it become done.
``CONSOLE_SCREENSHOT=path`` also saves the listing there (``scripts/console-screenshot``
makes the picture in the docs this way).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from codat_webhooks.testing import sample_body

from ..test_docs_browser import png_colours
from .browser import HEIGHT, WIDTH, chromium, navigate
from .helpers import AUTHORIZATION, PASSWORD, SCRIPT_BODY, served_console

pytestmark = pytest.mark.slow

DONE_TYPES = ["Data sync completed", "Dataset data changed", "New company synchronised"]
DONE_TYPES += ["Sync Completed", "Push Operation Timed Out"]


def deliver(base: str, body: bytes) -> int:
    headers = {"Authorization": AUTHORIZATION, "Content-Type": "application/json"}
    return httpx.post(f"{base}/webhooks/codat", content=body, headers=headers).status_code


def populate(base: str, fail_marker: Path) -> None:
    """Five processed alerts, one whose handler raised (failed), one invalid (parked)."""
    for kind in DONE_TYPES:
        assert (
            deliver(base, sample_body(kind, company_id="8a210b68-6988-11ed-a1eb-0242ac120002"))
            == 200
        )
    fail_marker.touch()
    assert (
        deliver(base, sample_body("Sync Failed", alert_id="7f1b2c3d-0000-4000-8000-00000000f00d"))
        >= 500
    )
    fail_marker.unlink()
    assert deliver(base, SCRIPT_BODY) < 500


def rows(browser: Any) -> list[tuple[str, str]]:
    """(state, key) of each row of the listing."""
    from selenium.webdriver.common.by import By

    found = []
    for row in browser.find_elements(By.CSS_SELECTOR, "#deliveries tbody tr"):
        cells = row.find_elements(By.TAG_NAME, "td")
        if len(cells) == 7:
            found.append((cells[1].text, cells[5].text))
    return found


def test_operator_lists_filters_inspects_and_replays(tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    with served_console(tmp_path) as base, chromium(tmp_path / "profile") as browser:
        populate(base, tmp_path / "fail")
        browser.get(f"{base}/console/")
        assert browser.current_url.endswith("/console/login")  # no session: the login form
        browser.find_element(By.ID, "password").send_keys(PASSWORD)
        navigate(browser, browser.find_element(By.ID, "login"))

        # the listing: every delivery, failed and parked counted and flagged
        assert browser.current_url == f"{base}/console/"
        listed = rows(browser)
        assert len(listed) == 7
        assert sorted(state for state, _ in listed) == ["done"] * 5 + ["failed", "parked"]
        failed_count = browser.find_element(By.ID, "count-failed")
        assert "alarm" in failed_count.get_attribute("class")
        assert failed_count.find_element(By.CLASS_NAME, "number").text == "1"
        assert "alarm" not in browser.find_element(By.ID, "count-done").get_attribute("class")
        if os.environ.get("CONSOLE_SCREENSHOT"):
            browser.save_screenshot(os.environ["CONSOLE_SCREENSHOT"])
        shot = tmp_path / "listing.png"
        browser.save_screenshot(str(shot))
        width, height, colours = png_colours(shot.read_bytes())
        assert width == WIDTH
        assert height > HEIGHT / 2  # the viewport: the window less what headless keeps for itself
        assert len(colours) > 50  # text, the red counts, the table: not a blank page

        # filter: the type and company fields, then the state checkboxes
        browser.find_element(By.ID, "type").send_keys("Dataset data changed")
        navigate(browser, browser.find_element(By.ID, "apply"))
        assert [state for state, _ in rows(browser)] == ["done"]
        browser.find_element(By.ID, "type").clear()
        browser.find_element(By.ID, "state-failed").click()
        browser.find_element(By.ID, "state-parked").click()
        navigate(browser, browser.find_element(By.ID, "apply"))
        assert sorted(state for state, _ in rows(browser)) == ["failed", "parked"]
        filtered = browser.current_url
        assert "state=failed" in filtered

        # the parked delivery: its <script> is text on the page, and never ran
        title = browser.title
        parked_key = next(key for state, key in rows(browser) if state == "parked")
        navigate(browser, browser.find_element(By.LINK_TEXT, parked_key))
        assert browser.find_element(By.ID, "state").text == "parked"
        body = browser.find_element(By.ID, "body").text
        assert '<script>document.title = \\"pwned\\"</script>' in body
        assert browser.find_elements(By.CSS_SELECTOR, "main script") == []
        assert browser.title != "pwned"
        assert "pwned" not in title

        # the failed delivery: the handler is fixed (no marker file), replay it
        browser.get(filtered)
        failed_key = next(key for state, key in rows(browser) if state == "failed")
        navigate(browser, browser.find_element(By.LINK_TEXT, failed_key))
        assert browser.find_element(By.ID, "state").text == "failed"
        assert "handler bug" in browser.find_element(By.ID, "last-error").text
        assert "on_alert — FailsWhileMarked" in browser.find_element(By.ID, "handlers").text
        navigate(browser, browser.find_element(By.ID, "replay"))
        assert browser.find_element(By.ID, "replayed").text == "Replayed: processed"
        assert browser.find_element(By.ID, "state").text == "done"

        browser.get(f"{base}/console/")
        assert browser.find_element(By.ID, "count-failed").text.split()[0] == "0"
