"""A real browser for the console's tests: Debian's ``chromium``, headless, driven by Selenium
through Debian's ``chromedriver`` (both found on PATH: nothing is downloaded)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
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
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.wait import WebDriverWait

    page = browser.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(browser, 30).until(expected_conditions.staleness_of(page))
