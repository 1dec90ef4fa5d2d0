"""The outside option: a public cloud that serves every job a policy leaves unserved.

A job a policy (or a coalition) has not started by the end of the run (period plus drain) is
run by the cloud, so every total covers the same jobs. The cloud runs it on the workload's
reference GPU type (or, when the job cannot run there, the fastest priced type it runs on),
with that type's run time and board power, and bills GPU-hours at its on-demand price:

    gpu_h        = GPUs x run time on the cloud's GPU type
    bill_usd     = gpu_h x on-demand price of that type (USD per GPU-hour)
    energy_kwh   = GPUs x board power x cloud PUE x run time           (``sites.power``)
    carbon_kg    = energy_kwh x the cloud region's carbon intensity    (``broker.costs``)
    transfer_usd = data set x egress price at home (the data set leaves home, as when it moves)

The bill includes the cloud's energy, so only carbon is priced on top, at the carbon price.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from broker.costs import emissions_kg, transfer_cost_usd
from broker.federation import Federation
from broker.jobs import Job
from broker.options import meets_deadline
from sites.power import energy_kwh

# On-demand list prices per GPU-hour, 2023. GCP us-central1 GPU prices (the GPU alone, no VM):
# K80 0.45, P100 1.46, V100 2.48, T4 0.35, A100 40 GB 2.93 (cloud.google.com/compute/gpus-pricing).
# H100: AWS p5.48xlarge, 98.32 USD/h for 8 GPUs in us-east-1 = 12.29 (aws.amazon.com/ec2/pricing).
DEFAULT_USD_PER_GPU_H: Mapping[str, float] = {
    "K80": 0.45, "P100": 1.46, "V100": 2.48, "T4": 0.35, "A100": 2.93, "H100": 12.29,
}
# GCP us-central1 (Council Bluffs, Iowa): 566.3 gCO2/kWh (eGRID) and PUE 1.11 (Google's
# data-center-specific figure), as listed in mlco2/impact's impact.csv (shared/data:
# grid/cloud_regions.csv).
DEFAULT_REGION = "gcp:us-central1"
DEFAULT_CARBON_G_PER_KWH = 566.3
DEFAULT_PUE = 1.11

OUTSIDE_COLUMNS = ("job_id", "home_site", "gpu_type", "job_type", "gpus", "submit_h",
                   "deadline_h", "gpu_hours", "energy_kwh", "carbon_kg", "outside_cost_usd",
                   "transfer_cost_usd", "reason")


@dataclass(frozen=True)
class OutsideOption:
    usd_per_gpu_h: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_USD_PER_GPU_H))
    carbon_g_per_kwh: float = DEFAULT_CARBON_G_PER_KWH
    pue: float = DEFAULT_PUE
    region: str = DEFAULT_REGION
    reference_gpu: str = "V100"

    def __post_init__(self) -> None:
        if self.carbon_g_per_kwh < 0 or self.pue < 1:
            raise ValueError("the outside option needs carbon >= 0 and PUE >= 1")
        if any(not p >= 0 for p in self.usd_per_gpu_h.values()):
            raise ValueError("outside-option prices must be >= 0")

    def gpu_type_for(self, job: Job, federation: Federation) -> str | None:
        """The reference GPU if the job runs there, else its fastest priced type (or None)."""
        aff = federation.affinity
        allowed = [g for g in aff.gpu_types if g in self.usd_per_gpu_h
                   and (not job.gpu_types or g in job.gpu_types)
                   and aff.steps_per_s(job.job_type, g) > 0]
        if self.reference_gpu in allowed:
            return self.reference_gpu
        return max(allowed, key=lambda g: aff.job_steps_per_s(job.job_type, g, job.gpus),
                   default=None)

    def serve(self, jobs: Sequence[Job], federation: Federation,
              reasons: Sequence[str]) -> pd.DataFrame:
        """One row per job the cloud serves (``OUTSIDE_COLUMNS``)."""
        rows = []
        for job, reason in zip(jobs, reasons, strict=True):
            gpu = self.gpu_type_for(job, federation)
            if gpu is None:
                raise ValueError(f"job {job.id}: the outside option has no GPU type it runs on")
            hours = job.runtime_on_h(federation.affinity, gpu)
            kwh = float(energy_kwh(job.gpus, federation.gpu_catalog[gpu].board_power_w,
                                   self.pue, hours))
            home = federation.sites[federation.site_index[job.home_site]]
            rows.append({
                "job_id": job.id, "home_site": job.home_site, "gpu_type": gpu,
                "job_type": job.job_type, "gpus": job.gpus, "submit_h": job.submit_h,
                "deadline_h": job.deadline_h, "gpu_hours": job.gpus * hours,
                "energy_kwh": kwh, "carbon_kg": float(emissions_kg(kwh, self.carbon_g_per_kwh)),
                "outside_cost_usd": job.gpus * hours * self.usd_per_gpu_h[gpu],
                "transfer_cost_usd": float(transfer_cost_usd(job.dataset_gb,
                                                              home.egress_usd_per_gb)),
                "reason": reason,
            })
        return pd.DataFrame(rows, columns=list(OUTSIDE_COLUMNS))


# Why a job ended at the outside option (jobs.csv ``reason``).
NO_POOL_FITS = "no pool fits"
DEADLINE_UNREACHABLE = "deadline unreachable"
STILL_QUEUED = "still queued at the end"


def unserved_reasons(jobs: Sequence[Job], federation: Federation,
                     reachable: np.ndarray) -> list[str]:
    """Why each of ``jobs`` was not served, given the pools the policy could use for it.

    ``reachable[i, r]``: the policy may put job i on pool r (isolated: home pools only).
    A job with no reachable pool it runs on with enough GPUs: no pool fits. One whose
    deadline no reachable pool could meet even if it started at submission: deadline
    unreachable. Otherwise it waited in the queue until the run ended.
    """
    if not jobs:
        return []
    rates = federation.throughput(list(jobs))
    gpus = np.array([j.gpus for j in jobs])
    fits = reachable & (rates > 0) & (federation.resource_total_gpus[None, :] >= gpus[:, None])
    out = []
    for i, job in enumerate(jobs):
        if not fits[i].any():
            out.append(NO_POOL_FITS)
            continue
        fastest_h = job.runtime_h(float(rates[i, fits[i]].max()))
        if not meets_deadline(job.submit_h + fastest_h, job.deadline_h):
            out.append(DEADLINE_UNREACHABLE)
        else:
            out.append(STILL_QUEUED)
    return out
