"""Headless Chromium for the report tests (Debian's ``chromium`` and ``chromium-driver``).

``start_browser`` answers a Selenium driver, or the one-line reason there is none (no
Selenium, no browser or driver on PATH, or a browser that does not start), so the tests
can skip saying why.
"""

from __future__ import annotations

import shutil
import tempfile
from typing import Any

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
# Without the background-networking flags, Chromium on this kind of machine (root, no
# display, no network beyond package registries) stalls on connections it cannot make.
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,1000")


def missing() -> str:
    """Why there can be no browser here ("" when Selenium, Chromium and its driver are all
    there); cheap, for deciding at collection time."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed"
    if not any(map(shutil.which, BROWSERS)) or not shutil.which("chromedriver"):
        return "no chromium/chromedriver on PATH (bash .ci/chromium.sh installs them)"
    return ""


def start_browser() -> tuple[Any | None, str]:
    """A headless Chromium driver and "", or None and why there is none."""
    why = missing()
    if why:
        return None, why
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = next(p for p in map(shutil.which, BROWSERS) if p)
    driver_path = shutil.which("chromedriver")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='carbonfed-chromium-')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        driver = webdriver.Chrome(service=Service(driver_path), options=options)
    except Exception as error:  # any start failure means: no browser here
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return None, f"chromium did not start: {first}"
    driver.set_page_load_timeout(60)
    return driver, ""
