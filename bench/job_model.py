"""Benchmark: what malleable jobs change in a simulated run, per policy (issue 20).

Runs ``carbonfed run SCENARIO --out DIR`` through the CLI four times: rigid jobs (as the
scenario gives them), ``--moldable``, ``--moldable --preemptible`` and ``--elastic
--preemptible`` (``--elastic`` implies ``--moldable``), and prints per policy the total cost,
emissions, mean and p95 completion, pauses, moves of running jobs and resizes, beside the
run's wall time and the machine's load.

    CARBONFED_DATA=../shared/data python bench/job_model.py                # federation-12
    python bench/job_model.py --scenario default
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODELS = {
    "rigid": (),
    "moldable": ("--moldable",),
    "moldable+preemptible": ("--moldable", "--preemptible"),
    "elastic+preemptible": ("--elastic", "--preemptible"),
}
COLUMNS = (("total_cost_usd", "cost USD", "{:,.2f}"), ("carbon_kg", "CO2 kg", "{:,.1f}"),
           ("mean_completion_h", "JCT h", "{:.2f}"), ("p95_completion_h", "p95 h", "{:.2f}"),
           ("pauses", "pauses", "{:d}"), ("moves_while_running", "moves", "{:d}"),
           ("resizes", "resizes", "{:d}"))


def run(scenario: str, flags: tuple[str, ...], policies: str | None) -> tuple[dict, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        extra = ("--policies", policies) if policies else ()
        begun = time.perf_counter()
        subprocess.run([sys.executable, "-m", "scenarios.cli", "run", scenario, "--out",
                        str(out), *flags, *extra], capture_output=True, text=True, check=True)
        wall = time.perf_counter() - begun
        return json.loads((out / "summary.json").read_text())["policies"], wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", default="federation-12")
    parser.add_argument("--policies", help="comma-separated subset (default: the scenario's)")
    parser.add_argument("--models", default=",".join(MODELS),
                        help=f"comma-separated subset of {', '.join(MODELS)}")
    args = parser.parse_args()
    print(f"{args.scenario}, {os.cpu_count()} cores")
    for model in args.models.split(","):
        load = os.getloadavg()[0]
        policies, wall = run(args.scenario, MODELS[model], args.policies)
        print(f"\n{model} ({' '.join(MODELS[model]) or 'as given'}): {wall:.1f} s wall, "
              f"load {load:.1f} at the start")
        print(f"{'policy':<20}" + "".join(f"{label:>12}" for _, label, _ in COLUMNS))
        for name, summary in policies.items():
            print(f"{name:<20}" + "".join(f"{fmt.format(summary[key]):>12}"
                                         for key, _, fmt in COLUMNS))


if __name__ == "__main__":
    main()
