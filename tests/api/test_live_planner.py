"""The live broker plans with the simulator's planner: same offers and queue, same plan.

The built-in ``tiny`` scenario's round at hour 3 (jobs a-e queued) is planned twice: as the
simulation loop does (``MilpPlanner`` on the scenario's federation and ``RoundOffers``), and
through the live broker (sites registered, offers put and jobs submitted through the service,
then a planning round from the database).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from api.clock import Clock
from api.db import Database
from api.schemas import JobIn, OfferIn, SiteRegistration
from api.services import Principal, Services
from api.services.planning import planner_config
from api.settings import Settings
from broker.offers import RoundOffers
from broker.planner import MilpPlanner
from optimization import SolverOptions
from scenarios.build import build_run
from scenarios.loader import load_scenario
from tests.api.conftest import ADMIN, FakeWall

ROUND = 3
ORIGIN_S = 1_700_000_000.0


@pytest.fixture
def tiny():
    run = build_run(load_scenario("tiny"))
    # an exact solve, so the comparison does not hinge on which of two 1%-optimal plans is found
    config = replace(run.config, solver=SolverOptions(20.0, 0.0, 1), method="full")
    return run.setup, config


def simulator_round(setup, k: int) -> tuple[RoundOffers, list]:
    """The offers and queue the simulation loop builds at round ``k`` (nothing running yet)."""
    fed = setup.federation
    window = slice(k, k + setup.horizon_slots)
    offers = RoundOffers(
        now_h=k * setup.slot_h, slot_h=setup.slot_h,
        free_gpus=np.repeat(fed.resource_total_gpus[:, None], setup.horizon_slots, axis=1),
        price_usd_per_mwh=setup.price_usd_per_mwh[:, window],
        carbon_g_per_kwh=setup.carbon_g_per_kwh[:, window],
    )
    return offers, [j for j in setup.jobs if j.submit_h <= k * setup.slot_h]


def test_live_plan_equals_the_simulators(tiny, tmp_path):
    setup, config = tiny
    fed = setup.federation
    offers, queue = simulator_round(setup, ROUND)
    expected = MilpPlanner(fed, config).plan(offers, queue)
    assert len(expected.assignments) >= 4  # a real decision, not an empty round

    settings = Settings(
        db_url=f"sqlite:///{tmp_path / 'live.db'}", admin_token=ADMIN,
        open_registration=True,
        horizon_slots=setup.horizon_slots, slot_h=setup.slot_h,
        carbon_price_usd_per_t=config.carbon_price_usd_per_t,
        delay_cost_usd_per_gpu_h=config.delay_cost_usd_per_gpu_h,
        transfer_gbps=fed.transfer_gbps, solver_method="full", solver_mip_gap=0.0,
        solver_time_limit_s=20.0,
    )
    wall = FakeWall(ORIGIN_S)  # picklable: the round reads the clock in the planning worker
    service = Services.build(Database(settings.db_url), settings, Clock(1.0, wall))
    service.start()
    wall.now_s = ORIGIN_S + ROUND * 3600.0  # the broker's clock reads hour 3
    for i, site in enumerate(fed.sites):
        service.sites.register(SiteRegistration(id=site.id, zone=site.zone, gpus=site.gpus,
                                               pue=site.pue,
                                               egress_usd_per_gb=site.egress_usd_per_gb),
                              None)
        free = {gpu: offers.free_gpus[fed.resource_of(site.id, gpu)].tolist()
                for gpu, n in site.gpus.items() if n}
        service.offers.put(site.id, OfferIn(
            sequence=1, slot_h=setup.slot_h, free_gpus=free,
            start=pd.Timestamp(wall.now_s, unit="s", tz="UTC").to_pydatetime(),
            price_usd_per_mwh=offers.price_usd_per_mwh[i].tolist(),
            carbon_g_per_kwh=offers.carbon_g_per_kwh[i].tolist(),
        ))
    service.jobs.submit(
        [JobIn(id=j.id, home_site=j.home_site, job_type=j.job_type, gpus=j.gpus,
               work_steps=j.work_steps, submit_h=j.submit_h, deadline_h=j.deadline_h,
               dataset_gb=j.dataset_gb) for j in reversed(queue)],  # order must not matter
        Principal(admin=True), ("body", "jobs"),
    )
    try:  # solved in a planning worker process (the default)
        live = service.planning.plan_round()
    finally:
        service.close()

    def own_id(key: str) -> str:  # plans name a job home/id (per-site job ids)
        return key.partition("/")[2]

    got = [(own_id(p.job_id), p.site_id, p.gpu_type, p.start_offset, p.start_h)
           for p in live.planned]
    want = [(a.job_id, a.site_id, a.gpu_type, a.start_offset, a.start_h)
            for a in expected.assignments]
    assert sorted(got) == sorted(want)
    assert sorted(map(own_id, live.deferred)) == sorted(expected.deferred)
    assert live.objective_usd == pytest.approx(expected.objective_usd, rel=1e-9)
    assert live.n_options == expected.n_options
    starting = {a.job_id for a in expected.starting_now}
    assert len(live.assigned) == len(starting)


def test_live_round_offers_equal_the_simulators(tiny, tmp_path):
    """broker.live's alignment of stored offers gives the simulator's arrays exactly."""
    from broker.live import SiteOffer, live_federation, round_offers

    setup, _ = tiny
    fed = setup.federation
    offers, _ = simulator_round(setup, ROUND)
    site_offers = {
        site.id: SiteOffer(
            site.id, start_h=ROUND - 1.0, slot_h=1.0,  # sent a slot earlier: one more slot
            free_gpus={g: [0, *offers.free_gpus[fed.resource_of(site.id, g)]]
                       for g, n in site.gpus.items() if n},
            price_usd_per_mwh=[0.0, *offers.price_usd_per_mwh[i]],
            carbon_g_per_kwh=[0.0, *offers.carbon_g_per_kwh[i]],
        ) for i, site in enumerate(fed.sites)
    }
    usable = {s.id for s in fed.sites}
    live_fed = live_federation(fed.sites, usable, fed.gpu_catalog, fed.affinity,
                               fed.transfer_gbps)
    assert live_fed == fed
    got = round_offers(live_fed, site_offers, ROUND + 0.25, 1.0, setup.horizon_slots)
    np.testing.assert_array_equal(got.free_gpus, offers.free_gpus)
    np.testing.assert_array_equal(got.price_usd_per_mwh, offers.price_usd_per_mwh)
    np.testing.assert_array_equal(got.carbon_g_per_kwh, offers.carbon_g_per_kwh)


def test_the_aggregate_tolerance_setting_reaches_the_live_rounds(monkeypatch):
    """``CARBONFED_SOLVER_AGGREGATE_TOLERANCE_USD`` is the tolerance the live broker's rounds
    solve with; a negative one is refused at start, naming the setting."""
    assert planner_config(Settings()).solver.aggregate_tolerance_usd == 0.0
    monkeypatch.setenv("CARBONFED_SOLVER_AGGREGATE_TOLERANCE_USD", "0.05")
    assert planner_config(Settings()).solver.aggregate_tolerance_usd == 0.05
    monkeypatch.setenv("CARBONFED_SOLVER_AGGREGATE_TOLERANCE_USD", "-1")
    with pytest.raises(ValueError, match="solver_aggregate_tolerance_usd"):
        Settings()
