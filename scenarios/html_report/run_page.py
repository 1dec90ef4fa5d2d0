"""The ``carbonfed run`` report: scenario, tables, savings waterfall, signals, placement,
flows between sites and completion times.

Tables take their numbers and formats from the terminal report (``scenarios.report``) and
the CSV tables (``scenarios.tables``), so the page, the terminal and summary.json agree.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from bokeh.layouts import column, gridplot, row
from bokeh.models import ColumnDataSource, LinearAxis, Range1d

from broker.savings import PARTS
from scenarios.html_report.figures import heat_map, new_figure, rounded, waterfall
from scenarios.html_report.page import Cell, Page
from scenarios.html_report.palette import colour_map
from scenarios.report import SITE_COLUMNS, SUMMARY_COLUMNS, _fmt, _num
from scenarios.runner import ScenarioResult
from scenarios.tables import METRIC_LABELS, site_table

# Small multiples and signal lines carry at most this many points per series; longer runs
# (15-minute slots over weeks) are averaged into wider bins first.
MAX_POINTS = 400
TIME_TIPS = [("time (UTC)", "@time{%Y-%m-%d %H:%M}")]
UNITS = {"energy_kwh": "kWh", "carbon_kg": "kg CO2", "total_cost_usd": "USD"}


def write_run_report(result: ScenarioResult, out_dir: Path) -> Path:
    return run_page(result).write(out_dir / "report.html")


def run_page(result: ScenarioResult) -> Page:
    s = result.run.scenario
    page = Page(f"carbonfed run: {s.name}")
    page.paragraph(scenario_paragraph(result))
    policy_section(page, result)
    savings_section(page, result)
    site_section(page, result)
    signals_section(page, result)
    if "milp" in result.results:
        placement_section(page, result)
        flow_section(page, result)
    completion_section(page, result)
    return page


def scenario_paragraph(result: ScenarioResult) -> str:
    s = result.run.scenario
    setup = result.run.setup
    sites = setup.federation.sites
    zones = list(dict.fromkeys(site.zone for site in sites))
    gpus: Counter[str] = Counter()
    for site in sites:
        gpus.update(site.gpus)
    fleet = ", ".join(f"{n:,} {gpu}" for gpu, n in sorted(gpus.items()) if n)
    described = f" ({s.description.rstrip('.')})" if s.description else ""
    return (f"{s.name}{described}: {len(sites)} sites ({', '.join(x.id for x in sites)}) in "
            f"{len(zones)} grid zones ({', '.join(zones)}), {sum(gpus.values()):,} GPUs "
            f"({fleet}); {len(setup.jobs):,} jobs arriving over {s.period_h:g} h from "
            f"{result.run.start:%Y-%m-%d %H:%M} UTC (+{s.drain_h:g} h to drain), hourly signals "
            f"per zone, carbon price {s.carbon_price_usd_per_t:g} USD/t; policies: "
            f"{', '.join(result.summaries)}.")


def policy_section(page: Page, result: ScenarioResult) -> None:
    page.heading("Per policy")
    rows = {name: summary.as_dict() for name, summary in result.summaries.items()}
    page.table("policies", "Per policy (every total covers all jobs)",
               ["metric", *rows],
               [[Cell(label, numeric=False),
                 *(Cell(_fmt(fmt, row[key]), attrs={"policy": name, "metric": key})
                   for name, row in rows.items())]
                for key, label, fmt in SUMMARY_COLUMNS])
    page.paragraph("Completion times cover the jobs run in the federation; a job with a "
                   "deadline sent to the outside option counts as a miss.", "caption")


def savings_section(page: Page, result: ScenarioResult) -> None:
    page.heading("Savings of milp against isolated")
    if not result.savings:
        missing = [p for p in ("milp", "isolated") if p not in result.summaries]
        page.paragraph(f"No savings: they compare milp with isolated, and "
                       f"{' and '.join(missing)} did not run.")
        return
    lines: list[tuple[str, str, list[str]]] = [
        ("isolated", "baseline", [_num(x.baseline) for x in result.savings]),
        ("milp", "policy", [_num(x.policy) for x in result.savings]),
        ("saved", "saved", [_num(x.saved) for x in result.savings]),
        ("saved %", "saved_fraction", [f"{x.saved_fraction:.1%}" for x in result.savings]),
        *((f"  {part.replace('_', ' ')}", part, [_num(x.parts[part]) for x in result.savings])
          for part in PARTS)]
    page.table("savings", "Savings of milp against isolated (positive = milp better)",
               ["", *(METRIC_LABELS[x.metric] for x in result.savings)],
               [[Cell(label, numeric=False),
                 *(Cell(text, attrs={"metric": x.metric, "line": key})
                   for x, text in zip(result.savings, texts, strict=True))]
                for label, key, texts in lines])
    panels = []
    for x in result.savings:
        unit = UNITS.get(x.metric, "")
        # Parts that are zero for this metric (energy has no temporal part) would be empty bars.
        parts = [(p.replace("_", " "), x.parts[p]) for p in PARTS if abs(x.parts[p]) > 1e-9]
        panels.append(waterfall(f"{METRIC_LABELS[x.metric]}: isolated to milp", unit,
                                ("isolated", x.baseline), parts, ("milp", x.policy),
                                colour_down="#009E73", colour_up="#D55E00"))
    page.figure("savings_waterfall", row(panels),
                "Each bar is one step of the breakdown from isolated's total to milp's: green "
                "steps are savings, vermillion ones losses; the tallest green bar is where "
                "the federation saves most.")


def site_section(page: Page, result: ScenarioResult) -> None:
    page.heading("Per site")
    frame = site_table(result)
    header = ["site", "policy", *(c.replace("_", " ") for c, _ in SITE_COLUMNS)]
    rows = [[Cell(r["site"], numeric=False), Cell(r["policy"], numeric=False),
             *(Cell(fmt.format(r[c]), attrs={"site": r["site"], "policy": r["policy"],
                                             "metric": c})
               for c, fmt in SITE_COLUMNS)]
            for r in frame.to_dict("records")]
    page.table("sites", "Per site and policy (energy, CO2 and cost of the jobs each site "
               "hosted)", header, rows)


def _times(result: ScenarioResult, time_h: pd.Series) -> pd.Series:
    start = pd.Timestamp(result.run.start).tz_convert(None) if pd.Timestamp(
        result.run.start).tzinfo else pd.Timestamp(result.run.start)
    return start + pd.to_timedelta(time_h, unit="h")


def _binned(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """At most MAX_POINTS rows: consecutive slots averaged when a run has more."""
    if len(frame) <= MAX_POINTS:
        return frame
    width = int(np.ceil(len(frame) / MAX_POINTS))
    group = np.arange(len(frame)) // width
    return frame.groupby(group).agg({"time_h": "first", **dict.fromkeys(columns, "mean")})


def signals_section(page: Page, result: ScenarioResult) -> None:
    page.heading("Grid signals per zone")
    slots = next(iter(result.results.values())).site_slots
    zone_of = {site.id: site.zone for site in result.run.setup.federation.sites}
    first_site: dict[str, str] = {}
    for site, zone in zone_of.items():
        first_site.setdefault(zone, site)
    colours = colour_map(list(first_site))
    # Tall enough for the legend to list every zone beside the plot.
    height = max(300, 70 + 24 * len(first_site))
    carbon = new_figure("Carbon intensity per zone", "time (UTC)", "gCO2/kWh",
                        x_axis_type="datetime", height=height,
                        tooltips=[("zone", "@zone"), *TIME_TIPS, ("gCO2/kWh", "@value{0.0}")])
    price = new_figure("Energy price per zone", "time (UTC)", "USD/MWh",
                       x_axis_type="datetime", height=height, x_range=carbon.x_range,
                       tooltips=[("zone", "@zone"), *TIME_TIPS, ("USD/MWh", "@value{0.00}")])
    for zone, site in first_site.items():
        frame = _binned(slots[slots["site"] == site].sort_values("time_h"),
                        ["carbon_g_per_kwh", "price_usd_per_mwh"])
        times = _times(result, frame["time_h"])
        for fig, column_name in ((carbon, "carbon_g_per_kwh"), (price, "price_usd_per_mwh")):
            source = ColumnDataSource({"time": times, "value": rounded(frame[column_name]),
                                       "zone": [zone] * len(frame)})
            fig.step(x="time", y="value", mode="after", source=source, color=colours[zone],
                     line_width=1.6, legend_label=zone)
    for fig in (carbon, price):
        fig.legend.click_policy = "hide"
        fig.legend.label_text_font_size = "10px"
        fig.add_layout(fig.legend[0], "right")
    page.figure("signals", column(carbon, price),
                "The zones' carbon intensity and energy price over the run, on one time axis: "
                "the gap between the cleanest and dirtiest zone at each hour is what spatial "
                "shifting can use, each zone's daily swing what temporal shifting can use.")


def placement_section(page: Page, result: ScenarioResult) -> None:
    page.heading("Where milp placed load over time")
    slots = result.results["milp"].site_slots
    sites = result.run.setup.federation.sites
    colours = colour_map([site.id for site in sites])
    top = float(slots["carbon_g_per_kwh"].max()) * 1.05 or 1.0
    panels: list[Any] = []
    shared_x: Any = None
    for site in sites:
        frame = _binned(slots[slots["site"] == site.id].sort_values("time_h"),
                        ["utilization", "carbon_g_per_kwh"])
        gpus = sum(site.gpus.values())
        source = ColumnDataSource({
            "time": _times(result, frame["time_h"]),
            "busy": rounded(100 * frame["utilization"]),
            "carbon": rounded(frame["carbon_g_per_kwh"]),
        })
        extra = {} if shared_x is None else {"x_range": shared_x}
        fig = new_figure(f"{site.id} ({site.zone}, {gpus} GPUs)", "time (UTC)",
                         "busy GPUs (% of capacity)", width=380, height=220,
                         x_axis_type="datetime", y_range=Range1d(start=0, end=105),
                         tooltips=[*TIME_TIPS, ("busy", "@busy{0.0} %"),
                                   ("carbon", "@carbon{0.0} gCO2/kWh")], **extra)
        shared_x = fig.x_range
        fig.varea_step(x="time", y1=0, y2="busy", step_mode="after", source=source,
                       fill_color=colours[site.id], fill_alpha=0.85)
        # A thin dark edge keeps the pale colours of a long palette readable on white.
        fig.step(x="time", y="busy", mode="after", source=source, color="#555555",
                 line_width=0.6)
        fig.extra_y_ranges = {"carbon": Range1d(start=0, end=top)}
        fig.add_layout(LinearAxis(y_range_name="carbon", axis_label="gCO2/kWh",
                                  axis_label_text_font_size="10px",
                                  major_label_text_font_size="10px"), "right")
        fig.step(x="time", y="carbon", mode="after", source=source, y_range_name="carbon",
                 color="#222222", line_width=1.1)
        panels.append(fig)
    page.figure("placement", gridplot(panels, ncols=3, toolbar_location="right"),
                "One panel per site: the shaded area is the share of the site's GPUs milp kept "
                "busy, the dark line its grid's carbon intensity (right axis, the same scale "
                "in every panel); load piled where and when the line is low is carbon-aware "
                "placement.")


def flow_section(page: Page, result: ScenarioResult) -> None:
    page.heading("Flows between sites")
    jobs = result.results["milp"].jobs
    sites = [site.id for site in result.run.setup.federation.sites]
    flows = jobs.groupby(["home_site", "site"])["gpu_hours"].sum()
    values = {(host, home): float(v) for (home, host), v in flows.items()}
    fig = heat_map("Where milp ran each site's jobs (GPU-hours)", "host site (ran the job)",
                   "home site (submitted it)", sites, sites, values, "GPU-hours")
    page.figure("flows", fig,
                "Rows are home sites, columns the sites that ran their jobs, in GPU-hours: "
                "the diagonal stayed home, every cell off it is work the federation moved.")


def completion_section(page: Page, result: ScenarioResult) -> None:
    page.heading("Job completion times")
    names = list(result.results)
    colours = colour_map(names)
    fig = new_figure("Completion time per policy (share of jobs finished within)",
                     "completion time, submission to finish (h)", "jobs finished within (%)",
                     height=340, tooltips=[("policy", "@policy"), ("within", "@hours{0.00} h"),
                                           ("jobs", "@share{0.0} %")])
    for name in names:
        hours = np.sort(result.results[name].jobs["completion_h"].to_numpy(dtype=float))
        if len(hours) == 0:
            continue
        share = 100 * np.arange(1, len(hours) + 1) / len(hours)
        source = ColumnDataSource({"hours": rounded(hours), "share": rounded(share),
                                   "policy": [name] * len(hours)})
        fig.step(x="hours", y="share", mode="after", source=source, color=colours[name],
                 line_width=2, legend_label=name)
    if fig.legend:
        fig.legend.location = "bottom_right"
        fig.legend.click_policy = "hide"
    page.figure("completion", fig,
                "Cumulative distribution of completion times over the jobs each policy ran in "
                "the federation: a curve further left finishes jobs sooner, and its upper "
                "tail shows the slowest jobs that a mean hides.")
