"""``carbonfed market SCENARIO``: coalition values, payment schemes and carbon policies."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from market.analysis import MarketSettings, analyse, sweep
from market.carbon_policy import CarbonPolicy, CarbonPolicyKind
from market.schemes import SCHEMES
from market.valuation import VALUATIONS
from scenarios.build import build_run
from scenarios.commands.base import Command
from scenarios.commands.options import (
    add_executor_arguments,
    names,
    number,
    numbers,
    one_of,
    positive_int,
)
from scenarios.commands.run import data_dir
from scenarios.html_report import write_market_report
from scenarios.loader import load_scenario
from scenarios.market_report import market_document, print_market, write_market_outputs
from scenarios.market_tasks import ExecutorEvaluate, ScenarioRef
from scenarios.outputs import json_safe, prepare_out_dir
from scenarios.progress import progress_reporter
from scenarios.report import report_console
from scenarios.scaleout import open_executor
from sites import InputError

DEFAULT_SWEEP_USD_PER_T = (0.0, 25.0, 50.0, 100.0, 200.0)


class MarketCommand(Command):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("scenario", nargs="?", default="default",
                            help="built-in scenario name or path to a YAML file")
        parser.add_argument("--value", default="plan",
                            help=f"coalition values: {' or '.join(VALUATIONS)} (default: plan)")
        parser.add_argument("--schemes", help=f"comma-separated (default: all: "
                            f"{','.join(SCHEMES)})")
        parser.add_argument("--policy", help="carbon policy: none, tax, cap, cap-and-trade "
                            "(default: the scenario's)")
        parser.add_argument("--carbon-prices", metavar="P1,P2,...",
                            help="analyse a tax at each of these prices (USD/t)")
        parser.add_argument("--cap-t", type=str, help="federation-wide cap, tonnes per run")
        parser.add_argument("--cut", type=str, help="cap-and-trade: allowances are standalone "
                            "emissions x (1 - cut) (default 0.1)")
        parser.add_argument("--markup", type=str, default="0.1",
                            help="cost-plus markup (default 0.1)")
        parser.add_argument("--exact", action="store_true",
                            help="every coalition even beyond 12 sites")
        parser.add_argument("--samples", type=str,
                            help="Shapley by this many sampled permutations instead")
        parser.add_argument("--out", type=Path, help="write CSV, JSON and plots to this folder")
        parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
        parser.add_argument("--data", type=Path, metavar="DIR", help="real-data folder")
        add_executor_arguments(parser)

    def run(self, args: argparse.Namespace) -> int:
        if args.out is not None:
            prepare_out_dir(args.out)
        mode = one_of(args.value, VALUATIONS, "--value")
        schemes = names(args.schemes, SCHEMES, "--schemes") if args.schemes else tuple(SCHEMES)
        prices = numbers(args.carbon_prices, "--carbon-prices") if args.carbon_prices else None
        samples = positive_int(args.samples, "--samples") if args.samples else None
        settings = MarketSettings(
            schemes=schemes, markup=number(args.markup, "--markup", minimum=0.0),
            exact=True if args.exact else (False if samples else None),
            samples=samples or MarketSettings().samples)
        loaded = load_scenario(args.scenario, data_dir(args.data))
        run = build_run(loaded)
        policy = _policy(args, run.scenario.carbon_policy_spec())
        valuation = VALUATIONS[mode](run.setup, run.config)
        policies = ([CarbonPolicy(CarbonPolicyKind.TAX, p) for p in prices] if prices
                    else [policy])
        with progress_reporter("tasks") as progress, \
                open_executor(args.workers, args.scheduler, progress=progress) as executor:
            evaluate = ExecutorEvaluate(executor, ScenarioRef.of(loaded), mode)
            points = [analyse(valuation, p, settings, evaluate) for p in policies]
            curve = sweep(valuation, prices or DEFAULT_SWEEP_USD_PER_T, evaluate)
        document = market_document(run, mode, points, curve)
        if args.json:
            print(json.dumps(json_safe(document), indent=2))
        else:
            print_market(run, mode, points, curve, report_console())
        if args.out:
            written = write_market_outputs(document, points, curve, args.out)
            for path in [*written, write_market_report(document, points[0].ledger, args.out)]:
                if not args.json:
                    print(f"wrote {path}")
        return 0


def _policy(args: argparse.Namespace, scenario_policy: CarbonPolicy) -> CarbonPolicy:
    kind = scenario_policy.kind
    if args.policy is not None:
        kind = CarbonPolicyKind(one_of(args.policy, [k.value for k in CarbonPolicyKind],
                                        "--policy"))
    cap = number(args.cap_t, "--cap-t") if args.cap_t is not None else scenario_policy.cap_t
    if cap is not None and not cap > 0:
        raise InputError("--cap-t", str(args.cap_t), "must be > 0 (tonnes per run)")
    if kind is CarbonPolicyKind.CAP and cap is None:
        raise InputError("--cap-t", "", "a cap needs --cap-t (tonnes per run)")
    cut = number(args.cut, "--cut", minimum=0.0) if args.cut is not None else scenario_policy.cut
    if cut >= 1:
        raise InputError("--cut", str(args.cut), "must be below 1")
    return CarbonPolicy(kind, scenario_policy.price_usd_per_t, cap, cut)
