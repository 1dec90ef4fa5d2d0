"""The report of ``carbonfed run --seeds K --out``: what the terminal shows (each policy's mean
+/- 95% CI half-width over the seeds), each metric's runs per policy drawn as points with the
mean and its band (``bands``), and every seed's figures in a table (seeds.csv)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from bokeh.layouts import gridplot
from bokeh.models import ColumnDataSource, FixedTicker

from scenarios.html_report.bands import band, band_sentence
from scenarios.html_report.figures import new_figure, rounded
from scenarios.html_report.page import Cell, Page
from scenarios.html_report.palette import colour_map
from scenarios.html_report.sweep_page import PLOTTED
from scenarios.report import SEED_METRICS, mean_ci

SEED_NAME = "seeds"
# Counted in whole jobs in one run (their means over seeds have a decimal).
COUNTS = frozenset({"jobs_finished", "jobs_outside", "deadline_misses"})


def _run_format(metric: str, fmt: str) -> str:
    return "{:,.0f}" if metric in COUNTS else fmt


def write_seeds_report(records: pd.DataFrame, summary: pd.DataFrame, scenario: str,
                       out_dir: Path) -> Path:
    return seeds_page(records, summary, scenario).write(out_dir / "report.html")


def seeds_page(records: pd.DataFrame, summary: pd.DataFrame, scenario: str) -> Page:
    seeds = int(summary["seeds"].max())
    policies = [str(p) for p in summary["policy"]]
    page = Page(f"carbonfed run: {scenario}, {seeds} seeds")
    page.paragraph(
        f"{scenario}: every policy run with {seeds} seeds ("
        f"{', '.join(str(s) for s in dict.fromkeys(records['seed']))}; the first is the "
        f"scenario's own, the others spawned from it). {band_sentence([seeds], 'policy')}")
    rows = summary.set_index("policy")
    page.heading("Per policy")
    page.table("seed_summary", f"Mean +/- 95% CI half-width over {seeds} seeds (Student's t)",
               ["metric", *policies],
               [[Cell(label, numeric=False),
                 *(Cell(mean_ci(fmt, rows.loc[p, key], rows.loc[p, f"{key}_ci"]),
                        attrs={"policy": p, "metric": key}) for p in policies)]
                for key, label, fmt in SEED_METRICS])
    page.heading("Runs per policy")
    colour = colour_map(policies)
    panels = [_panel(records, rows, policies, metric, label, non_negative, colour)
              for metric, label, non_negative in PLOTTED]
    page.figure(SEED_NAME, gridplot(panels, ncols=2, toolbar_location="right"),
                "Each dot is one seed's run, the bar its policy's mean and the shaded box the "
                "band around it: policies whose boxes overlap are not told apart by these "
                "seeds.")
    page.heading("Every seed")
    header = ["policy", "seed index", "seed", *(label for _, label, _ in SEED_METRICS)]
    page.table("seed_runs", "One row per policy and seed (seeds.csv)", header, [
        [Cell(str(r["policy"]), numeric=False), Cell(str(r["seed_index"])),
         Cell(str(r["seed"])),
         *(Cell(_run_format(key, fmt).format(r[key]),
                attrs={"policy": str(r["policy"]), "seed": str(r["seed_index"]), "metric": key})
           for key, _, fmt in SEED_METRICS)]
        for r in records.to_dict("records")])
    return page


def _panel(records: pd.DataFrame, rows: pd.DataFrame, policies: list[str], metric: str,
           label: str, non_negative: bool, colour: dict[str, str]) -> Any:
    """One metric: policy k at x = k, its runs as dots spread across [k - 0.2, k + 0.2] (equal
    values stay apart), its band as a box and its mean as a bar across the box."""
    fig = new_figure(label, "policy", label, width=560, height=300,
                     tooltips=[("policy", "@policy"), ("seed", "@seed"),
                               ("value", "@value{0,0.00}")])
    fig.xaxis.ticker = FixedTicker(ticks=list(range(len(policies))))
    fig.xaxis.major_label_overrides = {k: p for k, p in enumerate(policies)}
    fig.xgrid.grid_line_color = None
    dots: dict[str, list[Any]] = {"x": [], "value": [], "policy": [], "seed": [], "colour": []}
    boxes: dict[str, list[Any]] = {"left": [], "right": [], "lo": [], "hi": [], "mean": [],
                                   "band": [], "policy": [], "colour": []}
    for k, policy in enumerate(policies):
        runs = records[records["policy"] == policy]
        spread = np.linspace(-0.2, 0.2, len(runs)) if len(runs) > 1 else np.zeros(len(runs))
        dots["x"] += [k + float(o) for o in spread]
        dots["value"] += rounded(runs[metric])
        dots["policy"] += [policy] * len(runs)
        dots["seed"] += [str(seed) for seed in runs["seed"]]
        dots["colour"] += [colour[policy]] * len(runs)
        row = rows.loc[policy]
        drawn = band(row[metric], row[f"{metric}_ci"], row[f"{metric}_min"],
                     row[f"{metric}_max"], int(row["seeds"]), non_negative)
        boxes["left"].append(k - 0.3)
        boxes["right"].append(k + 0.3)
        boxes["lo"] += rounded([drawn.low])
        boxes["hi"] += rounded([drawn.high])
        boxes["mean"] += rounded([row[metric]])
        boxes["band"].append(drawn.kind)
        boxes["policy"].append(policy)
        boxes["colour"].append(colour[policy])
    # The metric's name in the box source: the browser test finds a panel's bands by it.
    box_source = ColumnDataSource({**boxes, "metric": [metric] * len(policies)})
    fig.quad(left="left", right="right", bottom="lo", top="hi", source=box_source,
             fill_color="colour", fill_alpha=0.2, line_color=None)
    fig.segment(x0="left", x1="right", y0="mean", y1="mean", source=box_source,
                line_color="colour", line_width=2.5)
    fig.scatter(x="x", y="value", source=ColumnDataSource(dots), color="colour", size=7,
                line_color="#333333", line_width=0.5)
    return fig
