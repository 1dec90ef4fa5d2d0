"""Benchmark: single planning rounds of the allocation MILP at growing sizes.

Prints, per size and method: options (variables), build time (options generation plus model
or matrix building and pricing), HiGHS time, total, the objective and its gap to the LP bound of
the full formulation (all options, relaxed). The Pyomo model (`full`) is the baseline measured
in the same run; it is skipped above --full-max-options (it takes minutes there).

    python bench/allocation.py                         # 200x5x24 and 1000x12x24
    python bench/allocation.py --full-max-options 0    # lp-guided only
    python bench/allocation.py --moldable              # every job may run on 1 to 8 GPUs
    python bench/allocation.py --sizes 5000x20x24,20000x100x24 --methods lp-guided,grid \
        --time-limit 10 --skip-lp-bound                # lp-guided is skipped at the second,
                                                       # saying why (--max-options); the grid
                                                       # (options held as runs x starts) runs
    python bench/allocation.py --sizes 1000x12x24 --methods "" --lp-bound-check
                                                       # the LP bound with and without the
                                                       # options' upper bounds
    python bench/allocation.py --sizes 5000x20x24 --methods "" --lp-methods dual,primal,ipm \
        --time-limit 120 --skip-lp-bound               # column generation's LP with each of
                                                       # HiGHS's LP algorithms, same budget
    python bench/allocation.py --sizes 1000x12x24,5000x20x24 --methods "" --lp-methods dual \
        --master-bounds both --time-limit 120 --skip-lp-bound
                                                       # the master's option columns with and
                                                       # without x_o <= count_d
    python bench/allocation.py --sizes 1000x12x24 --methods "" --decomposed-workers 1,2,4
                                                       # the LP decomposed by site, pricing on
                                                       # 1, 2 and 4 Dask workers, and in-process
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import subprocess
import sys
import time

import numpy as np
import pandas as pd

from broker.federation import Federation
from broker.offers import RoundOffers
from broker.planner import PlannerConfig, build_round_problem
from broker.round_grid import build_round_grid
from broker.workload import SyntheticWorkload
from optimization import SolverOptions, solve_allocation
from optimization.allocation_matrix import allocation_matrix
from optimization.column_generation import ADDED_PER_DEMAND_PER_ROUND, solve_lp_by_columns
from optimization.decomposed import (
    DecomposedLP,
    Duals,
    InProcessPricers,
    ShardPricers,
    public_part,
    resource_groups,
    solve_decomposed,
    split_by_resource,
)
from optimization.grid_solve import solve_option_grid
from optimization.solver import LP_METHODS, SafetyNet
from sites import DEFAULT_GPUS, SiteSpec, SyntheticDiurnal, default_affinity

GPU_TYPES = ("K80", "P100", "V100")
# Peak memory per option while a round's options are built: 2.09 GiB for the 13.85M options
# of 2000x100x24 (measured 2026-12-03), about 160 bytes each.
BYTES_PER_OPTION = 160


def make_round(n_jobs: int, n_sites: int, horizon: int, seed: int = 0, moldable: bool = False):
    """A backlog round: ``n_jobs`` queued, ``n_sites`` sites with K80/P100/V100 pools.

    Capacity is sized so the backlog needs about 40% of the horizon's GPU-hours, with more
    GPUs asked for now than are free now, so capacity binds early in the horizon.
    """
    rng = np.random.default_rng(seed)
    affinity = default_affinity()
    sites = []
    for i in range(n_sites):
        counts = rng.integers(4, 17, size=3) * 2
        sites.append(SiteSpec(f"s{i:02d}", f"z{i:02d}", dict(zip(GPU_TYPES, map(int, counts),
                                                               strict=True)),
                              pue=float(rng.uniform(1.1, 1.5)), egress_usd_per_gb=0.02))
    workload = SyntheticWorkload(jobs_per_hour=1.0, job_types=affinity.job_types,
                                 gpu_counts=(1, 2, 4, 8), gpu_count_weights=(0.7, 0.15, 0.1, 0.05),
                                 median_runtime_h=3.0, runtime_sigma=0.8, max_runtime_h=20.0)
    jobs = []
    while len(jobs) < n_jobs:
        jobs += workload.generate(sites, affinity, 48.0, rng)
    jobs = [dataclasses.replace(j, submit_h=0.0) for j in jobs[:n_jobs]]
    if moldable:  # the broker chooses every count: 1, 2, 4 or 8 GPUs (holding its own)
        jobs = [dataclasses.replace(j, min_gpus=1, max_gpus=max(8, j.gpus)) for j in jobs]
    federation = Federation(tuple(sites), DEFAULT_GPUS, affinity)
    carbon = np.vstack([
        SyntheticDiurnal(mean=float(rng.uniform(50, 700)), amplitude=float(rng.uniform(10, 80)),
                         solar_dip=float(rng.uniform(0, 150)), noise_sd=0.05,
                         utc_offset_h=float(rng.integers(-8, 9))).hourly(
            pd.Timestamp("2023-06-05", tz="UTC"), horizon, rng)
        for _ in sites
    ])
    price = np.vstack([
        SyntheticDiurnal(mean=float(rng.uniform(30, 120)), amplitude=float(rng.uniform(5, 30)),
                         noise_sd=0.1, floor=-50).hourly(
            pd.Timestamp("2023-06-05", tz="UTC"), horizon, rng)
        for _ in sites
    ])
    demand_gpu_h = sum(j.gpus * j.runtime_on_h(affinity, "V100") for j in jobs)
    total = federation.resource_total_gpus
    scale = demand_gpu_h / (0.4 * total.sum() * horizon)
    free = np.maximum(np.round(total * scale), 1).astype(int)
    free = np.minimum(free, total)
    # part of each pool is still busy with running jobs early in the horizon
    busy_until = rng.integers(0, horizon // 3, size=len(total))
    free_gpus = np.repeat(free[:, None], horizon, axis=1)
    for r, t in enumerate(busy_until):
        free_gpus[r, :t] = free[r] // 2
    offers = RoundOffers(0.0, 1.0, free_gpus, price, carbon)
    config = PlannerConfig(carbon_price_usd_per_t=100.0, delay_cost_usd_per_gpu_h=0.005,
                           solver=SolverOptions(time_limit_s=120.0, mip_gap=0.01, threads=2))
    return federation, offers, jobs, config


def lp_bound(problem, bounded: bool = True, presolve: bool = False) -> tuple[float, float]:
    """Optimum of the full LP relaxation (all options) and the time it took. ``bounded=False``
    drops the options' upper bounds (x_o <= count_d, implied by the balance rows) as the full
    LP did from 2026-11-22 to 2026-12-03: same optimum, about 4x slower in dual simplex.
    HiGHS's presolve reduces nothing here and costs seconds, so it is off unless asked."""
    started = time.perf_counter()
    matrix = allocation_matrix(problem)
    if not bounded:
        upper = matrix.col_upper.copy()
        upper[matrix.layout.n_demands:] = np.inf
        matrix = dataclasses.replace(matrix, col_upper=upper)
    lp = matrix.new_lp(SolverOptions(time_limit_s=300.0, mip_gap=0.0, threads=2,
                                     presolve=presolve))
    result = lp.solve().result
    return result.objective, time.perf_counter() - started


def lp_bound_by_columns(problem, limit_s: float) -> tuple[float, float]:
    """The same LP optimum by column generation (the full matrix of a 5000x20x24 round, 46M
    nonzeros, had no answer in 300 s); nan when it is not complete within ``limit_s``."""
    started = time.perf_counter()
    relaxation = solve_lp_by_columns(
        problem, SolverOptions(time_limit_s=limit_s, mip_gap=0.0, threads=2),
        SafetyNet(limit_s))
    priced = relaxation.priced
    value = priced.objective_usd if priced is not None and priced.complete else np.nan
    return value, time.perf_counter() - started


def decomposed_runs(federation: Federation, p, solver: SolverOptions, time_limit_s: float,
                    workers: list[int], n_shards: int, label: str, repeats: int = 5) -> None:
    """The LP relaxation decomposed into ``n_shards`` shards of whole sites (the same shards for
    every worker count, so the runs differ only in where pricing runs), solved in-process and
    with the shards on 1, 2, ... Dask worker processes; one line per run, and the speed-up
    against 1 worker measured in this run: of the whole solve (whose master LP runs in this
    process whatever the workers), and of one pricing round alone (median of ``repeats`` at
    fixed duals: the in-process run's last, each demand's balance dual raised by 1 USD so every
    shard prices every option and offers its cheapest columns, as in the first rounds)."""
    from scenarios.dask_executor import open_dask_executor
    from scenarios.decomposed import dask_pricers

    groups = resource_groups(federation.resource_site,
                             np.bincount(p.option_resource, minlength=p.n_resources), n_shards)
    shards = split_by_resource(p, groups)
    public = public_part(p)
    sizes = "/".join(str(len(s.option_index)) for s in shards)
    print(f"{label:>12} decomposed: {len(shards)} shards of whole sites ({sizes} options)")
    print(f"{'':>12} {'workers':>10} {'rounds':>6} {'LP value':>10} {'bound':>10} "
          f"{'scatter s':>9} {'pricing s':>9} {'master s':>8} {'total s':>8} {'speed-up':>8} "
          f"{'round s':>8} {'speed-up':>8}")

    def solve(pricers: ShardPricers) -> DecomposedLP:
        return solve_decomposed(public, pricers, solver, SafetyNet(time_limit_s))

    local = solve(InProcessPricers(shards))
    fixed = Duals(local.y + 1.0, local.mu, local.lam)

    def pricing_round(pricers: ShardPricers) -> float:
        took = []
        for _ in range(repeats):
            started = time.perf_counter()
            pricers.price(fixed, ADDED_PER_DEMAND_PER_ROUND)
            took.append(time.perf_counter() - started)
        return float(np.median(took))

    def report(name: str, run: DecomposedLP, scatter_s: float, round_s: float,
               one: tuple[float, float] | None) -> None:
        state = "complete" if run.complete else run.message
        ratios = (f"{one[0] / run.total_s:>7.2f}x {round_s:>8.3f} {one[1] / round_s:>7.2f}x"
                  if one else f"{'':>8} {round_s:>8.3f} {'':>8}")
        print(f"{'':>12} {name:>10} {run.rounds:>6} {run.objective_usd:>10.2f} "
              f"{run.bound_usd:>10.2f} {scatter_s:>9.2f} {run.pricing_s:>9.2f} "
              f"{run.master_s:>8.2f} {run.total_s:>8.2f} {ratios}  {state}")

    report("in-process", local, 0.0, pricing_round(InProcessPricers(shards)), None)
    for i, r in enumerate(local.history, start=1):  # convergence, the same at any worker count
        print(f"{'':>12} {'round ' + str(i):>10} master {r.master_usd:.2f}, bound "
              f"{r.bound_usd:.2f}, columns offered {r.columns_offered}, taken "
              f"{r.columns_added}, pricing {r.pricing_s:.3f} s (slowest shard "
              f"{r.shard_pricing_s:.3f} s), master LP {r.master_s:.2f} s")
    one: tuple[float, float] | None = None
    for n in workers:
        with open_dask_executor(n, None, progress=None, connect_timeout_s=5.0,
                                stream=sys.stderr) as executor:
            started = time.perf_counter()
            with dask_pricers(executor.client, shards) as pricers:
                scattered = time.perf_counter() - started
                run = solve(pricers)
                round_s = pricing_round(pricers)
        if n == 1:
            one = (run.total_s, round_s)
        report(f"{n} Dask", run, scattered, round_s, one)


def grid_run(federation: Federation, offers: RoundOffers, jobs, config: PlannerConfig,
             solver: SolverOptions, bound: float, size: str) -> None:
    """The round held as a grid (``broker.round_grid``) and solved by ``optimization.
    grid_solve`` within the time limit, building included, as the planner does above
    ``PlannerConfig.max_listed_options``: one line, with the greedy plan's and the LP's time."""
    started = time.perf_counter()
    grid = build_round_grid(federation, offers, jobs, config).grid
    build_s = time.perf_counter() - started
    solved = solve_option_grid(grid, dataclasses.replace(
        solver, time_limit_s=max(solver.time_limit_s - build_s, 0.05)))
    total = time.perf_counter() - started
    solution = solved.solution
    gap = (solution.objective_usd - bound) / abs(solution.objective_usd)
    gap_text = f"{gap:>9.3%}" if np.isfinite(gap) else f"{'-':>9}"
    print(f"{size:>12} {'grid':>10} {grid.n_options:>8} {'-':>9} {build_s:>8.2f} "
          f"{solution.solve_time_s:>8.2f} {total:>8.2f} {solution.objective_usd:>10.2f} "
          f"{gap_text}  {solution.status} (own gap {solution.gap:.3%}, bound "
          f"{solution.bound_usd:.2f}; greedy plan after {build_s + solved.greedy_s:.2f} s, "
          f"LP {solved.lp_s:.2f} s; {solution.message}; peak RSS so far "
          f"{peak_rss_gib():.2f} GiB)")


def peak_rss_gib() -> float:
    """This process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def run_default_scenario() -> float:
    """Wall time of ``carbonfed run default`` as a user runs it (a separate process)."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "scenarios.cli", "run", "default"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200x5x24,1000x12x24")
    parser.add_argument("--methods", default="lp-guided,full",
                        help="methods to run (full = the Pyomo model, the baseline; grid = "
                             "the round held as a grid of runs x starts, as the planner "
                             "holds rounds above PlannerConfig.max_listed_options)")
    parser.add_argument("--full-max-options", type=int, default=100_000,
                        help="skip the Pyomo baseline above this many options (minutes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-limit", type=float, default=120.0,
                        help="per-round time limit (s); the anytime methods return a plan by then")
    parser.add_argument("--mip-gap", type=float, default=0.01)
    parser.add_argument("--skip-scenario", action="store_true")
    parser.add_argument("--moldable", action="store_true",
                        help="every job may run on 1, 2, 4 or 8 GPUs, the MILP choosing")
    parser.add_argument("--lp-bound-check", action="store_true",
                        help="also solve each LP bound as before 2026-12-03 (options without "
                             "upper bounds, HiGHS presolve on): the fix's before/after")
    parser.add_argument("--lp-methods", default="",
                        help=f"also solve the LP relaxation by column generation with each of "
                             f"these HiGHS algorithms ({', '.join(LP_METHODS)}) within "
                             f"--time-limit: LP value reached, its Lagrangian bound, time")
    parser.add_argument("--master-bounds", default="bounded",
                        choices=("bounded", "unbounded", "both"),
                        help="--lp-methods: the master's option columns with x_o <= count_d "
                             "(the solve's, since 2026-12-03), without it (the market's, "
                             "and the solve's before), or both in the same run")
    parser.add_argument("--full-lp-max-options", type=int, default=2_000_000,
                        help="above this many options the LP bound comes from column "
                             "generation (same optimum) instead of the full matrix")
    parser.add_argument("--lp-bound-limit", type=float, default=600.0,
                        help="seconds the LP bound by column generation may take")
    parser.add_argument("--decomposed-workers", default="",
                        help="also solve the LP relaxation decomposed by site (pricing at the "
                             "shards) on these numbers of Dask worker processes, e.g. 1,2,4, "
                             "and in-process")
    parser.add_argument("--decomposed-shards", type=int, default=0,
                        help="shards of the decomposed LP (default: the largest worker count)")
    parser.add_argument("--aggregate-usd", type=float, default=0.0,
                        help="lp-guided merges near-identical demands within this many USD a "
                             "job (SolverOptions.aggregate_tolerance_usd; 0: none)")
    parser.add_argument("--max-options", type=int, default=40_000_000,
                        help="skip a size whose options could exceed this (jobs x pools x "
                             "starts): building them takes ~150 bytes each")
    parser.add_argument("--skip-lp-bound", action="store_true",
                        help="do not solve the full LP (minutes at 5000x20x24)")
    args = parser.parse_args()
    print(f"{'size':>12} {'method':>10} {'options':>8} {'nonzeros':>9} {'build s':>8} "
          f"{'HiGHS s':>8} {'total s':>8} {'objective':>10} {'gap to LP':>9}  status")
    for size in args.sizes.split(","):
        n_jobs, n_sites, horizon = map(int, size.split("x"))
        # every job on every pool (3 a site) at every start; moldable jobs at up to 4 counts
        most = n_jobs * n_sites * len(GPU_TYPES) * horizon * (4 if args.moldable else 1)
        methods = list(filter(None, args.methods.split(",")))
        if most > args.max_options:
            print(f"{size:>12} listed methods and the LP bound skipped: up to {most:,} options, "
                  f"above --max-options {args.max_options:,}; at ~{BYTES_PER_OPTION} bytes an "
                  f"option while they are built (2000x100x24: 13.85M options, 2.09 GiB peak), "
                  f"~{most * BYTES_PER_OPTION / 2**30:.0f} GiB; --methods grid holds them as a "
                  f"grid of runs x starts")
            if "grid" in methods:
                federation, offers, jobs, config = make_round(n_jobs, n_sites, horizon,
                                                              args.seed, args.moldable)
                grid_run(federation, offers, jobs, config,
                         SolverOptions(args.time_limit, args.mip_gap, config.solver.threads),
                         np.nan, size)
            continue
        federation, offers, jobs, config = make_round(n_jobs, n_sites, horizon, args.seed,
                                                      args.moldable)
        solver = SolverOptions(args.time_limit, args.mip_gap, config.solver.threads,
                               aggregate_tolerance_usd=args.aggregate_usd)
        started = time.perf_counter()
        p = build_round_problem(federation, offers, jobs, config).problem
        options_s = time.perf_counter() - started
        nnz = int(p.n_options + p.option_slots.sum())
        bound = np.nan
        if not args.skip_lp_bound:
            by_columns = p.n_options > args.full_lp_max_options
            bound, bound_s = (lp_bound_by_columns(p, args.lp_bound_limit) if by_columns
                              else lp_bound(p))
            how = ("by column generation, every option priced" if by_columns
                   else "one highspy solve")
            print(f"{size:>12} {'LP bound':>10} {p.n_options:>8} {nnz:>9} {'':>8} "
                  f"{bound_s:>8.2f} {'':>8} {bound:>10.2f} {'':>9}  full LP relaxation, {how}")
        bounds = {"both": (True, False), "bounded": (True,), "unbounded": (False,)}
        for lp_method in filter(None, args.lp_methods.split(",")):
            for bounded in bounds[args.master_bounds]:
                lp_options = dataclasses.replace(solver, lp_method=lp_method)
                started = time.perf_counter()
                relaxation = solve_lp_by_columns(p, lp_options, SafetyNet(args.time_limit),
                                                 bounded=bounded)
                took = time.perf_counter() - started
                priced = relaxation.priced
                value = np.nan if priced is None else priced.objective_usd
                state = "complete" if priced is not None and priced.complete else "not finished"
                label = f"CG {lp_method}" + ("" if bounded else " ub")
                print(f"{size:>12} {label:>10} {p.n_options:>8} {nnz:>9} {'':>8} "
                      f"{relaxation.master.lp.solve_s:>8.2f} {took:>8.2f} {value:>10.2f} "
                      f"{'':>9}  column generation's LP {state}, Lagrangian bound "
                      f"{relaxation.bound_usd:.2f} ({relaxation.master.lp.num_cols} columns"
                      f"{'' if bounded else ', option columns unbounded'})")
        workers = [int(w) for w in filter(None, args.decomposed_workers.split(","))]
        if workers:
            decomposed_runs(federation, p, solver, args.time_limit, workers,
                            args.decomposed_shards or max(workers), size)
        if args.lp_bound_check:
            unbounded, unbounded_s = lp_bound(p, bounded=False, presolve=True)
            print(f"{size:>12} {'LP bound':>10} {p.n_options:>8} {nnz:>9} {'':>8} "
                  f"{unbounded_s:>8.2f} {'':>8} {unbounded:>10.2f} {'':>9}  the same LP "
                  f"without the options' upper bounds, presolve on (before 2026-12-03)")
        totals = {}
        for method in methods:
            if method == "grid":
                grid_run(federation, offers, jobs, config, solver, bound, size)
                continue
            if method == "full" and p.n_options > args.full_max_options:
                print(f"{size:>12} {method:>10}  skipped: {p.n_options} options > "
                      f"--full-max-options {args.full_max_options}")
                continue
            started = time.perf_counter()
            solution = solve_allocation(p, solver, method=method)
            total = time.perf_counter() - started + options_s
            totals[method] = total
            build = options_s + solution.build_time_s
            gap = (solution.objective_usd - bound) / abs(solution.objective_usd)
            gap_text = f"{gap:>9.3%}" if np.isfinite(gap) else f"{'-':>9}"
            print(f"{size:>12} {method:>10} {p.n_options:>8} {nnz:>9} {build:>8.2f} "
                  f"{solution.solve_time_s:>8.2f} {total:>8.2f} {solution.objective_usd:>10.2f} "
                  f"{gap_text}  {solution.status} (own gap {solution.gap:.3%}; "
                  f"{solution.message}; peak RSS so far {peak_rss_gib():.2f} GiB)")
        if "full" in totals and "lp-guided" in totals:
            print(f"{size:>12} {'speed-up':>10} lp-guided is "
                  f"{totals['full'] / totals['lp-guided']:.1f}x faster than the Pyomo model")
    if not args.skip_scenario:
        print(f"carbonfed run default: {run_default_scenario():.1f} s wall")


if __name__ == "__main__":
    main()
