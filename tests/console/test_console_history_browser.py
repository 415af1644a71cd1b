"""Attempts on screen, in a real Chromium against ``codat-webhooks serve --console``: the status
panel on the listing (a key Codat gave up on, first, with its replay command), the search by
key, whole rows that open a delivery, the timeline and the sender's horizon on its page, a
replay that fails shown as a failure and one that works shown as done.

The store is filled before the server starts, by a receiver on a test clock that lives through
Codat's whole 28-hour schedule. ``HISTORY_SCREENSHOTS=dir`` also saves the two pages there
(``scripts/console-screenshot`` makes the pictures in the docs this way).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from codat_webhooks import Receiver, RuleType
from codat_webhooks.horizon import CODAT_GIVES_UP_AFTER, CODAT_SCHEDULE
from codat_webhooks.stores import SQLiteStore
from codat_webhooks.testing import FakeClock, RetrySchedule, deliver_with_retries, sample_body

from ..test_docs_browser import png_colours
from .browser import WIDTH, chromium, navigate
from .helpers import AUTHORIZATION, PASSWORD, FailsWhileMarked, served_console

pytestmark = pytest.mark.slow

ABANDONED = "7f1b2c3d-0000-4000-8000-0000000abad0"
FAILING = "7f1b2c3d-0000-4000-8000-00000000fa11"
COMPANY = "8a210b68-6988-11ed-a1eb-0242ac120002"


def fill(db: Path, marker: Path) -> None:
    """One key through Codat's whole schedule (abandoned), one failing twice in the last hour,
    and three processed."""
    os.environ["CONSOLE_TEST_FAIL"] = str(marker)  # what FailsWhileMarked reads
    clock = FakeClock(time.time() - CODAT_GIVES_UP_AFTER - 2 * 3600)
    receiver = Receiver(
        authorization=AUTHORIZATION,
        store=SQLiteStore(db, clock=clock),
        plugins=[FailsWhileMarked()],
        load_entrypoints=False,
        clock=clock,
    )
    headers = {"Authorization": AUTHORIZATION}
    marker.touch()
    codat = RetrySchedule("codat", CODAT_SCHEDULE, None, False)
    body = sample_body(RuleType.DATA_SYNC_COMPLETED, alert_id=ABANDONED, company_id=COMPANY)
    attempts = deliver_with_retries(receiver, body, headers, schedule=codat, clock=clock)
    assert [attempt.reply.status for attempt in attempts] == [503] * 8
    clock.now = time.time() - 1200
    failing = sample_body("Sync Failed", alert_id=FAILING, company_id=COMPANY)
    for _ in range(2):
        assert receiver.handle("POST", headers, failing).status == 503
        clock.advance(5)
    marker.unlink()
    for kind in ("Dataset data changed", "New company synchronised", "Sync Completed"):
        clock.advance(60)
        assert receiver.handle("POST", headers, sample_body(kind, company_id=COMPANY)).status == 200
    receiver.close()


def test_status_panel_timeline_horizon_search_and_replays(tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    marker = tmp_path / "fail"
    fill(tmp_path / "deliveries.sqlite3", marker)
    shots = os.environ.get("HISTORY_SCREENSHOTS")
    with served_console(tmp_path) as base, chromium(tmp_path / "profile") as browser:
        browser.get(f"{base}/console/login")
        browser.find_element(By.ID, "password").send_keys(PASSWORD)
        navigate(browser, browser.find_element(By.ID, "login"))

        # the status panel: the abandoned key first, as an action, with its replay command
        findings = browser.find_elements(By.CSS_SELECTOR, "#status li.finding")
        first = findings[0]
        assert "action" in first.get_attribute("class")
        assert "abandoned by the sender" in first.text
        assert f"codat-webhooks replay {ABANDONED}" in first.text
        failing = [f for f in findings if FAILING in f.text]
        assert len(failing) == 1
        assert "warning" in failing[0].get_attribute("class")
        assert "attempt 2, 6 left from Codat" in failing[0].text
        if shots:
            browser.save_screenshot(str(Path(shots) / "console-status.png"))
        shot = tmp_path / "listing.png"
        browser.save_screenshot(str(shot))
        assert png_colours(shot.read_bytes())[0] == WIDTH

        # a whole row opens its delivery: click the type cell of the abandoned one
        row = next(
            r
            for r in browser.find_elements(By.CSS_SELECTOR, "#deliveries tbody tr")
            if ABANDONED in r.text
        )
        navigate(browser, row.find_elements(By.TAG_NAME, "td")[3].find_element(By.TAG_NAME, "a"))
        assert browser.find_element(By.ID, "key").text == ABANDONED

        # its timeline: Codat's eight attempts, 5 s then 5 min ... apart, and Codat gave up
        horizon = browser.find_element(By.ID, "horizon")
        assert horizon.text == "Codat has given up after 8 attempts: replay to run it"
        assert "problem" in horizon.get_attribute("class")
        lines = browser.find_elements(By.CSS_SELECTOR, "#timeline tbody tr")
        assert len(lines) == 8
        cells = [[td.text for td in line.find_elements(By.TAG_NAME, "td")] for line in lines]
        assert [c[1] for c in cells[:4]] == ["first", "+5 s", "+5 min", "+35 min"]
        assert {c[3] for c in cells} == {"503"}
        assert {c[4] for c in cells} == {"failed"}
        assert all("handler bug (marker file present)" in c[6] for c in cells)
        assert all(c[5].endswith(" ms") for c in cells)
        assert all("failure" in line.get_attribute("class") for line in lines)
        if shots:
            browser.save_screenshot(str(Path(shots) / "console-timeline.png"))

        # a replay while the handler still fails is shown as a failure, and on the timeline
        marker.touch()
        navigate(browser, browser.find_element(By.ID, "replay"))
        assert browser.find_element(By.ID, "replayed").text.startswith("Replay failed (failed)")
        assert len(browser.find_elements(By.CSS_SELECTOR, "#timeline tbody tr")) == 9

        # fixed: the replay runs it, and the page says it is done
        marker.unlink()
        navigate(browser, browser.find_element(By.ID, "replay"))
        assert browser.find_element(By.ID, "replayed").text == "Replayed: processed"
        assert browser.find_element(By.ID, "state").text == "done"
        last = browser.find_elements(By.CSS_SELECTOR, "#timeline tbody tr")[-1]
        assert "200" in last.text
        assert "processed" in last.text
        assert browser.find_element(By.ID, "horizon").text.startswith("done after")

        # the search by key opens the failing one; an unknown key says so
        browser.get(f"{base}/console/")
        assert ABANDONED not in browser.find_element(By.ID, "status").text
        browser.find_element(By.ID, "search-key").send_keys(FAILING)
        navigate(browser, browser.find_element(By.ID, "find"))
        assert browser.find_element(By.ID, "key").text == FAILING
        assert browser.find_element(By.ID, "horizon").text.startswith("Codat's next attempt")
        browser.get(f"{base}/console/")
        browser.find_element(By.ID, "search-key").send_keys("no-such-key")
        navigate(browser, browser.find_element(By.ID, "find"))
        assert "No delivery with key no-such-key" in browser.find_element(By.ID, "not-found").text
