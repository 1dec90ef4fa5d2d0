"""Metering: every kWh, kg CO2 and dollar, per job and per site and slot."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np
import pandas as pd

from broker.federation import Federation
from broker.jobs import Job

KG_PER_G = 1e-3
MWH_PER_KWH = 1e-3


@dataclass(frozen=True)
class JobRecord:
    """What happened to one job that ran."""

    job_id: str
    home_site: str
    site: str
    gpu_type: str
    job_type: str
    gpus: int
    work_steps: float
    steps_per_s: float
    submit_h: float
    start_h: float  # GPUs reserved from here (data transfer first when it moved)
    run_start_h: float  # computing from here
    finish_h: float
    deadline_h: float | None
    gpu_hours: float
    energy_kwh: float
    carbon_kg: float
    energy_cost_usd: float
    transfer_cost_usd: float
    transferred_gb: float

    @property
    def completion_h(self) -> float:
        return self.finish_h - self.submit_h

    @property
    def deadline_missed(self) -> bool:
        return self.deadline_h is not None and self.finish_h > self.deadline_h + 1e-9


class Meter:
    """Accumulates metered quantities slot by slot, using the *actual* signals."""

    def __init__(self, federation: Federation, slot_h: float, carbon_g_per_kwh: np.ndarray,
                 price_usd_per_mwh: np.ndarray) -> None:
        self.federation = federation
        self.slot_h = slot_h
        self.carbon_g_per_kwh = carbon_g_per_kwh
        self.price_usd_per_mwh = price_usd_per_mwh
        n_slots = carbon_g_per_kwh.shape[1]
        self.busy_gpu_h = np.zeros((len(federation.resources), n_slots))
        self.energy_kwh = np.zeros((len(federation.sites), n_slots))
        self.carbon_kg = np.zeros_like(self.energy_kwh)
        self.energy_cost_usd = np.zeros_like(self.energy_kwh)
        self.records: list[JobRecord] = []

    def slot_hours(self, from_h: float, to_h: float) -> tuple[np.ndarray, np.ndarray]:
        """Slots overlapping [from_h, to_h) and the hours of overlap in each."""
        first = math.floor(from_h / self.slot_h + 1e-12)
        last = max(first, math.ceil(to_h / self.slot_h - 1e-12) - 1)
        slots = np.arange(first, last + 1)
        edges = slots * self.slot_h
        hours = np.minimum(to_h, edges + self.slot_h) - np.maximum(from_h, edges)
        return slots, np.maximum(hours, 0.0)

    def record_run(self, job: Job, resource: int, start_h: float) -> JobRecord:
        fed = self.federation
        site_i, gpu = fed.resources[resource]
        rate = float(fed.steps_per_s([job])[0, resource])
        remote = fed.sites[site_i].id != job.home_site
        run_start_h = start_h + (fed.transfer_h(job.dataset_gb) if remote else 0.0)
        finish_h = run_start_h + job.runtime_h(rate)
        slots, hours = self.slot_hours(run_start_h, finish_h)
        if slots[-1] >= self.energy_kwh.shape[1]:
            raise ValueError(f"job {job.id} runs past the end of the signals")
        kwh = job.gpus * fed.resource_power_kw[resource] * hours
        carbon = kwh * self.carbon_g_per_kwh[site_i, slots] * KG_PER_G
        cost = kwh * self.price_usd_per_mwh[site_i, slots] * MWH_PER_KWH
        self.busy_gpu_h[resource, slots] += job.gpus * hours
        self.energy_kwh[site_i, slots] += kwh
        self.carbon_kg[site_i, slots] += carbon
        self.energy_cost_usd[site_i, slots] += cost
        home = fed.sites[fed.site_index[job.home_site]]
        record = JobRecord(
            job_id=job.id, home_site=job.home_site, site=fed.sites[site_i].id, gpu_type=gpu,
            job_type=job.job_type, gpus=job.gpus, work_steps=job.work_steps, steps_per_s=rate,
            submit_h=job.submit_h, start_h=start_h, run_start_h=run_start_h, finish_h=finish_h,
            deadline_h=job.deadline_h, gpu_hours=float(job.gpus * hours.sum()),
            energy_kwh=float(kwh.sum()), carbon_kg=float(carbon.sum()),
            energy_cost_usd=float(cost.sum()),
            transfer_cost_usd=job.dataset_gb * home.egress_usd_per_gb if remote else 0.0,
            transferred_gb=job.dataset_gb if remote else 0.0,
        )
        self.records.append(record)
        return record

    def jobs_frame(self) -> pd.DataFrame:
        rows = [
            {**asdict(r), "completion_h": r.completion_h, "deadline_missed": r.deadline_missed}
            for r in self.records
        ]
        columns = [f.name for f in fields(JobRecord)] + ["completion_h", "deadline_missed"]
        return pd.DataFrame(rows, columns=columns)  # the columns even when no job ran

    def site_slots_frame(self, n_slots: int) -> pd.DataFrame:
        """Long format: one row per site and slot (the first ``n_slots`` slots)."""
        fed = self.federation
        busy = np.zeros((len(fed.sites), n_slots))
        np.add.at(busy, fed.resource_site, self.busy_gpu_h[:, :n_slots])
        total = np.array([s.total_gpus for s in fed.sites], dtype=float)
        frames = []
        for i, site in enumerate(fed.sites):
            frames.append(pd.DataFrame({
                "site": site.id,
                "slot": np.arange(n_slots),
                "time_h": np.arange(n_slots) * self.slot_h,
                "busy_gpu_h": busy[i],
                "utilization": busy[i] / (total[i] * self.slot_h) if total[i] else 0.0,
                "energy_kwh": self.energy_kwh[i, :n_slots],
                "carbon_kg": self.carbon_kg[i, :n_slots],
                "energy_cost_usd": self.energy_cost_usd[i, :n_slots],
                "carbon_g_per_kwh": self.carbon_g_per_kwh[i, :n_slots],
                "price_usd_per_mwh": self.price_usd_per_mwh[i, :n_slots],
            }))
        return pd.concat(frames, ignore_index=True)
