"""The seeded synthetic workload generator."""

from __future__ import annotations

import numpy as np
import pytest

from broker.jobs import Job
from broker.workload import SyntheticWorkload
from sites import AffinityMatrix, SiteSpec

AFFINITY = AffinityMatrix.from_nested({
    "everywhere": {"K80": 1.0, "V100": 3.0},
    "v100only": {"V100": 2.0},
})
SITES = [SiteSpec("old", "z1", {"K80": 4}), SiteSpec("new", "z2", {"V100": 2, "K80": 1})]
WORKLOAD = SyntheticWorkload(jobs_per_hour=2.0, job_types=("everywhere", "v100only"),
                             gpu_counts=(1, 2, 8), gpu_count_weights=(0.5, 0.3, 0.2),
                             deadline_fraction=0.5, max_runtime_h=10.0)


def generate(seed: int, period_h: float = 200.0, workload=WORKLOAD) -> list[Job]:
    return workload.generate(SITES, AFFINITY, period_h, np.random.default_rng(seed))


def test_same_seed_same_jobs_other_seed_other_jobs():
    first, again, other = generate(1), generate(1), generate(2)
    assert first == again
    assert len(first) > 0
    assert first != other


def test_jobs_are_runnable_at_home():
    """Each job's type runs (throughput > 0) on a GPU type its home has at least ``gpus`` of.
    "v100only" can only come from "new", and 8-GPU draws shrink to 1 GPU (no pool has 8)."""
    jobs = generate(3)
    sites = {s.id: s for s in SITES}
    for job in jobs:
        home = sites[job.home_site]
        assert any(n >= job.gpus and AFFINITY.steps_per_s(job.job_type, g) > 0
                   for g, n in home.gpus.items()), job
    assert {j.job_type for j in jobs if j.home_site == "old"} == {"everywhere"}
    assert {j.job_type for j in jobs if j.home_site == "new"} == {"everywhere", "v100only"}
    assert max(j.gpus for j in jobs) <= 4
    assert {j.gpus for j in jobs} == {1, 2}


def test_submit_times_deadlines_and_ids():
    period_h = 200.0
    jobs = generate(4, period_h)
    assert all(0 <= j.submit_h < period_h for j in jobs)
    assert [j.submit_h for j in jobs] == sorted(j.submit_h for j in jobs)
    with_deadline = [j for j in jobs if j.deadline_h is not None]
    assert 0.3 < len(with_deadline) / len(jobs) < 0.7  # deadline_fraction 0.5
    assert all(j.deadline_h > j.submit_h for j in with_deadline)
    assert len({j.id for j in jobs}) == len(jobs)


def test_work_is_the_reference_runtime_at_the_reference_rate():
    """work = runtime_ref x throughput(V100, gpus) x 3600, so the reference run time
    work / (throughput(V100, gpus) x 3600) is capped at max_runtime_h = 10 h."""
    jobs = generate(5)
    runtimes = np.array([j.runtime_on_h(AFFINITY, "V100") for j in jobs])
    assert runtimes.max() <= 10.0 + 1e-9
    assert runtimes.min() > 0
    assert 0.5 < np.median(runtimes) < 8  # lognormal with median 2 h


def test_arrival_rate_matches_jobs_per_hour():
    """2 jobs/h over 1000 h: about 2000 jobs (Poisson sd about 45; thinning keeps the mean)."""
    jobs = generate(6, period_h=1000.0)
    assert len(jobs) == pytest.approx(2000, abs=200)


def test_home_sites_follow_gpu_counts():
    """Homes weighted by total GPUs: old 4, new 3 -> about 4/7 of jobs at old."""
    jobs = generate(7, period_h=1000.0)
    share = sum(j.home_site == "old" for j in jobs) / len(jobs)
    assert share == pytest.approx(4 / 7, abs=0.05)
