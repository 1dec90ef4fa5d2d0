"""Synthetic workloads: a seeded generator of training jobs for a federation."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from broker.calibration import TraceStatistics, draw_calibrated
from broker.jobs import Job
from sites.affinity import AffinityMatrix
from sites.spec import SiteSpec


class WorkloadError(ValueError):
    """The federation cannot host the workload asked for (found while drawing jobs)."""


@dataclass(frozen=True)
class SyntheticWorkload:
    """Jobs arriving over a period, calibrated by a handful of published-style statistics.

    * Arrivals: a non-homogeneous Poisson process, ``jobs_per_hour`` on average, modulated by
      ``1 + diurnal_amplitude * cos(2 pi (h - 14) / 24)`` (more submissions in the afternoon).
    * GPUs per job: drawn from ``gpu_counts`` with ``gpu_count_weights``.
    * Work: lognormal run time on the reference GPU (median ``median_runtime_h``, shape
      ``runtime_sigma``, capped at ``max_runtime_h``), turned into steps with the job type's
      reference throughput, so the run time elsewhere follows from the affinity matrix.
    * Job types: uniform over ``job_types`` that can run at the job's home site.
    * Home sites: weighted by their GPU count.
    * A fraction ``deadline_fraction`` of jobs carry a deadline of submit + slack x run time.
    * Dataset size: lognormal with median ``median_dataset_gb``.

    With ``calibration`` (published statistics of a real trace, see ``broker.calibration``),
    run times and GPUs per job are drawn to match them instead (``gpu_counts``,
    ``median_runtime_h`` and ``runtime_sigma`` are then unused), and home sites are drawn among
    the sites with a pool wide enough for the job.
    """

    jobs_per_hour: float
    job_types: tuple[str, ...]
    reference_gpu: str = "V100"
    diurnal_amplitude: float = 0.3
    gpu_counts: tuple[int, ...] = (1, 2, 4, 8)
    gpu_count_weights: tuple[float, ...] = (0.7, 0.15, 0.1, 0.05)
    median_runtime_h: float = 2.0
    runtime_sigma: float = 1.0
    max_runtime_h: float = 24.0
    deadline_fraction: float = 0.2
    deadline_slack: tuple[float, float] = (1.5, 4.0)
    median_dataset_gb: float = 20.0
    dataset_sigma: float = 1.0
    home_weights: dict[str, float] = field(default_factory=dict)
    calibration: TraceStatistics | None = None
    max_gpus: int = 8  # widest calibrated job

    def generate(
        self,
        sites: list[SiteSpec],
        affinity: AffinityMatrix,
        period_h: float,
        rng: np.random.Generator,
    ) -> list[Job]:
        arrivals = self._arrival_times(period_h, rng)
        weights = np.array(
            [self.home_weights.get(s.id, s.total_gpus) for s in sites], dtype=float
        )
        weights = weights / weights.sum()
        probs = np.asarray(self.gpu_count_weights, float)
        probs = probs / probs.sum()
        if self.calibration is not None:
            return self._generate_calibrated(sites, affinity, arrivals, weights, rng)
        jobs = []
        for i, submit_h in enumerate(arrivals):
            site = sites[rng.choice(len(sites), p=weights)]
            gpus = int(rng.choice(self.gpu_counts, p=probs))
            runnable = [
                jt for jt in self.job_types
                if any(n >= gpus and affinity.steps_per_s(jt, g) > 0 for g, n in site.gpus.items())
            ]
            if not runnable:  # no type fits this many GPUs at home: shrink to one GPU
                gpus = 1
                runnable = [jt for jt in self.job_types if any(
                    n >= 1 and affinity.steps_per_s(jt, g) > 0 for g, n in site.gpus.items())]
            job_type = runnable[rng.integers(len(runnable))]
            runtime_h = min(
                self.max_runtime_h,
                float(rng.lognormal(math.log(self.median_runtime_h), self.runtime_sigma)),
            )
            jobs.append(self._job(i, site.id, job_type, gpus, runtime_h, float(submit_h),
                                  affinity, rng))
        return jobs

    def _job(self, i: int, home_site: str, job_type: str, gpus: int, runtime_h: float,
             submit_h: float, affinity: AffinityMatrix, rng: np.random.Generator) -> Job:
        """A job of ``runtime_h`` on the reference GPU, with its deadline and data set drawn."""

        deadline = None
        if rng.random() < self.deadline_fraction:
            slack = rng.uniform(*self.deadline_slack)
            deadline = float(submit_h + slack * runtime_h + 1.0)
        dataset_gb = float(rng.lognormal(math.log(self.median_dataset_gb), self.dataset_sigma))
        return Job(
            id=f"j{i:05d}", home_site=home_site, job_type=job_type, gpus=gpus,
            work_steps=affinity.work_steps_for_h(job_type, self.reference_gpu, gpus, runtime_h),
            submit_h=submit_h,
            deadline_h=deadline, dataset_gb=round(dataset_gb, 3),
        )

    def _generate_calibrated(self, sites: list[SiteSpec], affinity: AffinityMatrix,
                             arrivals: np.ndarray, weights: np.ndarray,
                             rng: np.random.Generator) -> list[Job]:
        assert self.calibration is not None  # generate() calls this only with one
        draws = draw_calibrated(self.calibration, len(arrivals), rng, self.max_gpus,
                                self.max_runtime_h)
        jobs = []
        for i, submit_h in enumerate(arrivals):
            demand = float(draws.gpu_demand[i])
            gpus = max(1, round(demand))
            # a shared GPU (demand < 1) is held for that fraction of the run: same GPU-hours
            runtime_h = float(draws.runtime_h[i]) * min(demand, 1.0)
            fits = [[jt for jt in self.job_types if any(
                n >= gpus and affinity.steps_per_s(jt, g) > 0 for g, n in s.gpus.items())]
                for s in sites]
            home_w = np.array([w if fits[k] else 0.0 for k, w in enumerate(weights)])
            if home_w.sum() <= 0:
                raise WorkloadError(f"no site has {gpus} GPUs of one type for a calibrated job; "
                                 "lower max_gpus or add GPUs")
            k = int(rng.choice(len(sites), p=home_w / home_w.sum()))
            runnable = fits[k]
            job_type = runnable[rng.integers(len(runnable))]
            jobs.append(self._job(i, sites[k].id, job_type, gpus, runtime_h, float(submit_h),
                                  affinity, rng))
        return jobs

    def _arrival_times(self, period_h: float, rng: np.random.Generator) -> np.ndarray:
        """Thinning of a Poisson process with the diurnal rate."""
        peak_rate = self.jobs_per_hour * (1 + abs(self.diurnal_amplitude))
        n = rng.poisson(peak_rate * period_h)
        times = np.sort(rng.uniform(0, period_h, n))
        rate = self.jobs_per_hour * (
            1 + self.diurnal_amplitude * np.cos(2 * math.pi * (times % 24 - 14) / 24)
        )
        keep = rng.random(n) < rate / peak_rate
        return times[keep]
