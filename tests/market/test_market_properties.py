"""Properties of the market that hold on any federation, checked on real runs."""

from __future__ import annotations

import pytest

from market.analysis import analyse
from market.carbon_policy import CarbonPolicy, CarbonPolicyKind
from market.games import Game, GameKind, RuleSettings, tolerance
from market.outcome import GrandOutcome
from market.schemes import SchemeInputs, apply_scheme
from market.valuation import PlanValuation
from scenarios.build import build_run
from scenarios.loader import load_scenario


@pytest.fixture(scope="module")
def default_point():
    run = build_run(load_scenario("default"))
    valuation = PlanValuation(run.setup, run.config)
    return analyse(valuation, CarbonPolicy(CarbonPolicyKind.TAX, 100.0))


def test_market_prices_give_a_core_allocation(default_point):
    """The plan-mode game is a linear production game: the LP's capacity prices charge every
    job its marginal cost and pay every pool its rent, an allocation in the core (Owen 1975).
    On `default` (5 sites, 31 coalitions) no coalition pays more than it would alone."""
    market = default_point.schemes["market"]
    d = market.diagnostics
    assert d.efficiency_gap == pytest.approx(0.0, abs=1e-9)
    assert d.in_core and d.individually_rational
    assert d.max_excess <= tolerance(default_point.game) + 1e-9


def test_every_scheme_balances_its_budget_and_its_ledger(default_point):
    point = default_point
    for name, result in point.schemes.items():
        if name == "isolated" or result.diagnostics is None:
            continue
        assert sum(result.shares_usd.values()) == pytest.approx(point.grand.cost_usd), name
        rows = [r for r in point.ledger if r.scheme == name]
        paid: dict[str, float] = {}
        for r in rows:
            paid[r.payer] = paid.get(r.payer, 0.0) + r.amount_usd
            paid[r.payee] = paid.get(r.payee, 0.0) - r.amount_usd
        assert sum(paid.values()) == pytest.approx(0.0, abs=1e-9), name
        for site, share in result.shares_usd.items():
            assert point.outcome.base_usd[site] + paid.get(site, 0.0) == pytest.approx(share)


def test_values_cover_every_job_of_the_coalition(default_point):
    """Each coalition serves or sends out every job whose home is in it."""
    jobs_by_site = {}
    for job in build_run(load_scenario("default")).setup.jobs:
        jobs_by_site[job.home_site] = jobs_by_site.get(job.home_site, 0) + 1
    for coalition, value in default_point.values.items():
        expected = sum(jobs_by_site.get(s, 0) for s in coalition)
        assert value.jobs_served + value.jobs_unserved == pytest.approx(expected)


def test_an_empty_core_makes_every_rule_name_a_coalition_that_would_leave():
    """The three-player majority game in cost form: c(i) = 1, c(ij) = 1, c(N) = 2 (each pair
    saves 1, all three save 1). No split of 2 gives every pair at most 1: the core is empty,
    so every budget-balanced rule leaves some pair paying more than 1 (Shapley: 2/3 each,
    a pair pays 4/3, excess 1/3). (Plan-mode federation games are linear production games,
    whose cores are never empty, so this game is given by its values.)"""
    players = ("A", "B", "C")
    table = [0, 1, 1, 1, 1, 1, 1, 2]
    game = Game(players, GameKind.COST, table)
    outcome = GrandOutcome(players, (), {"A": 2 / 3, "B": 2 / 3, "C": 2 / 3},
                           dict.fromkeys(players, 0.0), 0.0)
    inputs = SchemeInputs(game, outcome, (1, 1, 1), settings=RuleSettings())
    for name in ("shapley", "nucleolus", "least-core", "proportional", "equal", "cost-plus"):
        result = apply_scheme(name, inputs)
        d = result.diagnostics
        assert d is not None and not d.in_core, name
        assert len(d.max_excess_coalition) == 2 and d.max_excess > 0.3, name
    shapley = apply_scheme("shapley", inputs)
    assert shapley.shares_usd == pytest.approx(dict.fromkeys(players, 2 / 3))
    assert shapley.diagnostics.max_excess == pytest.approx(1 / 3)


def test_sampled_shapley_is_close_to_the_exact_one(default_point):
    """Permutation sampling (the mode beyond 12 sites), forced on `default`: the estimates
    sum to c(N) exactly (each permutation does) and lie within three half-widths of the
    exact Shapley value; only the coalitions the permutations visit are valued."""
    from market.analysis import MarketSettings

    run = build_run(load_scenario("default"))
    valuation = PlanValuation(run.setup, run.config)
    sampled = analyse(valuation, CarbonPolicy(CarbonPolicyKind.TAX, 100.0),
                      MarketSettings(exact=False, samples=60, seed=3))
    estimate = sampled.shapley_estimate
    assert estimate is not None and sampled.game is None and sampled.schemes == {}
    exact = default_point.schemes["shapley"].shares_usd
    assert float(estimate.mean.sum()) == pytest.approx(default_point.grand.cost_usd)
    for site, mean, half in zip(estimate.players, estimate.mean, estimate.half_width,
                                strict=True):
        assert abs(mean - exact[site]) <= 3 * half + 1e-9, site
    assert len(sampled.values) <= 31
