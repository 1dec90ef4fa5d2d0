"""``carbonfed sweep SCENARIO``: a grid of runs (overrides x carbon price x policy x seed)."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from rich.console import Console
from rich.table import Table

from scenarios.commands.base import Command
from scenarios.commands.options import add_executor_arguments, numbers, positive_int
from scenarios.commands.run import data_dir
from scenarios.html_report import write_sweep_report
from scenarios.loader import load_scenario
from scenarios.market_tasks import ScenarioRef
from scenarios.outputs import prepare_out_dir
from scenarios.progress import RunningTotal, progress_reporter
from scenarios.report import report_console
from scenarios.scaleout import open_executor
from scenarios.sweep import KEYS, grid, run_task, summarise
from sites import InputError


class SweepCommand(Command):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("scenario", nargs="?", default="default")
        parser.add_argument("--carbon-prices", metavar="P1,P2,...",
                            help="carbon prices (USD/t; default: the scenario's)")
        parser.add_argument("--policies", help="comma-separated (default: the scenario's)")
        parser.add_argument("--seeds", default="1", help="seeds per point (spawned from the "
                            "scenario's seed; the first is the scenario's own)")
        parser.add_argument("--set", action="append", default=[], metavar="FIELD=V1,V2",
                            help="a scenario field and its values (repeatable)")
        parser.add_argument("--out", type=Path, help="write sweep.csv and sweep_summary.csv")
        parser.add_argument("--resume", action="store_true",
                            help="skip the runs already in --out's sweep.csv")
        parser.add_argument("--data", type=Path, metavar="DIR", help="real-data folder")
        add_executor_arguments(parser)

    def run(self, args: argparse.Namespace) -> int:
        if args.resume and args.out is None:
            raise InputError("--resume", "", "needs --out (the folder to resume)")
        if args.out is not None and not args.resume:
            prepare_out_dir(args.out)
        loaded = load_scenario(args.scenario, data_dir(args.data))
        seeds = 1 if args.seeds == "1" else positive_int(args.seeds, "--seeds")
        policies = _policies(args.policies, loaded.scenario.policies)
        prices: list[float | None] = (list(numbers(args.carbon_prices, "--carbon-prices"))
                                      if args.carbon_prices else [None])
        tasks = grid(ScenarioRef.of(loaded), policies, prices, seeds,
                     _overrides(args.set, loaded.scenario))
        done = _done(args.out) if args.resume else pd.DataFrame()
        have = set(map(tuple, done[list(KEYS)].astype(str).to_numpy())) if len(done) else set()
        todo = [t for t in tasks if tuple(map(str, _task_keys(t))) not in have]
        Console(stderr=True).print(f"sweep: {len(tasks)} runs, {len(tasks) - len(todo)} "
                                   "already written", style="dim")
        records = [done] if len(done) else []
        with progress_reporter("runs") as progress:
            runs = RunningTotal(progress, "sweep", len(todo))  # runs, not chunks
            with open_executor(args.workers, args.scheduler, progress=runs) as executor:
                chunk = max(1, 2 * (args.workers or 1))
                for start in range(0, len(todo), chunk):
                    part = pd.DataFrame(executor.map(run_task, todo[start:start + chunk],
                                                     label="sweep"))
                    runs.next_chunk()
                    records.append(part)
                    if args.out is not None:  # written as it goes: --resume picks up here
                        pd.concat(records, ignore_index=True).to_csv(args.out / "sweep.csv",
                                                                     index=False)
        table = pd.concat(records, ignore_index=True) if records else pd.DataFrame()
        summary = summarise(table)
        _print_summary(summary, report_console())
        if args.out is not None:
            table.to_csv(args.out / "sweep.csv", index=False)
            summary.to_csv(args.out / "sweep_summary.csv", index=False)
            with contextlib.suppress(ImportError):  # Parquet only when pyarrow is installed
                table.to_parquet(args.out / "sweep.parquet")
            write_sweep_report(summary, loaded.scenario.name, args.out)
        return 0


def _task_keys(task: Any) -> tuple[Any, ...]:
    label, price, policy, seed = task.key
    return (label, price if price is not None else "", policy, seed)


def _done(out: Path) -> pd.DataFrame:
    path = out / "sweep.csv"
    if not path.is_file():
        return pd.DataFrame()
    table = pd.read_csv(path, keep_default_na=False)
    table["carbon_price_usd_per_t"] = table["carbon_price_usd_per_t"].astype(float)
    return table


def _policies(text: str | None, known: list[str]) -> list[str]:
    if text is None:
        return list(known)
    names = [p.strip() for p in text.split(",") if p.strip()]
    if not names:
        raise InputError("--policies", "", "names no policy")
    for name in names:
        if name not in known:
            raise InputError("--policies", name, f"not a policy of this scenario "
                             f"({', '.join(known)})")
    return names


def _overrides(items: list[str], scenario: Any) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for item in items:
        name, sep, values = item.partition("=")
        name = name.strip()
        if not sep or name not in type(scenario).model_fields:
            raise InputError("--set", item, "expected FIELD=V1,V2 with a scenario field")
        if name in ("seed", "policies", "carbon_price_usd_per_t"):
            raise InputError("--set", name, "use --seeds, --policies or --carbon-prices")
        parsed = [yaml.safe_load(v) for v in values.split(",") if v.strip()]
        for value in parsed:  # each value must make a valid scenario
            try:
                type(scenario).model_validate({**scenario.model_dump(), name: value})
            except ValueError as error:
                raise InputError("--set", f"{name}={value}", str(error).splitlines()[-1]) \
                    from None
        out[name] = parsed
    return out


def _print_summary(summary: pd.DataFrame, console: Console) -> None:
    table = Table(title="Sweep: mean +/- 95% CI half-width across seeds")
    for column in ("overrides", "USD/t", "policy", "seeds", "CO2 kg", "total cost USD",
                   "energy kWh", "outside jobs"):
        key = column in ("overrides", "policy")  # folded, never cut to "delay_c…"
        table.add_column(column, justify="left" if key else "right",
                         overflow="fold" if key else "ellipsis")
    for row in summary.to_dict("records"):
        table.add_row(str(row["overrides"]), f"{row['carbon_price_usd_per_t']:g}",
                      row["policy"], str(row["seeds"]), _cell(row, "carbon_kg"),
                      _cell(row, "total_cost_usd"), _cell(row, "energy_kwh"),
                      _cell(row, "jobs_outside", "{:.1f}"))
    console.print(table)



def _cell(row: dict[str, Any], metric: str, fmt: str = "{:,.2f}") -> str:
    mean, ci = row[metric], row[f"{metric}_ci"]
    return fmt.format(mean) + ("" if pd.isna(ci) else " +/- " + fmt.format(ci))
