"""Synthetic workloads calibrated to published GPU-cluster statistics (AcmeTrace summary).

Targets, per trace (``jobs/acme_cluster_summary.csv``, InternLM/AcmeTrace, Hu et al.,
NSDI 2024): median GPU-job run time, mean and median GPUs per job; the mean run time sets
the run-time spread. They are built in (``PUBLISHED``) so that calibration needs no data
folder; ``read_cluster_summary`` reads the file (a real-data test holds the two equal).

Method:

* Run time on the reference GPU is lognormal: its median is the target median exactly and
  its shape sigma = sqrt(2 ln(mean / median)), the lognormal whose mean is the published
  mean. Samples are capped at ``max_runtime_h`` (the cap does not move the median).
* GPUs per job (the demand ``d``) take values ``m, 2m, 4m, ...`` up to ``max_gpus``, with
  ``m`` the published median: probability ``w`` at ``m`` and a geometric tail above it,
  weights q^k for the k-th doubling. With q = 1/2 (each doubling half as likely), ``w``
  solves the mean: w = (T - mean) / (T - m), T the tail's mean. When that leaves w < 0.55
  (the median would not stay at m), w = 0.55 and q is found by bisection instead.
* Draws are stratified (one uniform in each of n equal strata, shuffled) and mapped through
  the inverse CDFs, so a sample's median and mean sit close to the distribution's, not just
  on average.
* Fractional demands (PAI's median is half a GPU: GPU sharing) become 1-GPU jobs that hold
  their GPU for ``d`` times the run time: the GPU-hours and energy of the shared GPU. The
  statistics are those of the demands and nominal run times, which is what the published
  figures describe.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sites.errors import InputError
from sites.readers.timeseries import check_values, read_csv_checked
from sites.units import SECONDS_PER_HOUR


@dataclass(frozen=True)
class TraceStatistics:
    """Published statistics of a trace's GPU jobs (run time in seconds, GPUs per job)."""

    name: str
    median_runtime_s: float
    mean_runtime_s: float
    mean_gpus: float
    median_gpus: float


# jobs/acme_cluster_summary.csv: med_run_time_gpu, avg_run_time_gpu, avg_gpu_num, med_gpu_num
PUBLISHED: dict[str, TraceStatistics] = {
    "philly": TraceStatistics("Philly", 874.0, 18006.055, 1.928, 1.0),
    "helios": TraceStatistics("Helios", 206.0, 6651.681, 3.716, 1.0),
    "pai": TraceStatistics("PAI", 480.667, 4787.109, 0.683, 0.5),
}
SUMMARY_COLUMNS = ("id", "med_run_time_gpu", "avg_run_time_gpu", "avg_gpu_num", "med_gpu_num")
MIN_MEDIAN_WEIGHT = 0.55


def read_cluster_summary(path: Path | str) -> dict[str, TraceStatistics]:
    """``{lower-case id: TraceStatistics}`` from an AcmeTrace ``cluster_summary.csv``."""
    source = str(path)
    frame = read_csv_checked(path, SUMMARY_COLUMNS)
    numbers = {c: check_values(frame[c], source, c, allow_negative=False)
               for c in SUMMARY_COLUMNS[1:]}
    return {
        str(name).lower(): TraceStatistics(str(name), *(float(numbers[c][i])
                                                         for c in SUMMARY_COLUMNS[1:]))
        for i, name in enumerate(frame["id"])
    }


@dataclass(frozen=True)
class GpuDemandModel:
    """Demand values (GPUs, possibly fractional) and their probabilities."""

    values: tuple[float, ...]
    probabilities: tuple[float, ...]

    @property
    def mean(self) -> float:
        return float(np.dot(self.values, self.probabilities))


def gpu_demand_model(target: TraceStatistics, max_gpus: int = 8) -> GpuDemandModel:
    """Point mass at the median plus a geometric tail over its doublings (see module doc).

    Philly (median 1, mean 1.928, up to 8): tail {2, 4, 8} with weights 1, 1/2, 1/4 has mean
    (2 + 2 + 2) / 1.75 = 3.4286, so w = (3.4286 - 1.928) / (3.4286 - 1) = 0.6179.
    """
    m, mean = target.median_gpus, target.mean_gpus
    tail = []
    value = 2 * m
    while value <= max_gpus + 1e-9:
        tail.append(value)
        value *= 2
    if not tail or mean <= m:
        if not math.isclose(mean, m, rel_tol=1e-9):
            raise ValueError(f"{target.name}: cannot reach mean {mean} GPUs with median {m} "
                             f"and at most {max_gpus}")
        return GpuDemandModel((m,), (1.0,))
    tail_values = np.array(tail)

    def tail_mean(q: float) -> float:
        weights = q ** np.arange(len(tail_values))
        return float(np.dot(weights, tail_values) / weights.sum())

    q = 0.5
    w = (tail_mean(q) - mean) / (tail_mean(q) - m)
    if w < MIN_MEDIAN_WEIGHT:
        w = MIN_MEDIAN_WEIGHT
        needed = (mean - w * m) / (1 - w)
        if needed > tail_values[-1]:
            raise ValueError(f"{target.name}: mean {mean} GPUs needs jobs wider than {max_gpus}")
        low, high = 1e-6, 1e6  # tail_mean grows with q; bisect in log space
        for _ in range(200):
            q = math.sqrt(low * high)
            low, high = (q, high) if tail_mean(q) < needed else (low, q)
    weights = q ** np.arange(len(tail_values))
    probabilities = np.concatenate([[w], (1 - w) * weights / weights.sum()])
    return GpuDemandModel((m, *tail_values.tolist()), tuple(probabilities.tolist()))


def runtime_sigma(target: TraceStatistics) -> float:
    """Lognormal shape whose mean / median ratio is the published one."""
    ratio = target.mean_runtime_s / target.median_runtime_s
    return math.sqrt(2 * math.log(ratio)) if ratio > 1 else 0.0


def stratified_uniforms(n: int, rng: np.random.Generator) -> np.ndarray:
    """One uniform draw in each of the n strata [i/n, (i+1)/n), in random order."""
    return rng.permutation((np.arange(n) + rng.random(n)) / n)


@dataclass(frozen=True)
class CalibratedDraws:
    runtime_h: np.ndarray  # nominal run time on the reference GPU
    gpu_demand: np.ndarray  # GPUs per job, fractional below one GPU


def draw_calibrated(target: TraceStatistics, n: int, rng: np.random.Generator,
                    max_gpus: int = 8, max_runtime_h: float = math.inf) -> CalibratedDraws:
    """n run times and GPU demands matching ``target`` (stratified, see the module doc)."""
    from statistics import NormalDist  # inverse normal CDF without scipy

    median_h = target.median_runtime_s / SECONDS_PER_HOUR
    sigma = runtime_sigma(target)
    inv = np.vectorize(NormalDist().inv_cdf, otypes=[float])
    u = np.clip(stratified_uniforms(n, rng), 1e-12, 1 - 1e-12)
    runtime_h = np.minimum(median_h * np.exp(sigma * inv(u)), max_runtime_h)
    model = gpu_demand_model(target, max_gpus)
    cumulative = np.cumsum(model.probabilities)
    cumulative[-1] = 1.0
    v = stratified_uniforms(n, rng)
    demand = np.asarray(model.values)[np.searchsorted(cumulative, v, side="right")]
    return CalibratedDraws(runtime_h, demand)


def calibration_target(name: str, source: str = "calibrate") -> TraceStatistics:
    try:
        return PUBLISHED[name]
    except KeyError:
        raise InputError(source, "", f"unknown trace '{name}' (known: {', '.join(PUBLISHED)})") \
            from None
