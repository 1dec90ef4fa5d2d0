"""``carbonfed market SCENARIO``: coalition values, payment schemes and carbon policies."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from market.analysis import MarketSettings, analyse, sweep
from market.carbon_policy import CarbonPolicy, CarbonPolicyKind
from market.schemes import DEFAULT_MARKUP, SCHEMES
from market.valuation import VALUATIONS
from scenarios.build import build_run
from scenarios.commands.base import Command
from scenarios.commands.job_options import add_job_model_arguments, job_model_scenario
from scenarios.commands.options import (
    add_executor_arguments,
    names,
    number,
    numbers,
    option_choice,
    positive_int,
)
from scenarios.commands.run import data_dir
from scenarios.html_report import write_market_report
from scenarios.loader import LoadedScenario, load_scenario
from scenarios.market_report import market_document, print_market, write_market_outputs
from scenarios.market_tasks import ExecutorEvaluate, ScenarioRef
from scenarios.outputs import json_safe, prepare_out_dir
from scenarios.progress import progress_reporter
from scenarios.report import report_console
from scenarios.scaleout import open_executor
from sites import InputError
from sites.errors import named_as_given

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
        parser.add_argument("--cap-t", type=str, help="with --policy cap or cap-and-trade: "
                            "federation-wide cap, tonnes per run")
        parser.add_argument("--cut", type=str, help="with --policy cap-and-trade and no "
                            "--cap-t: the cap is standalone emissions x (1 - cut) "
                            f"(default {CarbonPolicy().cut:g})")
        parser.add_argument("--markup", type=str, help="cost-plus markup (default "
                            f"{DEFAULT_MARKUP:g})")
        parser.add_argument("--exact", action="store_true",
                            help="every coalition even beyond 12 sites")
        parser.add_argument("--samples", type=str,
                            help="Shapley by this many sampled permutations instead")
        parser.add_argument("--out", type=Path, help="write CSV, JSON and plots to this folder")
        parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
        add_job_model_arguments(parser)
        parser.add_argument("--data", type=Path, metavar="DIR", help="real-data folder")
        add_executor_arguments(parser)

    def run(self, args: argparse.Namespace) -> int:
        if args.out is not None:
            prepare_out_dir(args.out)
        mode = option_choice(args.value, VALUATIONS, "--value")
        schemes = names(args.schemes, SCHEMES, "--schemes") if args.schemes else tuple(SCHEMES)
        prices = numbers(args.carbon_prices, "--carbon-prices") if args.carbon_prices else None
        samples = positive_int(args.samples, "--samples") if args.samples else None
        _check_combinations(args, schemes)
        with named_as_given({"markup": ("--markup", "")}):
            settings = MarketSettings(
                schemes=schemes,
                markup=(DEFAULT_MARKUP if args.markup is None
                        else number(args.markup, "--markup")),
                exact=True if args.exact else (False if samples else None),
                samples=samples or MarketSettings().samples)
        loaded = job_model_scenario(load_scenario(args.scenario, data_dir(args.data)), args)
        run = build_run(loaded)
        given = _policy_names(args, loaded)
        with named_as_given(given):
            policy = _policy(args, run.scenario.carbon_policy_spec())
        valuation = VALUATIONS[mode](run.setup, run.config)
        policies = ([CarbonPolicy(CarbonPolicyKind.TAX, p) for p in prices] if prices
                    else [policy])
        with progress_reporter("tasks") as progress, \
                open_executor(args.workers, args.scheduler, progress=progress) as executor, \
                named_as_given(given):
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


def _check_combinations(args: argparse.Namespace, schemes: tuple[str, ...]) -> None:
    """Refuse an option that the other options make do nothing: it must not pass silently."""
    if args.carbon_prices is not None:
        for flag, value in (("--cap-t", args.cap_t), ("--cut", args.cut)):
            if value is not None:
                raise InputError(flag, "", "not used with --carbon-prices, which analyses a tax "
                                 "at each price: drop one of them")
        if args.policy not in (None, CarbonPolicyKind.TAX.value):
            raise InputError("--policy", args.policy, "--carbon-prices analyses a tax at each "
                             "price: drop one of them")
    if args.cap_t is not None and args.cut is not None:
        raise InputError("--cut", "", "not used with --cap-t: --cut sets the cap-and-trade cap "
                         "as standalone emissions x (1 - cut), --cap-t sets it in tonnes: give "
                         "one")
    if args.markup is not None and "cost-plus" not in schemes:
        raise InputError("--markup", "", "only the cost-plus scheme uses it, and --schemes "
                         "leaves it out")
    if args.exact and args.samples is not None:
        raise InputError("--samples", "", "not used with --exact (every coalition is valued): "
                         "drop one of them")


def _policy_names(args: argparse.Namespace, loaded: LoadedScenario) -> dict[str, tuple[str, str]]:
    """Where the user set each carbon-policy field: a flag, or the scenario file (a cap that
    is set nowhere is asked of the flag)."""
    in_file = loaded.scenario.carbon_cap_t is not None
    return {"cap_t": ("--cap-t", "") if args.cap_t is not None or not in_file
            else (loaded.source, "carbon_cap_t"),
            "cut": ("--cut", "") if args.cut is not None else (loaded.source, "allowance_cut")}


def _policy(args: argparse.Namespace, scenario_policy: CarbonPolicy) -> CarbonPolicy:
    """The scenario's policy with the flags applied; ``CarbonPolicy`` checks the values."""
    kind = scenario_policy.kind
    if args.policy is not None:
        kind = CarbonPolicyKind(option_choice(args.policy, [k.value for k in CarbonPolicyKind],
                                        "--policy"))
    whose = "--policy" if args.policy is not None else "the scenario's carbon_policy"
    if args.cap_t is not None and not kind.capped:
        raise InputError("--cap-t", "", f"not used by the carbon policy in force ({kind.value}, "
                         f"from {whose}): add --policy cap or --policy cap-and-trade")
    if args.cut is not None and kind is not CarbonPolicyKind.CAP_AND_TRADE:
        raise InputError("--cut", "", f"not used by the carbon policy in force ({kind.value}, "
                         f"from {whose}): add --policy cap-and-trade")
    cap = number(args.cap_t, "--cap-t") if args.cap_t is not None else scenario_policy.cap_t
    if args.cut is not None:
        # --cut asks for the cap to come from the cut: a cap in the scenario file gives way
        return CarbonPolicy(kind, scenario_policy.price_usd_per_t, None,
                            number(args.cut, "--cut"))
    return CarbonPolicy(kind, scenario_policy.price_usd_per_t, cap, scenario_policy.cut)
