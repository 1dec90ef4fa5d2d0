"""``carbonfed run [SCENARIO] [--out DIR]``: run a federation scenario end to end."""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from pathlib import Path

import pandas as pd
from rich.console import Console

from market.ledger import ledger_frame
from market.run_ledger import run_ledger
from market.schemes import DEFAULT_MARKUP, PAYMENT_SCHEMES, check_markup
from scenarios.build import build_run
from scenarios.commands.base import Command
from scenarios.commands.job_options import add_job_model_arguments, job_model_scenario
from scenarios.commands.options import add_executor_arguments, positive_int
from scenarios.data_paths import DATA_ENV
from scenarios.loader import LoadedScenario, load_scenario
from scenarios.market_tasks import ScenarioRef
from scenarios.outputs import prepare_out_dir, write_outputs
from scenarios.progress import progress_reporter
from scenarios.report import (
    print_ledger,
    print_report,
    print_seed_summary,
    report_console,
)
from scenarios.runner import run_scenario, scenario_result
from scenarios.scaleout import open_executor
from scenarios.sweep import PolicyTask, grid, policy_task, run_task, summarise
from sites import InputError
from sites.errors import named_as_given


class RunCommand(Command):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("scenario", nargs="?", default="default",
                            help="built-in scenario name or path to a YAML file (default: default)")
        parser.add_argument("--out", type=Path, help="write CSV, JSON and plots to this folder "
                            "(new, empty, or holding only carbonfed outputs)")
        parser.add_argument("--policies", help="comma-separated subset of the scenario's policies")
        add_job_model_arguments(parser)
        parser.add_argument("--by-site", action="store_true",
                            help="also print each site's jobs, energy, CO2 and cost per policy")
        parser.add_argument("--ledger", metavar="SCHEME", choices=PAYMENT_SCHEMES,
                            help="settle milp's hosted jobs: who pays whom under cost-plus "
                            "or market (game rules: carbonfed market)")
        parser.add_argument("--markup", type=float,
                            help=f"with --ledger cost-plus: the markup (default "
                            f"{DEFAULT_MARKUP:g})")
        parser.add_argument("--seeds", metavar="K", help="K runs with seeds spawned from the "
                            "scenario's: mean and 95%% CI of every metric")
        add_executor_arguments(parser)
        parser.add_argument("--data", type=Path, metavar="DIR",
                            help=f"real-data folder for data-file scenarios (default: ${DATA_ENV})")

    def run(self, args: argparse.Namespace) -> int:
        console = report_console()
        if args.out is not None:
            prepare_out_dir(args.out)
        loaded = load_scenario(args.scenario, data_dir(args.data))
        loaded = job_model_scenario(loaded, args)
        if args.policies is not None:
            wanted = [p.strip() for p in args.policies.split(",") if p.strip()]
            if not wanted:
                raise InputError("--policies", "", "names no policy (give e.g. milp,isolated)")
            unknown = [p for p in wanted if p not in loaded.scenario.policies]
            if unknown:
                known = ", ".join(loaded.scenario.policies)
                raise InputError("--policies", ",".join(unknown),
                                 f"not a policy of this scenario ({known})")
            loaded = dataclasses.replace(
                loaded, scenario=loaded.scenario.model_copy(update={"policies": wanted}))
        if args.ledger and "milp" not in loaded.scenario.policies:
            raise InputError("--ledger", args.ledger, "settles the milp policy's run; add milp")
        markup = _markup(args)
        if args.seeds is not None:
            return _run_seeds(loaded, positive_int(args.seeds, "--seeds"), args, console)
        run = build_run(loaded)
        if args.workers is not None or args.scheduler is not None:
            started = time.perf_counter()
            tasks = [PolicyTask(ScenarioRef.of(loaded), name) for name in loaded.scenario.policies]
            with progress_reporter("policies") as progress, \
                    open_executor(args.workers, args.scheduler, progress=progress) as executor:
                results = executor.map(policy_task, tasks, label="policies")
            result = scenario_result(run, dict(zip(loaded.scenario.policies, results,
                                                   strict=True)), started)
        else:
            with progress_reporter("rounds") as progress:
                result = run_scenario(run, progress)
        print_report(result, console, by_site=args.by_site)
        rows = []
        if args.ledger:
            rows = run_ledger(run.setup, result.results["milp"], run.config, args.ledger,
                              markup)
            print_ledger(rows, args.ledger, console)
        if args.out:
            # Imported here: Bokeh is the slowest import of all, and only --out needs it.
            from scenarios.html_report import write_run_report

            for path in [*write_outputs(result, args.out), write_run_report(result, args.out)]:
                console.print(f"wrote {path}")
            if args.ledger:
                ledger_frame(rows).to_csv(args.out / "ledger.csv", index=False)
                console.print(f"wrote {args.out / 'ledger.csv'}")
        return 0


def _markup(args: argparse.Namespace) -> float:
    """``--markup``, checked (by the domain) before the run, not after it."""
    if args.markup is None:
        return DEFAULT_MARKUP
    if args.ledger != "cost-plus":
        raise InputError("--markup", "", "only --ledger cost-plus uses it"
                         + (f" (--ledger is {args.ledger})" if args.ledger else ""))
    with named_as_given({"markup": ("--markup", "")}):
        return check_markup(args.markup)


def _run_seeds(loaded: LoadedScenario, seeds: int, args: argparse.Namespace,
               console: Console) -> int:
    """K replicates of every policy on the executor; mean and 95% CI across seeds."""
    if args.ledger:
        raise InputError("--ledger", args.ledger, "settles one run, not --seeds")
    tasks = grid(ScenarioRef.of(loaded), loaded.scenario.policies, [None], seeds)
    with progress_reporter("runs") as progress, \
            open_executor(args.workers, args.scheduler, progress=progress) as executor:
        records = pd.DataFrame(executor.map(run_task, tasks, label="seeds"))
    summary = summarise(records)
    print_seed_summary(summary, loaded.scenario.name, seeds, console)
    if args.out:
        records.to_csv(args.out / "seeds.csv", index=False)
        summary.to_csv(args.out / "seeds_summary.csv", index=False)
        from scenarios.html_report import write_seeds_report  # Bokeh: slow, only for --out

        report = write_seeds_report(records, summary, loaded.scenario.name, args.out)
        console.print(f"wrote {args.out / 'seeds.csv'}\nwrote {args.out / 'seeds_summary.csv'}"
                      f"\nwrote {report}")
    return 0


def data_dir(option: Path | None) -> Path | None:
    """``--data DIR``, else ``$CARBONFED_DATA``, else none (read here, at the CLI's edge)."""
    if option is not None:
        return option
    from_env = os.environ.get(DATA_ENV)
    return Path(from_env) if from_env else None
