"""The greedy incumbent on instances small enough to follow by hand."""

from __future__ import annotations

import numpy as np
import pytest

from optimization import AllocationProblem, greedy_allocation
from optimization.greedy import WindowRoom
from optimization.problem import deferred_of, plan_cost_usd
from tests.optimization.helpers import assert_feasible, random_problem


def two_pools(carbon_cap_kg: float | None = None) -> AllocationProblem:
    """Pool A: 4 GPUs, pool B: 2 GPUs, two slots each.

    demand 0: 3 jobs of 1 GPU running 2 slots; options A@0 (2 USD, 1 kg), B@0 (3 USD, 5 kg);
              deferral 10 USD. Saving density (10 - 2) / (1 GPU x 2 slots) = 4.
    demand 1: 1 job of 2 GPUs running 1 slot; options A@0 (1 USD, 2 kg), A@1 (1.5 USD, 2 kg),
              B@1 (4 USD, 1 kg); deferral 20 USD. Saving density (20 - 1) / (2 x 1) = 9.5.
    """
    return AllocationProblem(
        capacity_gpus=np.array([[4.0, 4.0], [2.0, 2.0]]),
        demand_count=np.array([3, 1]),
        deferral_penalty_usd=np.array([10.0, 20.0]),
        option_demand=np.array([0, 0, 1, 1, 1]),
        option_resource=np.array([0, 1, 0, 0, 1]),
        option_start=np.array([0, 0, 0, 1, 1]),
        option_slots=np.array([2, 2, 1, 1, 1]),
        option_gpus=np.array([1, 1, 2, 2, 2]),
        option_energy_kwh=np.ones(5),
        option_energy_cost_usd=np.array([2.0, 3.0, 1.0, 1.5, 4.0]),
        option_carbon_kg=np.array([1.0, 5.0, 2.0, 2.0, 1.0]),
        option_transfer_cost_usd=np.zeros(5),
        option_delay_cost_usd=np.zeros(5),
        carbon_cap_kg=carbon_cap_kg,
    )


def test_greedy_plan_by_hand():
    """Demand 1 goes first (9.5 > 4) and takes A@0: A has 2 GPUs left in slot 0, 4 in slot 1.
    Demand 0's cheapest option A@0 needs slots 0 and 1: room for 2 jobs (2 USD each); the third
    job takes B@0 (3 USD). Plan: A@0 x2, B@0 x1, A@0 for demand 1; cost 1 + 2 x 2 + 3 = 8."""
    p = two_pools()
    x = greedy_allocation(p)
    assert x.tolist() == [2, 1, 1, 0, 0]
    assert deferred_of(p, x).tolist() == [0, 0]
    assert plan_cost_usd(p, x, deferred_of(p, x)) == pytest.approx(8.0)
    assert_feasible(p, x, deferred_of(p, x))


def test_greedy_plan_respects_the_carbon_cap_by_hand():
    """Cap 6 kg. Demand 1 on A@0 (2 kg, 4 kg left), two jobs of demand 0 on A@0 (2 kg, 2 kg
    left); the third job's only other option B@0 emits 5 kg > 2: it is deferred (10 USD).
    Cost 1 + 4 + 10 = 15, emissions 4 kg."""
    p = two_pools(carbon_cap_kg=6.0)
    x = greedy_allocation(p)
    assert x.tolist() == [2, 0, 1, 0, 0]
    assert deferred_of(p, x).tolist() == [1, 0]
    assert plan_cost_usd(p, x, deferred_of(p, x)) == pytest.approx(15.0)
    assert p.option_carbon_kg @ x == pytest.approx(4.0)


def test_greedy_never_pays_more_than_deferring():
    """An option dearer than the deferral penalty is never taken: the job is deferred."""
    p = two_pools()
    dear = AllocationProblem(**{**p.__dict__,
                                "deferral_penalty_usd": np.array([2.5, 20.0])})
    x = greedy_allocation(dear)
    assert x[1] == 0  # B@0 (3 USD) > 2.5: the third job of demand 0 defers
    assert deferred_of(dear, x).tolist() == [1, 0]


@pytest.mark.parametrize("seed", range(5))
def test_greedy_is_feasible_on_random_rounds(seed):
    for cap in (None, 5.0):
        p = random_problem(seed, n_demands=30, carbon_cap_kg=cap)
        x = greedy_allocation(p)
        assert_feasible(p, x, deferred_of(p, x))
        assert x.sum() > 0


def test_window_room_is_the_least_free_over_each_window_and_follows_takes():
    """WindowRoom answers min(free[r, t:t+L]) for every window, before and after GPUs are
    taken, against the slots read one by one (13 slots: windows up to 13 span three levels of
    the sparse table and overlap within each)."""
    rng = np.random.default_rng(7)
    free = rng.integers(0, 9, size=(3, 13)).astype(float)
    room = WindowRoom(free)
    r, t, length = np.meshgrid(np.arange(3), np.arange(13), np.arange(1, 14), indexing="ij")
    inside = t + length <= 13
    r, t, length = r[inside], t[inside], length[inside]

    def brute() -> np.ndarray:
        return np.array([free[a, b:b + c].min() for a, b, c in zip(r, t, length, strict=True)])

    assert np.array_equal(room.least(r, t, length), brute())
    room.take(1, 4, 6, 2.0)
    free[1, 4:10] -= 2.0
    assert np.array_equal(room.least(r, t, length), brute())
    assert room.least(np.array([1]), np.array([4]), np.array([1]))[0] == free[1, 4]
