"""A real browser for the console's tests: Debian's ``chromium``, headless, driven by Selenium
through Debian's ``chromedriver`` (both found on PATH: nothing is downloaded)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.conftest import missing_service

WIDTH, HEIGHT = 1280, 900


@contextmanager
def chromium(profile: Path) -> Iterator[Any]:
    """A headless Chromium session; skipped locally (failed in CI) without the binaries."""
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if binary is None or driver is None:
        missing_service("chromium and chromium-driver (Debian's packages)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(binary)
    for argument in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", f"--window-size={WIDTH},{HEIGHT}",
    ):  # fmt: skip
        options.add_argument(argument)
    browser = webdriver.Chrome(service=Service(executable_path=str(driver)), options=options)
    browser.set_page_load_timeout(30)
    try:
        yield browser
    finally:
        browser.quit()


def navigate(browser: Any, element: Any) -> None:
    """Click ``element`` and wait (with a deadline) until the page it leads to replaced this one."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    page = browser.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(browser, 30).until(_replaced(page))


def _replaced(page: Any) -> Callable[[Any], bool]:
    """Selenium's ``staleness_of``, also accepting chromedriver's other word for a stale node.

    While the old page is being torn down, chromedriver sometimes answers "Node with given id
    does not belong to the document" (an inspector error) instead of a stale-element error;
    both mean the page was replaced.
    """
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    def check(_: Any) -> bool:
        try:
            page.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:
            if "does not belong to the document" in str(exc.msg):
                return True
            raise
        return False

    return check
