"""Column generation's pricing (optimization.column_generation) against the full matrix."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from optimization import SolverOptions
from optimization.allocation_matrix import allocation_matrix
from optimization.column_generation import cheapest_per_demand, reduced_costs, solve_lp_by_columns
from optimization.solver import SafetyNet
from tests.optimization.helpers import random_problem


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("cap", [None, 30.0])
@pytest.mark.parametrize("bounded", [True, False])
def test_window_pricing_equals_the_full_matrix(seed, cap, bounded):
    """Reduced costs priced by windows (prefix sums of the capacity duals, never a cell list)
    equal c - A'y with A the full matrix of every option, for the duals column generation
    ends with (shuffled options, so they are not grouped by demand); and the LP optimum it
    reaches is the full LP's, whether the master's option columns carry x_o <= count_d or
    not. Only a column at that bound may price below zero (what reduced-cost fixing reads)."""
    p = random_problem(seed, n_demands=10, n_resources=3, n_slots=7, carbon_cap_kg=cap)
    shuffle = np.random.default_rng(seed).permutation(p.n_options)
    p = dataclasses.replace(p, **{name: getattr(p, name)[shuffle] for name in (
        "option_demand", "option_resource", "option_start", "option_slots", "option_gpus",
        "option_energy_kwh", "option_energy_cost_usd", "option_carbon_kg",
        "option_transfer_cost_usd", "option_delay_cost_usd")})
    options = SolverOptions(time_limit_s=60.0, mip_gap=0.0)
    relaxation = solve_lp_by_columns(p, options, SafetyNet(60.0), bounded=bounded)
    assert relaxation.priced is not None and relaxation.priced.complete
    full = allocation_matrix(p)
    by_matrix = full.cost - full.matrix.T @ relaxation.priced.row_duals
    by_windows = reduced_costs(relaxation.master.layout, relaxation.priced.row_duals)
    np.testing.assert_allclose(by_windows, by_matrix[p.n_demands:], rtol=0, atol=1e-9)
    below = by_windows < -1e-7
    at_bound = relaxation.priced.option_x >= p.demand_count[p.option_demand] - 1e-9
    assert (at_bound[below] & relaxation.master.in_master[below]).all()
    if not bounded:
        assert not below.any()
    lp = full.new_lp(options).solve().result.objective
    assert relaxation.priced.objective_usd == pytest.approx(lp, rel=1e-9, abs=1e-9)



@pytest.mark.parametrize("k", [1, 3, 50])
def test_cheapest_per_demand_takes_the_k_lowest_ties_to_the_lowest_index(k):
    """Partitioning a demands x options table picks, for each demand, its k lowest scores, ties
    broken to the lowest option index, as a sort by (demand, score, index) does; also among a
    mask. Scores drawn from 4 values, so ties are everywhere."""
    p = random_problem(3, n_demands=15, n_resources=4, n_slots=8)
    rng = np.random.default_rng(k)
    score = rng.integers(0, 4, size=p.n_options).astype(float)
    among = rng.random(p.n_options) < 0.6

    def by_sorting(mask):
        idx = np.flatnonzero(mask)
        order = idx[np.lexsort((idx, score[idx], p.option_demand[idx]))]
        demand = p.option_demand[order]
        rank = np.arange(len(order)) - np.searchsorted(demand, demand, side="left")
        return np.sort(order[rank < k])

    everything = np.ones(p.n_options, dtype=bool)
    assert np.array_equal(cheapest_per_demand(p, score, k), by_sorting(everything))
    assert np.array_equal(cheapest_per_demand(p, score, k, among), by_sorting(among))
