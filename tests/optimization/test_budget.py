"""The deterministic work budget (``SolverOptions``) and the wall-clock safety net.

Every limit that can end a solve counts work, so a solve stopped by its budget gives the same
plan whatever the wall clock allows; the wall clock stops a solve only as a safety net, and a
solve it stopped says so.
"""

from __future__ import annotations

import numpy as np
import pytest

from optimization import SolverOptions, SolveStatus, solve_allocation
from optimization.column_generation import solve_lp_by_columns
from optimization.lp_guided import incumbent_by_diving
from optimization.problem import deferred_of, plan_cost_usd
from optimization.solver import MatrixLP, SafetyNet
from tests.optimization.helpers import assert_feasible, random_problem

# Small enough that none of these stops is proven within gap 0: each budget binds.
TIGHT = dict(mip_gap=0.0, pricing_rounds=2, dive_steps=1, restricted_mips=1, mip_node_limit=1)


def test_a_solve_stopped_by_its_budget_is_the_same_whatever_the_safety_net():
    """The same round, budget and options, with safety nets of 30 s and 600 s, solved twice
    each: one plan, one bound, one status (FEASIBLE: the budget ran out before the proof)."""
    p = random_problem(3, n_demands=80, n_resources=6, n_slots=12, capacity_gpus=(6, 12))
    solutions = [solve_allocation(p, SolverOptions(time_limit_s=limit, **TIGHT), "lp-guided")
                 for limit in (30.0, 600.0, 30.0, 600.0)]
    first = solutions[0]
    assert first.status is SolveStatus.FEASIBLE and not first.wall_clock_hit
    assert_feasible(p, first.option_count, first.deferred_count)
    for other in solutions[1:]:
        assert other.option_count.tolist() == first.option_count.tolist()
        assert (other.objective_usd, other.bound_usd, other.status, other.message) == (
            first.objective_usd, first.bound_usd, first.status, first.message)
        assert not other.wall_clock_hit
    # and a larger budget does better, or proves it
    full = solve_allocation(p, SolverOptions(time_limit_s=600.0, mip_gap=0.01), "lp-guided")
    assert full.objective_usd <= first.objective_usd + 1e-9
    assert full.status is SolveStatus.OPTIMAL


def test_pricing_rounds_bound_column_generation():
    """One pricing round leaves options that price out (the LP is not complete); the default
    200 rounds finish it."""
    p = random_problem(0, n_demands=60, n_resources=6, n_slots=12)
    one = solve_lp_by_columns(p, SolverOptions(pricing_rounds=1), SafetyNet(600.0))
    assert one.priced is not None and not one.priced.complete
    done = solve_lp_by_columns(p, SolverOptions(), SafetyNet(600.0))
    assert done.priced is not None and done.priced.complete
    assert done.priced.objective_usd <= one.priced.objective_usd + 1e-9


@pytest.mark.parametrize("seed", [0, 6, 12])
def test_a_dive_its_budget_ends_keeps_its_last_lp_rounded(seed):
    """A dive stopped after 2 of the 6-9 re-solves it needs returns its last LP rounded: a
    feasible plan costing at least the LP optimum, not nothing; with the default budget the
    same dive ends integral."""
    p = random_problem(seed, n_demands=12, n_resources=3, n_slots=8)
    short = SolverOptions(time_limit_s=60.0, mip_gap=0.0, dive_steps=2)
    relaxation = solve_lp_by_columns(p, short, SafetyNet(60.0))
    assert relaxation.priced is not None and relaxation.priced.complete
    lp_usd = relaxation.priced.objective_usd
    dive = incumbent_by_diving(relaxation.master, relaxation.priced, SafetyNet(60.0))
    assert not dive.finished and dive.option_count is not None
    plan = dive.option_count
    assert_feasible(p, plan, deferred_of(p, plan))
    assert plan_cost_usd(p, plan, deferred_of(p, plan)) >= lp_usd - 1e-9
    whole = solve_lp_by_columns(p, SolverOptions(time_limit_s=60.0, mip_gap=0.0),
                                SafetyNet(60.0))
    assert whole.priced is not None
    assert incumbent_by_diving(whole.master, whole.priced, SafetyNet(60.0)).finished


def knapsack(n: int, lp_options: SolverOptions) -> MatrixLP:
    """max v'x, w'x <= sum(w)/2 + 1/2, x binary: HiGHS needs branching to prove it."""
    rng = np.random.default_rng(1)
    w = rng.integers(1000, 2000, n).astype(float)
    v = w + rng.integers(0, 50, n)
    lp = MatrixLP(lp_options)
    lp.add_rows(np.array([-np.inf]), np.array([w.sum() / 2 + 0.5]))
    lp.add_columns(-v, np.zeros(n), np.ones(n), np.arange(n), np.zeros(n, int), w, integer=True)
    return lp


def test_the_node_limit_stops_a_mip_and_is_not_the_wall_clock():
    stopped = knapsack(40, SolverOptions(mip_gap=0.0, mip_node_limit=1)).solve().result
    proven = knapsack(40, SolverOptions(mip_gap=0.0)).solve().result
    assert proven.status is SolveStatus.OPTIMAL
    assert stopped.status is SolveStatus.FEASIBLE and not stopped.time_limit_hit
    assert stopped.objective >= proven.objective - 1e-9


def test_the_iteration_limit_stops_an_lp_and_is_not_the_wall_clock():
    """A dense 60x60 LP takes more than 5 simplex iterations."""
    rng = np.random.default_rng(0)
    n = 60
    a = rng.uniform(0, 1, (n, n))

    def lp(limit: int) -> MatrixLP:
        m = MatrixLP(SolverOptions(lp_iteration_limit=limit))
        m.add_rows(np.full(n, -np.inf), np.full(n, 5.0))
        m.add_columns(-rng.uniform(1, 2, n), np.zeros(n), np.full(n, 10.0),
                      np.arange(0, n * n, n), np.tile(np.arange(n), n), a.T.reshape(-1))
        return m

    stopped = lp(5).solve().result
    assert stopped.status is not SolveStatus.OPTIMAL and not stopped.time_limit_hit
    assert lp(1_000_000).solve().result.status is SolveStatus.OPTIMAL


def test_a_solve_the_safety_net_stopped_says_so():
    """2,000 demands and 270,000 options cannot be solved in 50 ms: the plan is the best so far
    (feasible), and it is marked as depending on the wall clock."""
    p = random_problem(7, n_demands=2_000, n_resources=8, n_slots=24, capacity_gpus=(30, 60))
    solution = solve_allocation(p, SolverOptions(time_limit_s=0.05), "lp-guided")
    assert solution.wall_clock_hit and "wall-clock safety net" in solution.message
    assert_feasible(p, solution.option_count, solution.deferred_count)
    net = SafetyNet(600.0)
    assert not net.expired() and not net.hit


@pytest.mark.parametrize("field", ["lp_iteration_limit", "mip_node_limit", "pricing_rounds",
                                   "dive_steps", "restricted_mips"])
def test_budgets_must_be_positive(field):
    with pytest.raises(ValueError, match=field):
        SolverOptions(**{field: 0})
