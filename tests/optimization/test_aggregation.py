"""Aggregation of near-identical demands: OPT_agg <= OPT <= OPT_agg + sum_j count_j delta_j.

The tiny instances' optima are worked out by hand in each test's comment; costs sit in the
energy part (carbon price 0), one option per listed (demand, resource, start, slots, gpus,
cost).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from broker.federation import Federation
from broker.jobs import Job
from broker.offers import RoundOffers
from broker.planner import PlannerConfig, build_round_problem
from broker.workload import SyntheticWorkload
from optimization import AllocationProblem, SolverOptions, solve_allocation
from optimization.aggregation import (
    ASSIGNMENT_MAX_JOBS,
    Aggregation,
    aggregate,
    disaggregate,
    original_bound,
)
from optimization.allocation_matrix import AllocationLayout
from optimization.column_generation import solve_lp_by_columns
from optimization.problem import deferred_of, plan_cost_usd
from optimization.solver import SafetyNet
from sites import DEFAULT_GPUS, SiteSpec, SyntheticDiurnal, default_affinity
from tests.optimization.helpers import assert_feasible, random_problem

EXACT = SolverOptions(time_limit_s=60.0, mip_gap=0.0, threads=1)
TOL = 1e-9


def problem(capacity, count, penalty, options, carbon=None, carbon_cap_kg=None):
    """An AllocationProblem from per-option tuples (demand, resource, start, slots, gpus,
    cost); ``capacity`` is (resources, slots) free GPUs."""
    d, r, t, s, g, c = (np.array(column) for column in zip(*options, strict=True))
    n = len(d)
    return AllocationProblem(
        capacity_gpus=np.array(capacity, float), demand_count=np.array(count),
        deferral_penalty_usd=np.array(penalty, float), option_demand=d, option_resource=r,
        option_start=t, option_slots=s, option_gpus=g, option_energy_kwh=np.zeros(n),
        option_energy_cost_usd=c.astype(float),
        option_carbon_kg=np.zeros(n) if carbon is None else np.array(carbon, float),
        option_transfer_cost_usd=np.zeros(n), option_delay_cost_usd=np.zeros(n),
        carbon_cap_kg=carbon_cap_kg)


def optimum(p: AllocationProblem) -> float:
    solution = solve_allocation(p, EXACT)
    assert solution.gap <= 1e-9
    return solution.objective_usd


def optimal_plan(p: AllocationProblem) -> np.ndarray:
    return solve_allocation(p, EXACT).option_count


def lp_optimum(p: AllocationProblem) -> tuple[float, np.ndarray]:
    relaxation = solve_lp_by_columns(p, EXACT, SafetyNet(60.0))
    assert relaxation.priced is not None and relaxation.priced.complete
    return relaxation.priced.objective_usd, relaxation.priced.row_duals


def two_jobs(capacity: float, costs=(1.0, 1.5), penalties=(10.0, 10.0)) -> AllocationProblem:
    """One resource, one slot; two single jobs with one option each on it."""
    return problem([[capacity]], [1, 1], penalties,
                   [(0, 0, 0, 1, 1, costs[0]), (1, 0, 0, 1, 1, costs[1])])


def test_room_for_both_is_tight():
    # Merged (costs 1.0 and 1.5 within 0.5): one demand of 2 jobs at min cost 1.0.
    # Aggregated optimum: both run, 2 x 1.0 = 2.0. Original: both run, 1.0 + 1.5 = 2.5.
    # delta = (0, 0.5): bound 0.5, met exactly. (A mean-cost representative gives 2.5.)
    p = two_jobs(capacity=2)
    agg = aggregate(p, 0.5)
    assert agg.problem.n_demands == 1 and list(agg.problem.demand_count) == [2]
    assert agg.delta_usd == pytest.approx([0.0, 0.5])
    assert optimum(agg.problem) == pytest.approx(2.0)
    assert optimum(p) == pytest.approx(2.5)
    assert optimum(p) == pytest.approx(optimum(agg.problem) + agg.bound_usd)
    plan = disaggregate(agg, optimal_plan(agg.problem))
    assert plan.aggregated_cost_usd == pytest.approx(2.0)
    assert plan.cost_usd == pytest.approx(2.5)


def test_room_for_one_hands_it_to_the_cheaper_member():
    # Capacity 1, d0 costs 1.5 and d1 1.0: aggregated 1.0 + defer 10 = 11.0; original d1
    # runs, d0 defers: 11.0 (the other way 11.5). The bound 0.5 is not met; the split picks
    # d1, so the plan is optimal. (A representative priced at the mean, 11.25, or at the
    # first member, 11.5, is not a lower bound.)
    p = two_jobs(capacity=1, costs=(1.5, 1.0))
    agg = aggregate(p, 0.5)
    assert optimum(agg.problem) == pytest.approx(11.0)
    assert optimum(p) == pytest.approx(11.0)
    assert agg.bound_usd == pytest.approx(0.5)
    plan = disaggregate(agg, optimal_plan(agg.problem))
    assert plan.cost_usd == pytest.approx(11.0)
    assert list(plan.option_count) == [0, 1] and list(plan.deferred_count) == [1, 0]


def test_large_clusters_split_greedily_within_the_bound():
    # 150 jobs at 1.0 and 150 at 1.2 (penalty 10), 200 GPUs: 300 jobs, more than an exact
    # split handles (ASSIGNMENT_MAX_JOBS). Aggregated: 200 x 1.0 + 100 x 10 = 1200. Original:
    # d0's 150 and 50 of d1 run, 100 of d1 defer: 150 + 60 + 1000 = 1210, which the greedy
    # split finds; bound 150 x 0.2 = 30.
    p = problem([[200]], [150, 150], [10.0, 10.0], [(0, 0, 0, 1, 1, 1.0), (1, 0, 0, 1, 1, 1.2)])
    agg = aggregate(p, 0.2)
    assert sum(p.demand_count) > ASSIGNMENT_MAX_JOBS
    assert optimum(agg.problem) == pytest.approx(1200.0)
    assert optimum(p) == pytest.approx(1210.0)
    assert agg.bound_usd == pytest.approx(30.0)
    plan = disaggregate(agg, optimal_plan(agg.problem))
    assert_feasible(p, plan.option_count, plan.deferred_count)
    assert list(plan.option_count) == [150, 50]
    assert plan.cost_usd == pytest.approx(1210.0)


def test_penalty_difference_is_in_the_bound_and_tight():
    # No capacity: everyone defers. Costs equal, penalties 5 and 5.4 (within 0.5):
    # aggregated 2 x 5 = 10, original 5 + 5.4 = 10.4, delta = (0, 0.4): bound 0.4, met.
    p = two_jobs(capacity=0, costs=(1.0, 1.0), penalties=(5.0, 5.4))
    agg = aggregate(p, 0.5)
    assert agg.problem.n_demands == 1
    assert list(agg.problem.deferral_penalty_usd) == [5.0]
    assert optimum(agg.problem) == pytest.approx(10.0)
    assert optimum(p) == pytest.approx(10.4)
    assert agg.bound_usd == pytest.approx(0.4)
    assert optimum(p) <= optimum(agg.problem) + agg.bound_usd + TOL
    assert disaggregate(agg, optimal_plan(agg.problem)).cost_usd == pytest.approx(10.4)


def test_beyond_the_tolerance_nothing_merges():
    p = two_jobs(capacity=1)
    agg = aggregate(p, 0.4999)  # the costs differ by 0.5
    assert agg.problem.n_demands == 2 and agg.bound_usd == 0.0
    assert optimum(agg.problem) == pytest.approx(optimum(p))


def test_overlapping_runs_over_three_slots():
    # One resource with 1 GPU in each of 3 slots. d0, d1: 2-slot runs starting at 0 or 1
    # (d0 costs 1.0 / 2.0, penalty 6; d1 1.2 / 2.1, penalty 6.3); d2: a 1-slot run at 2 (0.5,
    # penalty 3). Runs at 0 and 1 share slot 1, runs at 1 and 2 share slot 2.
    # Tolerance 0.3 merges d0 and d1: costs 1.0 / 2.0, penalty 6, count 2; d2 stays apart.
    # Aggregated optimum: one at 0 + d2 + one deferred = 1.0 + 0.5 + 6 = 7.5.
    # Original optimum: d1 at 0, d0 deferred, d2: 1.2 + 6 + 0.5 = 7.7 (d0 at 0: 7.8).
    # delta = (0, max(0.2, 0.1, 0.3)) = (0, 0.3): 7.5 <= 7.7 <= 7.8.
    p = problem([[1, 1, 1]], [1, 1, 1], [6.0, 6.3, 3.0], [
        (0, 0, 0, 2, 1, 1.0), (0, 0, 1, 2, 1, 2.0),
        (1, 0, 0, 2, 1, 1.2), (1, 0, 1, 2, 1, 2.1),
        (2, 0, 2, 1, 1, 0.5)])
    agg = aggregate(p, 0.3)
    assert list(agg.group_of) == [0, 0, 1]
    assert agg.delta_usd == pytest.approx([0.0, 0.3, 0.0])
    assert optimum(agg.problem) == pytest.approx(7.5)
    assert optimum(p) == pytest.approx(7.7)
    assert optimum(agg.problem) + agg.bound_usd == pytest.approx(7.8)
    plan = disaggregate(agg, optimal_plan(agg.problem))
    assert_feasible(p, plan.option_count, plan.deferred_count)
    assert plan.cost_usd == pytest.approx(7.7)  # the split defers d0, the cheaper to defer
    # the original optimum, aggregated, is a plan of the aggregated problem costing no more
    lifted = agg.aggregate_plan(optimal_plan(p))
    assert plan_cost_usd(agg.problem, lifted, deferred_of(agg.problem, lifted)) <= 7.7 + TOL


def test_costs_above_the_penalty_are_not_compared():
    # d0 and d1 differ only on an option dearer than deferring (30 vs 50, penalty 10): at
    # tolerance 0 they merge with delta 0, and nothing changes: 1 + 10 = 11 either way.
    p = problem([[1], [1]], [1, 1], [10.0, 10.0], [
        (0, 0, 0, 1, 1, 1.0), (0, 1, 0, 1, 1, 30.0),
        (1, 0, 0, 1, 1, 1.0), (1, 1, 0, 1, 1, 50.0)])
    agg = aggregate(p, 0.0)
    assert agg.problem.n_demands == 1 and agg.bound_usd == 0.0
    assert optimum(agg.problem) == pytest.approx(11.0) == optimum(p)


@pytest.mark.parametrize(
    "other",
    [
        (1, 0, 0, 1, 2, 1.0),  # 2 GPUs instead of 1
        (1, 1, 0, 1, 1, 1.0),  # another resource
        (1, 0, 1, 1, 1, 1.0),  # another start
        (1, 0, 0, 2, 1, 1.0),  # a longer run
    ],
)
def test_different_footprints_never_merge(other):
    p = problem([[2, 2], [2, 2]], [1, 1], [10.0, 10.0], [(0, 0, 0, 1, 1, 1.0), other])
    assert aggregate(p, 1e9).problem.n_demands == 2


def test_different_option_counts_never_merge():
    p = problem([[2, 2]], [1, 1], [10.0, 10.0], [
        (0, 0, 0, 1, 1, 1.0), (0, 0, 1, 1, 1, 1.0), (1, 0, 0, 1, 1, 1.0)])
    assert aggregate(p, 1e9).problem.n_demands == 2


def test_emissions_are_footprint_under_a_cap_only():
    options = [(0, 0, 0, 1, 1, 1.0), (1, 0, 0, 1, 1, 1.0)]
    p = problem([[2]], [1, 1], [10.0, 10.0], options, carbon=[1.0, 2.0])
    assert aggregate(p, 0.0).problem.n_demands == 1
    capped = problem([[2]], [1, 1], [10.0, 10.0], options, carbon=[1.0, 2.0], carbon_cap_kg=2.5)
    assert aggregate(capped, 1e9).problem.n_demands == 2


def duplicated(p: AllocationProblem, copies: np.ndarray) -> AllocationProblem:
    """``p`` with demands ``copies`` repeated as new demands (same options, costs, penalty),
    options still listed demand by demand."""
    demands = np.concatenate([np.arange(p.n_demands), copies])
    parts = [np.flatnonzero(p.option_demand == d) for d in demands]
    take = np.concatenate(parts)
    new_demand = np.repeat(np.arange(len(demands)), [len(x) for x in parts])
    per_option = {f.name: getattr(p, f.name)[take] for f in dataclasses.fields(p)
                  if f.name.startswith("option_")}
    per_option["option_demand"] = new_demand
    return dataclasses.replace(p, demand_count=p.demand_count[demands],
                               deferral_penalty_usd=p.deferral_penalty_usd[demands],
                               **per_option)


@pytest.mark.parametrize("cap", [None, 60.0])
def test_tolerance_zero_merges_only_copies_and_changes_nothing(cap):
    base = random_problem(3, n_demands=8, carbon_cap_kg=cap)
    copies = np.array([1, 4, 4])
    p = duplicated(base, copies)
    agg = aggregate(p, 0.0)
    assert agg.problem.n_demands == base.n_demands
    assert list(agg.group_of) == [*range(8), 1, 4, 4]
    assert agg.bound_usd == 0.0
    assert list(agg.problem.demand_count) == list(
        base.demand_count + np.bincount(copies, weights=base.demand_count[copies], minlength=8))
    best = optimum(p)
    assert optimum(agg.problem) == pytest.approx(best, abs=1e-7)
    plan = disaggregate(agg, optimal_plan(agg.problem))
    assert_feasible(p, plan.option_count, plan.deferred_count)
    assert plan.cost_usd == pytest.approx(plan.aggregated_cost_usd, abs=1e-9)
    assert plan.cost_usd == pytest.approx(best, abs=1e-7)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="tolerance_usd must be >= 0"):
        aggregate(two_jobs(1), -0.1)
    agg = aggregate(two_jobs(1), 0.5)  # one aggregated demand of 2 jobs, one option
    with pytest.raises(ValueError, match=r"option_count has shape \(2,\), expected \(1,\)"):
        disaggregate(agg, np.array([1, 0]))
    with pytest.raises(ValueError, match="at most its count of jobs"):
        disaggregate(agg, np.array([3]))


def planner_round(n_jobs: int = 30, n_sites: int = 2, horizon: int = 6, seed: int = 1):
    """A backlog round built by the planner, capacity binding (as bench/allocation.py's)."""
    rng = np.random.default_rng(seed)
    affinity = default_affinity()
    sites = [SiteSpec(f"s{i}", f"z{i}", {"K80": 4, "P100": 4, "V100": 4}, pue=1.2 + 0.1 * i,
                      egress_usd_per_gb=0.02) for i in range(n_sites)]
    # two job types, 1 or 2 GPUs, runs of 1 to 3 h: many jobs share a footprint
    workload = SyntheticWorkload(jobs_per_hour=4.0, job_types=affinity.job_types[:2],
                                 gpu_counts=(1, 2), gpu_count_weights=(0.8, 0.2),
                                 median_runtime_h=1.5, runtime_sigma=0.4, max_runtime_h=3.0,
                                 deadline_fraction=0.0, median_dataset_gb=0.5)
    jobs: list[Job] = []
    while len(jobs) < n_jobs:
        jobs += workload.generate(sites, affinity, 24.0, rng)
    jobs = [dataclasses.replace(j, submit_h=0.0) for j in jobs[:n_jobs]]
    federation = Federation(tuple(sites), DEFAULT_GPUS, affinity)
    start = pd.Timestamp("2023-06-05", tz="UTC")
    carbon = np.vstack([SyntheticDiurnal(mean=100.0 + 200 * i, amplitude=50.0,
                                         noise_sd=0.05).hourly(start, horizon, rng)
                        for i in range(n_sites)])
    price = np.vstack([SyntheticDiurnal(mean=50.0 + 10 * i, amplitude=20.0,
                                        noise_sd=0.1).hourly(start, horizon, rng)
                       for i in range(n_sites)])
    free = np.full((len(federation.resources), horizon), 2)
    offers = RoundOffers(0.0, 1.0, free, price, carbon)
    config = PlannerConfig(carbon_price_usd_per_t=100.0, delay_cost_usd_per_gpu_h=0.005,
                           solver=EXACT)
    return build_round_problem(federation, offers, jobs, config).problem


def test_planner_round_within_the_proven_bound():
    p = planner_round()
    agg = aggregate(p, 0.05)
    a = agg.problem
    assert a.n_demands < p.n_demands and agg.bound_usd > 0
    best, best_agg = assert_within_the_proven_bound(p, agg)
    assert best_agg < best  # the aggregation changed something: the bound is not vacuous


def assert_within_the_proven_bound(p: AllocationProblem, agg: Aggregation) -> tuple[float, float]:
    """MILP: OPT_agg <= OPT <= OPT_agg + bound, and the disaggregated plan in between; LP: the
    same sandwich, and the original's Lagrangian bound at the aggregated duals between the
    aggregated LP and the original LP. Returns (OPT, OPT_agg)."""
    a = agg.problem
    best, best_agg = optimum(p), optimum(a)
    assert best_agg <= best + 1e-7 <= best_agg + agg.bound_usd + 2e-7
    plan = disaggregate(agg, optimal_plan(a))
    assert_feasible(p, plan.option_count, plan.deferred_count)
    assert best - 1e-7 <= plan.cost_usd <= best_agg + agg.bound_usd + 1e-7
    lp, _ = lp_optimum(p)
    lp_agg, duals = lp_optimum(a)
    assert lp_agg <= lp + 1e-7 <= lp_agg + agg.bound_usd + 2e-7
    assert lp_agg - 1e-7 <= original_bound(agg, AllocationLayout(a), duals) <= lp + 1e-7
    return best, best_agg


def perturbed_copies() -> AllocationProblem:
    """random_problem(5) under a binding cap with demands 0, 2, 2, 5 copied, every copy's cost
    raised by up to 0.3 and its penalty by up to 0.2 (emissions equal)."""
    base = random_problem(5, n_demands=8, carbon_cap_kg=20.0)
    p = duplicated(base, np.array([0, 2, 2, 5]))
    rng = np.random.default_rng(0)
    copy = p.option_demand >= base.n_demands
    raised = p.option_energy_cost_usd + np.where(copy, rng.uniform(0, 0.3, p.n_options), 0)
    penalty = p.deferral_penalty_usd + np.r_[np.zeros(8), [0.2, 0.0, 0.1, 0.2]]
    return dataclasses.replace(p, option_energy_cost_usd=raised, deferral_penalty_usd=penalty)


def test_perturbed_copies_under_a_cap_stay_within_the_bound():
    # Copies of some demands with every cost raised by up to 0.3 and the penalty by 0.2
    # (emissions equal: the cap's row sees the same footprint), aggregated at 0.3.
    p = perturbed_copies()
    agg = aggregate(p, 0.3)
    a = agg.problem
    assert a.n_demands == 8 and agg.bound_usd > 0
    assert agg.delta_usd.max() <= 0.3 + TOL
    assert_within_the_proven_bound(p, agg)


def test_options_in_any_order():
    # The planner may list options out of demand order (interrupted runs come last): with the
    # options shuffled, each maps to an aggregated option of its footprint and of no greater
    # cost, and aggregation, optimum and disaggregated plan are the same.
    p = perturbed_copies()
    order = np.random.default_rng(1).permutation(p.n_options)
    shuffled = dataclasses.replace(p, **{f.name: getattr(p, f.name)[order]
                                         for f in dataclasses.fields(p)
                                         if f.name.startswith("option_")})
    results = []
    for q in (p, shuffled):
        agg = aggregate(q, 0.3)
        a, at = agg.problem, agg.option_map
        for name in ("option_resource", "option_start", "option_slots", "option_gpus",
                     "option_carbon_kg"):
            assert (getattr(a, name)[at] == getattr(q, name)).all()
        assert (a.option_demand[at] == agg.group_of[q.option_demand]).all()
        assert (a.option_cost_usd[at] <= q.option_cost_usd).all()
        plan = disaggregate(agg, optimal_plan(a))
        assert_feasible(q, plan.option_count, plan.deferred_count)
        results.append((list(agg.group_of), agg.bound_usd, plan.cost_usd,
                        plan.aggregated_cost_usd))
    assert results[0][0] == results[1][0] == [*range(8), 0, 2, 2, 5]
    assert results[0][1:] == pytest.approx(results[1][1:])


def test_lp_guided_with_a_tolerance_solves_the_aggregated_round_and_keeps_a_proof():
    """``SolverOptions.aggregate_tolerance_usd``: lp-guided solves the 8-demand aggregate of the
    12 perturbed copies, hands the jobs back (a feasible plan) and reports a bound that is
    still below the original round's optimum; the plan costs at least that optimum and at
    most the aggregate's optimum plus the proven bound. A round of distinct demands (aggregated
    by no more than AGGREGATION_WORTH) is solved as it is."""
    p = perturbed_copies()
    agg = aggregate(p, 0.3)
    options = SolverOptions(time_limit_s=60.0, mip_gap=0.0, aggregate_tolerance_usd=0.3)
    solution = solve_allocation(p, options, "lp-guided")
    assert "12 demands aggregated into 8" in solution.message
    assert_feasible(p, solution.option_count, solution.deferred_count)
    best = optimum(p)
    assert solution.bound_usd <= best + 1e-7
    assert best - 1e-7 <= solution.objective_usd <= optimum(agg.problem) + agg.bound_usd + 1e-7
    distinct = random_problem(5, n_demands=8, carbon_cap_kg=20.0)
    alone = solve_allocation(distinct, options, "lp-guided")
    assert "aggregated" not in alone.message
    assert alone.objective_usd == pytest.approx(optimum(distinct), abs=1e-7)


def test_a_negative_tolerance_is_refused():
    with pytest.raises(ValueError, match="aggregate_tolerance_usd must be >= 0"):
        SolverOptions(aggregate_tolerance_usd=-0.1)
