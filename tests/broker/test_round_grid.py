"""A round held as a grid (broker.round_grid) against the same round listed
(``build_round_problem``): the same options, at the same prices, with the same deferral
penalties, on rounds of the built-in ``default`` scenario with deadlines met and missed,
running jobs, a carbon cap and a subset of start slots; and planned alike."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from broker.jobs import InFlight
from broker.offers import RoundOffers
from broker.planner import MilpPlanner, PlannerConfig, build_round_problem
from broker.round_grid import build_round_grid, listed_options_estimate
from optimization import SolverOptions
from optimization.decomposed import OPTION_FIELDS
from scenarios.build import build_run
from scenarios.loader import load_scenario
from tests.optimization.helpers import assert_feasible
from tests.realdata import DATA_DIR

INTEGER_FIELDS = ("option_demand", "option_resource", "option_start", "option_slots")


def default_round(seed: int):
    """A round of the ``default`` scenario: a day of jobs queued, part of every pool taken;
    a few jobs with deadlines no start meets, a few running now (not preemptible: they must
    run), none preemptible (a grid holds no interrupted runs)."""
    setup = build_run(load_scenario("default", DATA_DIR)).setup
    fed = setup.federation
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, setup.period_slots - setup.horizon_slots))
    now_h = k * setup.slot_h
    queue = [dataclasses.replace(j, preemptible=False) for j in setup.jobs
             if now_h - 24.0 <= j.submit_h <= now_h]
    for i in rng.choice(len(queue), size=3, replace=False):
        queue[i] = dataclasses.replace(queue[i], deadline_h=now_h + 0.05)  # late anywhere
    for i in rng.choice(len(queue), size=2, replace=False):
        site = fed.sites[int(rng.integers(len(fed.sites)))]
        gpu_type = next(iter(site.gpus))
        queue[i] = dataclasses.replace(queue[i], gpus=1, min_gpus=None, max_gpus=None,
                                       state=InFlight(site.id, gpu_type, 1, computing=True,
                                                      restart_h=0.25, done_steps=10.0))
    total = fed.resource_total_gpus[:, None]
    taken = rng.integers(0, total + 1, size=(len(total), setup.horizon_slots))
    free = np.maximum(total - taken, 0)
    for j in queue:  # a running job's GPUs are its own: free to it
        if j.state is not None:
            r = fed.resource_of(j.state.site_id, j.state.gpu_type)
            free[r] = np.maximum(free[r], j.state.gpus)
    window = slice(k, k + setup.horizon_slots)
    offers = RoundOffers(now_h, setup.slot_h, free,
                         setup.price_usd_per_mwh[:, window], setup.carbon_g_per_kwh[:, window])
    return fed, offers, queue


CONFIGS = {
    "as built": PlannerConfig(carbon_price_usd_per_t=50.0),
    "carbon cap": PlannerConfig(carbon_price_usd_per_t=10.0, carbon_cap_kg=40.0),
    "every third start": PlannerConfig(start_offsets=(0, 3, 6, 9, 12, 15, 18, 21),
                                       delay_cost_usd_per_gpu_h=0.02),
}


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_grid_holds_the_listed_rounds_options_at_their_prices(seed, config):
    fed, offers, queue = default_round(seed)
    cfg = CONFIGS[config]
    listed = build_round_problem(fed, offers, queue, cfg)
    held = build_round_grid(fed, offers, queue, cfg)
    p, grid = listed.problem, held.grid
    assert held.demands == listed.demands
    valid = np.arange(grid.n_starts)[None, :] < grid.run_starts[:, None]
    run, s = np.nonzero(valid)
    assert grid.n_options == p.n_options == len(run)
    assert listed_options_estimate(fed, offers, queue, cfg.start_offsets) >= p.n_options
    index = grid.index(run, s)
    columns = grid.lister(index)
    for name in OPTION_FIELDS:
        if name in INTEGER_FIELDS:
            np.testing.assert_array_equal(columns[name], getattr(p, name), err_msg=name)
        else:
            np.testing.assert_allclose(columns[name], getattr(p, name), rtol=1e-12, atol=1e-12,
                                       err_msg=name)
    np.testing.assert_allclose(grid.cost_usd[run, s], p.option_cost_usd, rtol=1e-9, atol=1e-12)
    if grid.carbon_kg is not None:
        np.testing.assert_allclose(grid.carbon_kg[run, s], p.option_carbon_kg, rtol=1e-9)
    np.testing.assert_allclose(grid.public.deferral_penalty_usd, p.deferral_penalty_usd,
                               rtol=1e-9)
    assert grid.public.carbon_cap_kg == p.carbon_cap_kg
    np.testing.assert_array_equal(grid.public.capacity_gpus, p.capacity_gpus)
    recomputed = dataclasses.replace(grid, known_cheapest_start=None).cheapest_start
    np.testing.assert_array_equal(grid.cheapest_start, recomputed)
    boundary = np.flatnonzero(held.boundary(index))
    assert set(boundary.tolist()) == set(listed.boundary)
    assert len(boundary) == 2  # the two running jobs go on where they run


@pytest.mark.parametrize("seed", [0, 1])
def test_a_round_held_as_a_grid_is_planned_within_the_gap_of_the_listed_one(seed):
    """Above ``max_listed_options`` (here 0) the planner holds the round as a grid: its plan
    is feasible on the listed round, every job assigned at most once, the running jobs run,
    and it lies within the MIP gap of the listed round's bound (and the listed plan within
    the gap of its bound)."""
    fed, offers, queue = default_round(seed)
    solver = SolverOptions(time_limit_s=60.0, mip_gap=0.01)
    listed = MilpPlanner(fed, PlannerConfig(solver=solver)).plan(offers, queue)
    held = MilpPlanner(fed, PlannerConfig(solver=solver, max_listed_options=0)).plan(offers,
                                                                                    queue)
    assert "held as a grid" in held.message
    assert held.bound_usd <= listed.objective_usd + 1e-6
    assert listed.bound_usd <= held.objective_usd + 1e-6
    if held.status.name == "OPTIMAL":
        assert held.objective_usd <= listed.objective_usd / (1 - 0.01) + 1e-6
    ids = [a.job_id for a in held.assignments]
    assert len(ids) == len(set(ids)) and len(ids) + len(held.deferred) == len(queue)
    running = {j.id for j in queue if j.state is not None}
    assert running <= set(ids)
    assert {a.job_id for a in held.assignments if a.boundary} <= running
    rp = build_round_problem(fed, offers, queue, PlannerConfig())
    x = _counts_on(fed, rp, held)
    assert_feasible(rp.problem, x, rp.problem.demand_count - np.bincount(
        rp.problem.option_demand, weights=x, minlength=rp.problem.n_demands).astype(int))


def _counts_on(fed, rp, plan) -> np.ndarray:
    """A plan's assignments as jobs per option of the listed round (a running job that may
    not pause has its boundary runs only, so (demand, pool, start, GPUs) names one option)."""
    p = rp.problem
    demand_of = {job.id: d for d, jobs in enumerate(rp.demands) for job in jobs}
    option_of = {(int(p.option_demand[o]), int(p.option_resource[o]), int(p.option_start[o]),
                  int(p.option_gpus[o])): o for o in range(p.n_options)}
    x = np.zeros(p.n_options)
    for a in plan.assignments:
        resource = fed.resource_of(a.site_id, a.gpu_type)
        x[option_of[(demand_of[a.job_id], resource, a.start_offset, a.gpus)]] += 1
    return x
