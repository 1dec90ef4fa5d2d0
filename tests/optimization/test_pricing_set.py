"""Reduced-cost fixing towards a proof (lp_guided.pricing_set) on a round solved by hand."""

from __future__ import annotations

import numpy as np
import pytest

from optimization import AllocationProblem, SolverOptions, SolveStatus, solve_allocation
from optimization.column_generation import solve_lp_by_columns
from optimization.lp_guided import PROOF_MARGIN, pricing_set
from optimization.solver import SafetyNet


def two_jobs_one_scarce_pool() -> AllocationProblem:
    """Jobs A and B (2 GPUs each, one slot, deferring costs 100) and three pools of 3 GPUs.

    options: 0 A on pool 0, cost 1;  1 A on pool 1, cost 3;  2 A on pool 2, cost 9;
             3 B on pool 0, cost 1;  4 B on pool 1, cost 4.
    Pool 0 holds one job. By hand: the MILP optimum is A on pool 1, B on pool 0: 3 + 1 = 4
    (the other way costs 1 + 4 = 5). The LP shares pool 0: x0 = x1 = 1/2, x3 = 1, cost 3;
    its duals y_A = 3 (x1 basic), mu_0 = -1 (x0 basic: 1 - 3 - 2 mu_0 = 0), y_B = 3 (x3
    basic), so the reduced costs are rc = (0, 0, 9 - 3 = 6, 0, 4 - 3 = 1).
    """
    n = 5
    return AllocationProblem(
        capacity_gpus=np.full((3, 1), 3.0),
        demand_count=np.array([1, 1]),
        deferral_penalty_usd=np.array([100.0, 100.0]),
        option_demand=np.array([0, 0, 0, 1, 1]),
        option_resource=np.array([0, 1, 2, 0, 1]),
        option_start=np.zeros(n, int),
        option_slots=np.ones(n, int),
        option_gpus=np.full(n, 2),
        option_energy_kwh=np.zeros(n),
        option_energy_cost_usd=np.array([1.0, 3.0, 9.0, 1.0, 4.0]),
        option_carbon_kg=np.zeros(n),
        option_transfer_cost_usd=np.zeros(n),
        option_delay_cost_usd=np.zeros(n),
    )


def test_pricing_set_keeps_only_options_that_could_prove_the_plan():
    """With the optimum (cost 4) as incumbent and a 1% gap, the bound that proves it is
    B = 4 - 0.04 (a hair less); options with rc > B - 3 = 0.96 go: B on pool 1 (rc 1) and
    A on pool 2 (rc 6)."""
    p = two_jobs_one_scarce_pool()
    options = SolverOptions(time_limit_s=10.0, mip_gap=0.01)
    relaxation = solve_lp_by_columns(p, options, SafetyNet(options.time_limit_s))
    assert relaxation.priced is not None and relaxation.priced.complete
    assert relaxation.priced.objective_usd == pytest.approx(3.0)
    incumbent = np.array([0, 1, 0, 1, 0])
    kept = pricing_set(relaxation.priced, incumbent, 4.0, 0.01)
    assert kept.options.tolist() == [0, 1, 3]
    assert kept.outside_usd == pytest.approx(4.0 - 0.04 * PROOF_MARGIN)


def test_pricing_set_proves_the_optimum_by_hand():
    """lp-guided returns the optimum, 4, proven: the MILP over the pricing set finds it and
    its bound, min(4, B), lifts the LP's 3 to B = 4 - 0.04 (a hair less)."""
    p = two_jobs_one_scarce_pool()
    solution = solve_allocation(p, SolverOptions(time_limit_s=10.0, mip_gap=0.01), "lp-guided")
    assert solution.option_count.tolist() == [0, 1, 0, 1, 0]
    assert solution.objective_usd == pytest.approx(4.0)
    assert solution.status is SolveStatus.OPTIMAL
    assert 4.0 - 0.04 - 1e-9 <= solution.bound_usd <= 4.0 + 1e-9

