"""The report of ``carbonfed sweep --out``: each metric against the carbon price, a band across
seeds around each mean (``bands``: what the band is depends on the number of seeds), one line
per policy and set of overrides, and one key for the four panels in the page (a legend inside
each panel covered the lines)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
from bokeh.layouts import gridplot
from bokeh.models import ColumnDataSource

from scenarios.html_report.bands import band, band_sentence
from scenarios.html_report.figures import new_figure, rounded
from scenarios.html_report.page import Cell, Page
from scenarios.html_report.palette import colour_map

# (column, axis label, never negative): a band of a never-negative quantity stops at zero.
# Total cost can be negative (negative energy prices), so its band is not cut.
PLOTTED = (("carbon_kg", "emissions (kg CO2)", True),
           ("total_cost_usd", "total cost (USD)", False),
           ("energy_kwh", "energy (kWh)", True),
           ("mean_completion_h", "mean completion (h)", True))
PANEL_WIDTH, PANEL_HEIGHT = 560, 300


def write_sweep_report(summary: pd.DataFrame, scenario: str, out_dir: Path) -> Path:
    return sweep_page(summary, scenario).write(out_dir / "report.html")


def sweep_page(summary: pd.DataFrame, scenario: str) -> Page:
    page = Page(f"carbonfed sweep: {scenario}")
    seeds = [int(n) for n in summary["seeds"]] if len(summary) else []
    page.paragraph(f"{len(summary)} grid points (overrides x carbon price x policy). "
                   f"{band_sentence(seeds)}")
    lines = summary.assign(line=summary["policy"] + summary["overrides"].map(
        lambda o: "" if o == "-" else f" [{o}]"))
    names = list(dict.fromkeys(lines["line"]))
    colour = colour_map(names)
    figures = [metric_figure(lines, metric, label, non_negative, colour)
               for metric, label, non_negative in PLOTTED]
    page.figure("sweep", gridplot(figures, ncols=2, toolbar_location="right"),
                "Each line is a policy (and set of overrides), named in the key above; where "
                "the bands of two lines overlap, the seeds do not tell them apart at that "
                "price.", key=[(name, colour[name]) for name in names])
    header = ["overrides", "USD/t", "policy", "seeds", *(label for _, label, _ in PLOTTED)]
    rows = []
    for row in summary.to_dict("records"):
        key = {"policy": str(row["policy"]), "price": f"{row['carbon_price_usd_per_t']:g}",
               "overrides": str(row["overrides"])}
        rows.append([Cell(str(row["overrides"]), numeric=False),
                     Cell(f"{row['carbon_price_usd_per_t']:g}"),
                     Cell(str(row["policy"]), numeric=False), Cell(str(row["seeds"])),
                     *(Cell(_mean_ci(row[m], row[f"{m}_ci"]), attrs={**key, "field": m})
                       for m, _, _ in PLOTTED)])
    page.table("sweep", "Mean +/- 95% CI half-width across seeds (Student's t)", header, rows)
    return page


def metric_figure(lines: pd.DataFrame, metric: str, label: str, non_negative: bool,
                  colour: dict[str, str]) -> Any:
    fig = new_figure(f"{label} against the carbon price", "carbon price (USD/t)", label,
                     width=PANEL_WIDTH, height=PANEL_HEIGHT,
                     tooltips=[("line", "@line"), ("price", "@price{0,0} USD/t"),
                               ("mean", "@mean{0,0.00}"), ("seeds", "@seeds"),
                               ("band", "@lo{0,0.00} to @hi{0,0.00} (@band)")])
    for name, frame in lines.groupby("line", sort=False):
        frame = frame.sort_values("carbon_price_usd_per_t")
        bands = [band(r[metric], r[f"{metric}_ci"], r.get(f"{metric}_min", math.nan),
                      r.get(f"{metric}_max", math.nan), int(r["seeds"]), non_negative)
                 for r in frame.to_dict("records")]
        # The band's own name in each source: the browser test finds a metric's bands by it.
        source = ColumnDataSource({
            "price": frame["carbon_price_usd_per_t"].tolist(),
            "mean": rounded(frame[metric].to_numpy(float)),
            "lo": rounded(b.low for b in bands), "hi": rounded(b.high for b in bands),
            "band": [b.kind for b in bands], "seeds": frame["seeds"].astype(int).tolist(),
            "metric": [metric] * len(frame), "line": [str(name)] * len(frame)})
        fig.varea(x="price", y1="lo", y2="hi", source=source, color=colour[str(name)],
                  alpha=0.2)
        fig.line(x="price", y="mean", source=source, color=colour[str(name)], line_width=2)
        fig.scatter(x="price", y="mean", source=source, color=colour[str(name)], size=6)
    return fig


def _mean_ci(mean: float, ci: float) -> str:
    return f"{mean:,.2f}" + ("" if pd.isna(ci) else f" +/- {ci:,.2f}")
