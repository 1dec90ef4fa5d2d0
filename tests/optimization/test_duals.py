"""LP-relaxation prices: capacity, demand and carbon-cap duals, checked on hand-solved rounds."""

from __future__ import annotations

import numpy as np
import pytest

from optimization import (
    AllocationProblem,
    SolverOptions,
    SolveStatus,
    allocation_lp_duals,
    solve_allocation,
)
from optimization.allocation import build_allocation_model
from optimization.solver import solve_model
from tests.optimization.helpers import random_problem

EXACT = SolverOptions(time_limit_s=30.0, mip_gap=0.0, threads=1)


def two_pools(y_gpus: int) -> AllocationProblem:
    """One slot. Pool A has 2 + y_gpus free GPUs, pool B has 10.

    demand X: 2 jobs of 1 GPU; on A 1 USD, on B 4 USD.
    demand Y: 2 jobs of ``y_gpus`` GPUs; on A 2 USD, on B 3 USD.   Deferring: 100 USD.
    X saves 3 per GPU on A, Y saves 1 / y_gpus: both X jobs and one Y job fill A, the other Y
    job runs on B (LP = MILP = 1 + 1 + 2 + 3 = 7). Y is split between A and B, so A's price
    makes Y indifferent: y_gpus * pi_A = 3 - 2, pi_A = 1 / y_gpus USD per GPU-slot. B has
    room: pi_B = 0. Y's marginal job runs on B: y_Y = 3. X's would take A at its price:
    y_X = 1 + pi_A.
    """
    return AllocationProblem(
        capacity_gpus=np.array([[2.0 + y_gpus], [10.0]]),
        demand_count=np.array([2, 2]),
        deferral_penalty_usd=np.array([100.0, 100.0]),
        option_demand=np.array([0, 0, 1, 1]),
        option_resource=np.array([0, 1, 0, 1]),
        option_start=np.zeros(4, int),
        option_slots=np.ones(4, int),
        option_gpus=np.array([1, 1, y_gpus, y_gpus]),
        option_energy_kwh=np.ones(4),
        option_energy_cost_usd=np.array([1.0, 4.0, 2.0, 3.0]),
        option_carbon_kg=np.zeros(4),
        option_transfer_cost_usd=np.zeros(4),
        option_delay_cost_usd=np.zeros(4),
    )


@pytest.mark.parametrize("y_gpus", [1, 2])
def test_binding_pool_has_a_price_and_the_other_none(y_gpus):
    duals = allocation_lp_duals(two_pools(y_gpus), EXACT)
    assert duals.status is SolveStatus.OPTIMAL
    assert duals.lp_bound_usd == pytest.approx(7.0)
    price_a = 1.0 / y_gpus
    assert duals.capacity_price_usd_per_gpu_slot.ravel().tolist() == pytest.approx([price_a, 0.0])
    assert duals.demand_price_usd_per_job.tolist() == pytest.approx([1 + price_a, 3.0])
    assert duals.carbon_price_usd_per_kg is None


def dirty_or_clean(cap_kg: float | None, tax_usd_per_kg: float = 0.0) -> AllocationProblem:
    """2 jobs of 1 GPU, room for both anywhere. Dirty option: 1 USD, 4 kg; clean: 3 USD, 1 kg.

    Capped at 5 kg, one job runs dirty and one clean (4 + 1 = 5 kg, 1 + 3 = 4 USD). Moving
    the dirty job to clean costs 3 - 1 = 2 USD and abates 4 - 1 = 3 kg: the marginal
    abatement cost is 2/3 USD per kg, and so is the cap's dual (both options are used, so
    1 + 4 kappa = 3 + 1 kappa). At a tax of 2/3 USD/kg the two options cost the same
    (1 + 8/3 = 3 + 2/3): below it both jobs run dirty (8 kg), above it both clean (2 kg).
    """
    return AllocationProblem(
        capacity_gpus=np.array([[5.0], [5.0]]),
        demand_count=np.array([2]),
        deferral_penalty_usd=np.array([100.0]),
        option_demand=np.array([0, 0]),
        option_resource=np.array([0, 1]),
        option_start=np.zeros(2, int),
        option_slots=np.ones(2, int),
        option_gpus=np.ones(2, int),
        option_energy_kwh=np.ones(2),
        option_energy_cost_usd=np.array([1.0, 3.0]),
        option_carbon_kg=np.array([4.0, 1.0]),
        option_transfer_cost_usd=np.zeros(2),
        option_delay_cost_usd=np.zeros(2),
        carbon_price_usd_per_kg=tax_usd_per_kg,
        carbon_cap_kg=cap_kg,
    )


def test_cap_dual_is_the_marginal_abatement_cost():
    duals = allocation_lp_duals(dirty_or_clean(cap_kg=5.0), EXACT)
    assert duals.status is SolveStatus.OPTIMAL
    assert duals.carbon_price_usd_per_kg == pytest.approx(2.0 / 3.0)
    assert duals.lp_bound_usd == pytest.approx(4.0)
    assert duals.demand_price_usd_per_job.tolist() == pytest.approx([1 + 4 * 2.0 / 3.0])
    assert duals.capacity_price_usd_per_gpu_slot.ravel().tolist() == pytest.approx([0.0, 0.0])
    capped = solve_allocation(dirty_or_clean(cap_kg=5.0), EXACT, "full")
    assert capped.cost_breakdown_usd["carbon_kg"] == pytest.approx(5.0)


def test_cap_dual_is_the_tax_that_gives_the_same_emissions():
    kappa = allocation_lp_duals(dirty_or_clean(cap_kg=5.0), EXACT).carbon_price_usd_per_kg
    assert kappa is not None
    # At the tax kappa, the capped plan (4 USD, 5 kg) is among the cheapest uncapped plans...
    taxed = solve_allocation(dirty_or_clean(cap_kg=None, tax_usd_per_kg=kappa), EXACT, "full")
    assert taxed.objective_usd == pytest.approx(4.0 + 5.0 * kappa)
    # ...and kappa is the only such tax: a little less and both run dirty, more and both clean.
    below = solve_allocation(dirty_or_clean(None, 0.99 * kappa), EXACT, "full")
    above = solve_allocation(dirty_or_clean(None, 1.01 * kappa), EXACT, "full")
    assert below.cost_breakdown_usd["carbon_kg"] == pytest.approx(8.0)
    assert above.cost_breakdown_usd["carbon_kg"] == pytest.approx(2.0)


def test_slack_cap_has_no_price():
    duals = allocation_lp_duals(dirty_or_clean(cap_kg=100.0), EXACT)
    assert duals.carbon_price_usd_per_kg == 0.0
    assert duals.lp_bound_usd == pytest.approx(2.0)


@pytest.mark.parametrize("seed", range(4))
def test_prices_are_dual_feasible_and_strong_on_random_rounds(seed):
    """On random capped rounds: the LP bound equals Pyomo's LP relaxation; prices are >= 0;
    no option is cheaper than its demand's price at those prices (dual feasibility); and the
    dual objective sum n y - sum free pi - cap kappa equals the LP bound (strong duality)."""
    uncapped = solve_allocation(random_problem(seed), EXACT, "full")
    p = random_problem(seed, carbon_cap_kg=0.6 * uncapped.cost_breakdown_usd["carbon_kg"])
    duals = allocation_lp_duals(p, EXACT)
    relaxed = solve_model(build_allocation_model(p), EXACT, relax_integrality=True)
    assert duals.lp_bound_usd == pytest.approx(relaxed.objective, rel=1e-9)
    pi, y = duals.capacity_price_usd_per_gpu_slot, duals.demand_price_usd_per_job
    kappa = duals.carbon_price_usd_per_kg
    assert kappa is not None and kappa > 0  # the cap binds
    assert (pi >= 0).all() and pi.any()
    prefix = np.concatenate([np.zeros((p.n_resources, 1)), np.cumsum(pi, axis=1)], axis=1)
    rent = prefix[p.option_resource, p.option_start + p.option_slots] - prefix[
        p.option_resource, p.option_start]
    full_price = p.option_cost_usd + p.option_gpus * rent + p.option_carbon_kg * kappa
    assert (y[p.option_demand] <= full_price + 1e-7).all()
    assert (y <= p.deferral_penalty_usd + 1e-7).all()
    dual_objective = p.demand_count @ y - (p.capacity_gpus * pi).sum() - p.carbon_cap_kg * kappa
    assert dual_objective == pytest.approx(duals.lp_bound_usd, rel=1e-7)
