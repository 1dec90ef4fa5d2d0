"""Benchmark: the measured multi-GPU scaling model against the linear rule it replaced.

Prints
1. the fit: leave-one-out relative error of the Amdahl fit on Gavel's multi-GPU points, beside
   the linear rule's ("k GPUs = k x one GPU") on the same points, and the worst groups;
2. per scenario and policy, the scenario built and run twice in this process, as the code did
   before (the linear rule) and does now (the measured model): a trace's jobs keep their steps,
   a synthetic job keeps its drawn run time on the reference GPU (its steps follow the rule);
   energy, carbon, cost, mean and p95 job completion time, utilisation, and how far the
   savings against ``isolated`` moved.

    python bench/scaling.py                                   # default (+ federation-12 with data)
    python bench/scaling.py --scenarios federation-12 --policies milp,isolated

Needs the data folder for the fit and for ``federation-12`` (``CARBONFED_DATA``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from pathlib import Path

from broker.summary import summarize
from scenarios.build import build_run
from scenarios.loader import load_scenario
from scenarios.runner import run_policy
from sites.readers.gavel_affinity import gavel_measurements
from sites.scaling import LINEAR, error_summary, held_out_errors


def print_fit(data: Path) -> None:
    rows = held_out_errors(gavel_measurements(data / "gpu/gavel_throughputs.json"))
    print("== fit: leave-one-out over Gavel's multi-GPU points ==")
    for label, pick in (("all", rows), ("consolidated", [r for r in rows if r.consolidated]),
                        ("spread", [r for r in rows if not r.consolidated])):
        s = error_summary(pick)
        print(f"{label:>13}: {int(s['points'])} points, median error {s['median_error']:.1%} "
              f"(linear {s['median_linear_error']:.1%}, ratio "
              f"{s['median_error'] / s['median_linear_error']:.2f}), p90 {s['p90_error']:.1%} "
              f"(linear {s['p90_linear_error']:.1%})")
    worst = sorted(rows, key=lambda r: -r.error)[:5]
    print("worst predictions:")
    for r in worst:
        where = "one server" if r.consolidated else "spread"
        print(f"  {r.job_type} on {r.gpus} {r.gpu_type} ({where}): measured "
              f"{r.measured_steps_per_s:.2f}, fitted {r.predicted_steps_per_s:.2f}, linear "
              f"{r.linear_steps_per_s:.2f} steps/s")


def compare(name: str, data: Path | None, policies: list[str]) -> None:
    loaded = load_scenario(name, data)
    assert loaded.resolved is not None
    aff = loaded.resolved.affinity
    before = dataclasses.replace(loaded, resolved=dataclasses.replace(
        loaded.resolved, affinity=dataclasses.replace(aff, scaling=LINEAR)))
    runs = {"linear": build_run(before), "measured": build_run(loaded)}
    counts = ", ".join(f"{label} {len(r.setup.jobs)} jobs ({sum(j.gpus > 1 for j in r.setup.jobs)}"
                       " on several GPUs)" for label, r in runs.items())
    print(f"\n== {name}: {counts} ==")
    print(f"{'policy':<15}{'scaling':<9}{'energy kWh':>12}{'carbon kg':>11}{'cost USD':>10}"
          f"{'JCT mean h':>12}{'JCT p95 h':>11}{'util':>7}{'wall s':>8}")
    totals: dict[tuple[str, str], float] = {}
    for policy in policies:
        for label, run in runs.items():
            begun = time.perf_counter()
            result = run_policy(run, policy)
            wall = time.perf_counter() - begun
            x = summarize(result, run.config.carbon_price_usd_per_t)
            totals[(policy, label)] = x.total_cost_usd
            print(f"{policy:<15}{label:<9}{x.energy_kwh:>12.1f}{x.carbon_kg:>11.1f}"
                  f"{x.total_cost_usd:>10.2f}{x.mean_completion_h:>12.2f}"
                  f"{x.p95_completion_h:>11.2f}{x.mean_gpu_utilization:>7.1%}{wall:>8.1f}")
    if "isolated" in policies:
        print("savings against isolated (total cost, USD):")
        for policy in policies:
            if policy != "isolated":
                saved = [totals[("isolated", m)] - totals[(policy, m)] for m in runs]
                print(f"  {policy:<15} linear {saved[0]:.2f}, measured {saved[1]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenarios", default=None,
                        help="comma-separated (default: default, and federation-12 with data)")
    parser.add_argument("--policies", default="milp,isolated,greedy-carbon,greedy-price,temporal")
    args = parser.parse_args()
    data = Path(os.environ["CARBONFED_DATA"]) if os.environ.get("CARBONFED_DATA") else None
    if data is not None:
        print_fit(data)
    names = (args.scenarios.split(",") if args.scenarios
             else ["default", *(["federation-12"] if data is not None else [])])
    for name in names:
        compare(name, data, args.policies.split(","))


if __name__ == "__main__":
    main()
