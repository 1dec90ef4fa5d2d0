"""The MILP planner: a round's offers and queue -> an allocation problem -> a plan.

Option generation is vectorised over (job, resource) pairs and start slots; only feasible
options exist: the pool has enough GPUs of a type the job runs on (throughput > 0), and the job
meets its deadline (when none of its options can, it keeps them all and will be late).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from broker.costs import delay_cost_usd, emissions_kg, energy_cost_usd, transfer_cost_usd
from broker.federation import Federation
from broker.jobs import Job
from broker.offers import RoundOffers
from optimization import (
    SOLVE_METHODS,
    AllocationProblem,
    SolverOptions,
    SolveStatus,
    solve_allocation,
)
from sites.timegrid import window_mean
from sites.units import usd_per_t_to_usd_per_kg


@dataclass(frozen=True)
class PlannerConfig:
    carbon_price_usd_per_t: float = 0.0
    delay_cost_usd_per_gpu_h: float = 0.005
    start_offsets: tuple[int, ...] | None = None  # horizon slots a job may start in; None: all
    carbon_cap_kg: float | None = None
    max_wait_h: float = 24.0  # how long the temporal baseline lets a job without deadline wait
    solver: SolverOptions = field(default_factory=lambda: SolverOptions(10.0, 0.01, 1))
    method: str = "auto"

    def __post_init__(self) -> None:
        if self.method not in SOLVE_METHODS:
            raise ValueError(f"unknown solver method '{self.method}' "
                             f"(known: {', '.join(SOLVE_METHODS)})")

    @classmethod
    def build(cls, *, carbon_price_usd_per_t: float, delay_cost_usd_per_gpu_h: float,
              method: str, time_limit_s: float, mip_gap: float, threads: int,
              max_wait_h: float = 24.0, carbon_cap_kg: float | None = None) -> PlannerConfig:
        """The one factory from flat settings (a scenario file, the live broker's settings)."""
        return cls(
            carbon_price_usd_per_t=carbon_price_usd_per_t,
            delay_cost_usd_per_gpu_h=delay_cost_usd_per_gpu_h,
            carbon_cap_kg=carbon_cap_kg,
            max_wait_h=max_wait_h,
            solver=SolverOptions(time_limit_s, mip_gap, threads),
            method=method,
        )


@dataclass(frozen=True)
class Assignment:
    job_id: str
    site_id: str
    gpu_type: str
    start_offset: int  # horizon slot the job starts in (0 = now)
    start_h: float


@dataclass(frozen=True)
class Plan:
    assignments: tuple[Assignment, ...]
    deferred: tuple[str, ...]
    status: SolveStatus
    message: str  # the solver's own word on how the round ended
    objective_usd: float
    bound_usd: float
    cost_breakdown_usd: dict[str, float]
    n_options: int
    build_time_s: float
    solve_time_s: float

    @property
    def starting_now(self) -> tuple[Assignment, ...]:
        return tuple(a for a in self.assignments if a.start_offset == 0)


@dataclass(frozen=True)
class RoundProblem:
    """The arrays handed to the optimizer plus what maps its answer back to jobs."""

    problem: AllocationProblem
    demands: tuple[tuple[Job, ...], ...]  # identical jobs grouped, in submit order


def _demand_key(job: Job) -> tuple:
    return (job.home_site, job.job_type, job.gpus, job.work_steps, job.deadline_h, job.dataset_gb,
            job.gpu_types)


def group_identical_jobs(queue: Sequence[Job]) -> tuple[tuple[Job, ...], ...]:
    """Jobs with equal options and costs form one demand solved as an integer count."""
    groups: dict[tuple, list[Job]] = {}
    for job in sorted(queue, key=lambda j: (j.submit_h, j.id)):
        groups.setdefault(_demand_key(job), []).append(job)
    return tuple(tuple(g) for g in groups.values())


def build_round_problem(
    federation: Federation, offers: RoundOffers, queue: Sequence[Job], config: PlannerConfig
) -> RoundProblem:
    demands = group_identical_jobs(queue)
    reps = [d[0] for d in demands]
    n_res = len(federation.resources)
    horizon = offers.horizon_slots
    slot_h = offers.slot_h
    offsets = np.array(
        config.start_offsets if config.start_offsets is not None else range(horizon), dtype=int
    )
    offsets = offsets[offsets < horizon]

    # (demand, resource) pairs that can run at all.
    gpus = np.array([j.gpus for j in reps], dtype=int)
    rate = federation.steps_per_s(reps)
    fits = (rate > 0) & (federation.resource_total_gpus[None, :] >= gpus[:, None])
    pair_d, pair_r = np.nonzero(fits) if len(reps) else (np.zeros(0, int), np.zeros(0, int))
    work = np.array([j.work_steps for j in reps])[pair_d]
    runtime_h = federation.runtime_h(work, gpus[pair_d], rate[pair_d, pair_r])
    home = np.array([federation.site_index[j.home_site] for j in reps], dtype=int)[pair_d]
    site = federation.resource_site[pair_r]
    remote = site != home
    dataset_gb = np.array([j.dataset_gb for j in reps])[pair_d]
    transfer_h = np.where(remote, federation.transfer_h(1.0) * dataset_gb, 0.0)
    egress = np.array([s.egress_usd_per_gb for s in federation.sites])[home]
    transfer_usd = np.where(remote, transfer_cost_usd(dataset_gb, egress), 0.0)
    energy_kwh = federation.run_energy_kwh(gpus[pair_d], pair_r, runtime_h)

    # Expand pairs over start offsets.
    n_pairs, n_off = len(pair_d), len(offsets)
    pair = np.repeat(np.arange(n_pairs), n_off)
    start = np.tile(offsets, n_pairs)
    start_rel_h = start * slot_h
    occupy_h = transfer_h[pair] + runtime_h[pair]
    completion_rel_h = start_rel_h + occupy_h
    deadline = np.array([np.inf if j.deadline_h is None else j.deadline_h for j in reps])
    meets = offers.now_h + completion_rel_h <= deadline[pair_d[pair]] + 1e-9
    any_meets = np.zeros(len(reps), bool)
    np.logical_or.at(any_meets, pair_d[pair], meets)
    keep = meets | ~any_meets[pair_d[pair]]
    pair, start, start_rel_h, occupy_h, completion_rel_h = (
        a[keep] for a in (pair, start, start_rel_h, occupy_h, completion_rel_h)
    )

    run_from = start_rel_h + transfer_h[pair]
    run_to = start_rel_h + occupy_h
    price = window_mean(offers.price_usd_per_mwh, site[pair], run_from, run_to, slot_h)
    carbon = window_mean(offers.carbon_g_per_kwh, site[pair], run_from, run_to, slot_h)
    option_kwh = energy_kwh[pair]
    option_gpus = gpus[pair_d[pair]]
    slots = np.minimum(np.ceil(occupy_h / slot_h - 1e-9).astype(int), horizon - start)
    problem = AllocationProblem(
        capacity_gpus=np.asarray(offers.free_gpus, dtype=float).reshape(n_res, horizon),
        demand_count=np.array([len(d) for d in demands], dtype=int),
        deferral_penalty_usd=np.zeros(len(reps)),
        option_demand=pair_d[pair],
        option_resource=pair_r[pair],
        option_start=start,
        option_slots=np.maximum(slots, 1),
        option_gpus=option_gpus,
        option_energy_kwh=option_kwh,
        option_energy_cost_usd=energy_cost_usd(option_kwh, price),
        option_carbon_kg=emissions_kg(option_kwh, carbon),
        option_transfer_cost_usd=transfer_usd[pair],
        option_delay_cost_usd=delay_cost_usd(option_gpus, completion_rel_h,
                                             config.delay_cost_usd_per_gpu_h),
        carbon_price_usd_per_kg=usd_per_t_to_usd_per_kg(config.carbon_price_usd_per_t),
        carbon_cap_kg=config.carbon_cap_kg,
    )
    # Deferring must look worse than any option: the dearest option plus a horizon of delay.
    dearest = np.zeros(len(reps))
    np.maximum.at(dearest, problem.option_demand, problem.option_cost_usd)
    penalty = dearest + delay_cost_usd(gpus, horizon * slot_h, config.delay_cost_usd_per_gpu_h)
    problem = dataclasses.replace(problem, deferral_penalty_usd=penalty)
    return RoundProblem(problem=problem, demands=demands)


class MilpPlanner:
    """Plans a round by solving the allocation MILP; the same code serves simulator and API."""

    def __init__(self, federation: Federation, config: PlannerConfig) -> None:
        self.federation = federation
        self.config = config

    def plan(self, offers: RoundOffers, queue: Sequence[Job]) -> Plan:
        round_problem = build_round_problem(self.federation, offers, queue, self.config)
        p = round_problem.problem
        solution = solve_allocation(p, self.config.solver, method=self.config.method)
        assignments: list[Assignment] = []
        deferred: list[str] = []
        for d, jobs in enumerate(round_problem.demands):
            pending = list(jobs)
            for o in np.flatnonzero((p.option_demand == d) & (solution.option_count > 0)):
                site_i, gpu = self.federation.resources[p.option_resource[o]]
                for _ in range(int(solution.option_count[o])):
                    job = pending.pop(0)
                    assignments.append(Assignment(
                        job_id=job.id, site_id=self.federation.sites[site_i].id, gpu_type=gpu,
                        start_offset=int(p.option_start[o]),
                        start_h=offers.now_h + int(p.option_start[o]) * offers.slot_h,
                    ))
            deferred.extend(j.id for j in pending)
        return Plan(
            assignments=tuple(assignments),
            deferred=tuple(deferred),
            status=SolveStatus(solution.status),
            message=solution.message,
            objective_usd=solution.objective_usd,
            bound_usd=solution.bound_usd,
            cost_breakdown_usd=solution.cost_breakdown_usd,
            n_options=p.n_options,
            build_time_s=solution.build_time_s,
            solve_time_s=solution.solve_time_s,
        )
