"""Benchmark: what moldable and preemptible jobs change in the market (issue 20, step 8), in
plan mode.

Runs ``carbonfed market SCENARIO --json`` through the CLI with fixed, uninterruptible jobs,
with ``--moldable`` and with ``--preemptible``, and prints the standalone and grand-coalition
costs, the federation's savings and each scheme's gain per site, side by side.

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
    runs = {label: market(args.scenario, *flags) for label, flags in
            (("fixed", ()), ("moldable", ("--moldable",)), ("preemptible", ("--preemptible",)))}
    print(f"{args.scenario}: " + ", ".join(f"{label} {s:.1f} s" for label, (_, s) in runs.items())
          + " (wall)")
    for key in ("standalone_cost_usd", "grand_cost_usd", "savings_usd"):
        print(f"  {key:<22}" + "".join(f"  {label} {doc[key]:>9.2f}"
                                      for label, (doc, _) in runs.items()))
    fixed = runs["fixed"][0]
    for scheme in fixed["schemes"]:
        for label in ("moldable", "preemptible"):
            gains_f = fixed["schemes"][scheme]["gain_usd"]
            gains_x = runs[label][0]["schemes"][scheme]["gain_usd"]
            cells = ", ".join(f"{site} {gains_f[site]:.2f} -> {gains_x[site]:.2f}"
                              for site in gains_f)
            print(f"  {scheme:<12} {label:<12} gain USD: {cells}")


if __name__ == "__main__":
    main()
