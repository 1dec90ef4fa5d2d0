"""``carbonfed market SCENARIO``: coalition values, payment schemes and carbon policies."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Collection
from pathlib import Path

from rich.console import Console

from market.analysis import MarketSettings, analyse, sweep
from market.carbon_policy import CarbonPolicy, CarbonPolicyKind
from market.schemes import SCHEMES
from market.valuation import VALUATIONS
from scenarios.build import build_run
from scenarios.commands.base import Command
from scenarios.commands.run import data_dir
from scenarios.loader import load_scenario
from scenarios.market_report import market_document, print_market, write_market_outputs
from scenarios.outputs import json_safe, prepare_out_dir
from scenarios.progress import progress_reporter
from sites import InputError

DEFAULT_SWEEP_USD_PER_T = (0.0, 25.0, 50.0, 100.0, 200.0)


class MarketCommand(Command):
    help = "who gains by federating, how to share it, and what carbon policies do"

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

    def run(self, args: argparse.Namespace) -> int:
        if args.out is not None:
            prepare_out_dir(args.out)
        mode = _one_of(args.value, VALUATIONS, "--value")
        schemes = _names(args.schemes, SCHEMES, "--schemes") if args.schemes else tuple(SCHEMES)
        prices = _numbers(args.carbon_prices, "--carbon-prices") if args.carbon_prices else None
        samples = _positive_int(args.samples, "--samples") if args.samples else None
        settings = MarketSettings(
            schemes=schemes, markup=_number(args.markup, "--markup", minimum=0.0),
            exact=True if args.exact else (False if samples else None),
            samples=samples or MarketSettings().samples)
        run = build_run(load_scenario(args.scenario, data_dir(args.data)))
        policy = _policy(args, run.scenario.carbon_policy_spec())
        valuation = VALUATIONS[mode](run.setup, run.config)
        policies = ([CarbonPolicy(CarbonPolicyKind.TAX, p) for p in prices] if prices
                    else [policy])
        with progress_reporter("carbon policies") as progress:
            points = []
            for k, point_policy in enumerate(policies):
                progress("market", k, len(policies))
                points.append(analyse(valuation, point_policy, settings))
            progress("market", len(policies), len(policies))
            curve = sweep(valuation, prices or DEFAULT_SWEEP_USD_PER_T)
        document = market_document(run, mode, points, curve)
        if args.json:
            print(json.dumps(json_safe(document), indent=2))
        else:
            print_market(run, mode, points, curve, Console())
        if args.out:
            for path in write_market_outputs(document, points, curve, args.out):
                if not args.json:
                    print(f"wrote {path}")
        return 0


def _one_of(name: str, known: Collection[str], option: str) -> str:
    if name not in known:
        raise InputError(option, name, f"not one of {', '.join(known)}")
    return name


def _names(text: str, known: Collection[str], option: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise InputError(option, text, "names nothing")
    for name in names:
        _one_of(name, known, option)
    return names


def _number(text: str, option: str, minimum: float | None = None) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(option, text, "not a number") from None
    if not math.isfinite(value) or (minimum is not None and value < minimum):
        raise InputError(option, text, f"must be a finite number >= {minimum}")
    return value


def _numbers(text: str, option: str) -> tuple[float, ...]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise InputError(option, text, "names no price")
    return tuple(_number(t, option, minimum=0.0) for t in items)


def _positive_int(text: str, option: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise InputError(option, text, "not a whole number") from None
    if value < 2:  # a variance needs two samples
        raise InputError(option, text, "must be at least 2")
    return value


def _policy(args: argparse.Namespace, scenario_policy: CarbonPolicy) -> CarbonPolicy:
    kind = scenario_policy.kind
    if args.policy is not None:
        kind = CarbonPolicyKind(_one_of(args.policy, [k.value for k in CarbonPolicyKind],
                                        "--policy"))
    cap = _number(args.cap_t, "--cap-t") if args.cap_t is not None else scenario_policy.cap_t
    if cap is not None and not cap > 0:
        raise InputError("--cap-t", str(args.cap_t), "must be > 0 (tonnes per run)")
    if kind is CarbonPolicyKind.CAP and cap is None:
        raise InputError("--cap-t", "", "a cap needs --cap-t (tonnes per run)")
    cut = _number(args.cut, "--cut", minimum=0.0) if args.cut is not None else scenario_policy.cut
    if cut >= 1:
        raise InputError("--cut", str(args.cut), "must be below 1")
    return CarbonPolicy(kind, scenario_policy.price_usd_per_t, cap, cut)
