"""Benchmark: aggregation of near-identical demands (``optimization.aggregation``) on a round.

For each tolerance it prints the demands and options before and after, the aggregation's
time and proven bound (sum_j count_j delta_j), the LP relaxation of the aggregated problem by
column generation (time, value), the original problem's Lagrangian bound at the aggregated
LP's capacity duals (valid for any duals) and its distance to the original LP, the plan made
by rounding the aggregated LP and handing its jobs back to the original demands
(``disaggregate``), and the original LP warm-started from the aggregated LP's columns. The
original LP by column generation is the baseline, measured in the same run.

    python bench/aggregation.py                                   # 5000x20x24
    python bench/aggregation.py --size 1000x12x24 --tolerances 0,0.2,inf
    python bench/aggregation.py --sweep 10    # 500 jobs, each submitted 10 times with run
                                              # times within +-2% (a parameter sweep)
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
from allocation import make_round  # bench/allocation.py: this script's folder is on sys.path

from broker.planner import build_round_problem
from optimization import solve_allocation
from optimization.aggregation import aggregate, disaggregate, original_bound
from optimization.allocation_matrix import AllocationLayout
from optimization.column_generation import solve_lp_by_columns
from optimization.lp_guided import lp_rounding
from optimization.problem import deferred_of, plan_cost_usd
from optimization.solver import SafetyNet


def lp(p, options, time_limit_s, initial_options=None):
    """Column generation's LP: (relaxation, "wall s (CPU s)")."""
    wall, cpu = time.perf_counter(), time.process_time()
    relaxation = solve_lp_by_columns(p, options, SafetyNet(time_limit_s),
                                     initial_options=initial_options)
    return relaxation, took_since(wall, cpu)


def took_since(wall: float, cpu: float) -> str:
    """Wall and CPU seconds since (wall, cpu): CPU time tells more on a shared machine."""
    return f"{time.perf_counter() - wall:.1f} s ({time.process_time() - cpu:.1f} s CPU)"


def describe(relaxation) -> str:
    priced = relaxation.priced
    if priced is None:
        return "no LP"
    state = "complete" if priced.complete else "not finished"
    return f"{priced.objective_usd:.2f} ({state}, {relaxation.master.lp.num_cols} columns)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="5000x20x24")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tolerances", default="0.05,0.2,1,inf",
                        help="aggregation tolerances (USD per job); inf: footprint alone")
    parser.add_argument("--time-limit", type=float, default=120.0,
                        help="safety net of each LP (s)")
    parser.add_argument("--skip-original", action="store_true",
                        help="do not solve the original LP (the baseline)")
    parser.add_argument("--sweep", type=int, default=1,
                        help="each job submitted this many times with run times within "
                             "+-2%% (a parameter sweep: near-identical, not identical)")
    parser.add_argument("--solve", type=float, default=0.0, metavar="SECONDS",
                        help="also plan the round with lp-guided (1%% gap) within this safety "
                             "net: the original, and each aggregated problem disaggregated")
    parser.add_argument("--warm-start", action="store_true",
                        help="also solve the original LP from the aggregated LP's columns")
    args = parser.parse_args()
    n_jobs, n_sites, horizon = map(int, args.size.split("x"))
    federation, offers, jobs, config = make_round(n_jobs // args.sweep, n_sites, horizon,
                                                  args.seed)
    if args.sweep > 1:
        rng = np.random.default_rng(args.seed)
        jobs = [dataclasses.replace(job, id=f"{job.id}-{k}", work_steps=job.work_steps
                                    * float(rng.uniform(0.98, 1.02)))
                for job in jobs for k in range(args.sweep)]
    options = dataclasses.replace(config.solver, time_limit_s=args.time_limit)
    started = time.perf_counter()
    p = build_round_problem(federation, offers, jobs, config).problem
    print(f"{args.size}: {p.n_demands} demands, {p.n_options} options, built in "
          f"{time.perf_counter() - started:.1f} s")
    layout = AllocationLayout(p)
    baseline = np.nan
    planning = dataclasses.replace(options, time_limit_s=args.solve)
    if args.solve:
        wall, cpu = time.perf_counter(), time.process_time()
        solution = solve_allocation(p, planning)
        print(f"original, lp-guided: {solution.objective_usd:.2f} in {took_since(wall, cpu)}, "
              f"proven gap {solution.gap:.2%} ({solution.message})")
    if not args.skip_original:
        relaxation, took = lp(p, options, args.time_limit)
        if relaxation.priced is not None and relaxation.priced.complete:
            baseline = relaxation.priced.objective_usd
        print(f"original LP: {took}, {describe(relaxation)}, bound "
              f"{relaxation.bound_usd:.2f}")
    for text in args.tolerances.split(","):
        tolerance = float(text)
        wall, cpu = time.perf_counter(), time.process_time()
        agg = aggregate(p, tolerance)
        agg_s = took_since(wall, cpu)
        a = agg.problem
        print(f"\ntolerance {tolerance} USD: demands {p.n_demands} -> {a.n_demands}, options "
              f"{p.n_options} -> {a.n_options}, aggregation {agg_s}, proven bound "
              f"OPT <= OPT_agg + {agg.bound_usd:.2f}")
        if args.solve:
            # as a user gets it: SolverOptions.aggregate_tolerance_usd, aggregation included
            wall, cpu = time.perf_counter(), time.process_time()
            solution = solve_allocation(p, dataclasses.replace(
                planning, aggregate_tolerance_usd=tolerance))
            print(f"  lp-guided with aggregate_tolerance_usd={tolerance}: "
                  f"{solution.objective_usd:.2f} in {took_since(wall, cpu)}, proven gap "
                  f"{solution.gap:.2%} ({solution.message})")
        relaxation, took = lp(a, options, args.time_limit)
        print(f"  aggregated LP: {took}, {describe(relaxation)}")
        priced = relaxation.priced
        if priced is None:
            continue
        wall, cpu = time.perf_counter(), time.process_time()
        at_duals = original_bound(agg, AllocationLayout(a), priced.row_duals, layout)
        # the aggregated problem's own best bound (its LP when complete) bounds the original
        bound = max(at_duals, relaxation.bound_usd)
        off = (f"{(baseline - bound) / abs(baseline):.2%} below the original LP"
               if np.isfinite(baseline) else "the original LP unknown")
        print(f"  original's Lagrangian bound at its last duals: {at_duals:.2f} in "
              f"{took_since(wall, cpu)}; with the aggregated bound {bound:.2f}, {off}")
        wall, cpu = time.perf_counter(), time.process_time()
        rounded = lp_rounding(a, priced)
        plan = disaggregate(agg, rounded)
        assert plan.aggregated_cost_usd == plan_cost_usd(a, rounded, deferred_of(a, rounded))
        print(f"  LP rounded and disaggregated: {plan.cost_usd:.2f} (aggregated plan "
              f"{plan.aggregated_cost_usd:.2f}) in {took_since(wall, cpu)}, gap "
              f"to that bound {(plan.cost_usd - bound) / abs(plan.cost_usd):.2%}")
        if args.warm_start and not args.skip_original:
            support = np.flatnonzero(priced.option_x > 0)
            initial = np.flatnonzero(np.isin(agg.option_map, support))
            warm, took = lp(p, options, args.time_limit, initial_options=initial)
            print(f"  original LP from its columns ({len(initial)} options): {took} "
                  f"(+ {agg_s} aggregation), {describe(warm)}")


if __name__ == "__main__":
    main()
