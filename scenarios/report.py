"""Presenting a scenario's results on the terminal: per-policy, savings and per-site tables."""

from __future__ import annotations

import math

import pandas as pd
from rich.console import Console
from rich.table import Table

from broker.savings import PARTS
from market.ledger import LedgerRow
from scenarios.runner import ScenarioResult
from scenarios.tables import METRIC_LABELS, site_table

# Piped output is as wide as its tables: rich's 80 columns when not on a terminal cut key
# columns (override names, coalitions) to "delay_c…", and a pipe or a file has no width.
PIPED_WIDTH = 10_000


def report_console() -> Console:
    """The console for a command's tables on standard output: the terminal's width on a
    terminal, else wide enough that no table is cut (lines are not padded to the width)."""
    console = Console()
    return console if console.is_terminal else Console(width=PIPED_WIDTH)


SUMMARY_COLUMNS = (
    ("jobs_finished", "jobs run in the federation", "{:d}"),
    ("jobs_outside", "jobs at the outside option", "{:d}"),
    ("jobs_moved", "jobs moved", "{:d}"),
    ("energy_kwh", "energy kWh", "{:,.2f}"),
    ("carbon_kg", "CO2 kg", "{:,.2f}"),
    ("energy_cost_usd", "energy cost USD", "{:,.2f}"),
    ("transfer_cost_usd", "transfer cost USD", "{:,.2f}"),
    ("outside_cost_usd", "outside option USD", "{:,.2f}"),
    ("total_cost_usd", "total cost USD", "{:,.2f}"),
    ("mean_completion_h", "mean completion h", "{:.2f}"),
    ("p95_completion_h", "p95 completion h", "{:.2f}"),
    ("makespan_h", "makespan h", "{:.2f}"),
    ("deadline_misses", "deadline misses", "{:d}"),
    ("mean_gpu_utilization", "mean GPU utilization", "{:.1%}"),
    ("pauses", "pauses", "{:d}"),
    ("moves_while_running", "moves of a running job", "{:d}"),
    ("resizes", "resizes", "{:d}"),
)
# rows shown only when some policy has one (most runs pause, move and resize nothing)
WHEN_ANY = frozenset({"pauses", "moves_while_running", "resizes"})
SITE_COLUMNS = (("jobs_hosted", "{:d}"), ("jobs_sent_away", "{:d}"), ("jobs_outside", "{:d}"),
                ("energy_kwh", "{:,.2f}"), ("carbon_kg", "{:,.2f}"), ("total_cost_usd", "{:,.2f}"))


def print_report(result: ScenarioResult, console: Console, by_site: bool = False) -> None:
    s = result.run.scenario
    setup = result.run.setup
    console.print(
        f"[bold]{s.name}[/bold]: {len(setup.federation.sites)} sites, {len(setup.jobs)} jobs, "
        f"{s.period_h:g} h from {result.run.start:%Y-%m-%d %H:%M} UTC (+{s.drain_h:g} h drain), "
        f"carbon price {s.carbon_price_usd_per_t:g} USD/t"
    )
    table = Table(title="Per policy (every total covers all jobs)")
    table.add_column("metric", overflow="fold")
    for name in result.summaries:
        table.add_column(name, justify="right")
    rows = {name: summary.as_dict() for name, summary in result.summaries.items()}
    for key, label, fmt in SUMMARY_COLUMNS:
        if key in WHEN_ANY and not any(row[key] for row in rows.values()):
            continue
        table.add_row(label, *(_fmt(fmt, row[key]) for row in rows.values()))
    console.print(table)
    for name, summary in result.summaries.items():
        if summary.jobs_outside:
            console.print(
                f"{name}: outside option: {summary.jobs_outside} jobs, "
                f"{summary.outside_gpu_h:,.1f} GPU-h, {summary.outside_cost_usd:,.2f} USD, "
                f"{summary.outside_carbon_kg:,.2f} kg ({setup.outside.region})")
        solved = summary.rounds_optimal + summary.rounds_feasible + summary.rounds_failed
        if solved:
            console.print(f"{name}: rounds: {summary.rounds_optimal} optimal, "
                          f"{summary.rounds_feasible} feasible (a limit hit before the gap "
                          "was proven), "
                          f"{summary.rounds_failed} failed")
        if summary.rounds_wall_clock:
            console.print(
                f"{name}: {summary.rounds_wall_clock} rounds stopped at the solver's "
                f"{s.solver.time_limit_s:g} s wall-clock safety net: these totals depend on "
                "the machine's speed and load (raise solver.time_limit_s to make them "
                "reproducible)", style="yellow")
    console.print("completion times cover the jobs run in the federation; a job with a "
                  "deadline sent to the outside option counts as a miss", style="dim")
    if result.savings:
        console.print(_savings_table(result))
    else:
        missing = [p for p in ("milp", "isolated") if p not in result.summaries]
        console.print(f"no savings table: it compares milp with isolated, and "
                      f"{' and '.join(missing)} did not run")
    if any(j.moldable for j in setup.jobs):
        console.print(_gpu_count_table(result))
    if by_site:
        console.print(_by_site_table(result))
    console.print(f"wall time {result.wall_time_s:.1f} s")


def _savings_table(result: ScenarioResult) -> Table:
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
        savings.add_row(label, *(_num(v) for v in values))
    savings.add_row("saved %", *(f"{x.saved_fraction:.1%}" for x in result.savings))
    for part in PARTS:
        savings.add_row(f"  {part.replace('_', ' ')}",
                        *(_num(x.parts[part]) for x in result.savings))
    return savings


def _gpu_count_table(result: ScenarioResult) -> Table:
    """How each policy ran the moldable jobs: on fewer GPUs than asked, as asked, or more,
    and how many on each count."""
    moldable = {j.id for j in result.run.setup.jobs if j.moldable}
    table = Table(title=f"GPU counts of the {len(moldable)} moldable jobs (run on / asked for)")
    table.add_column("policy", overflow="fold")
    for label in ("fewer", "as asked", "more", "on 1 / 2 / 4 / 8 / other GPUs"):
        table.add_column(label, justify="right")
    for name, run in result.results.items():
        jobs = run.jobs[run.jobs["job_id"].isin(moldable)]
        ran, asked = jobs["gpus"].to_numpy(int), jobs["asked_gpus"].to_numpy(int)
        counts = [int((ran == k).sum()) for k in (1, 2, 4, 8)]
        other = len(ran) - sum(counts)
        table.add_row(name, str(int((ran < asked).sum())), str(int((ran == asked).sum())),
                      str(int((ran > asked).sum())), " / ".join(map(str, [*counts, other])))
    return table


def _by_site_table(result: ScenarioResult) -> Table:
    frame = site_table(result)
    table = Table(title="Per site and policy (energy, CO2 and cost of the jobs each site hosted)")
    table.add_column("site", overflow="fold")
    table.add_column("policy", overflow="fold")
    for column, _ in SITE_COLUMNS:
        table.add_column(column.replace("_", " "), justify="right")
    for row in frame.to_dict("records"):
        table.add_row(row["site"], row["policy"],
                      *(fmt.format(row[column]) for column, fmt in SITE_COLUMNS))
    return table


def _num(value: float) -> str:
    return f"{round(value, 2) + 0.0:,.2f}"  # never "-0.00"


def _fmt(fmt: str, value: object) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "-"
    return fmt.format(value)


def print_ledger(rows: list[LedgerRow], scheme: str, console: Console) -> None:
    """Per-site balances of a settlement ledger (received minus paid)."""
    table = Table(title=f"Settlement of milp's run under {scheme}: {len(rows)} hosted jobs")
    for column in ("site", "paid USD", "received USD", "balance USD"):
        table.add_column(column, justify="left" if column == "site" else "right",
                         overflow="fold" if column == "site" else "ellipsis")
    paid: dict[str, float] = {}
    received: dict[str, float] = {}
    for row in rows:
        paid[row.payer] = paid.get(row.payer, 0.0) + row.amount_usd
        received[row.payee] = received.get(row.payee, 0.0) + row.amount_usd
    for site in sorted(set(paid) | set(received)):
        table.add_row(site, _num(paid.get(site, 0.0)), _num(received.get(site, 0.0)),
                      _num(received.get(site, 0.0) - paid.get(site, 0.0)))
    console.print(table)


SEED_METRICS = (("jobs_finished", "jobs run", "{:,.1f}"), ("jobs_outside", "jobs outside",
                "{:,.1f}"), ("energy_kwh", "energy kWh", "{:,.2f}"), ("carbon_kg", "CO2 kg",
                "{:,.2f}"), ("total_cost_usd", "total cost USD", "{:,.2f}"),
                ("mean_completion_h", "mean completion h", "{:,.2f}"),
                ("deadline_misses", "deadline misses", "{:,.1f}"))


def print_seed_summary(summary: pd.DataFrame, name: str, seeds: int, console: Console) -> None:
    """Per policy: mean +/- the 95% CI half-width across seeds of each metric."""
    table = Table(title=f"{name}: mean +/- 95% CI half-width over {seeds} seeds")
    table.add_column("metric")
    for policy in summary["policy"]:
        table.add_column(policy, justify="right")
    rows = summary.set_index("policy")
    for key, label, fmt in SEED_METRICS:
        table.add_row(label, *(mean_ci(fmt, rows.loc[p, key], rows.loc[p, key + "_ci"])
                               for p in rows.index))
    console.print(table)


def mean_ci(fmt: str, mean: float, half_width: float) -> str:
    """"mean +/- half-width" in ``fmt`` (the terminal and report.html); the mean alone when
    there is no interval (one seed)."""
    if isinstance(half_width, float) and math.isnan(half_width):
        return fmt.format(mean)
    return f"{fmt.format(mean)} +/- {fmt.format(half_width)}"
