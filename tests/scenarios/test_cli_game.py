"""``carbonfed game``: output on worked examples, and one clear line + exit 2 on bad input."""

from __future__ import annotations

import json

import pytest

from scenarios.cli import main
from tests.market.published_games import EXAMPLES, ISSUE_SAMPLE


def _write(tmp_path, data, name="game.json"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return str(path)


def test_json_output_on_issue_sample(tmp_path, capsys):
    """Hand values: Shapley (43/6, 11/3, 55/6); no imputation (19 < 20); least core 4.5."""
    code = main(["game", _write(tmp_path, ISSUE_SAMPLE), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["allocations"]["shapley"] == pytest.approx({"A": 43 / 6, "B": 11 / 3, "C": 55 / 6})
    assert "nucleolus" not in out["allocations"]
    assert "no imputation" in out["not_applicable"]["nucleolus"]
    assert out["core_empty"] is True
    assert out["least_core_epsilon"] == pytest.approx(4.5)
    assert out["allocations"]["least-core"] == pytest.approx({"A": 6.25, "B": 5.5, "C": 8.25})
    assert out["diagnostics"]["shapley"]["max_excess_coalition"] == ["A", "C"]
    assert out["diagnostics"]["shapley"]["in_core"] is False


def test_single_rule_json_on_talmud(tmp_path, capsys):
    example = next(e for e in EXAMPLES if e.name == "talmud_estate_200")
    data = {"players": ["1", "2", "3"], "kind": "profit", "values": example.values}
    code = main(["game", _write(tmp_path, data), "--rule", "nucleolus", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["allocations"] == {"nucleolus": pytest.approx({"1": 50, "2": 75, "3": 75})}
    assert out["diagnostics"]["nucleolus"]["in_core"] is True


def test_table_output_names_players_rules_and_core_state(tmp_path, capsys):
    example = next(e for e in EXAMPLES if e.name == "hasan_broadcast")
    data = {"players": list(example.players), "kind": "cost", "values": example.values}
    code = main(["game", _write(tmp_path, data)])
    out = capsys.readouterr().out
    assert code == 0
    for word in ("shapley", "nucleolus", "least-core", "proportional", "equal", "core: non-empty"):
        assert word in out
    assert "10.5000" in out  # player 4's nucleolus cost share


def test_weights_option(tmp_path, capsys):
    path = _write(tmp_path, ISSUE_SAMPLE)
    code = main(["game", path, "--rule", "proportional", "--weights", "A=1,B=1,C=2", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["allocations"]["proportional"] == pytest.approx({"A": 5, "B": 5, "C": 10})


BAD_INPUTS = [
    ('{"players": ["A", "B"], "kind": "cost", "values": {"A": 1, "B": 2, "A+B": 3,}}', "line 1"),
    ({"players": ["A", "B"], "kind": "cost", "values": {"A": 1, "B": 2}}, "values.A+B"),
    ({"players": ["A", "B"], "kind": "cost", "values": {"A": 1, "B": 2, "A+Z": 3}}, "values.A+Z"),
    ({"players": ["A", "A"], "kind": "cost", "values": {"A": 1}}, "players[1]"),
    ({"players": ["A", "B"], "kind": "cost", "values": {"A": 1, "B": "x", "A+B": 3}}, "values.B"),
    ({"players": [], "kind": "cost", "values": {}}, "players"),
    ({"players": ["A", "B"], "kind": "gain", "values": {"A": 1, "B": 2, "A+B": 3}}, "kind"),
    ({"players": ["A", "B"], "kind": "cost", "values": {"A": 1, "B": 2, "A+A": 3}}, "values.A+A"),
    (
        {"players": ["A", "B"], "kind": "cost", "values": {"A": 1, "B": 2, "A+B": 3, "B+A": 3}},
        "values.B+A",
    ),
    (
        '{"players": ["A", "B"], "kind": "cost", "values": {"A": 1, "B": 2, "A+B": 3, "A": 4}}',
        "values.A",
    ),
    ({"players": ["A", "B"], "kind": "cost"}, "values"),
    ([1, 2, 3], "JSON object"),
]


@pytest.mark.parametrize(("content", "named"), BAD_INPUTS)
def test_bad_game_file_exits_2_with_one_line_naming_the_field(tmp_path, capsys, content, named):
    code = main(["game", _write(tmp_path, content)])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert named in err


def test_missing_file_exits_2(tmp_path, capsys):
    assert main(["game", str(tmp_path / "nope.json")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_nucleolus_alone_without_imputations_exits_2(tmp_path, capsys):
    code = main(["game", _write(tmp_path, ISSUE_SAMPLE), "--rule", "nucleolus"])
    assert code == 2
    assert "no imputation" in capsys.readouterr().err


def test_bad_weights_exit_2(tmp_path, capsys):
    code = main(["game", _write(tmp_path, ISSUE_SAMPLE), "--weights", "A=1,B=2"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--weights" in err and "no weight for C" in err
