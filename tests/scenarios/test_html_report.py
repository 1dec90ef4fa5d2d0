"""report.html from ``carbonfed run tiny --out`` and ``carbonfed market tiny --out``.

The file checks run everywhere: self-contained (no external script, style or request), one
copy of the plotting library, the expected figures. The browser checks open both pages in
headless Chromium (one session for the module): no console errors, every figure drawn (a
canvas with ink on it), and every table number equal to summary.json, sites.csv,
market.json or ledger.csv. Screenshots go to the pytest temp folder.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import time
from pathlib import Path

import pandas as pd
import pytest

from market.ledger import LedgerRow, balances
from scenarios.cli import main
from scenarios.report import SITE_COLUMNS, SUMMARY_COLUMNS
from tests.scenarios.browser import start_browser

RUN_FIGURES = {"savings_waterfall", "signals", "placement", "flows", "completion"}
MARKET_FIGURES = {"gains", "excess", "abatement", "balances"}
MAX_TINY_BYTES = 2_000_000  # the library is ~1.3 MB; tiny's data is a few kB


def _cli(*argv: str) -> None:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(list(argv)) == 0


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    _cli("run", "tiny", "--out", str(out))
    return out


@pytest.fixture(scope="module")
def market_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("market")
    _cli("market", "tiny", "--out", str(out))
    return out


@pytest.fixture(scope="module")
def seeds_dir(tmp_path_factory) -> Path:
    """``carbonfed run --seeds 3 --out`` of a synthetic day (its runs differ by seed)."""
    from tests.scenarios.helpers import synthetic_text

    folder = tmp_path_factory.mktemp("seeds")
    (folder / "synth.yaml").write_text(synthetic_text(seed=5, policies="[milp, isolated]"))
    _cli("run", str(folder / "synth.yaml"), "--seeds", "3", "--out", str(folder / "out"))
    return folder / "out"


def _cells(page: str, table: str) -> dict[tuple[str, ...], str]:
    """A table's numeric cells by their data attributes, read from the HTML file."""
    body = page.split(f'data-table="{table}"', 1)[1].split("</table>", 1)[0]
    cells = {}
    for attrs, text in re.findall(r"<td[^>]*?((?: data-[a-z]+=\"[^\"]*\")+)>([^<]*)</td>", body):
        cells[tuple(re.findall(r'data-[a-z]+="([^"]*)"', attrs))] = text
    return cells


# --- the file itself -----------------------------------------------------------------------

@pytest.mark.parametrize("which", ["run_dir", "market_dir"])
def test_report_is_one_self_contained_file(which, request):
    page = (request.getfixturevalue(which) / "report.html").read_text(encoding="utf-8")
    assert len(page.encode()) < MAX_TINY_BYTES
    scripts = re.findall(r"<script[^>]*>(.*?)</script>", page, flags=re.S)
    # One embedded copy of the library (the only big script), and no script by reference.
    assert sum(len(s) > 500_000 for s in scripts) == 1
    assert not re.search(r"<script[^>]*\bsrc=", page)
    # The markup outside the scripts fetches nothing: no stylesheet link, no URL in src/href.
    markup = re.sub(r"<script[^>]*>.*?</script>", "", page, flags=re.S)
    assert not re.search(r"<link\b", markup)
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", markup)


def test_run_report_names_every_figure_with_a_caption(run_dir):
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert set(re.findall(r'data-figure="([^"]+)"', page)) == RUN_FIGURES
    for name in RUN_FIGURES:
        after = page.split(f'data-figure="{name}"', 1)[1]
        assert re.search(r'</div>\s*<p class="caption">[^<]{40,}</p>', after[:4000]), name


def test_market_report_names_every_figure(market_dir):
    page = (market_dir / "report.html").read_text(encoding="utf-8")
    assert set(re.findall(r'data-figure="([^"]+)"', page)) == MARKET_FIGURES


@pytest.mark.parametrize(("which", "plots"), [
    ("run_dir", 3 + 2 + 2 + 1 + 1),  # waterfalls, signals, a panel per site, flows, completion
    ("market_dir", 4)])
def test_every_plot_zooms_and_hovers(which, plots, request):
    page = (request.getfixturevalue(which) / "report.html").read_text(encoding="utf-8")
    assert page.count('"name":"Figure"') == plots
    assert page.count('"name":"HoverTool"') == plots
    assert page.count('"name":"WheelZoomTool"') == plots


@pytest.mark.parametrize(("which", "unit"), [("run_dir", "GPU-hours"), ("market_dir", "USD")])
def test_every_heat_map_has_a_colour_bar_labelled_with_its_unit(which, unit, request):
    """The flow matrix (run) and the balances (market): a colour bar reads a cell back as a
    number, titled with the matrix's unit."""
    page = (request.getfixturevalue(which) / "report.html").read_text(encoding="utf-8")
    titles = re.findall(r'"name":"ColorBar","id":"[^"]+","attributes":\{[^}]*?"title":"([^"]*)"',
                        page)
    assert len(titles) == 1, titles
    assert titles[0].startswith(unit)


def test_run_with_seeds_writes_a_report_of_every_seed_and_the_means(seeds_dir):
    """--seeds K --out: report.html beside seeds.csv, with the terminal's mean +/- CI per
    policy (from seeds_summary.csv), a figure of the runs, and every seed's figures."""
    from scenarios.report import SEED_METRICS, mean_ci

    page = (seeds_dir / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]*\bsrc=", page)
    assert set(re.findall(r'data-figure="([^"]+)"', page)) == {"seeds"}
    assert "3 seed(s) per policy" in page
    records = pd.read_csv(seeds_dir / "seeds.csv")
    summary = pd.read_csv(seeds_dir / "seeds_summary.csv").set_index("policy")
    assert len(records) == 6 and records["carbon_kg"].nunique() == 6
    runs = _cells(page, "seed_runs")
    counts = {"jobs_finished", "jobs_outside", "deadline_misses"}
    assert runs == {
        (r["policy"], str(r["seed_index"]), key):
            ("{:,.0f}" if key in counts else fmt).format(r[key])
        for r in records.to_dict("records") for key, _, fmt in SEED_METRICS}
    means = _cells(page, "seed_summary")
    assert means == {(p, key): mean_ci(fmt, summary.loc[p, key], summary.loc[p, f"{key}_ci"])
                     for p in summary.index for key, _, fmt in SEED_METRICS}
    assert means[("milp", "carbon_kg")] == (f"{summary.loc['milp', 'carbon_kg']:,.2f} +/- "
                                            f"{summary.loc['milp', 'carbon_kg_ci']:,.2f}")


def test_run_writes_report_next_to_the_other_outputs(run_dir):
    names = {p.name for p in run_dir.iterdir()}
    assert {"report.html", "summary.json", "policies.png", "milp_load_vs_carbon.png"} <= names


# --- in a real browser ---------------------------------------------------------------------

FIGURE_INK = """
// Bokeh 3 draws inside shadow roots; walk them to find each figure's canvases and count
// the pixels that are neither transparent nor white.
function canvases(node, out) {
  if (node.tagName === 'CANVAS') out.push(node);
  if (node.shadowRoot) for (const c of node.shadowRoot.children) canvases(c, out);
  for (const c of node.children || []) canvases(c, out);
  return out;
}
const result = {};
for (const div of document.querySelectorAll('[data-figure]')) {
  let ink = 0, count = 0;
  for (const canvas of canvases(div, [])) {
    if (!canvas.width || !canvas.height) continue;
    count += 1;
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 0; i < data.length; i += 4) {
      if (data[i + 3] > 0 && !(data[i] > 245 && data[i + 1] > 245 && data[i + 2] > 245)) ink++;
    }
  }
  result[div.dataset.figure] = {canvases: count, ink: ink};
}
return result;
"""

CELLS = """
return Array.from(document.querySelectorAll(`table[data-table="${arguments[0]}"] td`))
  .filter(td => Object.keys(td.dataset).length)
  .map(td => ({...td.dataset, text: td.innerText.trim()}));
"""

# Every script, style, image or font the page loaded after the document itself.
FETCHED = "return performance.getEntriesByType('resource').map(e => e.name);"


@pytest.fixture(scope="module")
def browser():
    driver, why = start_browser()
    if driver is None:
        pytest.skip(f"browser tests skipped: {why}")
    yield driver
    driver.quit()


def _open(driver, path: Path, shots: Path, name: str) -> list[dict]:
    """Load the page, wait for Bokeh to draw, screenshot it; answer the console log."""
    driver.get_log("browser")  # drop anything left from an earlier page
    # A window left taller than this page by an earlier one would pad its screenshot with
    # blank (the sweep page once ended in ~1,700 px of it): start small, grow to the content.
    driver.set_window_size(1280, 1000)
    driver.get(path.resolve().as_uri())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        drawn = driver.execute_script(FIGURE_INK)
        if drawn and all(f["ink"] > 0 for f in drawn.values()):
            break
        time.sleep(0.2)
    height = driver.execute_script("return document.body.scrollHeight")
    driver.set_window_size(1280, min(height + 40, 12000))
    time.sleep(0.3)
    driver.save_screenshot(str(shots / f"{name}.png"))
    return driver.get_log("browser")


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def run_page(browser, run_dir, shots):
    log = _open(browser, run_dir / "report.html", shots, "run")
    return {"log": log, "figures": browser.execute_script(FIGURE_INK),
            "fetched": browser.execute_script(FETCHED),
            **{t: browser.execute_script(CELLS, t) for t in ("policies", "savings", "sites")}}


@pytest.fixture(scope="module")
def market_page(browser, market_dir, shots):
    log = _open(browser, market_dir / "report.html", shots, "market")
    return {"log": log, "figures": browser.execute_script(FIGURE_INK),
            "fetched": browser.execute_script(FETCHED),
            **{t: browser.execute_script(CELLS, t)
               for t in ("shares", "diagnostics", "sweep", "balances")}}


def check_no_console_errors(page: dict, out: Path) -> None:
    assert [e for e in page["log"] if e["level"] in ("SEVERE", "ERROR")] == []


def check_loads_nothing_but_itself(page: dict, out: Path) -> None:
    assert page["fetched"] == []


def check_every_figure_is_drawn(page: dict, out: Path) -> None:
    names = RUN_FIGURES if "policies" in page else MARKET_FIGURES
    assert set(page["figures"]) == names
    for name, drawn in page["figures"].items():
        assert drawn["canvases"] >= 1, name
        # Axes, labels and glyphs: a drawn figure has thousands of coloured pixels.
        assert drawn["ink"] > 2000, (name, drawn)


def _fmt(fmt: str, value: object) -> str:
    return "-" if value is None else fmt.format(value)


def _num(value: float) -> str:
    return f"{round(value, 2) + 0.0:,.2f}"


def check_policy_table_equals_summary_json(page: dict, out: Path) -> None:
    summary = json.loads((out / "summary.json").read_text())["policies"]
    cells = {(c["policy"], c["metric"]): c["text"] for c in page["policies"]}
    expected = {(name, key): _fmt(fmt, row[key]) for name, row in summary.items()
                for key, _, fmt in SUMMARY_COLUMNS}
    assert len(summary) == 7  # tiny's policies
    assert len(expected) == 7 * len(SUMMARY_COLUMNS)
    assert cells == expected


def check_savings_table_equals_summary_json(page: dict, out: Path) -> None:
    savings = json.loads((out / "summary.json").read_text())["savings"]
    cells = {(c["metric"], c["line"]): c["text"] for c in page["savings"]}
    for metric, x in savings.items():
        assert cells[(metric, "baseline")] == _num(x["isolated"])
        assert cells[(metric, "policy")] == _num(x["milp"])
        assert cells[(metric, "saved")] == _num(x["saved"])
        assert cells[(metric, "saved_fraction")] == f"{x['saved_fraction']:.1%}"
        for part, value in x["parts"].items():
            assert cells[(metric, part)] == _num(value)
    assert len(cells) == len(savings) * (4 + len(next(iter(savings.values()))["parts"]))


def check_site_table_equals_sites_csv(page: dict, out: Path) -> None:
    frame = pd.read_csv(out / "sites.csv")
    cells = {(c["site"], c["policy"], c["metric"]): c["text"] for c in page["sites"]}
    expected = {(r["site"], r["policy"], col): fmt.format(r[col])
                for r in frame.to_dict("records") for col, fmt in SITE_COLUMNS}
    assert len(expected) == len(frame) * len(SITE_COLUMNS) > 0
    assert cells == expected


def check_market_tables_equal_market_json(page: dict, out: Path) -> None:
    doc = json.loads((out / "market.json").read_text())
    rows = {n: r for n, r in doc["schemes"].items() if "shares_usd" in r}
    shares = {(c["scheme"], c["site"]): c["text"] for c in page["shares"]}
    assert shares == {
        (n, s): f"{r['shares_usd'][s]:,.2f} ({r['gain_fraction'][s]:+.0%})"
                + ("" if r["individually_rational_by_site"][s] else "*")
        for n, r in rows.items() for s in doc["sites"]}
    diag = {(c["scheme"], c["field"]): c["text"] for c in page["diagnostics"]}
    for name, r in rows.items():
        assert diag[(name, "max_excess_usd")] == f"{r['max_excess_usd']:,.2f}"
        assert diag[(name, "budget_balance_usd")] == f"{r['budget_balance_usd']:+,.2f}"
        assert diag[(name, "in_core")] == ("yes" if r["in_core"] else "no")
        assert diag[(name, "individually_rational")].startswith(
            "yes" if r["individually_rational"] else "no")
        blocking = r["blocking_coalition"]
        assert diag[(name, "blocking_coalition")] == (
            "-" if blocking is None else
            f"{'+'.join(blocking)} ({r['blocking_saves_usd']:,.2f})")
    sweep = {(c["price"], c["field"]): c["text"] for c in page["sweep"]}
    for p in doc["sweep"]:
        price = f"{p['carbon_price_usd_per_t']:g}"
        for field in ("carbon_kg", "energy_kwh", "cost_usd"):
            assert sweep[(price, field)] == f"{p[field]:,.2f}"


def check_balances_equal_ledger_csv(page: dict, out: Path) -> None:
    ledger = pd.read_csv(out / "ledger.csv", keep_default_na=False)
    ledger = ledger[ledger["point"] == 0]
    fields = list(LedgerRow.__dataclass_fields__)
    cells = {(c["scheme"], c["party"]): c["text"] for c in page["balances"]}
    schemes = set(ledger["scheme"])
    assert schemes and {s for s, _ in cells} == schemes
    for scheme in schemes:
        rows = [LedgerRow(**{f: r[f] for f in fields})
                for r in ledger[ledger["scheme"] == scheme].to_dict("records")]
        for party, value in balances(rows).items():
            assert cells[(scheme, party)] == f"{round(value, 2) + 0.0:+,.2f}"


BROWSER_CHECKS = {
    **{f"{kind}-{name}": (kind, check) for kind in ("run", "market") for name, check in (
        ("no-console-errors", check_no_console_errors),
        ("loads-nothing-but-itself", check_loads_nothing_but_itself),
        ("every-figure-drawn", check_every_figure_is_drawn))},
    "run-policy-table": ("run", check_policy_table_equals_summary_json),
    "run-savings-table": ("run", check_savings_table_equals_summary_json),
    "run-site-table": ("run", check_site_table_equals_sites_csv),
    "market-tables": ("market", check_market_tables_equal_market_json),
    "market-balances": ("market", check_balances_equal_ledger_csv),
}


@pytest.mark.parametrize("check", list(BROWSER_CHECKS))
def test_in_browser(check, browser, request):
    """One test, a case per check: without a browser pytest reports the skip on one line."""
    kind, function = BROWSER_CHECKS[check]
    function(request.getfixturevalue(f"{kind}_page"), request.getfixturevalue(f"{kind}_dir"))


SEED_BOXES = """
const out = [];
for (const m of Bokeh.documents[0].all_models) {
  const data = m.data;
  if (!data || typeof data !== 'object') continue;
  const raw = k => data instanceof Map ? data.get(k) : data[k];
  if (!raw('metric') || !raw('lo')) continue;
  out.push({metric: raw('metric')[0], lo: Array.from(raw('lo')), band: Array.from(raw('band'))});
}
return out;
"""


def test_seeds_report_draws_its_runs_and_bands_in_the_browser(browser, seeds_dir, shots):
    log = _open(browser, seeds_dir / "report.html", shots, "seeds")
    assert [e for e in log if e["level"] in ("SEVERE", "ERROR")] == []
    assert browser.execute_script(FETCHED) == []
    drawn = browser.execute_script(FIGURE_INK)
    assert set(drawn) == {"seeds"} and drawn["seeds"]["ink"] > 2000
    boxes = {b["metric"]: b for b in browser.execute_script(SEED_BOXES)}
    assert set(boxes) == {"carbon_kg", "total_cost_usd", "energy_kwh", "mean_completion_h"}
    for metric in ("carbon_kg", "energy_kwh", "mean_completion_h"):  # never negative
        assert boxes[metric]["band"] == ["ci", "ci"] and min(boxes[metric]["lo"]) >= 0


# --- page pieces without a browser -----------------------------------------------------------

def test_a_blocking_coalition_is_named_and_flagged(market_dir):
    """tiny's schemes are all in the core; make one leave it and read the diagnostics row."""
    from scenarios.html_report.market_page import market_page as build

    doc = json.loads((market_dir / "market.json").read_text())
    row = doc["schemes"]["shapley"]
    row.update(in_core=False, max_excess_usd=1.234, blocking_coalition=["north", "south"],
               blocking_saves_usd=1.234)
    page = build(doc, []).render()
    cell = re.search(r'<td class="bad" data-scheme="shapley" data-field="blocking_coalition">'
                     r"([^<]*)</td>", page)
    assert cell and cell.group(1) == "north+south (1.23)"
    assert re.search(r'<td class="bad" data-scheme="shapley" data-field="in_core">no</td>', page)
    assert "No settlement" in page  # an empty ledger says so instead of drawing nothing


def test_several_carbon_policies_get_one_line_each(market_dir):
    from scenarios.html_report.market_page import market_page as build

    doc = json.loads((market_dir / "market.json").read_text())
    second = json.loads(json.dumps(doc["points"][0]))
    second["carbon_policy"]["price_in_force_usd_per_t"] = 250.0
    doc["points"].append(second)
    page = build(doc, []).render()
    table = page.split('data-table="points"', 1)[1].split("</table>", 1)[0]
    assert table.count("<tr>") == 3  # header and two points
    assert "250.00" in table


def test_palette_keeps_twenty_sites_apart():
    from scenarios.html_report.palette import colours

    for n in range(1, 21):
        assert len(set(colours(n))) == n


def test_long_runs_are_binned_to_a_few_hundred_points():
    from scenarios.html_report.run_page import MAX_POINTS, _binned

    frame = pd.DataFrame({"time_h": [k / 4 for k in range(4 * 24 * 30)],  # 30 days, 15 min
                          "utilization": [k % 2 for k in range(4 * 24 * 30)]})
    binned = _binned(frame, ["utilization"])
    assert len(binned) <= MAX_POINTS
    assert binned["utilization"].mean() == pytest.approx(0.5)
    assert binned["time_h"].iloc[0] == 0.0
    short = frame.iloc[:MAX_POINTS]
    assert _binned(short, ["utilization"]) is short
