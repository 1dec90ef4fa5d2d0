"""Writing a scenario's results to a folder: CSV tables, a JSON summary and PNG plots.

A results folder is checked before any work starts (``prepare_out_dir``): it may be new, empty,
or hold only files carbonfed writes (a re-run overwrites them); a folder holding anything else,
or a path that is a file or cannot be written, is refused with one line.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from scenarios.runner import ScenarioResult
from scenarios.tables import (
    METRIC_LABELS,
    jobs_table,
    pieces_table,
    savings_table,
    site_slots_table,
    site_table,
    summary_table,
)
from sites import InputError

TABLES = ("jobs.csv", "pieces.csv", "site_slots.csv", "summary.csv", "savings.csv",
          "sites.csv")
PLOTS = ("policies.png", "milp_load_vs_carbon.png")
# Everything any carbonfed command writes into a results folder (safe to overwrite).
KNOWN_OUTPUTS = frozenset({*TABLES, "summary.json", *PLOTS, "coalitions.csv", "shares.csv",
                           "diagnostics.csv", "ledger.csv", "market.json", "game.json",
                           "gains_by_scheme.png", "abatement_curve.png", "seeds.csv",
                           "seeds_summary.csv", "sweep.csv", "sweep.parquet",
                           "sweep_summary.csv", "report.html"})


def prepare_out_dir(out_dir: Path, option: str = "--out",
                    known: frozenset[str] = KNOWN_OUTPUTS) -> None:
    """Refuse, before any long work, a results folder that cannot or must not be written."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(option, str(out_dir), "is a file, not a folder")
    if out_dir.is_dir():
        foreign = sorted(p.name for p in out_dir.iterdir() if p.name not in known)
        if foreign:
            raise InputError(option, str(out_dir), f"folder holds files carbonfed did not write "
                             f"({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}); "
                             "choose a new or empty folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".carbonfed-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise InputError(option, str(out_dir), f"cannot write here ({error.strerror})") from None


def write_outputs(result: ScenarioResult, out_dir: Path) -> list[Path]:
    """Per-job, per-site-per-slot, per-site and summary tables (CSV), JSON and plots."""
    out_dir.mkdir(parents=True, exist_ok=True)
    frames = {
        "jobs.csv": jobs_table(result), "pieces.csv": pieces_table(result),
        "site_slots.csv": site_slots_table(result),
        "summary.csv": summary_table(result), "savings.csv": savings_table(result),
        "sites.csv": site_table(result),
    }
    written = []
    for name, frame in frames.items():
        frame.to_csv(out_dir / name, index=False)
        written.append(out_dir / name)
    s = result.run.scenario
    document = {
        "scenario": s.name,
        "start": result.run.start.isoformat(),
        "period_h": s.period_h,
        "drain_h": s.drain_h,
        "seed": s.seed,
        "carbon_price_usd_per_t": s.carbon_price_usd_per_t,
        "outside_option_region": result.run.setup.outside.region,
        "policies": {n: x.as_dict() for n, x in result.summaries.items()},
        "unfinished": {n: list(r.unfinished) for n, r in result.results.items()},
        "savings": {x.metric: {"isolated": x.baseline, "milp": x.policy, "saved": x.saved,
                               "saved_fraction": x.saved_fraction, "parts": x.parts}
                    for x in result.savings},
        "wall_time_s": result.wall_time_s,
    }
    (out_dir / "summary.json").write_text(json.dumps(json_safe(document), indent=2))
    written.append(out_dir / "summary.json")
    written += write_plots(result, out_dir)
    return written


def json_safe(value: object) -> object:
    """NaN and infinities become null (JSON has no NaN); numpy scalars become plain numbers."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


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
    fig.suptitle(f"{result.run.scenario.name}: totals per policy (all jobs, outside option "
                 "included)")
    fig.tight_layout()
    totals = out_dir / "policies.png"
    fig.savefig(totals, dpi=110)
    plt.close(fig)

    paths = [totals]
    if "milp" in result.results:
        paths.append(_load_plot(result, out_dir, plt))
    return paths


LOAD_LABEL = "busy GPUs (% of the site's)"
CARBON_LABEL = "carbon intensity (gCO2/kWh)"
TIME_LABEL = "time from the start of the run (h)"


def _load_plot(result: ScenarioResult, out_dir: Path, plt: Any) -> Path:
    fig = load_figure(result, plt)
    path = out_dir / "milp_load_vs_carbon.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def load_figure(result: ScenarioResult, plt: Any) -> Any:
    """Small multiples, one panel per site: milp's busy share of the site's GPUs (left axis)
    and its grid's carbon intensity (right axis, one scale in every panel, so that a higher
    line is a dirtier grid wherever it is drawn)."""
    slots = result.results["milp"].site_slots
    sites = list(dict.fromkeys(slots["site"]))
    columns = min(3, len(sites))
    rows = math.ceil(len(sites) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.8 * columns, 2.6 * rows + 0.6),
                             sharex=True, squeeze=False)
    top = float(slots["carbon_g_per_kwh"].max()) * 1.05 or 1.0
    for k, (ax, site) in enumerate(zip(axes.flat, sites, strict=False)):
        frame = slots[slots["site"] == site]
        ax.fill_between(frame["time_h"], 100 * frame["utilization"], step="post",
                        color="#0072B2", alpha=0.6, label="busy GPUs")
        ax.set_ylim(0, 105)
        ax.set_title(site, fontsize=9)
        twin = ax.twinx()
        twin.plot(frame["time_h"], frame["carbon_g_per_kwh"], color="#D55E00", lw=1,
                  drawstyle="steps-post", label="carbon intensity")
        twin.set_ylim(0, top)
        twin.tick_params(labelsize=7)
        ax.tick_params(labelsize=7)
        column = k % columns
        if column == 0:
            ax.set_ylabel(LOAD_LABEL, fontsize=8, color="#0072B2")
        if column == columns - 1 or k == len(sites) - 1:  # the last panel of its row
            twin.set_ylabel(CARBON_LABEL, fontsize=8, color="#D55E00")
        if k >= len(sites) - columns:  # the lowest panel of its column
            ax.set_xlabel(TIME_LABEL, fontsize=8)
            ax.xaxis.set_tick_params(labelbottom=True)
    for ax in list(axes.flat)[len(sites):]:
        ax.set_visible(False)
    fig.suptitle(f"{result.run.scenario.name}: milp's load (blue area, % of each site's GPUs) "
                 "against its grid's carbon intensity (orange line)", fontsize=10)
    fig.tight_layout()
    return fig
