"""The decomposed LP with its shards on real Dask worker processes (scenarios.decomposed), on a
planner-built round of 50 jobs at 3 sites: the same LP as in-process, the central optimum."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from distributed import Client, LocalCluster

from broker.federation import Federation
from broker.offers import RoundOffers
from broker.planner import PlannerConfig, build_round_problem
from broker.workload import SyntheticWorkload
from optimization import AllocationProblem, SolverOptions
from optimization.allocation_matrix import allocation_matrix
from optimization.decomposed import (
    InProcessPricers,
    public_part,
    resource_groups,
    solve_decomposed,
    split_by_resource,
)
from optimization.solver import SafetyNet
from scenarios.decomposed import dask_pricers
from sites import DEFAULT_GPUS, SiteSpec, SyntheticDiurnal, default_affinity

EXACT = SolverOptions(time_limit_s=60.0, mip_gap=0.0)


def planner_round(n_jobs: int = 50, n_sites: int = 3, horizon: int = 12,
                  seed: int = 0) -> tuple[Federation, AllocationProblem]:
    """A backlog round built by the broker's planner: K80/P100/V100 pools at every site, prices
    and carbon differing by site and hour, about a third of the GPUs free so capacity binds."""
    rng = np.random.default_rng(seed)
    affinity = default_affinity()
    sites = tuple(
        SiteSpec(f"s{i}", f"z{i}", {"K80": 4, "P100": 4, "V100": 4},
                 pue=float(rng.uniform(1.1, 1.5)), egress_usd_per_gb=0.02)
        for i in range(n_sites))
    workload = SyntheticWorkload(jobs_per_hour=2.0, job_types=affinity.job_types,
                                 gpu_counts=(1, 2), gpu_count_weights=(0.8, 0.2),
                                 median_runtime_h=2.0, runtime_sigma=0.6, max_runtime_h=6.0)
    jobs: list = []
    while len(jobs) < n_jobs:
        jobs += workload.generate(sites, affinity, 24.0, rng)
    jobs = [dataclasses.replace(j, submit_h=0.0) for j in jobs[:n_jobs]]
    federation = Federation(sites, DEFAULT_GPUS, affinity)
    start = pd.Timestamp("2023-06-05", tz="UTC")
    carbon = np.vstack([SyntheticDiurnal(mean=float(rng.uniform(50, 700)), amplitude=40.0,
                                         noise_sd=0.05).hourly(start, horizon, rng)
                        for _ in sites])
    price = np.vstack([SyntheticDiurnal(mean=float(rng.uniform(30, 120)), amplitude=15.0,
                                        noise_sd=0.1).hourly(start, horizon, rng)
                       for _ in sites])
    free = np.repeat((federation.resource_total_gpus // 3)[:, None], horizon, axis=1)
    offers = RoundOffers(0.0, 1.0, free, price, carbon)
    config = PlannerConfig(carbon_price_usd_per_t=100.0, delay_cost_usd_per_gpu_h=0.005)
    return federation, build_round_problem(federation, offers, jobs, config).problem


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    """Two single-threaded worker processes, as ``--workers 2`` starts them."""
    environ = dict(os.environ)  # the nannies write their workers' variables into ours
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as c:
        yield c
    os.environ.clear()
    os.environ.update(environ)


def test_shards_on_two_worker_processes_give_the_in_process_lp_and_the_central_optimum(client):
    """Three sites, one shard each, on two workers: every shard stays on its worker, the
    rounds and the LP value equal the in-process run's, which is the full LP's optimum; the
    bound of every round lies below it."""
    federation, p = planner_round()
    assert p.n_demands >= 40 and p.n_options > 1000
    groups = resource_groups(federation.resource_site, np.bincount(
        p.option_resource, minlength=p.n_resources), 3)
    assert len(groups) == 3
    shards = split_by_resource(p, groups)
    local = solve_decomposed(public_part(p), InProcessPricers(shards), EXACT, SafetyNet(60.0),
                             per_round=1, initial=1)
    with dask_pricers(client, shards) as pricers:
        assert len(set(pricers.placement)) == 2
        held = client.who_has(pricers.futures)
        assert [list(held[f.key]) for f in pricers.futures] == [[w] for w in pricers.placement]
        remote = solve_decomposed(public_part(p), pricers, EXACT, SafetyNet(60.0),
                                  per_round=1, initial=1)
    optimum = allocation_matrix(p).new_lp(EXACT).solve().result.objective
    assert local.complete and remote.complete
    assert remote.rounds == local.rounds >= 3
    assert remote.objective_usd == pytest.approx(local.objective_usd, rel=1e-12)
    assert np.array_equal(np.sort(remote.option_index), np.sort(local.option_index))
    assert remote.objective_usd == pytest.approx(optimum, rel=1e-6)
    assert all(r.bound_usd <= optimum * (1 + 1e-9) for r in remote.history)
    # the shards are released after the solve (the workers drop them in their own time)
    deadline = time.monotonic() + 30.0
    while any(client.has_what().values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(client.has_what().values())
