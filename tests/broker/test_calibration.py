"""Calibrated synthetic workloads match published trace statistics (within 5%, 10,000 jobs)."""

from __future__ import annotations

import numpy as np
import pytest

from broker.calibration import (
    PUBLISHED,
    draw_calibrated,
    gpu_demand_model,
    read_cluster_summary,
)
from broker.workload import SyntheticWorkload
from sites import SiteSpec, default_affinity
from tests.realdata import DATA_DIR, needs_data

N = 10_000


def within(value: float, target: float, rel: float = 0.05) -> bool:
    return abs(value - target) <= rel * abs(target)


def test_philly_gpu_model_is_the_hand_computed_one():
    """Docstring of gpu_demand_model: w = (3.4286 - 1.928) / (3.4286 - 1) = 0.6179, tail 2:1
    halving: P(2) = 0.3821 x 4/7 = 0.2184."""
    model = gpu_demand_model(PUBLISHED["philly"])
    assert model.values == (1.0, 2.0, 4.0, 8.0)
    assert model.probabilities[0] == pytest.approx(0.6179, abs=1e-4)
    assert model.probabilities[1] == pytest.approx(0.2184, abs=1e-4)
    assert model.mean == pytest.approx(1.928)


@pytest.mark.parametrize("name", ["philly", "helios", "pai"])
def test_draws_match_published_statistics(name):
    target = PUBLISHED[name]
    draws = draw_calibrated(target, N, np.random.default_rng(7))
    assert within(float(np.median(draws.runtime_h)) * 3600, target.median_runtime_s)
    assert within(float(draws.gpu_demand.mean()), target.mean_gpus)
    assert within(float(np.median(draws.gpu_demand)), target.median_gpus)


@pytest.mark.parametrize("name", ["philly", "helios"])
def test_generated_jobs_match_published_statistics(name):
    """Through SyntheticWorkload on a federation wide enough for every job. (PAI's half-GPU
    demands become 1-GPU jobs of half the run time, so its jobs are checked through the draws
    above, which is what the published figures describe.)"""
    target = PUBLISHED[name]
    affinity = default_affinity()
    sites = [SiteSpec("a", "z", {"V100": 16}), SiteSpec("b", "z", {"V100": 8, "P100": 8})]
    workload = SyntheticWorkload(jobs_per_hour=N / 100, job_types=("resnet18",),
                                 diurnal_amplitude=0.0, calibration=target, max_runtime_h=1e6,
                                 deadline_fraction=0.0)
    jobs = workload.generate(sites, affinity, 100, np.random.default_rng(3))
    assert within(len(jobs), N, 0.05)
    runtime_h = np.array([j.runtime_on_h(affinity, "V100") for j in jobs])
    gpus = np.array([j.gpus for j in jobs])
    assert within(float(np.median(runtime_h)) * 3600, target.median_runtime_s)
    assert within(float(gpus.mean()), target.mean_gpus)
    assert np.median(gpus) == target.median_gpus


def test_default_workload_draws_are_unchanged_without_calibration():
    """Calibration is opt-in: the plain generator's first job is what it always was."""
    sites = [SiteSpec("a", "z", {"V100": 8})]
    jobs = SyntheticWorkload(jobs_per_hour=2, job_types=("resnet18",)).generate(
        sites, default_affinity(), 24, np.random.default_rng(0))
    again = SyntheticWorkload(jobs_per_hour=2, job_types=("resnet18",)).generate(
        sites, default_affinity(), 24, np.random.default_rng(0))
    assert jobs == again


@pytest.mark.realdata
@needs_data
def test_built_in_targets_equal_the_summary_file():
    from_file = read_cluster_summary(DATA_DIR / "jobs/acme_cluster_summary.csv")
    for name, target in PUBLISHED.items():
        assert from_file[name] == target
