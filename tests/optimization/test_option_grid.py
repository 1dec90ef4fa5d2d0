"""Options held as a grid (optimization.option_grid, optimization.grid_solve) against the same
round listed: pricing, the greedy plan, the LP and its duals, the bound, and the solve."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from optimization import SolverOptions, SolveStatus, solve_allocation
from optimization.allocation_matrix import AllocationLayout, allocation_matrix
from optimization.column_generation import RC_TOLERANCE, priced_costs
from optimization.decomposed import (
    Duals,
    InProcessPricers,
    Shard,
    price_shard,
    solve_decomposed,
)
from optimization.greedy import greedy_allocation
from optimization.grid_solve import solve_option_grid
from optimization.option_grid import GridPlan, GridPricers, grid_greedy, trivial_bound
from optimization.problem import deferred_of, plan_cost_usd, trivial_lower_bound
from optimization.solver import SafetyNet
from tests.optimization.helpers import assert_feasible, grid_of, random_problem

EXACT = SolverOptions(time_limit_s=60.0, mip_gap=0.0)
SEEDS = [0, 1, 2, 3]


def tight(seed: int, cap: float | None = None):
    return random_problem(seed, n_demands=9, n_resources=3, n_slots=6, carbon_cap_kg=cap,
                          capacity_gpus=(1, 4))


def on_listed(kept: np.ndarray, plan: GridPlan) -> np.ndarray:
    """A grid plan as jobs per option of the listed round."""
    x = np.zeros(len(kept), dtype=np.int64)
    at = np.searchsorted(kept, plan.index)
    assert (kept[at] == plan.index).all(), "the plan uses an option the grid does not hold"
    x[at] = plan.count
    return x


def random_duals(p, seed: int) -> Duals:
    rng = np.random.default_rng(seed)
    mu = -rng.uniform(0, 3, p.n_resources * p.n_slots) * (rng.random(p.n_resources * p.n_slots)
                                                         < 0.5)
    return Duals(rng.uniform(5, 30, p.n_demands), mu, -0.2 if p.carbon_cap_kg else 0.0)


@pytest.mark.parametrize("cap", [None, 25.0])
@pytest.mark.parametrize("seed", SEEDS)
def test_grid_pricing_is_the_listed_rounds(seed, cap):
    """At random duals, the grid's per-demand minima and offered columns (each demand's k
    cheapest of negative reduced cost, ties to the lowest index) are the listed round's
    (``price_shard`` over every listed option), the columns listed with the same data."""
    grid, listed, kept = grid_of(tight(seed, cap), seed)
    duals = random_duals(listed, seed)
    shard = Shard(np.arange(listed.n_resources), listed, kept)
    for k in (1, 3):
        want = price_shard(shard, duals, k)
        (got,) = GridPricers(grid).price(duals, k)
        np.testing.assert_allclose(got.min_priced_usd, want.min_priced_usd, rtol=1e-12)
        np.testing.assert_array_equal(got.option_index, want.option_index)
        np.testing.assert_allclose(got.score, want.score, rtol=1e-12, atol=1e-12)
        for name, values in want.columns.items():
            np.testing.assert_array_equal(got.columns[name], values, err_msg=name)
    first = Duals(None, duals.mu, duals.lam)  # the first call: cheapest priced, any sign
    np.testing.assert_array_equal(GridPricers(grid).price(first, 4)[0].option_index,
                                  price_shard(shard, first, 4).option_index)


@pytest.mark.parametrize("cap", [None, 25.0])
@pytest.mark.parametrize("seed", SEEDS)
def test_column_generation_over_the_grid_reaches_the_full_lp_with_its_duals(seed, cap):
    """Priced on the grid, column generation ends at the full LP's optimum (every listed
    option a column, one HiGHS solve); its duals price no option below zero and give the same
    objective (strong duality)."""
    grid, listed, kept = grid_of(tight(seed, cap), seed)
    full = allocation_matrix(listed).new_lp(EXACT).solve()
    assert full.result.status is SolveStatus.OPTIMAL
    lp = solve_decomposed(grid.public, GridPricers(grid), EXACT, SafetyNet(60.0), per_round=1)
    assert lp.complete and lp.rounds > 1
    assert lp.objective_usd == pytest.approx(full.result.objective, rel=1e-9, abs=1e-9)
    assert lp.bound_usd == pytest.approx(full.result.objective, rel=1e-9, abs=1e-9)
    rc = priced_costs(AllocationLayout(listed), lp.mu, lp.lam) - lp.y[listed.option_demand]
    assert rc.min() >= -RC_TOLERANCE * 10
    assert (lp.y <= listed.deferral_penalty_usd + 1e-9).all()
    dual = (listed.capacity_gpus.reshape(-1) @ lp.mu + listed.demand_count @ lp.y
            + (0.0 if cap is None else cap * lp.lam))
    assert dual == pytest.approx(full.result.objective, rel=1e-9, abs=1e-9)
    # the same LP from the listed round's own shard
    central = solve_decomposed(grid.public, InProcessPricers(
        [Shard(np.arange(listed.n_resources), listed, kept)]), EXACT, SafetyNet(60.0))
    assert central.objective_usd == pytest.approx(lp.objective_usd, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("cap", [None, 25.0])
@pytest.mark.parametrize("seed", SEEDS)
def test_grid_greedy_is_the_listed_greedy(seed, cap):
    """The grid's greedy plan is ``greedy_allocation``'s on the listed round, job for job: by
    cost, and completing a start plan in order of reduced cost (LP rounding)."""
    grid, listed, kept = grid_of(tight(seed, cap), seed)
    want = greedy_allocation(listed)
    np.testing.assert_array_equal(on_listed(kept, grid_greedy(grid)), want)
    start = np.zeros(listed.n_options, dtype=np.int64)
    start[np.flatnonzero(want)[::2]] = want[np.flatnonzero(want)[::2]]
    duals = random_duals(listed, seed + 10)
    rc = priced_costs(AllocationLayout(listed), duals.mu, duals.lam)
    rc -= duals.y[listed.option_demand]
    want = greedy_allocation(listed, start=start, option_rank=rc)
    used = np.flatnonzero(start)
    got = grid_greedy(grid, start=GridPlan(kept[used], start[used]), duals=duals)
    np.testing.assert_array_equal(on_listed(kept, got), want)


def test_greedy_candidates_give_the_plan_of_every_option():
    """Many runs a demand, few GPUs: the first runs a demand tries are full, and its jobs go
    on to the rest (``GREEDY_CANDIDATE_RUNS``), as the listed greedy does."""
    p = random_problem(5, n_demands=30, n_resources=60, n_slots=4, capacity_gpus=(0, 3))
    grid, listed, kept = grid_of(p, 5)
    np.testing.assert_array_equal(on_listed(kept, grid_greedy(grid)),
                                  greedy_allocation(listed))


@pytest.mark.parametrize("seed", SEEDS)
def test_trivial_bound_is_the_listed_rounds(seed):
    grid, listed, _ = grid_of(tight(seed), seed)
    assert trivial_bound(grid) == pytest.approx(trivial_lower_bound(listed), rel=1e-12)


def test_a_round_solved_by_hand():
    """One pool of 2 GPUs over 2 slots, deferring costs 10 a job. A (1 job, 2 GPUs, 1 slot)
    costs 1 at slot 0, 5 at slot 1; B (1 job, 2 GPUs, 2 slots) starts at 0 only (its second
    start is cut, as a deadline cuts it) and costs 3. They cannot both run: the plans cost
    A@0 + B deferred = 11, B + A deferred = 13, A@1 + B deferred = 15, so the optimum is 11.
    The LP is 20 - max(9 a0 + 5 a1 + 7 b) with a0 + b <= 1, a1 + b <= 1 (the two slots) and
    a0 + a1 <= 1: at a0 = a1 = b = 1/2 it is 20 - 10.5 = 9.5, below every integer plan (the
    three rows form an odd cycle). So the solve returns 11 with the LP's bound 9.5: not proven
    at gap 0, FEASIBLE."""
    from optimization.decomposed import OPTION_FIELDS, with_options
    from optimization.option_grid import OptionGrid
    from optimization.problem import AllocationProblem

    empty = {name: np.zeros(0, dtype=int if name in ("option_demand", "option_resource",
                                                       "option_start", "option_slots")
                            else float) for name in OPTION_FIELDS}
    public = AllocationProblem(capacity_gpus=np.array([[2.0, 2.0]]),
                               demand_count=np.array([1, 1]),
                               deferral_penalty_usd=np.array([10.0, 10.0]), **empty)
    cost = np.array([[1.0, 5.0], [3.0, np.nan]])
    starts = np.array([0, 1])

    def lister(index: np.ndarray) -> dict[str, np.ndarray]:
        run, s = np.divmod(index, 2)
        n = len(index)
        return {"option_demand": run, "option_resource": np.zeros(n, dtype=int),
                "option_start": starts[s], "option_slots": np.where(run == 0, 1, 2),
                "option_gpus": np.full(n, 2.0), "option_energy_kwh": np.zeros(n),
                "option_energy_cost_usd": cost[run, s], "option_carbon_kg": np.zeros(n),
                "option_transfer_cost_usd": np.zeros(n), "option_delay_cost_usd": np.zeros(n)}

    grid = OptionGrid(public, np.array([0, 1]), np.array([0, 0]), np.array([2, 2]),
                      np.array([1, 2]), starts, np.array([2, 1]), cost, None, lister)
    got = solve_option_grid(grid, EXACT)
    solved = got.solution
    assert solved.objective_usd == pytest.approx(11.0)
    assert solved.bound_usd == pytest.approx(9.5)
    assert solved.status is SolveStatus.FEASIBLE
    plan = dict(zip(got.option_index.tolist(), solved.option_count.tolist(), strict=True))
    assert {o: k for o, k in plan.items() if k} == {0: 1}  # A at slot 0
    listed = with_options(public, lister(np.array([0, 1, 2])))
    assert solve_allocation(listed, EXACT, method="full").objective_usd == pytest.approx(11.0)


@pytest.mark.parametrize("cap", [None, 25.0])
@pytest.mark.parametrize("seed", SEEDS)
def test_the_grid_solve_against_the_listed_milp(seed, cap):
    """The plan is feasible on the listed round and costs what it says; the bound lies at or
    below the listed MILP's optimum and the plan at or above it; proven means within the gap."""
    grid, listed, kept = grid_of(tight(seed, cap), seed)
    options = dataclasses.replace(EXACT, mip_gap=0.01)
    got = solve_option_grid(grid, options)
    x = on_listed(kept, GridPlan(got.option_index, got.solution.option_count))
    assert_feasible(listed, x, deferred_of(listed, x))
    assert plan_cost_usd(listed, x, deferred_of(listed, x)) == pytest.approx(
        got.solution.objective_usd, rel=1e-12)
    best = solve_allocation(listed, EXACT, method="full").objective_usd
    assert got.solution.bound_usd <= best + 1e-6
    assert got.solution.objective_usd >= best - 1e-6
    if got.solution.status is SolveStatus.OPTIMAL:
        assert got.solution.gap <= 0.01 + 1e-12


def test_a_budget_too_small_for_anything_still_returns_a_feasible_plan():
    """No time at all (a nanosecond): the greedy stops before its first demand, so every job
    is deferred, a feasible plan; the trivial bound, the gap and the safety net reported."""
    grid, listed, _ = grid_of(tight(1), 1)
    got = solve_option_grid(grid, dataclasses.replace(EXACT, time_limit_s=1e-9))
    solved = got.solution
    assert solved.wall_clock_hit and solved.status is SolveStatus.FEASIBLE
    assert f"cut by the safety net with {listed.n_demands} demands not reached" in solved.message
    assert "no time for the LP" in solved.message
    assert solved.bound_usd == pytest.approx(trivial_lower_bound(listed))
    assert solved.option_count.sum() == 0
    assert solved.objective_usd == pytest.approx(listed.demand_count @ listed.deferral_penalty_usd)
    assert solved.gap > 0


def test_a_greedy_cut_by_its_net_keeps_the_demands_it_planned():
    """A net that expires after the first demands: those keep the greedy's choices, the
    rest are deferred, and the plan stays feasible."""
    grid, listed, kept = grid_of(tight(2), 2)

    class After:  # expires once asked more than ``n`` times (the greedy asks every 64)
        def __init__(self, n: int) -> None:
            self.asked, self.n, self.hit = 0, n, False

        def expired(self) -> bool:
            self.asked += 1
            self.hit = self.asked > self.n
            return self.hit

    full = grid_greedy(grid)
    cut = grid_greedy(grid, net=After(0))
    assert cut.unplanned == listed.n_demands and cut.count.sum() == 0
    uncut = grid_greedy(grid, net=After(1))  # 9 demands: asked once, at the first
    np.testing.assert_array_equal(uncut.index, full.index)
    assert uncut.unplanned == 0
    x = on_listed(kept, cut)
    assert_feasible(listed, x, deferred_of(listed, x))


def test_a_sample_holds_every_kth_demand_on_scaled_capacity():
    """``OptionGrid.sample(3)``: demands 0, 3, 6 renumbered 0, 1, 2, with their runs, costs
    and listed columns, on the free GPUs times the share of jobs kept."""
    grid, listed, _ = grid_of(tight(4), 4)
    sub = grid.sample(3)
    chosen = np.array([0, 3, 6])
    share = listed.demand_count[chosen].sum() / listed.demand_count.sum()
    np.testing.assert_array_equal(sub.public.demand_count, listed.demand_count[chosen])
    np.testing.assert_allclose(sub.public.capacity_gpus, listed.capacity_gpus * share)
    run, s = np.nonzero(np.arange(sub.n_starts)[None, :] < sub.run_starts[:, None])
    columns = sub.lister(sub.index(run, s))
    mine = np.flatnonzero(np.isin(listed.option_demand, chosen))
    np.testing.assert_array_equal(columns["option_demand"],
                                  np.searchsorted(chosen, listed.option_demand[mine]))
    for name in ("option_resource", "option_start", "option_slots", "option_gpus"):
        np.testing.assert_array_equal(columns[name], getattr(listed, name)[mine])
    np.testing.assert_allclose(sub.cost_usd[run, s], listed.option_cost_usd[mine])


@pytest.mark.parametrize("seed", SEEDS)
def test_prices_from_a_sample_change_how_fast_not_where_the_lp_ends(seed):
    """With a sample's prices for its first columns (every round of at least 2 x 3 demands
    here), the LP still ends at the full LP's optimum, which bounds the plan."""
    grid, listed, _ = grid_of(tight(seed), seed)
    full = allocation_matrix(listed).new_lp(EXACT).solve().result.objective
    got = solve_option_grid(grid, EXACT, sample_demands=3)
    assert "LP complete" in got.solution.message
    assert got.solution.bound_usd == pytest.approx(full, rel=1e-9, abs=1e-9)
