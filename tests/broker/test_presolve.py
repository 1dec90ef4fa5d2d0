"""The planner's presolve: exact reductions of a round before the solver sees it.

Exactness is checked against the solver on the unreduced problem, to a zero MIP gap, on
random rounds where capacity binds in some cells and not in others.
"""

from __future__ import annotations

import numpy as np
import pytest

from broker.planner import MAX_REST_MIP_GAP, _rest_options, presolve_round, solve_round
from optimization import (
    AllocationProblem,
    SolverOptions,
    SolveStatus,
    relative_gap,
    solve_allocation,
)
from optimization.problem import deferred_of, plan_cost_usd

EXACT = SolverOptions(time_limit_s=20.0, mip_gap=0.0, threads=1)


def random_problem(seed: int, carbon_cap_kg: float | None = None) -> AllocationProblem:
    """A round with 3 pools x 6 slots, 6 demands of 1-3 jobs needing 1-4 GPUs each."""
    rng = np.random.default_rng(seed)
    n_res, n_slots, n_dem = 3, 6, 6
    capacity = rng.integers(0, 9, size=(n_res, n_slots)).astype(float)
    capacity[rng.integers(n_res)] = 40.0  # one idle pool: its options are slack
    count = rng.integers(1, 4, size=n_dem)
    gpus = rng.integers(1, 5, size=n_dem)
    demand, resource, start = [], [], []
    for d in range(n_dem):
        for r in range(n_res):
            for t in range(n_slots):
                if rng.random() < 0.6:
                    demand.append(d)
                    resource.append(r)
                    start.append(t)
    demand, resource, start = map(np.array, (demand, resource, start))
    n = len(demand)
    slots = np.minimum(rng.integers(1, 4, size=n), n_slots - start)
    energy_cost = rng.uniform(0.1, 2.0, size=n)
    penalty = np.full(n_dem, 10.0)
    return AllocationProblem(
        capacity_gpus=capacity, demand_count=count, deferral_penalty_usd=penalty,
        option_demand=demand, option_resource=resource, option_start=start,
        option_slots=slots, option_gpus=gpus[demand], option_energy_kwh=energy_cost * 5,
        option_energy_cost_usd=energy_cost, option_carbon_kg=rng.uniform(0.0, 1.0, size=n),
        option_transfer_cost_usd=np.zeros(n), option_delay_cost_usd=0.01 * start,
        carbon_price_usd_per_kg=0.1, carbon_cap_kg=carbon_cap_kg,
    )


def is_feasible(p: AllocationProblem, x: np.ndarray) -> bool:
    options, resources, slots = p.occupancy()
    used = np.zeros(p.capacity_gpus.shape)
    np.add.at(used, (resources, slots), p.option_gpus[options] * x[options])
    assigned = np.bincount(p.option_demand, weights=x, minlength=p.n_demands)
    return bool((used <= p.capacity_gpus + 1e-9).all() and (assigned <= p.demand_count).all()
                and (x >= 0).all())


@pytest.mark.parametrize("seed", range(12))
def test_presolve_keeps_the_optimum(seed):
    p = random_problem(seed)
    reference = solve_allocation(p, EXACT, method="full")
    reduced = solve_round(p, EXACT, "full")
    assert reference.status is SolveStatus.OPTIMAL
    assert reduced.status is SolveStatus.OPTIMAL
    assert reduced.objective_usd == pytest.approx(reference.objective_usd, rel=1e-9)
    assert is_feasible(p, reduced.option_count)
    # the reported cost is the plan's own, and the bound is a bound on it
    deferred = deferred_of(p, reduced.option_count)
    assert reduced.objective_usd == pytest.approx(plan_cost_usd(p, reduced.option_count,
                                                                deferred))
    assert (reduced.deferred_count == deferred).all()
    assert reduced.bound_usd <= reduced.objective_usd + 1e-9


def test_presolve_removes_options_on_some_of_the_random_rounds():
    """The exactness test above is only worth something if the reductions happen."""
    dropped = [p.n_options - len(presolve_round(p).rest_options)
               for p in map(random_problem, range(12))]
    assert sum(d > 0 for d in dropped) >= 6


def test_ample_capacity_settles_every_job_on_its_cheapest_option():
    # Two pools of 8 GPUs, 2 slots; one demand of two 2-GPU jobs, one of a single 1-GPU job.
    p = AllocationProblem(
        capacity_gpus=np.full((2, 2), 8.0), demand_count=np.array([2, 1]),
        deferral_penalty_usd=np.array([5.0, 5.0]),
        option_demand=np.array([0, 0, 0, 1, 1]), option_resource=np.array([0, 1, 1, 0, 1]),
        option_start=np.array([0, 0, 1, 1, 0]), option_slots=np.array([1, 2, 1, 1, 1]),
        option_gpus=np.array([2, 2, 2, 1, 1]), option_energy_kwh=np.ones(5),
        option_energy_cost_usd=np.array([3.0, 1.0, 2.0, 0.5, 0.7]),
        option_carbon_kg=np.zeros(5), option_transfer_cost_usd=np.zeros(5),
        option_delay_cost_usd=np.zeros(5),
    )
    reduced = presolve_round(p)
    assert reduced.rest is None
    assert reduced.settled.tolist() == [0, 2, 0, 1, 0]
    solution = solve_round(p, EXACT, "full")
    assert solution.status is SolveStatus.OPTIMAL
    assert solution.objective_usd == pytest.approx(2 * 1.0 + 0.5)
    assert solution.bound_usd == pytest.approx(solution.objective_usd)
    assert solution.message == "presolve settled every job"


def test_options_that_do_not_fit_the_free_gpus_now_are_dropped():
    # One pool: 4 GPUs free in slot 0, 1 in slot 1. A 2-GPU job cannot start in slot 1, nor
    # run through it from slot 0; it can only take the 1-slot option at slot 0.
    p = AllocationProblem(
        capacity_gpus=np.array([[4.0, 1.0]]), demand_count=np.array([1]),
        deferral_penalty_usd=np.array([9.0]),
        option_demand=np.array([0, 0, 0]), option_resource=np.array([0, 0, 0]),
        option_start=np.array([0, 0, 1]), option_slots=np.array([2, 1, 1]),
        option_gpus=np.array([2, 2, 2]), option_energy_kwh=np.ones(3),
        option_energy_cost_usd=np.array([1.0, 3.0, 0.5]), option_carbon_kg=np.zeros(3),
        option_transfer_cost_usd=np.zeros(3), option_delay_cost_usd=np.zeros(3),
    )
    reduced = presolve_round(p)
    assert reduced.rest is None
    assert reduced.settled.tolist() == [0, 1, 0]


def test_contested_gpus_are_left_to_the_solver():
    # One GPU, one slot, two 1-GPU jobs of different demands: the solver picks who runs.
    p = AllocationProblem(
        capacity_gpus=np.array([[1.0]]), demand_count=np.array([1, 1]),
        deferral_penalty_usd=np.array([5.0, 9.0]),
        option_demand=np.array([0, 1]), option_resource=np.array([0, 0]),
        option_start=np.array([0, 0]), option_slots=np.array([1, 1]),
        option_gpus=np.array([1, 1]), option_energy_kwh=np.ones(2),
        option_energy_cost_usd=np.array([1.0, 1.0]), option_carbon_kg=np.zeros(2),
        option_transfer_cost_usd=np.zeros(2), option_delay_cost_usd=np.zeros(2),
    )
    reduced = presolve_round(p)
    assert reduced.rest is not None
    assert reduced.rest_demands.tolist() == [0, 1]
    solution = solve_round(p, EXACT, "full")
    assert solution.option_count.tolist() == [0, 1]  # deferring demand 1 would cost more
    assert solution.objective_usd == pytest.approx(1.0 + 5.0)


def test_a_carbon_cap_turns_the_presolve_off():
    p = random_problem(0, carbon_cap_kg=1.5)
    reduced = presolve_round(p)
    assert reduced.rest is p
    reference = solve_allocation(p, EXACT, method="full")
    assert solve_round(p, EXACT, "full").objective_usd == pytest.approx(reference.objective_usd)


def settled_plus_contested() -> AllocationProblem:
    """Pool 0 (8 GPUs) takes demand 0 whatever happens: settled at 9 USD. Pool 1 (1 GPU) is
    contested by demands 1 and 2 (1 USD each; deferring costs 5 and 9 USD): the rest."""
    return AllocationProblem(
        capacity_gpus=np.array([[8.0], [1.0]]), demand_count=np.array([1, 1, 1]),
        deferral_penalty_usd=np.array([20.0, 5.0, 9.0]),
        option_demand=np.array([0, 1, 2]), option_resource=np.array([0, 1, 1]),
        option_start=np.array([0, 0, 0]), option_slots=np.array([1, 1, 1]),
        option_gpus=np.array([1, 1, 1]), option_energy_kwh=np.ones(3),
        option_energy_cost_usd=np.array([9.0, 1.0, 1.0]), option_carbon_kg=np.zeros(3),
        option_transfer_cost_usd=np.zeros(3), option_delay_cost_usd=np.zeros(3),
    )


def test_the_rest_gets_the_rounds_gap_restated_for_its_smaller_objective():
    p = settled_plus_contested()
    reduced = presolve_round(p)
    assert reduced.settled.tolist() == [1, 0, 0]
    assert reduced.rest_demands.tolist() == [1, 2]
    # greedy on the rest: demand 2 first (saves 8 USD), demand 1 deferred: 1 + 5 = 6 USD.
    # The round's 1% of (9 + 6) is 2.5% of the rest's 6.
    rest = _rest_options(p, reduced, SolverOptions(10.0, 0.01, 1))
    assert rest.mip_gap == pytest.approx(0.01 * 15 / 6)
    # let off at most to MAX_REST_MIP_GAP, and never held tighter than the round asks
    assert _rest_options(p, reduced, SolverOptions(10.0, 0.03, 1)).mip_gap == MAX_REST_MIP_GAP
    assert _rest_options(p, reduced, SolverOptions(10.0, 0.2, 1)).mip_gap == 0.2
    assert _rest_options(p, reduced, EXACT).mip_gap == 0.0
    solution = solve_round(p, SolverOptions(10.0, 0.01, 1), "full")
    assert solution.status is SolveStatus.OPTIMAL
    assert solution.objective_usd == pytest.approx(15.0)
    assert relative_gap(solution.objective_usd, solution.bound_usd) <= 0.01
