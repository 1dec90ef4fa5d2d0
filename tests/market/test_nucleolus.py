"""Nucleolus and prenucleolus: published examples, properties, degenerate games."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market import (
    EmptyImputationSetError,
    Game,
    GameKind,
    in_core,
    least_core,
    least_core_epsilon,
    nucleolus,
    prenucleolus,
)
from market.games.game import coalition_sums
from tests.market.published_games import EXAMPLES, ISSUE_SAMPLE, NON_SUPERADDITIVE


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.name)
def test_nucleolus_matches_published_value(example):
    """Each example's source and hand check is in ``example.source``."""
    result = nucleolus(example.game())
    assert np.allclose(result.shares, example.nucleolus, rtol=1e-9, atol=1e-7)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.name)
def test_pyomo_and_matrix_backends_agree(example):
    game = example.game()
    assert np.allclose(
        nucleolus(game, backend="pyomo").shares, nucleolus(game, backend="matrix").shares
    )


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.name)
def test_core_emptiness_of_published_examples(example):
    game = example.game()
    epsilon = least_core_epsilon(game)
    assert (epsilon > 1e-9) == example.core_empty
    if not example.core_empty:
        assert in_core(game, example.nucleolus)


def test_least_core_epsilon_of_maschler_game_is_12():
    game = next(e for e in EXAMPLES if e.name == "maschler_game").game()
    assert np.isclose(least_core(game).epsilon, 12.0)


def test_hasan_levels_show_the_tie_structure():
    """Hasan et al.: first level 0 ({1,2} and {3,4} forced tight), then -0.5 (see source)."""
    game = next(e for e in EXAMPLES if e.name == "hasan_broadcast").game()
    assert np.allclose(nucleolus(game).levels, [0.0, -0.5])


def test_non_superadditive_game_nucleolus_and_prenucleolus_by_hand():
    """v(i)=0, v(12)=6, v(13)=v(23)=2, v(N)=5 (v(N) < v(12)+v(3)).

    Nucleolus: e(12) = 1 + x3 >= 1 with x3 >= 0, so x3 = 0; then x1 = x2 = 2.5.
    Prenucleolus: e(12) = 1 + x3 and e(3) = -x3 balance at x3 = -1/2 (level 1/2); then
    e(13) = 5/2 - x1, e(23) = 5/2 - x2 with x1 + x2 = 11/2 give x1 = x2 = 11/4 (level -1/4).
    """
    game = Game.from_mapping(NON_SUPERADDITIVE)
    assert np.allclose(nucleolus(game).shares, [2.5, 2.5, 0.0])
    pre = prenucleolus(game)
    assert np.allclose(pre.shares, [2.75, 2.75, -0.5])
    assert np.allclose(pre.levels, [0.5, -0.25])


def test_issue_sample_has_no_imputation_but_a_prenucleolus():
    """c(A)+c(B)+c(C) = 19 < c(N) = 20: no imputation. Prenucleolus by hand: the least core
    (epsilon 4.5) forces x_B = 5.5, x_A + x_C = 14.5; then x_A - 2.5 = 10 - x_A gives 6.25."""
    game = Game.from_mapping(ISSUE_SAMPLE)
    with pytest.raises(EmptyImputationSetError, match="no imputation"):
        nucleolus(game)
    assert np.allclose(prenucleolus(game).shares, [6.25, 5.5, 8.25])
    assert np.isclose(least_core(game).epsilon, 4.5)


def test_single_player_and_two_player_games():
    assert np.allclose(nucleolus(Game(("a",), GameKind.COST, [0, 7])).shares, [7.0])
    # two players: standard solution, each gets v(i) plus half the surplus
    game = Game(("a", "b"), GameKind.PROFIT, [0, 1, 3, 10])
    assert np.allclose(nucleolus(game).shares, [4.0, 6.0])


def test_fully_degenerate_game_everything_zero():
    game = Game(tuple("abcd"), GameKind.PROFIT, np.zeros(16))
    assert np.allclose(nucleolus(game).shares, 0.0)


def _balanced_games(max_players=4):
    """Games with a non-empty core: v(S) = a(S) - r(S), r >= 0, v(N) = a(N) puts a in the core."""

    def build(n, data):
        a = np.array(data.draw(st.lists(st.integers(-20, 20), min_size=n, max_size=n)), float)
        r = np.array(
            data.draw(st.lists(st.integers(0, 15), min_size=(1 << n), max_size=(1 << n))), float
        )
        r[0] = r[-1] = 0.0
        values = coalition_sums(a) - r
        return Game(tuple(f"p{i}" for i in range(n)), GameKind.PROFIT, values)

    return st.tuples(st.integers(2, max_players), st.data()).map(lambda t: build(*t))


def _any_games(max_players=4):
    return st.integers(2, max_players).flatmap(
        lambda n: st.lists(st.integers(-30, 30), min_size=(1 << n) - 1, max_size=(1 << n) - 1).map(
            lambda vals, n=n: Game(tuple(f"p{i}" for i in range(n)), GameKind.PROFIT, [0, *vals])
        )
    )


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_nucleolus_lies_in_nonempty_core_and_equals_prenucleolus(data):
    game = data.draw(_balanced_games())
    result = nucleolus(game)
    assert in_core(game, result.shares)
    assert np.allclose(result.shares, prenucleolus(game).shares, atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(
    _any_games(),
    st.floats(0.1, 50, allow_nan=False),
    st.lists(st.integers(-20, 20), min_size=4, max_size=4),
)
def test_prenucleolus_is_covariant_under_strategic_equivalence(game, scale, shift):
    shift = np.array(shift[: game.n_players], float)
    moved = game.transformed(scale, shift)
    assert np.allclose(
        prenucleolus(moved).shares, scale * prenucleolus(game).shares + shift, atol=1e-6 * scale
    )


@settings(max_examples=30, deadline=None)
@given(
    st.data(),
    st.floats(0.1, 50, allow_nan=False),
    st.lists(st.integers(-20, 20), min_size=4, max_size=4),
)
def test_nucleolus_is_covariant_under_strategic_equivalence(data, scale, shift):
    game = data.draw(_balanced_games())
    shift = np.array(shift[: game.n_players], float)
    moved = game.transformed(scale, shift)
    assert np.allclose(
        nucleolus(moved).shares, scale * nucleolus(game).shares + shift, atol=1e-6 * scale
    )


@settings(max_examples=20, deadline=None)
@given(_any_games(max_players=4))
def test_cost_nucleolus_is_standalone_minus_savings_nucleolus(profit_game):
    cost_game = Game(profit_game.players, GameKind.COST, -profit_game.values)
    savings = cost_game.savings_game()
    try:
        direct = nucleolus(cost_game).shares
    except EmptyImputationSetError:
        direct = None
    if direct is not None:
        via_savings = cost_game.allocation_from_savings(nucleolus(savings).shares)
        assert np.allclose(direct, via_savings, atol=1e-6)
    pre = cost_game.allocation_from_savings(prenucleolus(savings).shares)
    assert np.allclose(prenucleolus(cost_game).shares, pre, atol=1e-6)


@settings(max_examples=20, deadline=None)
@given(_any_games(max_players=4))
def test_prenucleolus_is_in_the_least_core(game):
    pre = prenucleolus(game)
    epsilon = least_core_epsilon(game)
    assert np.isclose(pre.levels[0], epsilon, atol=1e-6)
    proper = (game.values - coalition_sums(pre.shares))[1:-1]
    assert proper.max() <= epsilon + 1e-6


def test_ten_player_nucleolus_is_fast_and_in_core():
    """Bar: 10 players under 10 s. Airport-style cost game (concave, so the core is non-empty)."""
    import time

    rng = np.random.default_rng(11)
    runway = np.sort(rng.uniform(1, 100, 10))
    masks = np.arange(1 << 10)
    members = (masks[:, None] >> np.arange(10)) & 1
    cost = np.where(members.any(axis=1), (members * runway).max(axis=1), 0.0)
    game = Game(tuple(f"s{i}" for i in range(10)), GameKind.COST, cost)
    started = time.perf_counter()
    result = nucleolus(game)
    assert time.perf_counter() - started < 10
    assert in_core(game, result.shares)
