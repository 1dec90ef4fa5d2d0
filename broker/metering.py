"""Metering: every kWh, kg CO2 and dollar, per job and per site and slot.

The meter uses the *actual* signals (the planner sees forecasts). Busy GPUs draw board power;
free GPUs draw idle power (GPU types that have one) over the run window [0, period + drain),
the same window for every policy. Formulas: ``sites.power`` (energy), ``broker.costs`` (money
and carbon), ``sites.timegrid`` (which slots a run overlaps).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from broker.costs import emissions_kg, energy_cost_usd
from broker.federation import Federation
from broker.jobs import Job
from broker.options import meets_deadline, run_of
from sites.power import energy_kwh
from sites.timegrid import slot_overlaps


@dataclass(frozen=True)
class JobRecord:
    """What happened to one job that ran."""

    job_id: str
    home_site: str
    site: str
    gpu_type: str
    job_type: str
    gpus: int  # the count it ran on (a moldable job's: the policy's choice)
    asked_gpus: int  # the count it asked for
    work_steps: float
    steps_per_s: float  # one GPU of the type alone (the affinity matrix)
    job_steps_per_s: float  # the job on its GPUs (the scaling model): work / run time
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
    segments: int  # runs between pauses (1: never paused)
    checkpoint_h: float  # busy hours writing and reading checkpoints at its pauses

    @property
    def completion_h(self) -> float:
        return self.finish_h - self.submit_h

    @property
    def deadline_missed(self) -> bool:
        return not meets_deadline(self.finish_h, self.deadline_h)


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
        self.records: list[JobRecord] = []

    def record_run(self, job: Job, resource: int, start_h: float, gpus: int | None = None,
                   segments_h: tuple[tuple[float, float], ...] = ()) -> JobRecord:
        """Meter ``job`` run on ``gpus`` GPUs (default: its own count) of pool ``resource``
        from ``start_h`` (its option's run and transfer, ``broker.options``), slot by slot on
        the actual signals; a preemptible job's interrupted run segment by segment
        (``segments_h``, its checkpoints' time at full draw)."""
        fed = self.federation
        site_i, gpu = fed.resources[resource]
        run = run_of(fed, job, resource, gpus)
        remote = fed.sites[site_i].id != job.home_site
        gpus = int(run.gpus[0])
        checkpoint_h = 0.0
        if segments_h:
            checkpoint_h = 2.0 * job.checkpoint_overhead_h * (len(segments_h) - 1)
            busy = sum(b - a for a, b in segments_h)
            if abs(busy - checkpoint_h - float(run.runtime_h[0])) > 1e-6:
                raise ValueError(f"job {job.id}: its segments hold {busy - checkpoint_h:.6f} h "
                                 f"of work, it needs {float(run.runtime_h[0]):.6f} h")
            run_start_h, finish_h = segments_h[0][0], segments_h[-1][1]
        else:
            run_start_h = start_h + float(run.transfer_h[0])
            finish_h = run_start_h + float(run.runtime_h[0])
            segments_h = ((run_start_h, finish_h),)
        pieces = [slot_overlaps(a, b, self.slot_h) for a, b in segments_h]
        slots = np.concatenate([p[0] for p in pieces])
        hours = np.concatenate([p[1] for p in pieces])
        if slots.max() >= self.energy_kwh.shape[1]:
            raise ValueError(f"job {job.id} runs past the end of the signals")
        kwh = fed.run_energy_kwh(np.full(len(hours), gpus), np.full(len(hours), resource),
                                 hours)
        np.add.at(self.busy_gpu_h[resource], slots, gpus * hours)
        np.add.at(self.energy_kwh[site_i], slots, kwh)
        record = JobRecord(
            job_id=job.id, home_site=job.home_site, site=fed.sites[site_i].id, gpu_type=gpu,
            job_type=job.job_type, gpus=gpus, asked_gpus=job.gpus, work_steps=job.work_steps,
            steps_per_s=float(run.gpu_steps_per_s[0]),
            job_steps_per_s=float(run.steps_per_s[0]),
            submit_h=job.submit_h, start_h=start_h, run_start_h=run_start_h, finish_h=finish_h,
            deadline_h=job.deadline_h, gpu_hours=float(gpus * hours.sum()),
            energy_kwh=float(kwh.sum()),
            carbon_kg=float(emissions_kg(kwh, self.carbon_g_per_kwh[site_i, slots]).sum()),
            energy_cost_usd=float(
                energy_cost_usd(kwh, self.price_usd_per_mwh[site_i, slots]).sum()),
            transfer_cost_usd=float(run.transfer_cost_usd[0]),
            transferred_gb=job.dataset_gb if remote else 0.0,
            segments=len(segments_h), checkpoint_h=checkpoint_h,
        )
        self.records.append(record)
        return record

    def jobs_frame(self) -> pd.DataFrame:
        names = [f.name for f in fields(JobRecord)]
        # Records hold scalars only, so plain attribute reads give what ``asdict`` gives,
        # without its recursive deep copy of every record.
        rows = [
            [getattr(r, n) for n in names] + [r.completion_h, r.deadline_missed]
            for r in self.records
        ]
        columns = [*names, "completion_h", "deadline_missed"]
        return pd.DataFrame(rows, columns=columns)  # the columns even when no job ran

    def idle_gpu_h(self, window_slots: int) -> np.ndarray:
        """Free GPU-hours of each pool and slot within the run window (0 after it)."""
        total = self.federation.resource_total_gpus[:, None] * self.slot_h
        idle = np.zeros_like(self.busy_gpu_h)
        idle[:, :window_slots] = np.maximum(total - self.busy_gpu_h[:, :window_slots], 0.0)
        return idle

    def site_slots_frame(self, window_slots: int) -> pd.DataFrame:
        """Long format: one row per site and slot of the whole run.

        The run covers the window [0, period + drain) and beyond it until the last job
        finishes. ``energy_kwh`` is busy plus idle energy; its sum over the frame is the
        federation's metered energy (the summary's total less the outside option).
        """
        fed = self.federation
        n_sites = len(fed.sites)
        used = np.flatnonzero(self.busy_gpu_h.sum(axis=0) > 0)
        n_slots = max(window_slots, int(used[-1]) + 1 if len(used) else 0)
        idle_gpu_h = self.idle_gpu_h(window_slots)
        idle_kwh_res = energy_kwh(idle_gpu_h, fed.resource_idle_power_w[:, None],
                                  fed.resource_pue[:, None], 1.0)
        busy = np.zeros((n_sites, n_slots))
        np.add.at(busy, fed.resource_site, self.busy_gpu_h[:, :n_slots])
        idle_h = np.zeros((n_sites, n_slots))
        np.add.at(idle_h, fed.resource_site, idle_gpu_h[:, :n_slots])
        idle_kwh = np.zeros((n_sites, n_slots))
        np.add.at(idle_kwh, fed.resource_site, idle_kwh_res[:, :n_slots])
        kwh = self.energy_kwh[:, :n_slots] + idle_kwh
        carbon = self.carbon_g_per_kwh[:, :n_slots]
        price = self.price_usd_per_mwh[:, :n_slots]
        total = np.array([s.total_gpus for s in fed.sites], dtype=float)
        slot = np.arange(n_slots)
        frames = [pd.DataFrame({
            "site": site.id,
            "slot": slot,
            "time_h": slot * self.slot_h,
            "busy_gpu_h": busy[i],
            "idle_gpu_h": idle_h[i],
            "utilization": busy[i] / (total[i] * self.slot_h) if total[i] else 0.0,
            "energy_kwh": kwh[i],
            "idle_energy_kwh": idle_kwh[i],
            "carbon_kg": emissions_kg(kwh[i], carbon[i]),
            "energy_cost_usd": energy_cost_usd(kwh[i], price[i]),
            "carbon_g_per_kwh": carbon[i],
            "price_usd_per_mwh": price[i],
        }) for i, site in enumerate(fed.sites)]
        return pd.concat(frames, ignore_index=True)
