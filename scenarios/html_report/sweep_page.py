"""The report of ``carbonfed sweep --out``: each metric against the swept parameter, with the
95% confidence band across seeds, one line per policy (and per set of overrides)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from bokeh.layouts import gridplot
from bokeh.models import ColumnDataSource

from scenarios.html_report.figures import new_figure, rounded
from scenarios.html_report.page import Cell, Page
from scenarios.html_report.palette import colour_map

PLOTTED = (("carbon_kg", "emissions (kg CO2)"), ("total_cost_usd", "total cost (USD)"),
           ("energy_kwh", "energy (kWh)"), ("mean_completion_h", "mean completion (h)"))


def write_sweep_report(summary: pd.DataFrame, scenario: str, out_dir: Path) -> Path:
    return sweep_page(summary, scenario).write(out_dir / "report.html")


def sweep_page(summary: pd.DataFrame, scenario: str) -> Page:
    page = Page(f"carbonfed sweep: {scenario}")
    seeds = int(summary["seeds"].max()) if len(summary) else 0
    page.paragraph(f"{len(summary)} grid points (overrides x carbon price x policy), "
                   f"{seeds} seed(s) each; bands are the 95% confidence interval of the mean "
                   "across seeds (Student's t), absent with one seed.")
    lines = summary.assign(line=summary["policy"] + summary["overrides"].map(
        lambda o: "" if o == "-" else f" [{o}]"))
    colour = colour_map(list(dict.fromkeys(lines["line"])))
    figures = []
    for metric, label in PLOTTED:
        fig = new_figure(f"{label} against the carbon price", "carbon price (USD/t)", label,
                         width=560, height=300,
                         tooltips=[("line", "@line"), ("price", "@price{0,0} USD/t"),
                                   ("mean", "@mean{0,0.00}"), ("+/-", "@ci{0,0.00}")])
        for name, frame in lines.groupby("line", sort=False):
            frame = frame.sort_values("carbon_price_usd_per_t")
            mean = frame[metric].to_numpy(float)
            ci = frame[f"{metric}_ci"].fillna(0.0).to_numpy(float)
            source = ColumnDataSource({
                "price": frame["carbon_price_usd_per_t"].tolist(), "mean": rounded(mean),
                "ci": rounded(ci), "lo": rounded(mean - ci), "hi": rounded(mean + ci),
                "line": [str(name)] * len(frame)})
            fig.varea(x="price", y1="lo", y2="hi", source=source, color=colour[str(name)],
                      alpha=0.2)
            fig.line(x="price", y="mean", source=source, color=colour[str(name)], line_width=2,
                     legend_label=str(name))
            fig.scatter(x="price", y="mean", source=source, color=colour[str(name)], size=6)
        fig.legend.label_text_font_size = "10px"
        figures.append(fig)
    page.figure("sweep", gridplot(figures, ncols=2),
                "Each line is a policy; where the bands of two lines overlap, the seeds do not "
                "tell them apart at that price.")
    header = ["overrides", "USD/t", "policy", "seeds", *(label for _, label in PLOTTED)]
    rows = []
    for row in summary.to_dict("records"):
        key = {"policy": str(row["policy"]), "price": f"{row['carbon_price_usd_per_t']:g}",
               "overrides": str(row["overrides"])}
        rows.append([Cell(str(row["overrides"]), numeric=False),
                     Cell(f"{row['carbon_price_usd_per_t']:g}"),
                     Cell(str(row["policy"]), numeric=False), Cell(str(row["seeds"])),
                     *(Cell(_mean_ci(row[m], row[f"{m}_ci"]), attrs={**key, "field": m})
                       for m, _ in PLOTTED)])
    page.table("sweep", "Mean +/- 95% CI half-width across seeds", header, rows)
    return page


def _mean_ci(mean: float, ci: float) -> str:
    return f"{mean:,.2f}" + ("" if pd.isna(ci) else f" +/- {ci:,.2f}")
