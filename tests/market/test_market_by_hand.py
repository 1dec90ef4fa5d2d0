"""The market on federations small enough to solve on paper (plan mode, 1 h plan slots).

Every job: 1 GPU, 3600 steps of ``train`` at 1 step/s on a V100 (300 W, PUE 1): 1 h, 0.3 kWh.
Price 50 USD/MWh everywhere (0.015 USD per job); carbon 500 g/kWh at A (0.15 kg, 0.015 USD
at 100 USD/t) and 100 g/kWh at B (0.03 kg, 0.003 USD): a job costs 0.030 USD at A and
0.018 USD at B. No data sets (no egress). Waiting costs 0.005 USD per GPU-hour from
submission to completion: 0.005 for a job that starts at once, 0.010 if it waits an hour.
c(S) is the plan's objective: energy + carbon + transfer + delay (+ the outside option).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from broker.federation import Federation
from broker.jobs import Job
from broker.period_plan import PeriodPlanSettings
from broker.planner import PlannerConfig
from market.analysis import MarketSettings, analyse, cost_game
from market.carbon_policy import CarbonPolicy, CarbonPolicyKind
from market.ledger import balances
from market.schemes import SchemeInputs
from market.valuation import PlanValuation
from optimization import SolverOptions
from sites import DEFAULT_GPUS, AffinityMatrix, InputError, SiteSpec
from tests.scenarios.helpers import make_setup

AFFINITY = AffinityMatrix.from_nested({"train": {"V100": 1.0}})
TAX = CarbonPolicy(CarbonPolicyKind.TAX, 100.0)
EXACT = SolverOptions(30.0, 0.0, 1)


def valuation(gpus: dict[str, int], jobs: list[Job], max_wait_h: float,
              price: dict[str, float] | None = None) -> PlanValuation:
    sites = tuple(SiteSpec(s, s, {"V100": n}, 1.0, 0.0) for s, n in gpus.items())
    fed = Federation(sites, DEFAULT_GPUS, AFFINITY)
    carbon = {"A": [500.0], "B": [100.0], "C": [100.0]}
    price = price or {}
    setup = make_setup(fed, jobs, carbon=[carbon[s] for s in gpus],
                       price=[[price.get(s, 50.0)] for s in gpus], period_slots=2,
                       drain_slots=4)
    config = PlannerConfig(carbon_price_usd_per_t=100.0)
    return PlanValuation(setup, config, PeriodPlanSettings(1.0, max_wait_h, 0.005, EXACT))


def job(job_id: str, home: str, submit_h: float = 0.0) -> Job:
    return Job(job_id, home, "train", 1, 3600.0, submit_h)


@pytest.fixture(scope="module")
def two_sites():
    """A: 1 GPU, job a1 at 0 h; B: 1 GPU, job b1 at 1 h; jobs may wait 1 h.
    c(A) = 0.030 + 0.005 = 0.035, c(B) = 0.018 + 0.005 = 0.023. Together a1 runs at B
    before b1 arrives, b1 then: c(AB) = 2 x 0.018 + 2 x 0.005 = 0.046 (the only plan that
    cheap), savings 0.012."""
    v = valuation({"A": 1, "B": 1}, [job("a1", "A"), job("b1", "B", submit_h=1.0)],
                  max_wait_h=1.0)
    return analyse(v, TAX, MarketSettings(markup=0.1))


def test_coalition_values_by_hand(two_sites):
    values = two_sites.values
    assert values[("A",)].cost_usd == pytest.approx(0.035)
    assert values[("B",)].cost_usd == pytest.approx(0.023)
    assert values[("A", "B")].cost_usd == pytest.approx(0.046)
    assert values[("A", "B")].carbon_kg == pytest.approx(0.06)  # both at B: 2 x 0.03 kg
    assert values[("A", "B")].jobs_served == pytest.approx(2)


def test_shares_under_every_scheme_by_hand(two_sites):
    """Shapley, nucleolus, least core and equal split the 0.012 saved in two halves;
    proportional splits c(N) 35:23. cost-plus: before settling, A pays a1's delay (0.005)
    and B its bills (0.036) and b1's delay (0.005); A pays B 1.1 x 0.018 = 0.0198 for a1, so
    A pays 0.0248 and B 0.041 - 0.0198 = 0.0212. isolated: the standalone costs."""
    shares = {name: r.shares_usd for name, r in two_sites.schemes.items() if r.shares_usd}
    for rule in ("shapley", "nucleolus", "least-core", "equal"):
        assert shares[rule]["A"] == pytest.approx(0.029), rule
        assert shares[rule]["B"] == pytest.approx(0.017), rule
    assert shares["proportional"]["A"] == pytest.approx(0.046 * 35 / 58)
    assert shares["cost-plus"]["A"] == pytest.approx(0.0248)
    assert shares["cost-plus"]["B"] == pytest.approx(0.0212)
    assert shares["isolated"] == pytest.approx({"A": 0.035, "B": 0.023})
    for name, result in two_sites.schemes.items():
        d = result.diagnostics
        assert d is not None and d.individually_rational, name
        if name != "isolated":
            assert d.efficiency_gap == pytest.approx(0.0, abs=1e-12), name
            assert d.in_core, name


def test_ledger_sums_to_zero_and_matches_the_shares(two_sites):
    """Per scheme: balances (received - paid) sum to zero and share = base - balance."""
    base = two_sites.outcome.base_usd
    assert base == pytest.approx({"A": 0.005, "B": 0.041})  # B hosts both jobs
    for name, result in two_sites.schemes.items():
        if name == "isolated":
            continue
        rows = [r for r in two_sites.ledger if r.scheme == name]
        got = balances(rows)
        assert sum(got.values()) == pytest.approx(0.0, abs=1e-12), name
        for site in ("A", "B"):
            assert base[site] - got.get(site, 0.0) == pytest.approx(
                result.shares_usd[site]), (name, site)
    cost_plus = [r for r in two_sites.ledger if r.scheme == "cost-plus"]
    assert [(r.payer, r.payee, r.job_id) for r in cost_plus] == [("A", "B", "a1")]
    assert cost_plus[0].price_usd == pytest.approx(0.1 * 0.018)


def test_market_prices_one_binding_pool_by_hand():
    """A has 2 GPUs, B 1; A's two jobs must start now (no waiting). One runs at B (0.018),
    the other at A (0.030), each with 0.005 of delay: B's pool binds, A's does not. Its
    clearing price is what one more GPU at B would save: 0.030 - 0.018 = 0.012 USD per
    GPU-slot; A's price is 0. So A pays B 0.018 + 0.012 = 0.030 for the job B hosts: A pays
    what it would alone (c(A) = 0.070: both at home), B earns the whole 0.012 saved
    (c(B) = 0, no jobs)."""
    v = valuation({"A": 2, "B": 1}, [job("a1", "A"), job("a2", "A")], max_wait_h=0.0)
    point = analyse(v, TAX, MarketSettings(schemes=("market", "shapley")))
    prices = v.clearing_prices()
    assert prices[1, 0] == pytest.approx(0.012)  # pool 1 (B's V100), slot 0
    assert prices[0, 0] == pytest.approx(0.0)  # pool 0 (A's V100s)
    market = point.schemes["market"]
    assert market.shares_usd == pytest.approx({"A": 0.070, "B": -0.012})
    assert market.diagnostics.in_core
    rows = [r for r in point.ledger if r.scheme == "market"]
    assert len(rows) == 1 and rows[0].price_usd == pytest.approx(0.012)
    assert rows[0].amount_usd == pytest.approx(0.030)
    # Shapley halves the saving instead
    assert point.schemes["shapley"].shares_usd == pytest.approx({"A": 0.064, "B": -0.006})


def test_three_sites_and_the_coalition_that_would_leave():
    """A (dirty, 1 GPU, one job) with B and C (clean, 1 GPU each, one job each); no waiting.
    c(A) = 0.035, c(B) = c(C) = 0.023 (delay included). A pair with A cannot help A (the
    clean GPU is busy with its own job): c(BC) = 0.046, c(ABC) = 0.081: no savings, so every
    scheme that moves money sends it where a coalition would refuse: proportional-gpus
    charges by GPUs (0.027 each), and B+C pay 0.054 > c(BC): they would leave, saving 0.008.
    """
    v = valuation({"A": 1, "B": 1, "C": 1}, [job("a1", "A"), job("b1", "B"), job("c1", "C")],
                  max_wait_h=0.0)
    point = analyse(v, TAX, MarketSettings(schemes=("shapley", "proportional-gpus")))
    assert point.values[("B", "C")].cost_usd == pytest.approx(0.046)
    assert point.values[("A", "B", "C")].cost_usd == pytest.approx(0.081)
    gpus = point.schemes["proportional-gpus"]
    assert gpus.shares_usd == pytest.approx({"A": 0.027, "B": 0.027, "C": 0.027})
    d = gpus.diagnostics
    assert not d.in_core and not d.individually_rational
    assert d.max_excess_coalition == ("B", "C")
    assert d.max_excess == pytest.approx(0.054 - 0.046)
    shapley = point.schemes["shapley"].diagnostics
    assert shapley.in_core and shapley.max_excess == pytest.approx(0.0, abs=1e-12)


def capped_pair() -> PlanValuation:
    """A (2 GPUs, 50 USD/MWh, 500 g) and B (1 GPU, 60 USD/MWh, 100 g); A's two jobs start
    now. Without a carbon price both run at A (0.015 USD each, 0.15 kg each). Moving one to B
    costs 0.018 - 0.015 = 0.003 USD and saves 0.15 - 0.03 = 0.12 kg: 25 USD/t. Nothing else
    abates (B has one GPU; the cloud emits 0.189 kg a job), so the least the pair can emit is
    0.18 kg."""
    return valuation({"A": 2, "B": 1}, [job("a1", "A"), job("a2", "A")], max_wait_h=0.0,
                     price={"A": 50.0, "B": 60.0})


def test_cap_dual_equals_the_bisection_price_by_hand():
    """A cap of 0.2 kg forces the move: its LP dual is 0.003 / 0.12 = 25 USD/t, and the
    lowest tax that meets it, found by bisection, is 25 USD/t too (within 0.5)."""
    point = analyse(capped_pair(), CarbonPolicy(CarbonPolicyKind.CAP, cap_t=0.2e-3),
                    MarketSettings(schemes=("shapley",)))
    assert point.cap_dual_usd_per_t == pytest.approx(25.0, rel=1e-6)
    assert point.carbon_price_usd_per_t == pytest.approx(25.0, abs=0.5)
    assert point.grand.carbon_kg == pytest.approx(0.18)


def test_a_tax_at_the_implied_price_gives_the_capped_emissions():
    v = capped_pair()
    capped = analyse(v, CarbonPolicy(CarbonPolicyKind.CAP, cap_t=0.2e-3),
                     MarketSettings(schemes=("shapley",)))
    taxed = analyse(v, CarbonPolicy(CarbonPolicyKind.TAX, capped.carbon_price_usd_per_t),
                    MarketSettings(schemes=("shapley",)))
    assert taxed.grand.carbon_kg == pytest.approx(capped.grand.carbon_kg)
    below = analyse(v, CarbonPolicy(CarbonPolicyKind.TAX, 24.0),
                    MarketSettings(schemes=("shapley",)))
    assert below.grand.carbon_kg == pytest.approx(0.30)  # just under the price: both at A


def test_an_unreachable_cap_names_the_lowest_emissions():
    with pytest.raises(InputError, match=r"unreachable: .* are 0.00018 t") as raised:
        analyse(capped_pair(), CarbonPolicy(CarbonPolicyKind.CAP, cap_t=0.17e-3),
                MarketSettings(schemes=("shapley",)))
    # the domain names its own field; only the CLI knows the flag (--cap-t) that set it
    assert raised.value.field == "cap_t"
    assert "--" not in str(raised.value)


def test_a_cap_that_binds_and_one_that_does_not():
    """0.2 kg forces one job to B (price 25 USD/t): it binds. 0.3 kg is what the pair emits
    with no carbon price at all: met at price 0, it does not bind. Both report the cap."""
    binding = analyse(capped_pair(), CarbonPolicy(CarbonPolicyKind.CAP, cap_t=0.2e-3),
                      MarketSettings(schemes=("shapley",)))
    assert binding.cap_binds is True and binding.cap_kg == pytest.approx(0.2)
    slack = analyse(capped_pair(), CarbonPolicy(CarbonPolicyKind.CAP, cap_t=0.3e-3),
                    MarketSettings(schemes=("shapley",)))
    assert slack.cap_binds is False and slack.cap_kg == pytest.approx(0.3)
    assert slack.carbon_price_usd_per_t == 0.0 and slack.grand.carbon_kg == pytest.approx(0.30)
    taxed = analyse(capped_pair(), TAX, MarketSettings(schemes=("shapley",)))
    assert taxed.cap_binds is None and taxed.cap_kg is None


@pytest.mark.parametrize(("policy", "field"), [
    (dict(kind=CarbonPolicyKind.CAP), "cap_t"),
    (dict(kind=CarbonPolicyKind.CAP, cap_t=-1.0), "cap_t"),
    (dict(kind=CarbonPolicyKind.CAP_AND_TRADE, cut=1.0), "cut"),
])
def test_a_bad_carbon_policy_names_its_field(policy, field):
    with pytest.raises(InputError) as raised:
        CarbonPolicy(**policy)
    assert raised.value.field == field and "--" not in str(raised.value)


@pytest.mark.parametrize("markup", [-5.0, -0.01, float("nan"), float("inf")])
def test_a_negative_or_infinite_markup_is_refused_by_the_domain(markup, two_sites):
    """-5 had hosts pay 4x their cost to host: refused wherever the markup is given."""
    with pytest.raises(InputError, match="markup: must be a finite number >= 0") as raised:
        MarketSettings(markup=markup)
    assert raised.value.field == "markup"
    with pytest.raises(InputError, match="markup: must be a finite number >= 0"):
        SchemeInputs(None, two_sites.outcome, (1, 1), markup)
    assert MarketSettings(markup=0.0).markup == 0.0  # at cost is allowed


def test_coalitions_as_a_game_file_give_the_same_shares(two_sites, tmp_path):
    """The coalition values written as a `carbonfed game` file and run through it give the
    market's Shapley and nucleolus shares."""
    from scenarios.cli import main

    game = cost_game(("A", "B"), two_sites.values)
    path = tmp_path / "game.json"
    path.write_text(json.dumps(game.to_mapping()))
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["game", str(path), "--json"]) == 0
    report = json.loads(out.getvalue())
    for rule in ("shapley", "nucleolus"):
        got = report["allocations"][rule]
        for site in ("A", "B"):
            assert got[site] == pytest.approx(two_sites.schemes[rule].shares_usd[site])
    assert np.isclose(game.grand_value, 0.046)
