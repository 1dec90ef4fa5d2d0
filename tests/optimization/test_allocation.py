"""The allocation MILP at the array level: hand-solved instances and the two solution methods."""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo
import pytest

from optimization import (
    AllocationProblem,
    SolverOptions,
    SolveStatus,
    greedy_allocation,
    solve_allocation,
)
from optimization.allocation import build_allocation_model
from optimization.allocation_matrix import AllocationLayout, allocation_matrix
from optimization.column_generation import solve_lp_by_columns
from optimization.problem import deferred_of, plan_cost_usd
from optimization.solver import SafetyNet, solve_model
from tests.optimization.helpers import assert_feasible, random_problem

EXACT = SolverOptions(time_limit_s=30.0, mip_gap=0.0, threads=1)


def problem(**overrides) -> AllocationProblem:
    """Two 1-GPU jobs, one pool with 1 GPU, two slots; each job can start in slot 0 or 1.

    Costs (USD): job 0 at slot 0 = 1, at slot 1 = 2; job 1 at slot 0 = 1, at slot 1 = 5.
    Both want slot 0; capacity binds. Best: job 1 at 0 (1) + job 0 at 1 (2) = 3
    (the other way round costs 1 + 5 = 6; deferring costs 100 each).
    """
    fields = dict(
        capacity_gpus=np.array([[1.0, 1.0]]),
        demand_count=np.array([1, 1]),
        deferral_penalty_usd=np.array([100.0, 100.0]),
        option_demand=np.array([0, 0, 1, 1]),
        option_resource=np.zeros(4, int),
        option_start=np.array([0, 1, 0, 1]),
        option_slots=np.ones(4, int),
        option_gpus=np.ones(4, int),
        option_energy_kwh=np.ones(4),
        option_energy_cost_usd=np.array([1.0, 2.0, 1.0, 5.0]),
        option_carbon_kg=np.array([4.0, 1.0, 4.0, 1.0]),
        option_transfer_cost_usd=np.zeros(4),
        option_delay_cost_usd=np.zeros(4),
    )
    fields.update(overrides)
    return AllocationProblem(**fields)


@pytest.mark.parametrize("method", ["full", "lp-guided"])
def test_capacity_binds_hand_solved(method):
    solution = solve_allocation(problem(), EXACT, method=method)
    assert solution.option_count.tolist() == [0, 1, 1, 0]
    assert solution.deferred_count.tolist() == [0, 0]
    assert solution.objective_usd == pytest.approx(3.0)
    assert solution.cost_breakdown_usd["energy_cost_usd"] == pytest.approx(3.0)
    assert solution.cost_breakdown_usd["carbon_kg"] == pytest.approx(5.0)


@pytest.mark.parametrize("method", ["full", "lp-guided"])
def test_carbon_cap_forces_cleaner_and_dearer_plan(method):
    """Cap the round at 2.5 kg. Slot-0 options emit 4 kg, slot-1 options 1 kg, and slot 1 has
    one GPU: only one job fits under the cap (two slot-1 runs would need 2 GPUs in slot 1).
    Feasible plans: one job at slot 1 and the other deferred: job 0 at 1 + defer job 1
    = 2 + 100 = 102, or job 1 at 1 + defer job 0 = 5 + 100 = 105. Optimum 102."""
    solution = solve_allocation(problem(carbon_cap_kg=2.5), EXACT, method=method)
    assert solution.option_count.tolist() == [0, 1, 0, 0]
    assert solution.deferred_count.tolist() == [0, 1]
    assert solution.objective_usd == pytest.approx(102.0)


def test_model_is_sparse_and_named():
    """Capacity rows exist only for (pool, slot) cells some option occupies."""
    p = problem(capacity_gpus=np.ones((3, 10)))  # 30 cells, 2 used
    m = build_allocation_model(p)
    assert len(m.gpu_capacity_limit) == 2
    assert len(m.job_assignment_balance) == 2
    for name in ("energy_kwh", "carbon_kg", "energy_cost_usd", "carbon_cost_usd",
                 "transfer_cost_usd", "delay_cost_usd", "deferral_cost_usd"):
        assert isinstance(getattr(m, name), pyo.Expression)


@pytest.mark.parametrize("seed", range(6))
def test_lp_guided_reaches_the_pyomo_optimum(seed):
    p = random_problem(seed)
    full = solve_allocation(p, EXACT, method="full")
    guided = solve_allocation(p, EXACT, method="lp-guided")
    assert full.status == guided.status == "optimal"
    assert guided.status is SolveStatus.OPTIMAL  # an enum that compares equal to its string
    assert guided.objective_usd == pytest.approx(full.objective_usd, rel=1e-7)
    # the guided plan is feasible in its own right
    assert_feasible(p, guided.option_count, guided.deferred_count)


@pytest.mark.parametrize("seed", range(3))
def test_matrix_lp_equals_pyomo_lp_relaxation_and_column_generation(seed):
    p = random_problem(seed)
    pyomo_lp = solve_model(build_allocation_model(p), EXACT, relax_integrality=True)
    matrix_lp = allocation_matrix(p).new_lp(EXACT).solve().result
    generated = solve_lp_by_columns(p, EXACT, SafetyNet(EXACT.time_limit_s))
    assert generated.priced is not None and generated.priced.complete
    assert matrix_lp.objective == pytest.approx(pyomo_lp.objective, rel=1e-9)
    assert generated.priced.objective_usd == pytest.approx(pyomo_lp.objective, rel=1e-9)
    assert generated.bound_usd == pytest.approx(pyomo_lp.objective, rel=1e-9)


def test_full_lp_bounds_each_option_by_its_demand_count_and_the_master_does_not():
    """The full LP states x_o <= count_d(o) (dual simplex is ~4x faster on the 1000x12x24
    round with it); the column-generation master, whose row duals the market reads, leaves
    options unbounded. The test above holds the full LP's optimum equal to Pyomo's."""
    p = random_problem(0)
    assert (p.demand_count > 1).any()  # the bound is a count, not a constant 1
    full = allocation_matrix(p)
    np.testing.assert_array_equal(full.col_upper[p.n_demands:],
                                  p.demand_count[p.option_demand])
    np.testing.assert_array_equal(full.col_upper[: p.n_demands], p.demand_count)
    master = AllocationLayout(p).option_columns(np.arange(p.n_options))
    assert np.isinf(master.upper).all()


def test_time_limit_keeps_a_feasible_plan_or_defers():
    p = random_problem(0, n_demands=60, n_resources=6, n_slots=12)
    for method in ("full", "lp-guided"):
        solution = solve_allocation(p, SolverOptions(time_limit_s=0.01, mip_gap=0.0), method)
        assert solution.status in ("optimal", "feasible")
        assert_feasible(p, solution.option_count, solution.deferred_count)
        greedy = greedy_allocation(p)
        assert solution.objective_usd <= plan_cost_usd(p, greedy, deferred_of(p, greedy)) + 1e-9


def test_empty_round():
    p = problem(**{k: np.zeros(0, int if k in ("option_demand", "option_resource",
                                                 "option_start", "option_slots",
                                                 "option_gpus") else float)
                   for k in ("option_demand", "option_resource", "option_start",
                             "option_slots", "option_gpus", "option_energy_kwh",
                             "option_energy_cost_usd", "option_carbon_kg",
                             "option_transfer_cost_usd", "option_delay_cost_usd")})
    solution = solve_allocation(p, EXACT)
    assert solution.deferred_count.tolist() == [1, 1]
    assert solution.objective_usd == pytest.approx(200.0)


@pytest.mark.parametrize("seed", range(6))
def test_lp_guided_meets_a_carbon_cap_at_the_pyomo_optimum(seed):
    """Random capped rounds, the cap at 60% of the uncapped plan's emissions (reachable: the
    all-deferred plan emits nothing). lp-guided must reach the full model's optimum (both
    proven with gap 0), keep the cap, and not defer everything."""
    uncapped = solve_allocation(random_problem(seed), EXACT, method="full")
    cap = 0.6 * uncapped.cost_breakdown_usd["carbon_kg"]
    p = random_problem(seed, carbon_cap_kg=cap)
    full = solve_allocation(p, EXACT, method="full")
    guided = solve_allocation(p, EXACT, method="lp-guided")
    assert full.status == guided.status == "optimal"
    assert guided.objective_usd == pytest.approx(full.objective_usd, rel=1e-7)
    assert guided.cost_breakdown_usd["carbon_kg"] <= cap + 1e-9
    assert guided.objective_usd > uncapped.objective_usd  # the cap binds
    assert guided.option_count.sum() > 0
    assert_feasible(p, guided.option_count, guided.deferred_count)


def test_solution_keeps_the_solver_message():
    p = random_problem(0, n_demands=60, n_resources=6, n_slots=12)
    solution = solve_allocation(p, SolverOptions(time_limit_s=0.01, mip_gap=0.0), "full")
    assert solution.message  # HiGHS's words, or why the greedy plan was kept
