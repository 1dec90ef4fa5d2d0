"""Market benchmarks (named so as not to shadow the market package): coalition values.

    python bench/market_bench.py                      # default: plan, then simulate
    python bench/market_bench.py --simulate-prices 5 # the issue's full simulate bar (slow)
    CARBONFED_DATA=../shared/data python bench/market_bench.py --federation-12

Prints wall times, time per coalition and peak memory (ru_maxrss of this process).
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

from market.analysis import MarketSettings, analyse, sweep
from market.carbon_policy import CarbonPolicy, CarbonPolicyKind
from market.valuation import PlanValuation, SimulateValuation
from scenarios.build import build_run
from scenarios.loader import load_scenario

PRICES = (0.0, 25.0, 50.0, 100.0, 200.0)


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed_market(valuation, prices, label: str) -> None:
    started = time.perf_counter()
    coalitions = 0
    for price in prices:
        point = analyse(valuation, CarbonPolicy(CarbonPolicyKind.TAX, price), MarketSettings())
        coalitions += len(point.values)
    sweep(valuation, prices)
    wall = time.perf_counter() - started
    print(f"{label}: {len(prices)} prices x {coalitions // len(prices)} coalitions: "
          f"{wall:.1f} s wall, {1000 * wall / coalitions:.1f} ms per coalition value, "
          f"peak {peak_mib():.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--simulate-prices", type=int, default=1)
    parser.add_argument("--federation-12", action="store_true")
    args = parser.parse_args()
    run = build_run(load_scenario("default"))
    timed_market(PlanValuation(run.setup, run.config), PRICES, "default, plan")
    timed_market(SimulateValuation(run.setup, run.config), PRICES[:args.simulate_prices][::-1]
                 if args.simulate_prices < len(PRICES) else PRICES, "default, simulate")
    if args.federation_12:
        data = Path(os.environ["CARBONFED_DATA"])
        f12 = build_run(load_scenario("federation-12", data))
        valuation = PlanValuation(f12.setup, f12.config)
        started = time.perf_counter()
        point = analyse(valuation, CarbonPolicy(CarbonPolicyKind.TAX, 100.0), MarketSettings())
        wall = time.perf_counter() - started
        print(f"federation-12, plan: {len(point.values)} coalitions and every scheme: "
              f"{wall:.1f} s wall, {1000 * wall / len(point.values):.1f} ms per coalition, "
              f"peak {peak_mib():.0f} MiB")


if __name__ == "__main__":
    main()
