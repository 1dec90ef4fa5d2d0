"""Per-policy headline figures of a simulation run."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from broker.simulation import SimulationResult


@dataclass(frozen=True)
class PolicySummary:
    policy: str
    jobs_finished: int
    jobs_unfinished: int
    energy_kwh: float
    carbon_kg: float
    energy_cost_usd: float
    transfer_cost_usd: float
    total_cost_usd: float  # energy + transfer + carbon price x emissions
    mean_completion_h: float
    p95_completion_h: float
    deadline_misses: int
    mean_gpu_utilization: float  # busy GPU-hours / GPU-hours available over the period
    jobs_moved: int

    def as_dict(self) -> dict:
        return asdict(self)


def summarize(result: SimulationResult, carbon_price_usd_per_t: float) -> PolicySummary:
    jobs = result.jobs
    if len(jobs) == 0:
        nan = float("nan")
        return PolicySummary(result.policy, 0, len(result.unfinished), 0, 0, 0, 0, 0, nan, nan,
                             0, 0.0, 0)
    energy = float(jobs["energy_kwh"].sum())
    carbon = float(jobs["carbon_kg"].sum())
    energy_cost = float(jobs["energy_cost_usd"].sum())
    transfer = float(jobs["transfer_cost_usd"].sum())
    completion = jobs["completion_h"].to_numpy()
    available = result.total_gpus * result.period_h
    busy = float(result.site_slots["busy_gpu_h"].sum())
    return PolicySummary(
        policy=result.policy,
        jobs_finished=len(jobs),
        jobs_unfinished=len(result.unfinished),
        energy_kwh=energy,
        carbon_kg=carbon,
        energy_cost_usd=energy_cost,
        transfer_cost_usd=transfer,
        total_cost_usd=energy_cost + transfer + carbon_price_usd_per_t * carbon / 1000.0,
        mean_completion_h=float(completion.mean()),
        p95_completion_h=float(np.percentile(completion, 95)),
        deadline_misses=int(jobs["deadline_missed"].sum()),
        mean_gpu_utilization=busy / available if available else 0.0,
        jobs_moved=int((jobs["site"] != jobs["home_site"]).sum()),
    )
