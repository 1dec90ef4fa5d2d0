"""The grand coalition's result in one shape, whichever value mode produced it.

Settlement and the payment schemes read this: every job the federation ran (its home, its
host, its pool and hours, its kWh, kg and USD) and, per site, what it pays before any
settlement (``base_usd``): the grid bills of what it hosts (energy, and carbon at the price
in force) plus the egress, the delay cost and the outside option of its own jobs. The bases
sum to c(N).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from broker.costs import carbon_cost_usd, delay_cost_usd
from broker.period_plan import PeriodOutcome, PeriodProblem
from broker.simulation import SimulationResult, SimulationSetup
from sites.timegrid import slot_overlaps


@dataclass(frozen=True)
class HostedJob:
    job_id: str
    home: str
    host: str
    resource: int  # the pool (federation resource index)
    gpus: int
    run_from_h: float
    run_to_h: float
    gpu_hours: float
    energy_kwh: float
    carbon_kg: float
    energy_cost_usd: float
    carbon_cost_usd: float
    transfer_cost_usd: float
    delay_cost_usd: float  # borne by the home: its job waited
    share: float = 1.0  # the part of the job (the fluid period plan may split one)

    @property
    def remote(self) -> bool:
        return self.home != self.host

    @property
    def at_cost_usd(self) -> float:
        """What running it cost its host: energy plus carbon at the price in force."""
        return self.energy_cost_usd + self.carbon_cost_usd


@dataclass(frozen=True)
class GrandOutcome:
    sites: tuple[str, ...]
    hosted: tuple[HostedJob, ...]
    base_usd: Mapping[str, float]
    emissions_kg: Mapping[str, float]  # hosted (idle included) plus own jobs at the outside
    carbon_price_usd_per_t: float

    @property
    def cost_usd(self) -> float:
        return float(sum(self.base_usd.values()))

    def hosted_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{**h.__dict__, "remote": h.remote} for h in self.hosted])


def from_simulation(setup: SimulationSetup, result: SimulationResult,
                    carbon_price_usd_per_t: float,
                    delay_cost_usd_per_gpu_h: float) -> GrandOutcome:
    fed = setup.federation
    sites = tuple(s.id for s in fed.sites)
    jobs = result.jobs
    hosted = tuple(
        HostedJob(
            job_id=r["job_id"], home=r["home_site"], host=r["site"],
            resource=fed.resource_of(r["site"], r["gpu_type"]), gpus=int(r["gpus"]),
            run_from_h=float(r["run_start_h"]), run_to_h=float(r["finish_h"]),
            gpu_hours=float(r["gpu_hours"]), energy_kwh=float(r["energy_kwh"]),
            carbon_kg=float(r["carbon_kg"]), energy_cost_usd=float(r["energy_cost_usd"]),
            carbon_cost_usd=float(carbon_cost_usd(r["carbon_kg"], carbon_price_usd_per_t)),
            transfer_cost_usd=float(r["transfer_cost_usd"]),
            delay_cost_usd=float(delay_cost_usd(r["gpus"], r["completion_h"],
                                                delay_cost_usd_per_gpu_h)),
        ) for r in jobs.to_dict("records"))
    slots = result.site_slots.groupby("site")[["carbon_kg", "energy_cost_usd"]].sum()
    outside = result.outside.groupby("home_site")[
        ["outside_cost_usd", "transfer_cost_usd", "carbon_kg"]].sum()
    transfer = jobs.groupby("home_site")["transfer_cost_usd"].sum()
    delay = pd.Series([h.delay_cost_usd for h in hosted], index=[h.home for h in hosted],
                      dtype=float).groupby(level=0).sum()
    out_delay = outside_delay_usd(result.outside, delay_cost_usd_per_gpu_h).groupby(
        result.outside["home_site"].to_numpy()).sum()
    base, emitted = {}, {}
    for s in sites:
        out = outside.loc[s] if s in outside.index else pd.Series(0.0, index=outside.columns)
        kg = float(slots.loc[s, "carbon_kg"] + out["carbon_kg"])
        base[s] = float(slots.loc[s, "energy_cost_usd"] + transfer.get(s, 0.0)
                        + delay.get(s, 0.0) + out_delay.get(s, 0.0)
                        + out["outside_cost_usd"] + out["transfer_cost_usd"]
                        + carbon_cost_usd(kg, carbon_price_usd_per_t))
        emitted[s] = kg
    return GrandOutcome(sites, hosted, base, emitted, carbon_price_usd_per_t)


def from_plan(pp: PeriodProblem, outcome: PeriodOutcome,
              carbon_price_usd_per_t: float) -> GrandOutcome:
    sites = pp.site_ids
    hosted = []
    for p in outcome.placements:
        host = sites[int(pp.resource_site[p.resource])]
        hours = p.gpu_hours / (p.fraction * p.job.gpus)
        hosted.append(HostedJob(
            job_id=p.job.id, home=p.job.home_site, host=host, resource=p.resource,
            gpus=p.job.gpus, run_from_h=p.start_h, run_to_h=p.start_h + hours,
            gpu_hours=p.gpu_hours, energy_kwh=p.energy_kwh, carbon_kg=p.carbon_kg,
            energy_cost_usd=p.energy_cost_usd,
            carbon_cost_usd=float(carbon_cost_usd(p.carbon_kg, carbon_price_usd_per_t)),
            transfer_cost_usd=p.transfer_cost_usd, delay_cost_usd=p.delay_cost_usd,
            share=p.fraction))
    base = dict.fromkeys(sites, 0.0)
    emitted = dict.fromkeys(sites, 0.0)
    for h in hosted:
        base[h.host] += h.at_cost_usd
        base[h.home] += h.transfer_cost_usd + h.delay_cost_usd
        emitted[h.host] += h.carbon_kg
    outside = pp.outside.set_index("job_id")
    for job_id, fraction, delay in outcome.outside_jobs:
        row = outside.loc[job_id]
        base[row["home_site"]] += delay + fraction * float(
            row["outside_cost_usd"] + row["transfer_cost_usd"]
            + carbon_cost_usd(row["carbon_kg"], carbon_price_usd_per_t))
        emitted[row["home_site"]] += fraction * float(row["carbon_kg"])
    return GrandOutcome(sites, tuple(hosted), base, emitted, carbon_price_usd_per_t)


def outside_delay_usd(outside: pd.DataFrame, delay_cost_usd_per_gpu_h: float) -> pd.Series:
    """The delay cost of jobs the cloud ran: their GPU-hours there (run from submission)."""
    return pd.Series(delay_cost_usd(1.0, outside["gpu_hours"].to_numpy(float),
                                    delay_cost_usd_per_gpu_h), index=outside.index)


def capacity_rent_usd(job: HostedJob, prices_usd_per_gpu_slot: np.ndarray,
                      slot_h: float) -> float:
    """sum over plan slots t of price[pool, t] x the GPU-slots the job held in t."""
    row = prices_usd_per_gpu_slot[job.resource]
    slots, hours = slot_overlaps(job.run_from_h, job.run_to_h, slot_h)
    inside = slots < len(row)
    total = float(row[slots[inside]] @ hours[inside]) * job.gpus / slot_h
    return job.share * total
