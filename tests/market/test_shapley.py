"""Shapley value: published examples, axioms (hypothesis) and the sampled estimator."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market import Game, GameKind, sampled_shapley, shapley_value
from tests.market.published_games import EXAMPLES, ISSUE_SAMPLE, brute_force_shapley


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.name)
def test_shapley_matches_published_or_hand_value(example):
    """Each example's source and hand check is in ``example.source``."""
    game = example.game()
    expected = example.shapley or [float(x) for x in brute_force_shapley(game)]
    assert np.allclose(shapley_value(game), expected, rtol=1e-9, atol=1e-9)


def test_shapley_of_issue_sample_cost_game_by_hand():
    """phi_A = 8/3 + (8-1)/6 + (10-10)/6 + (20-10)/3 = 43/6; phi_B = 1/3 + 0 + 0 + 10/3 = 11/3."""
    game = Game.from_mapping(ISSUE_SAMPLE)
    assert np.allclose(shapley_value(game), [43 / 6, 11 / 3, 55 / 6])


def test_cost_shapley_is_standalone_minus_savings_shapley():
    game = Game.from_mapping(ISSUE_SAMPLE)
    via_savings = game.standalone_values - shapley_value(game.savings_game())
    assert np.allclose(shapley_value(game), via_savings)


def _games(min_players=2, max_players=5):
    return st.integers(min_players, max_players).flatmap(
        lambda n: st.lists(st.integers(-50, 50), min_size=(1 << n) - 1, max_size=(1 << n) - 1).map(
            lambda vals, n=n: Game(tuple(f"p{i}" for i in range(n)), GameKind.PROFIT, [0, *vals])
        )
    )


@settings(max_examples=40, deadline=None)
@given(_games())
def test_shapley_is_efficient(game):
    assert np.isclose(shapley_value(game).sum(), game.grand_value)


@settings(max_examples=40, deadline=None)
@given(_games())
def test_shapley_matches_permutation_oracle(game):
    assert np.allclose(shapley_value(game), [float(x) for x in brute_force_shapley(game)])


@settings(max_examples=40, deadline=None)
@given(_games())
def test_symmetric_players_get_equal_shares(game):
    # symmetrise players 0 and 1: w(S) = v(S) + v(swap01(S))
    masks = np.arange(len(game.values))
    bit0, bit1 = masks & 1, (masks >> 1) & 1
    swapped = (masks & ~3) | (bit0 << 1) | bit1
    symmetric = Game(game.players, game.kind, game.values + game.values[swapped])
    phi = shapley_value(symmetric)
    assert np.isclose(phi[0], phi[1])


@settings(max_examples=40, deadline=None)
@given(_games(max_players=4))
def test_null_player_gets_zero_and_others_unchanged(game):
    # add a player whose arrival never changes a coalition's value
    extended = Game((*game.players, "null"), game.kind, np.tile(game.values, 2))
    phi = shapley_value(extended)
    assert np.isclose(phi[-1], 0.0)
    assert np.allclose(phi[:-1], shapley_value(game))


@settings(max_examples=40, deadline=None)
@given(_games(), st.data())
def test_shapley_is_additive(game, data):
    other_values = data.draw(
        st.lists(st.integers(-50, 50), min_size=len(game.values) - 1, max_size=len(game.values) - 1)
    )
    other = Game(game.players, game.kind, [0, *other_values])
    total = Game(game.players, game.kind, game.values + other.values)
    assert np.allclose(shapley_value(total), shapley_value(game) + shapley_value(other))


def test_exact_shapley_handles_twenty_players_quickly():
    """Additive game plus a unanimity game on everyone: phi_i = a_i + u/n, known in closed form."""
    n = 20
    rng = np.random.default_rng(7)
    weights = rng.uniform(1, 10, n)
    from market.games.game import coalition_sums

    values = coalition_sums(weights)
    values[-1] += 100.0
    game = Game(tuple(f"s{i}" for i in range(n)), GameKind.COST, values)
    assert np.allclose(shapley_value(game), weights + 100.0 / n)


@pytest.mark.parametrize("stratified", [False, True])
def test_sampled_shapley_interval_covers_exact_value(stratified):
    example = next(e for e in EXAMPLES if e.name == "sakawa_production_5p")
    game = example.game()
    exact = shapley_value(game)
    estimate = sampled_shapley(
        game.players,
        lambda coalition: game.value(coalition),
        rng=np.random.default_rng(2024),
        samples=4000,
        confidence=0.999,
        stratified=stratified,
    )
    assert np.all(estimate.lower <= exact) and np.all(exact <= estimate.upper)
    assert np.all(estimate.half_width < 0.02)
    assert estimate.evaluations <= 31  # each coalition computed at most once


def test_permutation_sampling_is_efficient_and_seeded():
    game = next(e for e in EXAMPLES if e.name == "apex_5p").game()
    first = sampled_shapley(game.players, game, rng=np.random.default_rng(1), samples=50)
    again = sampled_shapley(game.players, game, rng=np.random.default_rng(1), samples=50)
    assert np.isclose(first.mean.sum(), game.grand_value)
    assert np.array_equal(first.mean, again.mean)


def test_stratified_sampling_is_exact_when_strata_are_deterministic():
    """With two players both strata (sizes 0 and 1) are single coalitions: no sampling error."""
    game = Game(("a", "b"), GameKind.PROFIT, [0, 1, 3, 10])
    estimate = sampled_shapley(
        game.players, game, rng=np.random.default_rng(0), samples=10, stratified=True
    )
    assert np.allclose(estimate.mean, [4.0, 6.0])
    assert np.allclose(estimate.half_width, 0.0)


def test_sampled_shapley_rejects_bad_budget():
    with pytest.raises(ValueError, match="samples"):
        sampled_shapley(("a",), lambda s: 1.0, rng=np.random.default_rng(0), samples=1)
