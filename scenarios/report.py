"""Presenting a scenario's results: terminal tables, CSV/JSON files and plots."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from broker.savings import PARTS
from scenarios.runner import ScenarioResult

SUMMARY_COLUMNS = (
    ("jobs_finished", "jobs finished", "{:d}"),
    ("jobs_moved", "jobs moved", "{:d}"),
    ("energy_kwh", "energy kWh", "{:,.2f}"),
    ("carbon_kg", "CO2 kg", "{:,.2f}"),
    ("energy_cost_usd", "energy cost USD", "{:,.2f}"),
    ("transfer_cost_usd", "transfer cost USD", "{:,.2f}"),
    ("total_cost_usd", "total cost USD", "{:,.2f}"),
    ("mean_completion_h", "mean completion h", "{:.2f}"),
    ("p95_completion_h", "p95 completion h", "{:.2f}"),
    ("deadline_misses", "deadline misses", "{:d}"),
    ("mean_gpu_utilization", "mean GPU utilization", "{:.1%}"),
)
METRIC_LABELS = {"energy_kwh": "energy kWh", "carbon_kg": "CO2 kg",
                 "total_cost_usd": "total cost USD"}


def print_report(result: ScenarioResult, console: Console) -> None:
    s = result.run.scenario
    setup = result.run.setup
    console.print(
        f"[bold]{s.name}[/bold]: {len(setup.federation.sites)} sites, {len(setup.jobs)} jobs, "
        f"{s.period_h:g} h from {result.run.start:%Y-%m-%d %H:%M} UTC, "
        f"carbon price {s.carbon_price_usd_per_t:g} USD/t"
    )
    table = Table(title="Per policy")
    table.add_column("metric")
    for name in result.summaries:
        table.add_column(name, justify="right")
    rows = {name: summary.as_dict() for name, summary in result.summaries.items()}
    for key, label, fmt in SUMMARY_COLUMNS:
        table.add_row(label, *(_fmt(fmt, row[key]) for row in rows.values()))
    console.print(table)
    unfinished = {n: r.unfinished for n, r in result.results.items() if r.unfinished}
    for name, ids in unfinished.items():
        console.print(f"[yellow]{name}: {len(ids)} jobs never started[/yellow]")
    if result.savings:
        savings = Table(title="Savings of milp against isolated (positive = milp better)")
        savings.add_column("")
        for item in result.savings:
            savings.add_column(METRIC_LABELS[item.metric], justify="right")
        lines = {
            "isolated": [x.baseline for x in result.savings],
            "milp": [x.policy for x in result.savings],
            "saved": [x.saved for x in result.savings],
        }
        for label, values in lines.items():
            savings.add_row(label, *(f"{v:,.2f}" for v in values))
        savings.add_row("saved %", *(f"{x.saved_fraction:.1%}" for x in result.savings))
        for part in PARTS:
            savings.add_row(f"  {part.replace('_', ' ')}",
                            *(f"{x.parts[part]:,.2f}" for x in result.savings))
        console.print(savings)
    console.print(f"wall time {result.wall_time_s:.1f} s")


def _fmt(fmt: str, value) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "-"
    return fmt.format(value)


def write_outputs(result: ScenarioResult, out_dir: Path) -> list[Path]:
    """Per-job, per-site-per-slot and summary tables (CSV), a JSON summary and plots."""
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = pd.concat([r.jobs.assign(policy=n) for n, r in result.results.items()],
                     ignore_index=True)
    slots = pd.concat([r.site_slots.assign(policy=n) for n, r in result.results.items()],
                      ignore_index=True)
    summary = pd.DataFrame([s.as_dict() for s in result.summaries.values()])
    savings = pd.DataFrame([
        {"metric": x.metric, "isolated": x.baseline, "milp": x.policy, "saved": x.saved,
         "saved_fraction": x.saved_fraction, **x.parts}
        for x in result.savings
    ], columns=["metric", "isolated", "milp", "saved", "saved_fraction", *PARTS])
    paths = {
        "jobs.csv": jobs, "site_slots.csv": slots, "summary.csv": summary, "savings.csv": savings,
    }
    written = []
    for name, frame in paths.items():
        frame.to_csv(out_dir / name, index=False)
        written.append(out_dir / name)
    s = result.run.scenario
    document = {
        "scenario": s.name,
        "start": result.run.start.isoformat(),
        "period_h": s.period_h,
        "seed": s.seed,
        "carbon_price_usd_per_t": s.carbon_price_usd_per_t,
        "policies": {n: x.as_dict() for n, x in result.summaries.items()},
        "unfinished": {n: list(r.unfinished) for n, r in result.results.items()},
        "savings": {x.metric: {"isolated": x.baseline, "milp": x.policy, "saved": x.saved,
                               "saved_fraction": x.saved_fraction, "parts": x.parts}
                    for x in result.savings},
        "wall_time_s": result.wall_time_s,
    }
    (out_dir / "summary.json").write_text(json.dumps(document, indent=2, default=_json_default))
    written.append(out_dir / "summary.json")
    written += write_plots(result, out_dir)
    return written


def _json_default(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    return float(value)


def write_plots(result: ScenarioResult, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result.summaries)
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for ax, (key, label) in zip(axes, METRIC_LABELS.items(), strict=True):
        values = [getattr(result.summaries[n], key) for n in names]
        ax.bar(names, values, color=["#2b8a3e" if n == "milp" else "#868e96" for n in names])
        ax.set_title(label)
        ax.tick_params(axis="x", rotation=30)
    fig.suptitle(f"{result.run.scenario.name}: totals per policy")
    fig.tight_layout()
    totals = out_dir / "policies.png"
    fig.savefig(totals, dpi=110)
    plt.close(fig)

    paths = [totals]
    if "milp" in result.results:
        slots = result.results["milp"].site_slots
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 6), sharex=True)
        for site, frame in slots.groupby("site", sort=False):
            top.plot(frame["time_h"], frame["carbon_g_per_kwh"], label=site)
            bottom.plot(frame["time_h"], frame["busy_gpu_h"], label=site)
        top.set_ylabel("gCO2/kWh")
        bottom.set_ylabel("busy GPU-h per slot (milp)")
        bottom.set_xlabel("hours from start")
        top.legend(fontsize=8, ncol=4)
        fig.tight_layout()
        load = out_dir / "milp_load_vs_carbon.png"
        fig.savefig(load, dpi=110)
        plt.close(fig)
        paths.append(load)
    return paths
