"""The documentation site builds with ``mkdocs build --strict`` (a broken link or a missing page
fails it), needs no network when read, and the commands of its runnable blocks work as written.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.scenarios.browser import start_browser

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
RUNNABLE = "<!-- runnable -->"
# Anything the browser would fetch by itself: scripts, stylesheets, images, frames, preconnects.
FETCHING_TAG = re.compile(
    r"<(script|img|iframe|source)\b[^>]*\bsrc=\"(https?:)?//[^\"]*\""
    r"|<link\b[^>]*\bhref=\"(https?:)?//[^\"]*\"", re.I)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          check=False, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_every_page_of_the_nav_and_the_reference_is_built(site):
    for page in ("index.html", "getting-started/install.html", "operators/leases.html",
                 "reference/scenario.html", "reference/settings.html", "reference/cli.html",
                 "reference/rest-api.html", "reference/python-api.html", "benchmarks.html"):
        assert (site / page).is_file(), page
    assert json.loads((site / "reference" / "openapi.json").read_text())["paths"]


def test_the_report_page_shows_a_real_run_and_the_real_plots_are_built(site):
    page = (site / "getting-started" / "report.html").read_text()
    assert "Per policy" in page and "Savings of milp against isolated" in page
    assert "&lt;!-- carbonfed run tiny --&gt;" not in page and "carbonfed run tiny -->" not in page
    for image in ("tiny-policies.png", "tiny-milp-load-vs-carbon.png",
                  "default-gains-by-scheme.png", "default-abatement-curve.png"):
        assert (site / "images" / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_page_fetches_anything_from_the_network(site):
    pages = list(site.rglob("*.html"))
    assert len(pages) > 30
    for page in pages:
        text = page.read_text()
        fetch = FETCHING_TAG.search(text)
        assert not fetch, f"{page.relative_to(site)}: {fetch.group(0) if fetch else ''}"
        # Material loads mermaid.js from a CDN when a page has a mermaid diagram
        assert 'class="mermaid"' not in text, page


def test_the_search_index_finds_nucleolus(site):
    index = json.loads((site / "search" / "search_index.json").read_text())
    hits = {doc["location"].split("#")[0] for doc in index["docs"]
            if "nucleolus" in doc["text"].lower()}
    assert "concepts/games.html" in hits


# Pages a reader lands on: the home page and three deep ones.
BROWSED = ("index.html", "concepts/games.html", "reference/scenario.html",
           "operators/leases.html")
# Every script, style, image or font the page loaded after the document itself.
FETCHED = "return performance.getEntriesByType('resource').map(e => e.name);"


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def served(site) -> Iterator[str]:
    """The built site on a loopback port, as `mkdocs serve` or any static server gives it
    (Material's search runs in a web worker, which Chromium does not start from file://)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 functools.partial(QuietHandler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    thread.join()


@pytest.fixture(scope="module")
def browser():
    driver, why = start_browser()
    if driver is None:
        pytest.skip(f"browser tests skipped: {why}")
    yield driver
    driver.quit()


def open_page(driver, url: str) -> tuple[list[dict], list[str]]:
    """Load the page; answer its console errors and what it fetched."""
    driver.get_log("browser")  # drop anything left from an earlier page
    driver.get(url)
    time.sleep(0.5)  # scripts run after load
    errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    return errors, driver.execute_script(FETCHED)


@pytest.mark.parametrize("page", BROWSED)
def test_a_served_page_has_no_console_errors_and_fetches_only_the_site(browser, served, page):
    errors, fetched = open_page(browser, served + page)
    assert errors == []
    assert fetched and all(url.startswith(served) for url in fetched), fetched


@pytest.mark.parametrize("page", BROWSED)
def test_a_page_opened_from_its_file_fetches_nothing_from_the_network(browser, site, page):
    """Chromium records no timing for files, only for what it fetched over the network (with
    Material's "offline" plugin: its iframe-worker shim from a CDN), so this list is empty."""
    _, fetched = open_page(browser, (site / page).as_uri())
    assert [url for url in fetched if not url.startswith("file://")] == []


def test_the_search_box_finds_nucleolus(browser, served):
    from selenium.webdriver.common.by import By

    open_page(browser, served + "index.html")
    browser.execute_script("const t = document.getElementById('__search'); t.checked = true;"
                           "t.dispatchEvent(new Event('change'));")
    browser.find_element(By.CSS_SELECTOR, "input[data-md-component=search-query]").send_keys(
        "nucleolus")
    deadline = time.monotonic() + 20
    links: list[str] = []
    while time.monotonic() < deadline and not links:
        time.sleep(0.2)
        links = [a.get_attribute("href") or "" for a in
                 browser.find_elements(By.CSS_SELECTOR, ".md-search-result__item a")]
    assert any("concepts/games.html" in link for link in links), links
    errors, _ = open_page(browser, served + "index.html")
    assert errors == []


def runnable_commands() -> list[tuple[str, str]]:
    """(page, command) for every ``carbonfed`` line of a fenced block marked runnable."""
    found = []
    for page in sorted(DOCS.rglob("*.md")):
        text = page.read_text()
        for block in re.findall(re.escape(RUNNABLE) + r"\n```[a-z]*\n(.*?)```", text, re.S):
            for line in block.splitlines():
                command = line.split("  #", 1)[0].strip()
                if command.startswith("carbonfed "):
                    found.append((str(page.relative_to(DOCS)), command))
    return found


def test_the_docs_mark_commands_as_runnable():
    pages = {page for page, _ in runnable_commands()}
    assert {"getting-started/first-run.md", "analysts/game.md"} <= pages


@pytest.mark.parametrize(("page", "command"), runnable_commands())
def test_a_runnable_command_runs_as_written(page, command, tmp_path):
    """Run in a fresh folder holding the repository's examples/, as a reader would type it."""
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    carbonfed = Path(sys.executable).parent / "carbonfed"
    argv = shlex.split(command)
    done = subprocess.run([str(carbonfed), *argv[1:]], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, f"{page}: {command}: {done.stderr[-2000:]}"
    assert done.stdout.strip(), f"{page}: {command} printed nothing"
