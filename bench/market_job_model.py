"""Benchmark: what moldable jobs change in the market (issue 20, step 8), in plan mode.

Runs ``carbonfed market SCENARIO --json`` twice through the CLI, with fixed GPU counts and with
``--moldable``, and prints the standalone and grand-coalition costs, the federation's savings
and each scheme's gain per site, side by side.

    python bench/market_job_model.py                 # default
    python bench/market_job_model.py --scenario tiny
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time


def market(scenario: str, *extra: str) -> tuple[dict, float]:
    begun = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "scenarios.cli", "market", scenario, "--json",
                           *extra], capture_output=True, text=True, check=True)
    return json.loads(done.stdout), time.perf_counter() - begun


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", default="default")
    args = parser.parse_args()
    fixed, fixed_s = market(args.scenario)
    mold, mold_s = market(args.scenario, "--moldable")
    print(f"{args.scenario}: fixed counts {fixed_s:.1f} s, moldable {mold_s:.1f} s (wall)")
    for key in ("standalone_cost_usd", "grand_cost_usd", "savings_usd"):
        print(f"  {key:<22} fixed {fixed[key]:>9.2f}   moldable {mold[key]:>9.2f}")
    for scheme in fixed["schemes"]:
        gains_f, gains_m = fixed["schemes"][scheme]["gain_usd"], mold["schemes"][scheme]["gain_usd"]
        cells = ", ".join(f"{site} {gains_f[site]:.2f} -> {gains_m[site]:.2f}" for site in gains_f)
        print(f"  {scheme:<12} gain USD: {cells}")


if __name__ == "__main__":
    main()
