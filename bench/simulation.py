"""Benchmark: one simulation run per policy, where the time goes, and the milp's plan quality.

Prints, per scenario and policy: wall and CPU seconds beside the figures measured before the
"faster simulation" work (branch ``fast`` at 6b76a21, the same machine), and their ratio; the
milp policy's total cost beside its figure then (the plan-quality rule: within 0.5%); and
where the milp run's CPU time went (option building, presolve, solver, metering, the rest of
the loop). ``federation-12`` runs when the data folder is set (``CARBONFED_DATA``).

    python bench/simulation.py                          # default (+ federation-12 with data)
    python bench/simulation.py --scenarios default --policies milp,temporal

CPU seconds are printed beside wall seconds because the benchmark machine is shared: the
load average (printed) inflates wall time, much less CPU time. The solver's time limit is a
wall-clock limit, so on a loaded machine the milp policy's rounds that hit it may plan a
little differently.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import broker.planner as planner
from broker.metering import Meter
from broker.policy_registry import POLICIES
from broker.simulation import run_simulation
from broker.summary import summarize
from scenarios.build import build_run
from scenarios.loader import load_scenario

# Measured at the start (6b76a21) with /tmp copies of the scripts this file grew from:
# (wall s, CPU s) per policy, and the milp policy's total cost (USD). The machine was shared
# (load average 7 to 10 on 2 cores), so the wall figures are inflated; CPU is the fairer one.
# On federation-12 a second run of the same code gave milp 689 s wall, 164 s CPU and
# 295.13 USD: its rounds that hit the (wall-clock) time limit make the figure move with load.
BEFORE: dict[str, dict[str, tuple[float, float]]] = {
    "default": {
        "milp": (22.18, 7.41),
        "isolated": (0.25, 0.12),
        "greedy-carbon": (0.29, 0.12),
        "greedy-price": (0.29, 0.13),
        "temporal": (2.87, 1.10),
    },
    "federation-12": {
        "milp": (723.30, 155.24),
        "isolated": (3.10, 0.53),
        "greedy-carbon": (0.92, 0.18),
        "greedy-price": (0.97, 0.17),
        "temporal": (26.12, 4.05),
    },
}
BEFORE_MILP_TOTAL_COST_USD = {"default": 122.72418798363685, "federation-12": 292.92471424203836}


class CpuSplit:
    """CPU seconds spent inside a few named functions (patched for the duration of a run)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._undo: list[Callable[[], None]] = []

    def wrap(self, owner: object, name: str, label: str) -> None:
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            started = time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] += time.process_time() - started

        setattr(owner, name, timed)
        self._undo.append(lambda: setattr(owner, name, original))

    def __enter__(self) -> CpuSplit:
        self.wrap(planner, "build_round_problem", "option building")
        self.wrap(planner, "presolve_round", "presolve")
        self.wrap(planner, "solve_allocation", "solver (optimization)")
        self.wrap(Meter, "record_run", "metering")
        return self

    def __exit__(self, *_: object) -> None:
        for undo in reversed(self._undo):
            undo()


def ratio(now: float, before: float | None) -> str:
    return f"{before / now:6.1f}x" if before and now > 0 else "     -"


def bench_scenario(name: str, data: Path | None, policies: list[str] | None) -> None:
    started = time.perf_counter()
    run = build_run(load_scenario(name, data))
    print(f"\n== {name}: built in {time.perf_counter() - started:.2f} s; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    before = BEFORE.get(name, {})
    print(f"{'policy':14s} {'wall s':>8s} {'before':>8s} {'faster':>7s} "
          f"{'CPU s':>8s} {'before':>8s} {'faster':>7s}  total cost USD")
    totals = [0.0, 0.0, 0.0, 0.0]
    for policy in policies or run.scenario.policies:
        split = CpuSplit()
        with split if policy == "milp" else nullcontext():
            wall, cpu = time.perf_counter(), time.process_time()
            result = run_simulation(run.setup, POLICIES[policy](run.setup.federation, run.config),
                                    policy)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        cost = summarize(result, run.scenario.carbon_price_usd_per_t).total_cost_usd
        b_wall, b_cpu = before.get(policy, (0.0, 0.0))
        note = ""
        if policy == "milp" and name in BEFORE_MILP_TOTAL_COST_USD:
            then = BEFORE_MILP_TOTAL_COST_USD[name]
            note = f" (before {then:.2f}: {100 * (cost - then) / then:+.2f}%)"
        print(f"{policy:14s} {wall:8.2f} {b_wall:8.2f} {ratio(wall, b_wall)} "
              f"{cpu:8.2f} {b_cpu:8.2f} {ratio(cpu, b_cpu)}  {cost:.2f}{note}")
        for i, v in enumerate((wall, b_wall, cpu, b_cpu)):
            totals[i] += v
        if policy == "milp":
            counts = {s.value: n for s, n in result.status_counts().items()}
            parts = ", ".join(f"{k} {v:.2f}" for k, v in split.seconds.items())
            rest = cpu - sum(split.seconds.values())
            print(f"{'':14s} CPU s: {parts}, loop and frames {rest:.2f}; rounds {counts}")
    print(f"{'all':14s} {totals[0]:8.2f} {totals[1]:8.2f} {ratio(totals[0], totals[1])} "
          f"{totals[2]:8.2f} {totals[3]:8.2f} {ratio(totals[2], totals[3])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default=None,
                        help="comma-separated (default: default, and federation-12 with data)")
    parser.add_argument("--policies", default=None, help="comma-separated (default: all)")
    args = parser.parse_args()
    data = Path(os.environ["CARBONFED_DATA"]) if os.environ.get("CARBONFED_DATA") else None
    names = (args.scenarios.split(",") if args.scenarios
             else ["default"] + (["federation-12"] if data else []))
    policies = args.policies.split(",") if args.policies else None
    for name in names:
        bench_scenario(name, data, policies)


if __name__ == "__main__":
    main()
