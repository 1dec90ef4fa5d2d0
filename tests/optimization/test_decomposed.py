"""The decomposed LP (optimization.decomposed): shards pricing their own options, against the
central LP over every option (its optimum, its duals, its pricing and its Lagrangian bound)."""

from __future__ import annotations

import numpy as np
import pytest

from optimization import SolverOptions
from optimization.allocation_matrix import AllocationLayout, allocation_matrix
from optimization.column_generation import (
    RC_TOLERANCE,
    cheapest_per_demand,
    lagrangian_bound,
    priced_costs,
    solve_lp_by_columns,
)
from optimization.decomposed import (
    OPTION_FIELDS,
    Coordinator,
    Duals,
    InProcessPricers,
    price_shard,
    public_part,
    resource_groups,
    solve_decomposed,
    split_by_resource,
)
from optimization.problem import AllocationProblem
from optimization.solver import SafetyNet
from tests.optimization.helpers import random_problem

EXACT = SolverOptions(time_limit_s=60.0, mip_gap=0.0)
GROUPINGS = {"two shards": [[0], [1, 2]], "three shards": [[2], [0], [1]]}


def central_lp(p: AllocationProblem) -> float:
    """The full LP, every option a column, one HiGHS solve."""
    solved = allocation_matrix(p).new_lp(EXACT).solve()
    assert solved.result.status.name == "OPTIMAL"
    return solved.result.objective


def tight_problem(seed: int, cap: float | None) -> AllocationProblem:
    """Few GPUs per cell, so capacity binds and pricing takes several rounds."""
    return random_problem(seed, n_demands=9, n_resources=3, n_slots=6, carbon_cap_kg=cap,
                          capacity_gpus=(1, 4))


@pytest.mark.parametrize("bounded", [True, False], ids=["bounded", "unbounded"])
@pytest.mark.parametrize("grouping", GROUPINGS)
@pytest.mark.parametrize("cap", [None, 25.0])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_decomposed_lp_reaches_the_central_optimum_with_its_duals(seed, cap, grouping, bounded):
    """One column per demand a round, so it takes several rounds: the LP value is the full
    LP's (and central column generation's); the duals price no option of any shard below zero,
    respect their signs and give the same objective (strong duality); the bound of every round
    lies below the optimum; the master's solution is feasible and costs its value. With the
    master's columns bounded by their counts or not."""
    p = tight_problem(seed, cap)
    shards = split_by_resource(p, GROUPINGS[grouping])
    solved = solve_decomposed(public_part(p), InProcessPricers(shards), EXACT, SafetyNet(60.0),
                              per_round=1, initial=1, bounded=bounded)
    optimum = central_lp(p)
    assert solved.complete, solved.message
    assert solved.objective_usd == pytest.approx(optimum, rel=1e-6)
    by_columns = solve_lp_by_columns(p, EXACT, SafetyNet(60.0)).priced
    assert by_columns is not None
    assert solved.objective_usd == pytest.approx(by_columns.objective_usd, rel=1e-6)

    # duals: feasible for the full LP (every option, every deferral), signs, strong duality
    rc = priced_costs(AllocationLayout(p), solved.mu, solved.lam) - solved.y[p.option_demand]
    assert rc.min() >= -1e-7
    assert (p.deferral_penalty_usd - solved.y >= -1e-7).all()
    assert (solved.mu <= 0).all() and solved.lam <= 0
    cap_term = 0.0 if cap is None else cap * solved.lam
    dual_objective = (p.demand_count @ solved.y + p.capacity_gpus.reshape(-1) @ solved.mu
                      + cap_term)
    assert dual_objective == pytest.approx(optimum, rel=1e-6)

    # the Lagrangian bound: below the optimum at every round, equal to it at the end
    assert solved.rounds >= 2
    assert all(r.bound_usd <= optimum * (1 + 1e-9) + 1e-9 for r in solved.history)
    assert solved.bound_usd == pytest.approx(optimum, rel=1e-6)

    x = solved.x_of(p.n_options)
    assigned = np.bincount(p.option_demand, weights=x, minlength=p.n_demands)
    np.testing.assert_allclose(assigned + solved.deferred, p.demand_count, atol=1e-7)
    used = p.window_cells(p.option_gpus * x)[0]
    assert (used <= p.capacity_gpus.reshape(-1) + 1e-7).all()
    if cap is not None:
        assert p.option_carbon_kg @ x <= cap + 1e-7
    cost = p.option_cost_usd @ x + p.deferral_penalty_usd @ solved.deferred
    assert cost == pytest.approx(optimum, rel=1e-6)


@pytest.mark.parametrize("cap", [None, 25.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_each_shard_prices_its_own_options_as_central_pricing_does(seed, cap):
    """At random duals: a shard offers only options on its own resources, with the round's
    data, and exactly the k cheapest of negative reduced cost per demand that central pricing
    finds among its options; the shards' minima give central pricing's per-demand minimum and
    the central Lagrangian bound (each demand has options on several shards, with different
    minima, so one shard's minimum would not do)."""
    p = random_problem(seed, n_demands=12, n_resources=4, n_slots=6, carbon_cap_kg=cap)
    groups = [[0, 3], [1], [2]]
    shards = split_by_resource(p, groups)
    rng = np.random.default_rng(seed)
    mu = -rng.exponential(0.5, p.n_resources * p.n_slots) * (rng.random(p.n_resources
                                                                         * p.n_slots) < 0.5)
    lam = 0.0 if cap is None else -0.3
    layout = AllocationLayout(p)
    priced = priced_costs(layout, mu, lam)
    central_min = p.demand_groups.minimum(priced)
    # duals y between each demand's cheapest and dearest priced option: some options price out
    y = central_min + rng.uniform(0.5, 3.0, p.n_demands)
    rc = priced - y[p.option_demand]
    k = 2
    offers = [price_shard(shard, Duals(y, mu, lam), k) for shard in shards]
    for group, offer in zip(groups, offers, strict=True):
        assert set(np.unique(offer.columns["option_resource"])) <= set(group)
        assert set(p.option_resource[offer.option_index]) <= set(group)
        for name in OPTION_FIELDS:
            np.testing.assert_array_equal(offer.columns[name], getattr(p, name)[offer.option_index])
        mine = np.isin(p.option_resource, group)
        expected = cheapest_per_demand(p, rc, k, among=mine & (rc < -RC_TOLERANCE))
        assert np.array_equal(np.sort(offer.option_index), expected)
        assert len(expected) > 0
        np.testing.assert_allclose(offer.min_priced_usd,
                                   p.demand_groups.minimum(np.where(mine, priced, np.inf)))
    minima = np.vstack([offer.min_priced_usd for offer in offers])
    np.testing.assert_allclose(minima.min(axis=0), central_min)
    assert (np.isfinite(minima).sum(axis=0) >= 2).sum() >= p.n_demands // 2
    assert (minima.argmin(axis=0) != minima.argmin(axis=0)[0]).any()
    coordinator = Coordinator(public_part(p), layout.cells, EXACT)
    bound, bound_y = coordinator.bound(Duals(y, mu, lam), offers)
    assert bound == pytest.approx(lagrangian_bound(layout, mu, lam), rel=1e-12)
    np.testing.assert_allclose(bound_y, np.minimum(p.deferral_penalty_usd, central_min))

    # columns the master holds at a negative reduced cost are not offered again: the next
    # cheapest are, and the minima stay the shard's own
    held = np.sort(np.concatenate([offer.option_index[::2] for offer in offers]))
    for shard, group, offer in zip(shards, groups, offers, strict=True):
        again = price_shard(shard, Duals(y, mu, lam, held), k)
        mine = np.isin(p.option_resource, group)
        mine[held] = False
        expected = cheapest_per_demand(p, rc, k, among=mine & (rc < -RC_TOLERANCE))
        assert np.array_equal(np.sort(again.option_index), expected)
        assert not np.isin(again.option_index, held).any()
        np.testing.assert_array_equal(again.min_priced_usd, offer.min_priced_usd)


def test_a_rounds_budget_stops_early_with_a_valid_bound():
    """One pricing round is not enough on a tight instance: not complete, the master's value
    above the optimum, the bound reported below it, and the message says why it stopped."""
    p = tight_problem(1, None)
    shards = split_by_resource(p, GROUPINGS["two shards"])
    options = SolverOptions(time_limit_s=60.0, mip_gap=0.0, pricing_rounds=1)
    solved = solve_decomposed(public_part(p), InProcessPricers(shards), options,
                              SafetyNet(60.0), per_round=1, initial=1)
    optimum = central_lp(p)
    assert not solved.complete
    assert solved.rounds == 1
    assert "1 pricing rounds" in solved.message
    assert solved.objective_usd > optimum * (1 + 1e-6)
    assert solved.bound_usd <= optimum * (1 + 1e-9)


def test_shards_partition_the_options_by_resource():
    """Every option lands in exactly one shard, the one holding its resource; resources given
    twice or not at all are refused."""
    p = random_problem(4, n_demands=10, n_resources=5, n_slots=5)
    shards = split_by_resource(p, [[4, 0], [2], [1, 3]])
    index = np.concatenate([s.option_index for s in shards])
    assert np.array_equal(np.sort(index), np.arange(p.n_options))
    for shard in shards:
        assert np.isin(shard.problem.option_resource, shard.resources).all()
        assert shard.problem.n_demands == p.n_demands
        assert np.array_equal(shard.problem.capacity_gpus, p.capacity_gpus)
    with pytest.raises(ValueError, match="repeats a resource"):
        split_by_resource(p, [[0, 1], [1, 2, 3, 4]])
    with pytest.raises(ValueError, match=r"resources \[4\] are in no group"):
        split_by_resource(p, [[0, 1], [2, 3]])


def test_resource_groups_keep_a_sites_pools_together_and_balance_options():
    """Six sites of two pools each into three groups: no site split, every group used, and the
    largest-first deal leaves the groups' option counts within one site's of each other."""
    owner = np.repeat(np.arange(6), 2)
    options = np.array([50, 50, 10, 10, 30, 30, 20, 20, 40, 40, 5, 5])
    groups = resource_groups(owner, options, 3)
    assert len(groups) == 3 and all(len(g) for g in groups)
    assert np.array_equal(np.sort(np.concatenate(groups)), np.arange(12))
    for g in groups:
        assert all(set(np.flatnonzero(owner == o)) <= set(g) for o in owner[g])
    loads = sorted(int(options[g].sum()) for g in groups)
    assert loads == [100, 100, 110]
    assert len(resource_groups(owner, options, 10)) == 6  # never more groups than sites


@pytest.mark.parametrize("cap", [None, 25.0])
def test_the_master_grows_as_under_one_pricer_whatever_the_shards(cap):
    """Each round the coordinator takes each demand's k cheapest of all the shards' offers,
    which are the round's k cheapest: one, two and three shards add the same columns round by
    round and end with the same master."""
    p = tight_problem(2, cap)
    runs = [solve_decomposed(public_part(p), InProcessPricers(split_by_resource(p, groups)),
                             EXACT, SafetyNet(60.0), per_round=2, initial=1)
            for groups in ([[0, 1, 2]], *GROUPINGS.values())]
    one = runs[0]
    assert one.complete and one.rounds >= 2
    for run in runs[1:]:
        assert [r.columns_added for r in run.history] == [r.columns_added for r in one.history]
        assert np.array_equal(np.sort(run.option_index), np.sort(one.option_index))
        assert run.objective_usd == pytest.approx(one.objective_usd, rel=1e-12)
    assert any(r.columns_offered > r.columns_added for r in runs[-1].history)
