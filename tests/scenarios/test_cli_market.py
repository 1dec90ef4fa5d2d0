"""``carbonfed market`` end to end on `tiny` (2 sites, 6 jobs): files, JSON, bad input."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.scenarios.helpers import run_cli


@pytest.fixture(scope="module")
def market_run(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("market")
    code, out, _err = run_cli("market", "tiny", "--out", str(out_dir), "--json")
    return code, json.loads(out), out_dir


def test_json_has_the_documented_shape(market_run):
    code, doc, _ = market_run
    assert code == 0
    assert doc["sites"] == ["north", "south"]
    assert set(doc["coalitions"]) == {"north", "south", "north+south"}
    assert doc["carbon_policy"]["kind"] == "tax"
    assert doc["carbon_policy"]["price_in_force_usd_per_t"] == 100.0
    for name in ("shapley", "nucleolus", "least-core", "proportional", "equal", "cost-plus",
                 "market", "isolated"):
        row = doc["schemes"][name]
        assert {"shares_usd", "gain_usd", "individually_rational", "in_core", "max_excess_usd",
                "blocking_coalition", "budget_balance_usd"} <= set(row), name
        if name != "isolated":
            assert sum(row["shares_usd"].values()) == pytest.approx(doc["grand_cost_usd"])
    assert [p["carbon_price_usd_per_t"] for p in doc["sweep"]] == [0, 25, 50, 100, 200]
    carbon = [p["carbon_kg"] for p in doc["sweep"]]
    assert carbon == sorted(carbon, reverse=True)  # dearer carbon, less of it


def test_files_are_written_and_agree_with_the_json(market_run):
    _, doc, out_dir = market_run
    for name in ("coalitions.csv", "shares.csv", "diagnostics.csv", "ledger.csv",
                 "market.json", "game.json", "gains_by_scheme.png", "abatement_curve.png"):
        assert (out_dir / name).stat().st_size > 0, name
    coalitions = pd.read_csv(out_dir / "coalitions.csv").set_index("coalition")
    assert coalitions.loc["north+south", "cost_usd"] == pytest.approx(
        doc["coalitions"]["north+south"]["cost_usd"])
    assert {"carbon_kg", "energy_kwh", "jobs_served", "jobs_unserved"} <= set(coalitions)
    shares = pd.read_csv(out_dir / "shares.csv")
    got = shares[shares["scheme"] == "shapley"].set_index("site")["share_usd"]
    assert got.to_dict() == pytest.approx(doc["schemes"]["shapley"]["shares_usd"])


def test_the_game_file_gives_carbonfed_game_the_same_shares(market_run):
    _, doc, out_dir = market_run
    code, out, _ = run_cli("game", str(out_dir / "game.json"), "--json")
    assert code == 0
    report = json.loads(out)
    for rule in ("shapley", "nucleolus"):
        assert report["allocations"][rule] == pytest.approx(doc["schemes"][rule]["shares_usd"])


def test_carbon_prices_make_one_point_each(tmp_path):
    code, out, _ = run_cli("market", "tiny", "--carbon-prices", "0,200", "--schemes",
                           "shapley,market", "--json")
    assert code == 0
    doc = json.loads(out)
    prices = [p["carbon_policy"]["price_in_force_usd_per_t"] for p in doc["points"]]
    assert prices == [0.0, 200.0]
    assert set(doc["schemes"]) == {"shapley", "market"}
    assert doc["points"][1]["federation"]["carbon_kg"] <= doc["points"][0]["federation"][
        "carbon_kg"]


def test_simulate_mode_runs_the_broker_per_coalition():
    code, out, _ = run_cli("market", "tiny", "--value", "simulate", "--schemes", "shapley",
                           "--json")
    assert code == 0
    doc = json.loads(out)
    # the grand coalition's simulated cost is `carbonfed run tiny`'s milp total plus delay
    assert doc["coalitions"]["north+south"]["jobs_served"] == 6
    assert doc["savings_usd"] > 0


@pytest.mark.parametrize(("args", "words"), [
    (["--policy", "cap", "--cap-t", "-1"], "--cap-t: must be > 0 tonnes per run (got -1)"),
    (["--policy", "cap", "--cap-t", "0.0000001"],
     "--cap-t: 1e-07 t is unreachable: the lowest emissions"),
    (["--policy", "cap"], "--cap-t: a cap needs a limit (tonnes per run)"),
    (["--schemes", "magic"], "--schemes: magic: not one of"),
    (["--samples", "0"], "--samples: 0: must be at least 2"),
    (["--value", "guess"], "--value: guess: not one of plan, simulate"),
    (["--carbon-prices", "1,x"], "--carbon-prices: x: not a number"),
])
def test_bad_input_is_one_line_and_exit_2(args, words):
    code, out, err = run_cli("market", "tiny", *args)
    assert code == 2 and out == ""
    lines = [line for line in err.splitlines() if not line.startswith("market:")]
    assert len(lines) == 1 and words in lines[0]
    assert "Traceback" not in err


@pytest.mark.parametrize("scheme", ["cost-plus", "market"])
def test_run_ledger_settles_milps_hosted_jobs(tmp_path, scheme):
    """`carbonfed run tiny --ledger SCHEME`: one row per job milp ran away from home, from
    its home to its host; cost-plus pays 1.1 x (energy + carbon at 100 USD/t); the ledger
    sums to zero (what one site pays another receives)."""
    code, out, _ = run_cli("run", "tiny", "--policies", "milp", "--ledger", scheme,
                           "--out", str(tmp_path))
    assert code == 0 and f"Settlement of milp's run under {scheme}" in out
    ledger = pd.read_csv(tmp_path / "ledger.csv")
    jobs = pd.read_csv(tmp_path / "jobs.csv")
    moved = jobs[(jobs["status"] == "finished") & (jobs["site"] != jobs["home_site"])]
    assert sorted(ledger["job_id"]) == sorted(moved["job_id"]) and len(ledger) > 0
    merged = ledger.merge(moved, on="job_id")
    assert (merged["payer"] == merged["home_site"]).all()
    assert (merged["payee"] == merged["site"]).all()
    at_cost = merged["energy_cost_usd"] + 0.1 * merged["carbon_kg_y"]
    if scheme == "cost-plus":
        assert merged["amount_usd"].to_numpy() == pytest.approx(1.1 * at_cost.to_numpy())
    else:
        assert (merged["amount_usd"] >= at_cost - 1e-12).all()  # at cost plus a rent >= 0
    paid = ledger.groupby("payer")["amount_usd"].sum()
    received = ledger.groupby("payee")["amount_usd"].sum()
    assert paid.sum() == pytest.approx(received.sum())
