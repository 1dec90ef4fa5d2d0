"""The documentation site builds with ``mkdocs build --strict`` (a broken link or a missing page
fails it), needs no network when read, and the commands of its runnable blocks work as written.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_the_report_page_shows_a_real_run_and_its_plots(site):
    page = (site / "getting-started" / "report.html").read_text()
    assert "Per policy" in page and "Savings of milp against isolated" in page
    assert "&lt;!-- carbonfed run tiny --&gt;" not in page and "carbonfed run tiny -->" not in page
    for image in ("tiny-policies.png", "tiny-milp-load-vs-carbon.png"):
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
