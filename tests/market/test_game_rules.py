"""Game tables, conversions, simple rules and diagnostics."""

from __future__ import annotations

import numpy as np
import pytest

from market import (
    RULES,
    Game,
    GameKind,
    RuleNotApplicableError,
    RuleSettings,
    allocate,
    compare_rules,
    diagnose,
    equal_split_of_savings,
    nearest_least_core_point,
    proportional_split,
    shapley_value,
)
from sites.errors import InputError
from tests.market.published_games import EXAMPLES, ISSUE_SAMPLE


def test_bitmask_indexing_follows_player_order():
    game = Game.from_mapping(ISSUE_SAMPLE)
    assert game.values[0b011] == 8  # A+B
    assert game.values[0b110] == 10  # B+C
    assert game.value(["C", "A"]) == 10
    assert game.coalition_name(0b101) == "A+C"


def test_keys_in_any_order_and_spaces_are_accepted():
    values = {"C+B+A": 20, "B + A": 8, "C+A": 10, "C+B": 10, "A": 8, "B": 1, "C": 10, "": 0}
    game = Game.from_mapping({"players": ["A", "B", "C"], "kind": "cost", "values": values})
    assert np.array_equal(game.values, Game.from_mapping(ISSUE_SAMPLE).values)


def test_savings_game_by_hand():
    """s(S) = sum c(i) - c(S): s(AB) = 9 - 8 = 1, s(AC) = 8, s(BC) = 1, s(N) = 19 - 20 = -1."""
    savings = Game.from_mapping(ISSUE_SAMPLE).savings_game()
    assert savings.kind is GameKind.PROFIT
    assert np.allclose(savings.values, [0, 0, 0, 1, 0, 8, 1, -1])


def test_mapping_round_trip():
    game = Game.from_mapping(ISSUE_SAMPLE)
    again = Game.from_mapping(game.to_mapping())
    assert np.array_equal(game.values, again.values) and game.players == again.players


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"players": []}, "players"),
        ({"players": ["A", "A", "C"]}, "players[1]"),
        ({"kind": "revenue"}, "kind"),
        ({"values": {"A": 8}}, "values.B"),
        ({"values": {**ISSUE_SAMPLE["values"], "A+D": 3}}, "values.A+D"),
        ({"values": {**ISSUE_SAMPLE["values"], "B": "one"}}, "values.B"),
        ({"values": {**ISSUE_SAMPLE["values"], "B+A": 8}}, "values.B+A"),
        ({"values": {**ISSUE_SAMPLE["values"], "A+A": 8}}, "values.A+A"),
        ({"values": {**ISSUE_SAMPLE["values"], "": 4}}, "values."),
        ({"values": {**ISSUE_SAMPLE["values"], "C": True}}, "values.C"),
        ({"extra": 1}, "extra"),
    ],
)
def test_bad_game_data_names_the_field(change, field):
    with pytest.raises(InputError) as caught:
        Game.from_mapping({**ISSUE_SAMPLE, **change}, source="g.json")
    assert caught.value.field == field


def test_game_validates_its_table():
    with pytest.raises(ValueError, match="length"):
        Game(("a", "b"), GameKind.COST, [0, 1, 2])
    with pytest.raises(ValueError, match="empty coalition"):
        Game(("a",), GameKind.COST, [1, 2])
    game = Game(("a",), GameKind.COST, [0, 2])
    with pytest.raises(ValueError):
        game.values[1] = 5  # read-only: a Game is immutable


def test_proportional_split_to_standalone_cost_and_to_given_weights():
    game = Game.from_mapping(ISSUE_SAMPLE)
    assert np.allclose(proportional_split(game), 20 * np.array([8, 1, 10]) / 19)
    assert np.allclose(proportional_split(game, np.array([1, 1, 2])), [5, 5, 10])
    with pytest.raises(RuleNotApplicableError, match="weights"):
        proportional_split(game, np.array([1, -1, 2]))


def test_equal_split_of_savings_by_hand():
    """Lemaire: v(i) = 46125, 17437.5, 5812.5 sum to 69375; surplus 20625 -> +6875 each."""
    game = next(e for e in EXAMPLES if e.name == "lemaire_insurance").game()
    assert np.allclose(equal_split_of_savings(game), [53000, 24312.5, 12687.5])
    cost = Game.from_mapping(ISSUE_SAMPLE)  # savings -1 -> each pays 1/3 more than alone
    assert np.allclose(equal_split_of_savings(cost), [8 + 1 / 3, 1 + 1 / 3, 10 + 1 / 3])


def test_diagnostics_on_a_blocked_allocation():
    """Ferguson's game with x = (5, 0, 0): {2,3} gets 0 but can make 2 alone -> excess 2."""
    game = next(e for e in EXAMPLES if e.name == "ferguson_3p").game()
    report = diagnose(game, np.array([5.0, 0.0, 0.0]))
    assert report.efficient
    assert not report.individually_rational  # player 3 gets 0 < v(3) = 1
    assert not report.in_core
    assert np.isclose(report.max_excess, 2.0)
    assert report.max_excess_coalition == ("2", "3")


def test_diagnostics_in_cost_terms():
    """Cost game: x = (7.5, 0.5, 1.5, 10.5) is in Hasan's core; overcharging player 2 by 2
    (taken from 4) makes {2} pay 2.5 - 1 = 1.5 and {1,2} pay 10 - 8 = 2 more than alone."""
    game = next(e for e in EXAMPLES if e.name == "hasan_broadcast").game()
    assert diagnose(game, np.array([7.5, 0.5, 1.5, 10.5])).in_core
    report = diagnose(game, np.array([7.5, 2.5, 1.5, 8.5]))
    assert not report.in_core and not report.individually_rational
    assert np.isclose(report.max_excess, 2.0)
    assert report.max_excess_coalition == ("1", "2")
    assert not diagnose(game, np.array([7.5, 0.5, 1.5, 11.5])).efficient


def test_every_rule_is_efficient_on_published_examples():
    for example in EXAMPLES:
        game = example.game()
        report = compare_rules(game, list(RULES))
        assert report.core_empty == example.core_empty
        for outcome in report.outcomes:
            if outcome.allocation is not None:
                assert outcome.diagnostics.efficient, (example.name, outcome.rule)


def test_registry_rule_with_weights_and_unknown_rule():
    game = Game.from_mapping(ISSUE_SAMPLE)
    allocation = allocate(game, "proportional", RuleSettings(weights=(1.0, 1.0, 2.0)))
    assert allocation.as_dict() == {"A": 5.0, "B": 5.0, "C": 10.0}
    with pytest.raises(KeyError, match="unknown rule"):
        allocate(game, "banzhaf")


def test_nearest_least_core_point_is_in_the_least_core():
    """Lemaire: least-core epsilon = -6562.5 (= e({1}) = e({2,3}) at the nucleolus); the
    Shapley value has e({1}) = -5625, so it is outside the least core and must move."""
    game = next(e for e in EXAMPLES if e.name == "lemaire_insurance").game()
    phi = shapley_value(game)
    point = nearest_least_core_point(game, phi)
    report = diagnose(game, point)
    assert report.efficient
    assert np.isclose(report.max_excess, -6562.5)
    assert not np.allclose(point, phi)
