"""The federation as the broker knows it: sites, their GPU pools, the catalog and affinity."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from broker.jobs import Job
from sites.affinity import AffinityMatrix
from sites.gpus import GpuType
from sites.power import energy_kwh
from sites.spec import SiteSpec
from sites.units import Q, gb_to_gbit, seconds_to_hours


@dataclass(frozen=True)
class Federation:
    """Static facts of a federation; time-varying signals travel in each round's offers.

    A *resource* is the pool of one GPU type at one site (only pools with at least one GPU).
    """

    sites: tuple[SiteSpec, ...]
    gpu_catalog: Mapping[str, GpuType]
    affinity: AffinityMatrix
    transfer_gbps: float = 10.0

    @cached_property
    def site_index(self) -> dict[str, int]:
        return {s.id: i for i, s in enumerate(self.sites)}

    @cached_property
    def resources(self) -> tuple[tuple[int, str], ...]:
        """(site index, GPU type) of every GPU pool, in site then catalog order."""
        return tuple(
            (i, gpu) for i, s in enumerate(self.sites) for gpu, n in s.gpus.items() if n > 0
        )

    @cached_property
    def resource_site(self) -> np.ndarray:
        return np.array([i for i, _ in self.resources], dtype=int)

    @cached_property
    def resource_total_gpus(self) -> np.ndarray:
        return np.array([self.sites[i].gpus[g] for i, g in self.resources], dtype=int)

    @cached_property
    def resource_board_power_w(self) -> np.ndarray:
        return np.array([self.gpu_catalog[g].board_power_w for _, g in self.resources])

    @cached_property
    def resource_idle_power_w(self) -> np.ndarray:
        """Idle draw of one free GPU of the pool (0 when the GPU type has none)."""
        return np.array([self.gpu_catalog[g].idle_power_w or 0.0 for _, g in self.resources])

    @cached_property
    def resource_pue(self) -> np.ndarray:
        return np.array([self.sites[i].pue for i, _ in self.resources])

    def run_energy_kwh(self, gpus: np.ndarray, resource: np.ndarray,
                       hours: np.ndarray) -> np.ndarray:
        """Energy of runs of ``gpus`` busy GPUs on pools ``resource`` for ``hours``."""
        return energy_kwh(gpus, self.resource_board_power_w[resource],
                          self.resource_pue[resource], hours)

    @cached_property
    def resource_index(self) -> dict[tuple[int, str], int]:
        return {resource: r for r, resource in enumerate(self.resources)}

    def resource_of(self, site_id: str, gpu_type: str) -> int:
        return self.resource_index[(self.site_index[site_id], gpu_type)]

    @cached_property
    def _rate_rows(self) -> dict[tuple[str, tuple[str, ...]], np.ndarray]:
        """``steps_per_s`` rows by (job type, GPU restriction), filled as jobs ask.

        Every policy asks for the rates of its whole queue every round, and the meter for every
        job it records: the same few job types over and over.
        """
        return {}

    def _rate_row(self, job_type: str, gpu_types: tuple[str, ...]) -> np.ndarray:
        key = (job_type, gpu_types)
        row = self._rate_rows.get(key)
        if row is None:
            aff = self.affinity
            throughput = aff.throughput[aff.job_index(job_type)]
            row = np.array([
                throughput[aff.gpu_index(g)] if g in aff.gpu_types else 0.0
                for _, g in self.resources
            ], dtype=float)
            if gpu_types:
                row[[g not in gpu_types for _, g in self.resources]] = 0.0
            row.flags.writeable = False  # shared by every caller
            self._rate_rows[key] = row
        return row

    def steps_per_s(self, jobs: list[Job]) -> np.ndarray:
        """Per-GPU throughput of each job on each resource, shape (jobs, resources).

        Zero where the job type does not run on the pool's GPU type, or where the job is
        restricted to other GPU types or barred from the site (``barred_pools``): every policy
        and the meter read runnability from here.
        """
        if not len(jobs):
            return np.zeros((0, len(self.resources)))
        rates = np.array([self._rate_row(j.job_type, j.gpu_types) for j in jobs])
        for i, job in enumerate(jobs):
            if job.excluded_sites or job.allowed_sites is not None:
                rates[i, self.barred_pools(job)] = 0.0  # refused it, failed it, or not a candidate
        return rates

    @cached_property
    def _barred_rows(self) -> dict[tuple[frozenset[str], frozenset[str] | None], np.ndarray]:
        return {}

    def barred_pools(self, job: Job) -> np.ndarray:
        """The pools ``job`` may not run on (``Job.excluded_sites``, ``Job.allowed_sites``),
        once per pair of sets: a live round gives thousands of jobs a few sites each, asked
        for at every option build."""
        key = (job.excluded_sites, job.allowed_sites)
        row = self._barred_rows.get(key)
        if row is None:
            barred = np.zeros(len(self.sites), dtype=bool)
            if job.allowed_sites is not None:
                barred[:] = True
                barred[[self.site_index[s] for s in job.allowed_sites
                        if s in self.site_index]] = False
            barred[[self.site_index[s] for s in job.excluded_sites
                    if s in self.site_index]] = True
            row = barred[self.resource_site]
            row.flags.writeable = False  # shared by every caller
            self._barred_rows[key] = row
        return row

    def job_steps_per_s(self, job: Job, resource: int) -> float:
        """``steps_per_s([job])[0, resource]`` without building the row array."""
        barred = job.excluded_sites or job.allowed_sites is not None
        if barred and self.barred_pools(job)[resource]:
            return 0.0
        return float(self._rate_row(job.job_type, job.gpu_types)[resource])

    @cached_property
    def _throughput_rows(self) -> dict[tuple[str, tuple[str, ...], int], np.ndarray]:
        return {}

    def throughput_row(self, job_type: str, gpu_types: tuple[str, ...], gpus: int) -> np.ndarray:
        """A job's whole throughput on ``gpus`` GPUs of each pool (steps/s; 0 where it does not
        run), from the affinity matrix's scaling model (``sites.scaling``)."""
        key = (job_type, gpu_types, gpus)
        row = self._throughput_rows.get(key)
        if row is None:
            one_gpu = self._rate_row(job_type, gpu_types)
            scaling = self.affinity.scaling
            row = np.array([scaling.throughput(job_type, g, gpus, float(one_gpu[r]))
                            for r, (_, g) in enumerate(self.resources)], dtype=float)
            row.flags.writeable = False
            self._throughput_rows[key] = row
        return row

    def throughput(self, jobs: list[Job]) -> np.ndarray:
        """Each job's whole throughput on each pool with its own GPU count, (jobs, resources)."""
        if not len(jobs):
            return np.zeros((0, len(self.resources)))
        return np.array([self.throughput_row(j.job_type, j.gpu_types, j.gpus) for j in jobs])

    def transfer_h(self, dataset_gb: Q) -> Q:
        """Hours to ship a data set to another site at the federation's link speed."""
        return seconds_to_hours(gb_to_gbit(dataset_gb) / self.transfer_gbps)
