"""Anytime: a round with thousands of distinct demands and a short time limit still returns a
feasible plan that assigns jobs, with a status and a gap that agree with each other."""

from __future__ import annotations

import numpy as np
import pytest

from optimization import SolverOptions, SolveStatus, greedy_allocation, solve_allocation
from optimization.allocation_matrix import allocation_matrix
from optimization.problem import deferred_of, plan_cost_usd, trivial_lower_bound
from tests.optimization.helpers import assert_feasible, random_problem


def big_round(carbon_cap_kg: float | None = None):
    """2,000 distinct demands (one job each, or two), 8 pools of 30-60 free GPUs, 24 slots:
    ~270,000 options; capacity for about two thirds of the GPU-slots asked for."""
    return random_problem(7, n_demands=2_000, n_resources=8, n_slots=24,
                          carbon_cap_kg=carbon_cap_kg, capacity_gpus=(30, 60))


@pytest.mark.parametrize("cap", [False, True])
def test_big_round_returns_a_feasible_plan_within_a_short_limit(cap):
    p = big_round()
    if cap:  # 70% of what the greedy plan emits: reachable, and it binds
        greedy = greedy_allocation(p)
        p = big_round(carbon_cap_kg=0.7 * float(p.option_carbon_kg @ greedy))
    assert p.n_demands >= 2_000 and p.n_options > 200_000
    options = SolverOptions(time_limit_s=2.0, mip_gap=0.01, threads=1)
    solution = solve_allocation(p, options, method="lp-guided")
    assert solution.status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)
    assert_feasible(p, solution.option_count, solution.deferred_count)
    assert solution.option_count.sum() > 0  # it assigns jobs
    assert solution.objective_usd < p.deferral_penalty_usd @ p.demand_count
    # the reported figures are the plan's own, and the status agrees with the gap
    assert solution.objective_usd == pytest.approx(
        plan_cost_usd(p, solution.option_count, solution.deferred_count), rel=1e-12)
    assert (solution.deferred_count == deferred_of(p, solution.option_count)).all()
    assert trivial_lower_bound(p) <= solution.bound_usd <= solution.objective_usd + 1e-6
    if solution.status is SolveStatus.OPTIMAL:
        assert solution.gap <= options.mip_gap
    else:
        assert solution.gap > options.mip_gap
    greedy = greedy_allocation(p)
    assert solution.objective_usd <= plan_cost_usd(p, greedy, deferred_of(p, greedy)) + 1e-6


@pytest.mark.parametrize("limit_s", [0.02, 0.2])
def test_bound_is_below_the_lp_optimum_when_stopped_early(limit_s):
    """A bound reported under a tight limit is a real lower bound: at most the LP optimum over
    all options (itself at most the MILP optimum), and the plan costs at least that much."""
    p = random_problem(3, n_demands=300, n_resources=6, n_slots=12, capacity_gpus=(10, 20))
    lp = allocation_matrix(p).new_lp(SolverOptions(30, 0.0)).solve().result
    assert lp.status is SolveStatus.OPTIMAL
    rushed = solve_allocation(p, SolverOptions(time_limit_s=limit_s, mip_gap=0.0), "lp-guided")
    assert np.isfinite(rushed.bound_usd)
    assert rushed.bound_usd <= lp.objective * (1 + 1e-9)
    assert rushed.objective_usd >= lp.objective * (1 - 1e-9)
    assert_feasible(p, rushed.option_count, rushed.deferred_count)


def test_no_time_for_an_lp_returns_the_greedy_plan_by_hand():
    """The two-job round of test_allocation (one GPU, two slots; job 0 costs 1 or 2, job 1
    costs 1 or 5, deferring 100 each) with a microsecond budget: the greedy plan takes job 0
    to slot 0 (tie on saving density, first demand first) and job 1 to slot 1: 1 + 5 = 6.
    The bound is the trivial one, each job on its cheapest option: 1 + 1 = 2; gap 4/6."""
    from tests.optimization.test_allocation import problem

    p = problem()
    solution = solve_allocation(p, SolverOptions(time_limit_s=1e-6, mip_gap=0.01), "lp-guided")
    assert solution.option_count.tolist() == [1, 0, 0, 1]
    assert solution.objective_usd == pytest.approx(6.0)
    assert solution.bound_usd == pytest.approx(2.0)
    assert solution.gap == pytest.approx(4.0 / 6.0)
    assert solution.status is SolveStatus.FEASIBLE
