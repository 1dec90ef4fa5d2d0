"""``carbonfed sweep --out``'s report.html: metric against carbon price with bands, in Chromium."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from scenarios.html_report.bands import band
from tests.scenarios.helpers import run_cli, synthetic_text
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
    assert "1 seed(s) per point" in page and "no band" in page  # what the bands are, and n


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


# Every band a sweep page draws, read back from the page's Bokeh document in the browser.
BANDS = """
const out = [];
for (const m of Bokeh.documents[0].all_models) {
  const data = m.data;
  if (!data || typeof data !== 'object') continue;
  const raw = k => data instanceof Map ? data.get(k) : data[k];
  if (!raw('metric')) continue;
  const get = k => Array.from(raw(k));
  out.push({metric: get('metric')[0], line: get('line')[0], price: get('price'),
            lo: get('lo'), hi: get('hi'), band: get('band'), seeds: get('seeds')});
}
return out;
"""

# How far below its last table a page may end (a margin, not a blank screen).
PAGE_END = """
const tables = document.querySelectorAll('table');
const last = tables[tables.length - 1].getBoundingClientRect().bottom + window.scrollY;
return document.documentElement.scrollHeight - last;
"""


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory):
    """A synthetic day on two sites, 2 seeds: seeds apart enough that the 95% t-interval of
    some non-negative mean reaches below zero (checked in the test, so the test can fail)."""
    folder = tmp_path_factory.mktemp("two_seeds")
    path = folder / "synth.yaml"
    path.write_text(synthetic_text(seed=5, policies="[milp, isolated]"))
    code, _, err = run_cli("sweep", str(path), "--seeds", "2", "--carbon-prices", "0,100",
                           "--out", str(folder / "out"))
    assert code == 0, err
    return folder / "out"


NON_NEGATIVE = ("carbon_kg", "energy_kwh", "mean_completion_h")


def test_two_seed_bands_never_go_below_zero_and_span_the_two_runs(browser, two_seeds,
                                                                   tmp_path):
    summary = pd.read_csv(two_seeds / "sweep_summary.csv")
    below = summary["carbon_kg"] - summary["carbon_kg_ci"]
    assert (below < 0).any()  # the t-interval of 2 seeds would draw below zero here
    log = _open(browser, two_seeds / "report.html", tmp_path, "two_seeds")
    assert [e for e in log if e["level"] in ("SEVERE", "ERROR")] == []
    bands = browser.execute_script(BANDS)
    assert {b["metric"] for b in bands} == {*NON_NEGATIVE, "total_cost_usd"}
    assert len(bands) == 4 * 2  # a band per metric and policy
    records = pd.read_csv(two_seeds / "sweep.csv")
    for b in bands:
        assert set(b["seeds"]) == {2} and set(b["band"]) == {"range"}
        if b["metric"] in NON_NEGATIVE:
            assert min(b["lo"]) >= 0, b
        for price, lo, hi in zip(b["price"], b["lo"], b["hi"], strict=True):
            runs = records[(records["policy"] == b["line"])
                           & (records["carbon_price_usd_per_t"] == price)][b["metric"]]
            assert len(runs) == 2
            assert lo == pytest.approx(runs.min(), rel=1e-3)  # the page rounds to 4 digits
            assert hi == pytest.approx(runs.max(), rel=1e-3)


def test_the_key_is_below_the_panels_and_the_page_ends_at_its_table(browser, two_seeds,
                                                                    tmp_path):
    page = (two_seeds / "report.html").read_text(encoding="utf-8")
    assert '"name":"Legend"' not in page  # no legend inside a panel, over its lines
    assert "With 2 seeds the band is the range of the two runs" in page
    _open(browser, two_seeds / "report.html", tmp_path, "two_seeds_key")
    key = browser.execute_script(
        "return Array.from(document.querySelectorAll('ul[data-key=\"sweep\"] li'))"
        ".map(li => li.innerText.trim());")
    assert key == ["milp", "isolated"]
    # The page (in a window shorter than it) ends at its last table, and the screenshot
    # _open took is the page's height, not an earlier page's taller window.
    browser.set_window_size(1280, 600)
    assert browser.execute_script(PAGE_END) < 120
    height = browser.execute_script("return document.documentElement.scrollHeight")
    shot = (tmp_path / "two_seeds_key.png").read_bytes()
    assert int.from_bytes(shot[20:24], "big") < height + 200  # the PNG's height (IHDR)


@pytest.mark.parametrize(("seeds", "non_negative", "expected"), [
    (1, True, (10.0, 10.0, "none")),
    (2, True, (4.0, 30.0, "range")),  # the runs' range, whatever the t half-width
    (3, True, (0.0, 25.0, "ci")),  # mean 10 +/- 15, cut at zero
    (3, False, (-5.0, 25.0, "ci")),  # a cost may be negative: not cut
    (5, True, (1.0, 19.0, "ci")),
])
def test_band_rules(seeds, non_negative, expected):
    half = 9.0 if seeds == 5 else (float("nan") if seeds == 1 else 15.0)
    drawn = band(10.0, half, 4.0, 30.0, seeds, non_negative)
    assert (drawn.low, drawn.high, drawn.kind) == expected
