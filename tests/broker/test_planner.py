"""The allocation MILP through the planner, on tiny rounds whose optimum is worked out by hand.

Common set-up: job type "train" runs 1 step/s on a V100 (300 W); every job has 1 GPU and
3600 steps, so it runs 1 h and uses 1 x 300 W x PUE 1.0 x 1 h = 0.3 kWh. All sites have
PUE 1.0. Prices are USD/MWh, intensities gCO2/kWh, so an option costs
    energy 0.3 kWh x price / 1000 + carbon 0.3 x intensity / 1000 kg x carbon price / 1000
    + delay cost per GPU-h x hours to completion (+ egress when it moves).
"""

from __future__ import annotations

import numpy as np
import pytest

from broker.federation import Federation
from broker.jobs import Job
from broker.offers import RoundOffers
from broker.planner import MilpPlanner, PlannerConfig, build_round_problem
from optimization import SolverOptions
from sites import DEFAULT_GPUS, AffinityMatrix, SiteSpec

AFFINITY = AffinityMatrix.from_nested({"train": {"V100": 1.0}})
EXACT = SolverOptions(time_limit_s=20.0, mip_gap=0.0, threads=1)


def federation(*sites: SiteSpec) -> Federation:
    return Federation(tuple(sites), DEFAULT_GPUS, AFFINITY, transfer_gbps=10.0)


def job(job_id: str, home: str = "A", dataset_gb: float = 0.0, gpus: int = 1) -> Job:
    return Job(job_id, home, "train", gpus, 3600.0 * gpus, submit_h=0.0, dataset_gb=dataset_gb)


def offers(fed: Federation, carbon: list[list[float]], price: list[list[float]]) -> RoundOffers:
    horizon = len(carbon[0])
    free = np.repeat(fed.resource_total_gpus[:, None], horizon, axis=1)
    return RoundOffers(0.0, 1.0, free, np.array(price, float), np.array(carbon, float))


def plan(fed, round_offers, jobs, **config):
    """The listed round's plan (the Pyomo model), after checking that the same round held as
    a grid (``broker.round_grid``: every round above ``max_listed_options``) plans the same
    jobs at the same cost."""
    planner = MilpPlanner(fed, PlannerConfig(solver=EXACT, method="full", **config))
    listed = planner.plan(round_offers, jobs)
    grid = MilpPlanner(fed, PlannerConfig(solver=EXACT, max_listed_options=0, **config))
    held = grid.plan(round_offers, jobs)
    assert "held as a grid" in held.message
    assert held.objective_usd == pytest.approx(listed.objective_usd, rel=1e-9, abs=1e-12)
    assert sorted(held.deferred) == sorted(listed.deferred)
    assert held.n_options == listed.n_options
    return listed


TWO_SITES = (
    SiteSpec("A", "dirty", {"V100": 1}, pue=1.0, egress_usd_per_gb=0.02),
    SiteSpec("B", "clean", {"V100": 1}, pue=1.0, egress_usd_per_gb=0.02),
)
# A: 500 g at 50 USD/MWh; B: 100 g at 60 USD/MWh; constant over a 2-slot horizon.
CARBON = [[500.0, 500.0], [100.0, 100.0]]
PRICE = [[50.0, 50.0], [60.0, 60.0]]


@pytest.mark.parametrize(
    ("carbon_price", "site", "objective"),
    [
        # A: 0.3*50/1000 = 0.015 USD, 0.15 kg; B: 0.018 USD, 0.03 kg; delay 0.001 x 1 h both.
        # 0 USD/t:   A 0.015 + 0.001 = 0.016  <  B 0.018 + 0.001 = 0.019  -> stays at A
        (0.0, "A", 0.016),
        # 100 USD/t: A 0.016 + 0.15*0.1 = 0.031  >  B 0.019 + 0.03*0.1 = 0.022 -> moves to B
        (100.0, "B", 0.022),
        # break-even at 0.003 USD / 0.12 kg = 25 USD/t: at 20 it stays, at 30 it moves
        (20.0, "A", 0.016 + 0.15 * 0.02),
        (30.0, "B", 0.019 + 0.03 * 0.03),
    ],
)
def test_carbon_price_moves_a_job_to_the_cleaner_site(carbon_price, site, objective):
    fed = federation(*TWO_SITES)
    result = plan(fed, offers(fed, CARBON, PRICE), [job("j")],
                  carbon_price_usd_per_t=carbon_price, delay_cost_usd_per_gpu_h=0.001)
    (a,) = result.assignments
    assert (a.site_id, a.start_offset) == (site, 0)
    assert result.objective_usd == pytest.approx(objective, abs=1e-9)


@pytest.mark.parametrize(
    ("dataset_gb", "site"),
    [
        # Moving saves 0.031 - 0.022 = 0.009 USD before egress. 10 GB x 0.02 USD/GB = 0.2 USD
        # of egress wipes that out: the job stays home.
        (10.0, "A"),
        # 0.1 GB costs 0.002 USD (and 0.1*8/(10*3600) h of transfer): moving still pays.
        (0.1, "B"),
    ],
)
def test_transfer_cost_keeps_a_job_home(dataset_gb, site):
    fed = federation(*TWO_SITES)
    result = plan(fed, offers(fed, CARBON, PRICE), [job("j", dataset_gb=dataset_gb)],
                  carbon_price_usd_per_t=100.0, delay_cost_usd_per_gpu_h=0.001)
    (a,) = result.assignments
    assert a.site_id == site
    assert result.cost_breakdown_usd["transfer_cost_usd"] == pytest.approx(
        0.0 if site == "A" else dataset_gb * 0.02)


@pytest.mark.parametrize(
    ("delay_cost", "start", "objective"),
    [
        # One site, carbon [600, 600, 100, 100], price 50, 100 USD/t, 1-h job:
        #   start 0: 0.015 + 0.18 kg*0.1 = 0.018 + delay 1 h x 0.005 = 0.038
        #   start 1: 0.015 + 0.018 + 0.010 = 0.043
        #   start 2: 0.015 + 0.003 + 0.015 = 0.033   <- waiting two hours for the clean hour wins
        #   start 3: 0.015 + 0.003 + 0.020 = 0.038
        (0.005, 2, 0.033),
        # With delay at 0.02 USD/GPU-h: start 0 = 0.053, start 2 = 0.078 -> start now.
        (0.02, 0, 0.053),
    ],
)
def test_waiting_for_a_cleaner_hour(delay_cost, start, objective):
    fed = federation(SiteSpec("A", "z", {"V100": 1}, pue=1.0))
    result = plan(fed, offers(fed, [[600.0, 600.0, 100.0, 100.0]], [[50.0] * 4]), [job("j")],
                  carbon_price_usd_per_t=100.0, delay_cost_usd_per_gpu_h=delay_cost)
    (a,) = result.assignments
    assert a.start_offset == start
    assert result.objective_usd == pytest.approx(objective, abs=1e-9)


def test_capacity_binds_so_the_second_job_waits_an_hour():
    """One V100, carbon [100, 600, 600, 600], price 50, 100 USD/t, delay 0.005 USD/GPU-h.

    Either job alone would start at 0: 0.015 + 0.003 + 0.005 = 0.023. Only one GPU, so the
    other takes the next best, start 1: 0.015 + 0.018 + 0.010 = 0.043 (start 2: 0.048;
    deferring costs the dearest option 0.053 + 4 h x 0.005 = 0.073). Optimum 0.023 + 0.043.
    """
    fed = federation(SiteSpec("A", "z", {"V100": 1}, pue=1.0))
    result = plan(fed, offers(fed, [[100.0, 600.0, 600.0, 600.0]], [[50.0] * 4]),
                  [job("j1"), job("j2")], carbon_price_usd_per_t=100.0,
                  delay_cost_usd_per_gpu_h=0.005)
    assert sorted(a.start_offset for a in result.assignments) == [0, 1]
    assert result.deferred == ()
    assert result.objective_usd == pytest.approx(0.066, abs=1e-9)


def test_capacity_binds_and_the_bigger_job_goes_first():
    """Two V100s; a 2-GPU job (7200 steps / (2 x 1 step/s) = 1 h, 0.6 kWh) and a 1-GPU job;
    carbon [100, 600, 600], price 0, carbon price 100 USD/t, delay 0.001 USD/GPU-h.

    Slot 0 costs 0.1 x 0.1 = 0.01 USD/kWh of carbon, later slots 0.06. Both cannot share slot 0
    (3 GPUs > 2). Big first: 0.6*0.01 + 0.002 + 0.3*0.06 + 0.002 = 0.028.
    Small first: 0.3*0.01 + 0.001 + 0.6*0.06 + 0.004 = 0.044. Big first is optimal.
    """
    fed = federation(SiteSpec("A", "z", {"V100": 2}, pue=1.0))
    big, small = job("big", gpus=2), job("small")
    result = plan(fed, offers(fed, [[100.0, 600.0, 600.0]], [[0.0] * 3]), [small, big],
                  carbon_price_usd_per_t=100.0, delay_cost_usd_per_gpu_h=0.001)
    starts = {a.job_id: a.start_offset for a in result.assignments}
    assert starts == {"big": 0, "small": 1}
    assert result.objective_usd == pytest.approx(0.028, abs=1e-9)


def test_busy_gpus_advertised_by_the_offer_are_respected():
    """Two V100s but the offer says both are busy in slot 0: nothing may start now."""
    fed = federation(SiteSpec("A", "z", {"V100": 2}, pue=1.0))
    round_offers = RoundOffers(0.0, 1.0, np.array([[0, 2, 2]]), np.full((1, 3), 50.0),
                               np.full((1, 3), 100.0))
    result = plan(fed, round_offers, [job("j1"), job("j2")], delay_cost_usd_per_gpu_h=0.001)
    assert [a.start_offset for a in result.assignments] == [1, 1]
    assert result.starting_now == ()


def test_identical_jobs_become_one_integer_demand():
    fed = federation(SiteSpec("A", "z", {"V100": 1}, pue=1.0))
    rp = build_round_problem(fed, offers(fed, [[100.0] * 3], [[50.0] * 3]),
                             [job("j1"), job("j2"), job("j3")], PlannerConfig())
    assert rp.problem.n_demands == 1
    assert rp.problem.demand_count.tolist() == [3]
    result = plan(fed, offers(fed, [[100.0] * 3], [[50.0] * 3]),
                  [job("j1"), job("j2"), job("j3")], delay_cost_usd_per_gpu_h=0.001)
    # one GPU, three 1-h jobs, three slots: one per slot, in submit order
    assert [(a.job_id, a.start_offset) for a in result.assignments] == [
        ("j1", 0), ("j2", 1), ("j3", 2)]


def test_deadline_prunes_late_options_and_an_impossible_deadline_keeps_all():
    fed = federation(SiteSpec("A", "z", {"V100": 1}, pue=1.0))
    o = offers(fed, [[600.0, 100.0, 100.0, 100.0]], [[50.0] * 4])
    tight = Job("t", "A", "train", 1, 3600.0, submit_h=0.0, deadline_h=1.0)
    rp = build_round_problem(fed, o, [tight], PlannerConfig())
    assert rp.problem.option_start.tolist() == [0]  # only "now" finishes by 1 h
    impossible = Job("i", "A", "train", 1, 7200.0, submit_h=0.0, deadline_h=1.0)
    rp = build_round_problem(fed, o, [impossible], PlannerConfig())
    assert rp.problem.option_start.tolist() == [0, 1, 2, 3]


def test_a_job_restricted_to_a_gpu_type_only_gets_options_there():
    """Site A has a V100 and a K80 (the job type runs on both). A job restricted to K80 gets
    options only on the K80 pool, although the V100 is faster; an unrestricted one gets both."""
    affinity = AffinityMatrix.from_nested({"train": {"V100": 1.0, "K80": 0.5}})
    fed = Federation((SiteSpec("A", "z", {"V100": 1, "K80": 1}, pue=1.0),), DEFAULT_GPUS,
                     affinity)
    o = offers(fed, [[100.0] * 2], [[50.0] * 2])
    k80 = fed.resource_of("A", "K80")
    restricted = Job("r", "A", "train", 1, 3600.0, 0.0, gpu_types=("K80",))
    free = Job("f", "A", "train", 1, 3600.0, 0.0)
    rp = build_round_problem(fed, o, [restricted, free], PlannerConfig())
    p, demands = rp.problem, rp.demands
    by_job = {d[0].id: set(p.option_resource[p.option_demand == i].tolist())
              for i, d in enumerate(demands)}
    assert by_job == {"r": {k80}, "f": {0, 1}}
    result = plan(fed, o, [restricted], delay_cost_usd_per_gpu_h=0.001)
    assert [a.gpu_type for a in result.assignments] == ["K80"]
