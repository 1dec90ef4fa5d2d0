"""Benchmark: one live planning round's compute (build + solve), without the database.

Builds a backlog round as ``bench/allocation.py`` does (sites with K80, P100 and V100 pools,
diurnal price and carbon signals, a synthetic backlog sized to about 40% of the horizon's
GPU-hours, part of each pool busy early on), hands it to the live broker's round
(``broker.live_round.solve_round``: the very code a worker process runs) as a ``RoundTask``,
with the rules of the broker's default settings (``api.settings.Settings``), and prints: the
round's wall time, how it ended (greedy or MILP), its options, the jobs it plans and those
starting now, at how many sites, how many of those starts are at sites beyond the 32 cheapest
with free GPUs (the old ``max_sites_per_round``), the plan's cost, its bound and gap (to the
round's own bound: over each job's candidate sites), and the process's peak RSS.

    python bench/live_round.py                     # 200 sites x 5000 jobs, default settings
    python bench/live_round.py --profile 25        # and where the time goes (cProfile)
    python bench/live_round.py --long-budget-s 600
        # the 10 s plan against the same round solved with 600 s (its bound)
    python bench/live_round.py --sizes 40x300 --long-budget-s 300 --compare-full
        # what the candidate sites cost: the same round over every site, with time to solve

``--long-budget-s`` solves the round again (the same candidates) with more time: its bound is
the honest one for the budget's plan, whose own bound (a greedy plan's, when the MILP had no
time) is weak. ``--compare-full`` also solves the round over every site (``spare_sites`` =
every site) and costs every plan as the full round costs it: the full round's bound holds for
every plan, so the gaps to it are what the candidates cost.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import pstats
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from allocation import make_round

from api.services.planning import round_rules
from api.settings import Settings
from broker.costs import cost_per_kwh_usd
from broker.federation import Federation
from broker.live import SiteOffer, live_federation, plan_from_counts, plan_gap, round_offers
from broker.live_round import RoundRules, RoundTask, SolvedRound, solve_round
from broker.offers import RoundOffers
from broker.planner import Plan, RoundProblem, build_round_problem
from optimization import relative_gap
from sites import DEFAULT_GPUS, default_affinity

OLD_MAX_SITES = 32
# what the profile reports as the round's stages: (module file, function) -> label
STAGES = {
    ("live_round.py", "solve_round"): "the whole round",
    ("live.py", "candidate_sites"): "candidate sites",
    ("planner.py", "build_round_problem"): "option building (one, for greedy and MILP)",
    ("live.py", "greedy_option_counts"): "greedy placement",
    ("planner.py", "solve_round"): "MILP (presolve, LP, MIP)",
    ("planner.py", "assignments_from_counts"): "mapping counts to jobs",
    ("live.py", "estimate_runs"): "estimates of the starts",
}


def live_task(n_sites: int, n_jobs: int, horizon: int, seed: int) -> RoundTask:
    """``bench/allocation.py``'s backlog round as the live broker reads it: every site active
    with a fresh offer starting now."""
    fed, offers, jobs, _ = make_round(n_jobs, n_sites, horizon, seed)
    # a live round's job ids are distinct (make_round's repeat across its batches)
    jobs = [dataclasses.replace(j, id=f"j{i:05d}") for i, j in enumerate(jobs)]
    site_offers = {}
    for s, site in enumerate(fed.sites):
        free = {g: offers.free_gpus[r].tolist() for r, (i, g) in enumerate(fed.resources)
                if i == s}
        site_offers[site.id] = SiteOffer(site.id, 0.0, offers.slot_h, free,
                                         offers.price_usd_per_mwh[s].tolist(),
                                         offers.carbon_g_per_kwh[s].tolist())
    return RoundTask(fed.sites, frozenset(site_offers), site_offers, jobs, 0.0)


def cheapest_sites(task: RoundTask, carbon_price_usd_per_t: float, n: int) -> set[str]:
    """The ``n`` sites the old shortlist kept: with free GPUs, cheapest mean cost per kWh."""
    ranked = sorted(
        (float(cost_per_kwh_usd(np.mean(o.price_usd_per_mwh), np.mean(o.carbon_g_per_kwh),
                                carbon_price_usd_per_t)), site)
        for site, o in task.offers.items()
        if any(max(v, default=0) > 0 for v in o.free_gpus.values()))
    return {site for _, site in ranked[:n]}


def describe(solved: SolvedRound, wall_s: float, cheap: set[str]) -> str:
    plan = solved.plan
    if plan is None:
        return f"{wall_s:.2f} s, {solved.status}"
    now = plan.starting_now
    gap = plan_gap(plan)
    return (f"{wall_s:.2f} s, {solved.status}, {plan.n_options:,} options; planned "
            f"{len(plan.assignments)}, deferred {len(plan.deferred)}; starting now {len(now)} "
            f"at {len({a.site_id for a in now})} sites, {sum(a.site_id not in cheap for a in now)}"
            f" of them beyond the {len(cheap)} cheapest; cost {plan.objective_usd:,.2f} USD, "
            f"bound {plan.bound_usd:,.2f}, gap {'-' if gap is None else f'{gap:.2%}'}")


def run(rules: RoundRules, task: RoundTask, budget_s: float) -> tuple[SolvedRound, float]:
    begun = time.perf_counter()
    solved = solve_round(rules, task, budget_s)
    return solved, time.perf_counter() - begun


def profile(rules: RoundRules, task: RoundTask, budget_s: float, top: int) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    solve_round(rules, task, budget_s)
    profiler.disable()
    stats = pstats.Stats(profiler)
    raw = stats.stats  # type: ignore[attr-defined]
    print("  where the time goes (cProfile, cumulative s; the profiler slows it down):")
    for (module, name), label in STAGES.items():
        for (path, _, function), (_, calls, _, cumulative, _) in raw.items():
            if function == name and Path(path).name == module:
                print(f"    {label:<42} {cumulative:6.2f} s  ({calls} calls, "
                      f"{Path(path).parent.name}/{module}:{name})")
    stats.sort_stats("cumulative").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200x5000",
                        help="SITESxJOBS, comma-separated (default 200x5000)")
    parser.add_argument("--horizon", type=int, help="slots (default: the broker's setting)")
    parser.add_argument("--budget-s", type=float,
                        help="the round's budget (default: solver_time_limit_s)")
    parser.add_argument("--spare-sites", type=int,
                        help="spare_sites_per_job (default: the broker's setting)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", type=int, metavar="N", default=0,
                        help="also profile the round and print its stages and top N functions")
    parser.add_argument("--long-budget-s", type=float, metavar="S",
                        help="also solve the same round (the same candidates) with S seconds, "
                        "and give the budget's plan's gap to that round's bound")
    parser.add_argument("--compare-full", action="store_true",
                        help="also solve the round over every site with --long-budget-s, and "
                        "cost every plan as the full round costs it: what the candidates cost")
    args = parser.parse_args()
    settings = Settings(db_url="sqlite://")
    rules = round_rules(settings, DEFAULT_GPUS, default_affinity())
    if args.spare_sites is not None:
        rules = dataclasses.replace(rules, spare_sites=args.spare_sites)
    horizon = args.horizon or settings.horizon_slots
    rules = dataclasses.replace(rules, horizon_slots=horizon)
    budget_s = args.budget_s or settings.solver_time_limit_s
    cp = rules.config.carbon_price_usd_per_t
    print(f"live round (broker.live_round.solve_round), budget {budget_s:g} s, horizon "
          f"{horizon} slots, spare sites {rules.spare_sites}, max sites "
          f"{rules.max_sites or 'none'}, method {rules.config.method}, "
          f"{rules.config.solver.threads} thread(s)")
    for size in args.sizes.split(","):
        n_sites, n_jobs = (int(x) for x in size.lower().split("x"))
        task = live_task(n_sites, n_jobs, horizon, args.seed)
        n_pools = sum(len(s.gpus) for s in task.sites)
        cheap = cheapest_sites(task, cp, OLD_MAX_SITES)
        print(f"{n_sites} sites ({n_pools} pools), {n_jobs} queued jobs "
              f"({n_jobs * n_pools * horizon:,} job x pool x start triples)")
        solved, wall_s = run(rules, task, budget_s)
        print(f"  round: {describe(solved, wall_s, cheap)}")
        print(f"  peak RSS so far {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f}"
              " MiB")
        if args.profile:
            profile(rules, task, budget_s, args.profile)
        if args.long_budget_s:
            compare(rules, task, budget_s, args.long_budget_s, solved, cheap, args.compare_full)


def compare(rules: RoundRules, task: RoundTask, budget_s: float, long_budget_s: float,
            solved: SolvedRound, cheap: set[str], full_too: bool) -> None:
    """The round again with ``long_budget_s``: over its candidates, and over every site
    (``full_too``), every plan then costed as the full round costs it."""
    every = dataclasses.replace(rules, spare_sites=len(task.sites))
    results = {}
    for label, r in (("candidates", rules), ("every site", every))[:2 if full_too else 1]:
        long_rules = dataclasses.replace(r, config=dataclasses.replace(
            r.config, solver=dataclasses.replace(r.config.solver, time_limit_s=long_budget_s)))
        results[label], wall_s = run(long_rules, task, long_budget_s)
        print(f"  {label}, {long_budget_s:g} s budget: "
              f"{describe(results[label], wall_s, cheap)}")
    long = results["candidates"].plan
    if solved.plan is not None and long is not None and np.isfinite(long.bound_usd):
        print(f"  the {budget_s:g} s plan against the candidates' {long_budget_s:g} s bound: "
              f"gap {relative_gap(solved.plan.objective_usd, long.bound_usd):.2%}")
    full = results["every site"].plan if full_too else None
    if solved.plan is None or full is None or not np.isfinite(full.bound_usd):
        return
    fed = live_federation(task.sites, set(task.usable), rules.gpu_catalog, rules.affinity,
                          rules.transfer_gbps)
    offers = round_offers(fed, task.offers, task.now_h, rules.slot_h, rules.horizon_slots)
    full_rp = build_round_problem(fed, offers, task.queue, rules.config)
    print(f"  costed as the full round costs them (its deferral penalties: a job's dearest "
          f"option over every site), against the full round's bound {full.bound_usd:,.2f}:")
    for label, plan in ((f"the {budget_s:g} s plan", solved.plan),
                        (f"the candidates' {long_budget_s:g} s plan", long),
                        (f"the full round's {long_budget_s:g} s plan", full)):
        if plan is None:
            continue
        cost = full_round_cost_usd(fed, offers, full_rp, plan)
        print(f"    {label:<30} {cost:,.2f} USD, gap {relative_gap(cost, full.bound_usd):.2%}")


def full_round_cost_usd(fed: Federation, offers: RoundOffers, full: RoundProblem,
                        plan: Plan) -> float:
    """What ``plan`` costs in the full round's objective. A round over candidate sites prices
    a job's deferral from its own options (the dearest plus a horizon of delay,
    ``broker.costs.waiting_prices``), so its own objective is not comparable."""
    p = full.problem
    demand_of = {job.id: d for d, jobs in enumerate(full.demands) for job in jobs}
    index = {(int(p.option_demand[o]), int(p.option_resource[o]), int(p.option_start[o]),
              int(p.option_gpus[o])): o for o in range(p.n_options)}
    counts = np.zeros(p.n_options, dtype=int)
    for a in plan.assignments:
        key = (demand_of[a.job_id], fed.resource_of(a.site_id, a.gpu_type), a.start_offset,
               a.gpus)
        counts[index[key]] += 1  # a KeyError: an option the full round does not have
    return plan_from_counts(fed, offers, full, counts, "").objective_usd


if __name__ == "__main__":
    main()
