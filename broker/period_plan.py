"""One planning problem over the whole run, every job known in advance (the `plan` value).

The rolling MILP simulation (`simulate`) is the broker's realised cost; this is its faster
stand-in for coalition games and carbon-price sweeps: the same allocation MILP
(``optimization``), posed once for the whole run with perfect foresight of every job and of
the actual grid signals.

Formulation (and its aggregation, stated):

* slots of ``slot_h`` hours (default 2 h) from 0 to past the end of the run;
* a job may start in the slot holding its submission or in one of the slots up to
  ``max_wait_h`` later (default 12 h): one option per (job, pool it fits, start);
* a preemptible job also has one interrupted option per pool (its cheapest schedule over the
  hourly signals, pausing in between: ``broker.options.price_schedule``), held fluidly over
  the plan slots it spans; a moldable job has options at each GPU count it may run on;
* its energy, emissions and costs are priced exactly over its run (transfer first, when it
  moves) from the actual hourly signals, as the meter would; a delay cost per GPU-hour from
  submission to completion makes waiting cost something, as in the rolling planner;
* capacity is fluid within a slot: an option holds ``gpus x run hours / (its slots x slot_h)``
  GPUs in each slot it touches, so a pool's GPU-hours per slot are never over-used, though
  two jobs may share a slot's GPU-hours where the rolling plan would queue one of them;
* the plan is fluid in jobs too: it is the LP relaxation of this MILP (column generation,
  ``optimization.allocation_lp_duals``), so a job may be split across pools or start times.
  With hundreds of jobs the LP is within about 1% of the integer optimum (0.6% measured on
  the busiest site of ``default``), it solves in a fraction of a second where the MILP takes
  seconds, and its capacity duals are the market's clearing prices of the same plan;
* the outside option is one more pool, ``cloud``, that never fills: every job has one option
  there (at its submission), costing the cloud's bill, the egress of its data set and its
  emissions at the carbon price. A coalition sends a job out only when that is cheaper (or it
  has no pool for it). Deferral is never chosen (its penalty is far above the cloud's).

The value of coalition S is the plan's objective: energy + carbon + transfer + delay cost of
its options, the cloud's included (the delay cost is the price the broker puts on waiting;
with it, c(S) is a linear production game, so its core is never empty and the LP's prices
give a core allocation: Owen 1975). A federation-wide carbon cap bounds all the emissions of
serving the federation's jobs, the cloud's included (sending work out does not dodge it).
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
import pandas as pd

from broker.costs import carbon_cost_usd, delay_cost_usd
from broker.jobs import Job
from broker.options import (
    OPTION_COLUMNS,
    Runs,
    at_starts,
    interruptible,
    job_runs,
    meets_deadline,
    option_columns,
    price_options,
    price_schedule,
)
from broker.planner import PLANNER_DEFAULTS
from broker.simulation import SimulationSetup
from optimization import (
    AllocationProblem,
    SolverOptions,
    SolveStatus,
    allocation_lp_duals,
    breakdown_usd,
)
from sites.timegrid import slot_index, slots_until
from sites.units import usd_per_t_to_usd_per_kg

FRACTION_TOLERANCE = 1e-9


@dataclass(frozen=True)
class PeriodPlanSettings:
    slot_h: float = 2.0
    max_wait_h: float = 12.0
    delay_cost_usd_per_gpu_h: float = PLANNER_DEFAULTS.delay_cost_usd_per_gpu_h
    solver: SolverOptions = field(default_factory=SolverOptions)


@dataclass(frozen=True)
class PeriodProblem:
    """The grand coalition's problem; demand d is ``jobs[d]`` (one job each)."""

    problem: AllocationProblem
    jobs: tuple[Job, ...]
    home: np.ndarray  # site index of each job's home
    resource_site: np.ndarray  # site index of each pool
    site_ids: tuple[str, ...]
    outside: pd.DataFrame  # the outside option's figures per job, in ``jobs`` order
    settings: PeriodPlanSettings

    @cached_property
    def grand_columns(self) -> np.ndarray:
        """Options the grand coalition's LP uses: a warm start for every smaller coalition
        (most of its options are still in the sub-problem and still good)."""
        lp = allocation_lp_duals(self.problem, self.settings.solver)
        return np.flatnonzero(lp.option_x > FRACTION_TOLERANCE)


@dataclass(frozen=True)
class Placement:
    """A job's share (``fraction``, 1 unless the fluid plan split it) on one option."""

    job: Job
    fraction: float
    resource: int
    start_h: float
    gpu_hours: float
    energy_kwh: float
    carbon_kg: float
    energy_cost_usd: float
    transfer_cost_usd: float
    delay_cost_usd: float


@dataclass(frozen=True)
class PeriodOutcome:
    """A coalition's plan: its value and what it is made of."""

    site_ids: tuple[str, ...]
    cost_usd: float
    carbon_kg: float  # federation plus outside option
    federation_carbon_kg: float
    energy_kwh: float
    jobs_served: float  # fluid: a job split between a pool and the cloud counts in part
    jobs_unserved: float
    status: SolveStatus
    placements: tuple[Placement, ...]
    outside_jobs: tuple[tuple[str, float, float], ...]  # (job id, fraction, its delay USD)


def build_period_problem(setup: SimulationSetup, carbon_price_usd_per_t: float,
                         settings: PeriodPlanSettings | None = None) -> PeriodProblem:
    settings = settings or PeriodPlanSettings()
    fed = setup.federation
    jobs = tuple(setup.jobs)
    slot_h = settings.slot_h
    waits = max(1, math.floor(settings.max_wait_h / slot_h) + 1)
    gpus = np.array([j.gpus for j in jobs], dtype=int)
    home = np.array([fed.site_index[j.home_site] for j in jobs], dtype=int)
    submit = np.array([j.submit_h for j in jobs], dtype=float)
    first_slot = slots_until(submit, slot_h)  # the first plan slot at or after submission
    runs = job_runs(fed, jobs)
    options = at_starts(runs, first_slot[runs.job][:, None] + np.arange(waits), slot_h)
    priced = price_options(options, setup.price_usd_per_mwh, setup.carbon_g_per_kwh,
                           setup.slot_h, delay_from_h=submit,
                           delay_cost_usd_per_gpu_h=settings.delay_cost_usd_per_gpu_h)
    n_slots_o = options.slots
    # fluid capacity: the option's GPU-hours spread evenly over the slots it touches
    fluid_gpus = options.runs.gpus * options.runs.occupy_h / (n_slots_o * slot_h)
    columns = priced.problem_columns(held_gpus=fluid_gpus)
    interrupted = _interrupted_columns(setup, settings, runs, jobs, first_slot,
                                       carbon_price_usd_per_t)
    columns = {k: np.concatenate([v, interrupted[k]]) for k, v in columns.items()}
    ends = columns["option_start"] + columns["option_slots"]
    n_slots = max(int(ends.max()) if len(ends) else 1,
                  int(first_slot.max()) + 1 if len(first_slot) else 1)
    outside = setup.outside.serve(jobs, fed, ["plan"] * len(jobs))
    cloud = fed.resource_site.size  # the outside option's pool, after the federation's
    n_jobs = len(jobs)
    out_kwh = outside["energy_kwh"].to_numpy(float)
    out_kg = outside["carbon_kg"].to_numpy(float)
    out_bill = outside["outside_cost_usd"].to_numpy(float)
    out_egress = outside["transfer_cost_usd"].to_numpy(float)
    out_h = outside["gpu_hours"].to_numpy(float) / np.maximum(gpus, 1)
    penalty = 10.0 * (out_bill + out_egress + carbon_cost_usd(out_kg, 1e4)) + 1.0
    capacity = np.vstack([np.repeat(fed.resource_total_gpus[:, None].astype(float), n_slots, 1),
                          np.full((1, n_slots), float(gpus.sum()) + 1.0)])
    # The cloud's options, one per job at its submission, after the federation's.
    cloud_columns = {
        "option_demand": np.arange(n_jobs),
        "option_resource": np.full(n_jobs, cloud),
        "option_start": np.minimum(first_slot, n_slots - 1),
        "option_slots": np.ones(n_jobs, dtype=int),
        "option_gpus": gpus.astype(float),
        "option_energy_kwh": out_kwh,
        "option_energy_cost_usd": out_bill,
        "option_carbon_kg": out_kg,
        "option_transfer_cost_usd": out_egress,
        "option_delay_cost_usd": delay_cost_usd(gpus, out_h,
                                                settings.delay_cost_usd_per_gpu_h),
    }
    problem = AllocationProblem(
        capacity_gpus=capacity,
        demand_count=np.ones(n_jobs, dtype=int),
        deferral_penalty_usd=penalty,
        **{name: np.concatenate([columns[name], cloud_columns[name]]) for name in columns},
        carbon_price_usd_per_kg=usd_per_t_to_usd_per_kg(carbon_price_usd_per_t),
        carbon_cap_kg=None,
    )
    return PeriodProblem(problem, jobs, home, fed.resource_site.copy(),
                         tuple(s.id for s in fed.sites), outside, settings)


def _interrupted_columns(setup: SimulationSetup, settings: PeriodPlanSettings, runs: Runs,
                         jobs: tuple[Job, ...], first_slot: np.ndarray,
                         carbon_price_usd_per_t: float) -> dict[str, np.ndarray]:
    """One more option per interruptible run (``broker.options.interruptible``): its cheapest
    schedule on the actual hourly signals from its first plan slot, until its deadline (or
    ``max_wait_h`` past its run time), priced at ``carbon_price_usd_per_t``, held fluidly (its
    busy GPU-hours spread over the plan slots it spans). Another carbon price
    (``with_carbon_price``) re-prices the same schedules."""
    slot_h, signal_slot_h = settings.slot_h, setup.slot_h
    n_signal = setup.price_usd_per_mwh.shape[1]
    rows: dict[str, list] = {name: [] for name in OPTION_COLUMNS}
    for i in interruptible(runs, jobs):
        job, site = jobs[runs.job[i]], runs.site[i]
        origin_h = float(first_slot[runs.job[i]] * slot_h)
        first = slot_index(origin_h, signal_slot_h)
        end_h = (job.deadline_h if job.deadline_h is not None
                 else origin_h + settings.max_wait_h + float(runs.runtime_h[i]))
        usable = min(slots_until(end_h - origin_h, signal_slot_h), n_signal - first)
        priced = price_schedule(runs, i, job.checkpoint_overhead_h,
                                setup.price_usd_per_mwh[site, first:],
                                setup.carbon_g_per_kwh[site, first:], signal_slot_h, usable,
                                carbon_price_usd_per_t)
        if priced is None:
            continue
        begin_h = origin_h + priced.schedule.segments_h[0][0]
        finish_h = origin_h + priced.schedule.finish_h
        if not meets_deadline(finish_h, job.deadline_h):
            continue
        start = slot_index(begin_h, slot_h)
        span = max(slots_until(finish_h, slot_h) - start, 1)
        rows["option_demand"].append(runs.job[i])
        rows["option_resource"].append(runs.resource[i])
        rows["option_start"].append(start)
        rows["option_slots"].append(span)
        rows["option_gpus"].append(runs.gpus[i] * priced.schedule.busy_h / (span * slot_h))
        rows["option_energy_kwh"].append(priced.energy_kwh)
        rows["option_energy_cost_usd"].append(priced.energy_cost_usd)
        rows["option_carbon_kg"].append(priced.carbon_kg)
        rows["option_transfer_cost_usd"].append(float(runs.transfer_cost_usd[i]))
        rows["option_delay_cost_usd"].append(float(delay_cost_usd(
            runs.gpus[i], finish_h - job.submit_h, settings.delay_cost_usd_per_gpu_h)))
    return option_columns(rows)


def is_cloud(pp: PeriodProblem, resource: np.ndarray) -> np.ndarray:
    """Whether pools are the outside option's (the last pool of the problem)."""
    return np.asarray(resource) == len(pp.resource_site)


def coalition_problem(pp: PeriodProblem, site_ids: Collection[str],
                      carbon_cap_kg: float | None = None) -> tuple[AllocationProblem, np.ndarray]:
    """The problem of coalition ``site_ids`` (its jobs, its pools) and its jobs' indices."""
    members = np.array([s in site_ids for s in pp.site_ids])
    p = pp.problem
    keep_jobs = np.flatnonzero(members[pp.home])
    pool_site = np.append(pp.resource_site, -1)[p.option_resource]
    on_member_pool = is_cloud(pp, p.option_resource) | members[np.maximum(pool_site, 0)]
    keep = on_member_pool & members[pp.home[p.option_demand]]
    new_id = np.full(p.n_demands, -1)
    new_id[keep_jobs] = np.arange(len(keep_jobs))
    fields = {name: getattr(p, name) for name in p.__dataclass_fields__}
    for name in fields:
        if name.startswith("option_"):
            fields[name] = fields[name][keep]
    fields["option_demand"] = new_id[p.option_demand[keep]]
    fields["demand_count"] = p.demand_count[keep_jobs]
    fields["deferral_penalty_usd"] = p.deferral_penalty_usd[keep_jobs]
    fields["carbon_cap_kg"] = carbon_cap_kg
    return AllocationProblem(**fields), keep_jobs


def _kept_columns(pp: PeriodProblem, site_ids: Collection[str]) -> np.ndarray:
    """The grand LP's columns that survive in the coalition's problem, renumbered."""
    members = np.array([s in site_ids for s in pp.site_ids])
    if members.all():
        return np.zeros(0, dtype=int)  # the grand coalition itself: nothing to start from
    p = pp.problem
    pool_site = np.append(pp.resource_site, -1)[p.option_resource]
    keep = ((is_cloud(pp, p.option_resource) | members[np.maximum(pool_site, 0)])
            & members[pp.home[p.option_demand]])
    position = np.cumsum(keep) - 1
    columns = pp.grand_columns
    return position[columns[keep[columns]]]


def solve_coalition(pp: PeriodProblem, site_ids: Collection[str],
                    carbon_cap_kg: float | None = None) -> PeriodOutcome:
    """Plan coalition ``site_ids`` over the period (the fluid plan) and read off its value."""
    problem, job_index = coalition_problem(pp, site_ids, carbon_cap_kg)
    members = tuple(s for s in pp.site_ids if s in site_ids)
    if problem.n_demands == 0:  # a coalition of sites without jobs costs nothing
        return PeriodOutcome(members, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, SolveStatus.OPTIMAL, (), ())
    lp = allocation_lp_duals(problem, pp.settings.solver, _kept_columns(pp, site_ids))
    if not lp.status.has_solution:
        raise RuntimeError(f"coalition {sorted(site_ids)}: no plan ({lp.message})")
    x = lp.option_x
    parts = breakdown_usd(problem, x, lp.deferred_x)
    chosen = np.flatnonzero(x > FRACTION_TOLERANCE)
    to_cloud = is_cloud(pp, problem.option_resource[chosen])
    slot_h = pp.settings.slot_h
    placements = tuple(
        Placement(
            job=pp.jobs[job_index[problem.option_demand[o]]],
            fraction=float(x[o]),
            resource=int(problem.option_resource[o]),
            start_h=float(problem.option_start[o] * slot_h),
            gpu_hours=float(x[o] * problem.option_gpus[o] * problem.option_slots[o] * slot_h),
            energy_kwh=float(x[o] * problem.option_energy_kwh[o]),
            carbon_kg=float(x[o] * problem.option_carbon_kg[o]),
            energy_cost_usd=float(x[o] * problem.option_energy_cost_usd[o]),
            transfer_cost_usd=float(x[o] * problem.option_transfer_cost_usd[o]),
            delay_cost_usd=float(x[o] * problem.option_delay_cost_usd[o]),
        ) for o in chosen[~to_cloud])
    cloud = chosen[to_cloud]
    unserved = float(x[cloud].sum())
    return PeriodOutcome(
        site_ids=members,
        cost_usd=parts["energy_cost_usd"] + parts["carbon_cost_usd"]
        + parts["transfer_cost_usd"] + parts["delay_cost_usd"],
        carbon_kg=parts["carbon_kg"],
        federation_carbon_kg=parts["carbon_kg"]
        - float(x[cloud] @ problem.option_carbon_kg[cloud]),
        energy_kwh=parts["energy_kwh"],
        jobs_served=float(problem.n_demands) - unserved,
        jobs_unserved=unserved,
        status=lp.status,
        placements=placements,
        outside_jobs=tuple((pp.jobs[job_index[problem.option_demand[o]]].id, float(x[o]),
                            float(x[o] * problem.option_delay_cost_usd[o])) for o in cloud),
    )


def with_carbon_price(pp: PeriodProblem, carbon_price_usd_per_t: float) -> PeriodProblem:
    """The same problem at another carbon price (every option, the cloud's too, re-priced)."""
    problem = replace(pp.problem,
                      carbon_price_usd_per_kg=usd_per_t_to_usd_per_kg(carbon_price_usd_per_t))
    return replace(pp, problem=problem)
