"""``carbonfed sweep --out``'s report.html: metric against carbon price with bands, in Chromium."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from tests.scenarios.helpers import run_cli
from tests.scenarios.test_html_report import CELLS, FETCHED, FIGURE_INK, _open, browser

__all__ = ["browser"]  # the module-scoped fixture, shared with the run and market reports


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    code, _, err = run_cli("sweep", "tiny", "--carbon-prices", "0,100,200", "--policies",
                           "milp,isolated", "--out", str(out))
    assert code == 0, err
    return out


def test_the_sweep_report_is_self_contained_and_names_its_figure(sweep_dir):
    page = (sweep_dir / "report.html").read_text(encoding="utf-8")
    assert 'data-figure="sweep"' in page and 'data-table="sweep"' in page
    assert not re.search(r"<script[^>]*\bsrc=", page)
    assert "confidence interval" in page  # the caption says what the bands are


def test_the_sweep_report_draws_and_its_table_equals_the_summary(browser, sweep_dir,
                                                                 tmp_path):
    log = _open(browser, sweep_dir / "report.html", tmp_path, "sweep")
    assert [e for e in log if e["level"] in ("SEVERE", "ERROR")] == []
    assert browser.execute_script(FETCHED) == []
    drawn = browser.execute_script(FIGURE_INK)
    assert set(drawn) == {"sweep"} and drawn["sweep"]["ink"] > 2000
    cells = {(c["policy"], c["price"], c["field"]): c["text"]
             for c in browser.execute_script(CELLS, "sweep")}
    summary = pd.read_csv(sweep_dir / "sweep_summary.csv")
    assert len(summary) == 6
    for row in summary.to_dict("records"):
        key = (row["policy"], f"{row['carbon_price_usd_per_t']:g}", "carbon_kg")
        assert cells[key] == f"{row['carbon_kg']:,.2f}"  # one seed: no interval shown
