"""Per-policy headline figures of a simulation run, covering every job of the scenario.

Totals add the federation's metered runs (busy and idle GPUs) and the outside option's jobs,
so every policy's totals cover the same work. Completion times cover the jobs the federation
ran (``completion_jobs`` says how many); a job with a deadline that the outside option served
counts as a deadline miss.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from broker.costs import total_cost_usd
from broker.simulation import SimulationResult
from optimization import SolveStatus


@dataclass(frozen=True)
class PolicySummary:
    policy: str
    jobs_finished: int  # run by the federation
    jobs_outside: int  # served by the outside option
    energy_kwh: float  # federation (busy + idle) + outside option
    carbon_kg: float
    energy_cost_usd: float  # the federation's metered energy bill
    transfer_cost_usd: float  # egress of moved jobs (the outside option's: in outside_cost_usd)
    outside_cost_usd: float  # the cloud's bill plus egress for its jobs
    total_cost_usd: float  # energy + transfer + outside + carbon price x emissions
    idle_energy_kwh: float
    outside_gpu_h: float
    outside_energy_kwh: float
    outside_carbon_kg: float
    mean_completion_h: float
    p95_completion_h: float
    makespan_h: float  # from the first submission to the last finish in the federation
    completion_jobs: int  # the jobs the completion statistics cover
    deadline_misses: int
    mean_gpu_utilization: float  # busy GPU-h within the run window / GPUs x window hours
    jobs_moved: int
    pauses: int  # of running jobs (a preemptible job's), all jobs together
    moves_while_running: int  # a paused job resumed on another pool
    resizes: int  # a running (elastic) job's GPU count changed
    rounds_optimal: int
    rounds_feasible: int  # a limit was hit; the best plan found was used
    rounds_failed: int  # no plan: the round deferred every job
    # rounds the solver's wall-clock safety net stopped: their plans depend on the load
    rounds_wall_clock: int

    def as_dict(self) -> dict:
        return asdict(self)


def summarize(result: SimulationResult, carbon_price_usd_per_t: float) -> PolicySummary:
    jobs, outside, slots = result.jobs, result.outside, result.site_slots
    completion = jobs["completion_h"].to_numpy(float)
    in_window = slots["time_h"] < result.run_h - 1e-9
    available = result.total_gpus * result.run_h
    busy = float(slots.loc[in_window, "busy_gpu_h"].sum())
    fed_kwh = float(slots["energy_kwh"].sum())
    fed_kg = float(slots["carbon_kg"].sum())
    energy_cost = float(slots["energy_cost_usd"].sum())
    transfer = float(jobs["transfer_cost_usd"].sum())
    outside_kg = float(outside["carbon_kg"].sum())
    outside_usd = float((outside["outside_cost_usd"] + outside["transfer_cost_usd"]).sum())
    carbon = fed_kg + outside_kg
    counts = result.status_counts()
    nan = float("nan")
    return PolicySummary(
        policy=result.policy,
        jobs_finished=len(jobs),
        jobs_outside=len(outside),
        energy_kwh=fed_kwh + float(outside["energy_kwh"].sum()),
        carbon_kg=carbon,
        energy_cost_usd=energy_cost,
        transfer_cost_usd=transfer,
        outside_cost_usd=outside_usd,
        total_cost_usd=total_cost_usd(energy_cost, transfer + outside_usd, carbon,
                                      carbon_price_usd_per_t),
        idle_energy_kwh=float(slots["idle_energy_kwh"].sum()),
        outside_gpu_h=float(outside["gpu_hours"].sum()),
        outside_energy_kwh=float(outside["energy_kwh"].sum()),
        outside_carbon_kg=outside_kg,
        mean_completion_h=float(completion.mean()) if len(completion) else nan,
        p95_completion_h=float(np.percentile(completion, 95)) if len(completion) else nan,
        makespan_h=float(jobs["finish_h"].max() - jobs["submit_h"].min()) if len(jobs) else nan,
        completion_jobs=len(completion),
        deadline_misses=int(jobs["deadline_missed"].sum())
        + int(outside["deadline_h"].notna().sum()),
        mean_gpu_utilization=busy / available if available else 0.0,
        jobs_moved=int((jobs["site"] != jobs["home_site"]).sum()),
        pauses=int((jobs["segments"] - 1).sum()),
        moves_while_running=int(jobs["moves"].sum()),
        resizes=int(jobs["resizes"].sum()),
        rounds_optimal=counts.get(SolveStatus.OPTIMAL, 0),
        rounds_feasible=counts.get(SolveStatus.FEASIBLE, 0),
        rounds_failed=sum(n for s, n in counts.items() if not s.has_solution),
        rounds_wall_clock=result.wall_clock_rounds,
    )
