"""The fixed-step simulation loop: the same loop runs every policy.

Each round (a slot boundary): completions free GPUs, arrivals join the queue, sites advertise
offers for the horizon, the policy decides which jobs start now, and the meter records them.
Events sit on a heap keyed (time, priority, sequence) so ties resolve deterministically:
completions before arrivals at the same instant, then in insertion order.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from broker.federation import Federation
from broker.forecast import ForecastNoise
from broker.jobs import Job
from broker.metering import Meter
from broker.offers import RoundOffers
from broker.outside import OutsideOption, unserved_reasons
from broker.planner import Assignment
from broker.policies import Policy
from optimization import SolveStatus
from sites.timegrid import slot_index, slots_until

COMPLETION, ARRIVAL = 0, 1
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SimulationSetup:
    """Everything a run needs besides the policy.

    ``carbon_g_per_kwh`` and ``price_usd_per_mwh`` are the actual per-slot signals, shape
    (sites, slots), long enough for the period, the drain, a horizon and the longest job.
    The meter always uses them; the offers the policies plan on carry ``forecast``'s error
    (none by default). Jobs a policy has not started when the run ends (period plus drain)
    are served by ``outside``.
    """

    federation: Federation
    jobs: tuple[Job, ...]
    carbon_g_per_kwh: np.ndarray
    price_usd_per_mwh: np.ndarray
    slot_h: float
    period_slots: int
    drain_slots: int
    horizon_slots: int
    forecast: ForecastNoise = field(default_factory=ForecastNoise)
    outside: OutsideOption = field(default_factory=OutsideOption)

    @property
    def n_rounds(self) -> int:
        return self.period_slots + self.drain_slots

    @property
    def run_h(self) -> float:
        """The run window [0, period + drain): rounds, idle metering and utilisation."""
        return self.n_rounds * self.slot_h


@dataclass(frozen=True)
class RoundStats:
    round: int
    queued: int
    started: int
    decide_time_s: float
    status: SolveStatus | None = None  # None: the policy solved nothing this round
    # the solver's wall-clock safety net stopped this round: its plan depends on the load
    wall_clock_hit: bool = False


@dataclass(frozen=True)
class SimulationResult:
    policy: str
    jobs: pd.DataFrame  # one row per job the federation ran
    outside: pd.DataFrame  # one row per job the outside option served (``OUTSIDE_COLUMNS``)
    site_slots: pd.DataFrame  # one row per site and slot of the whole run
    rounds: tuple[RoundStats, ...]
    run_h: float  # the run window [0, period + drain)
    total_gpus: int

    @property
    def unfinished(self) -> tuple[str, ...]:
        """Jobs the federation never started (the outside option served them)."""
        return tuple(self.outside["job_id"])

    def status_counts(self) -> dict[SolveStatus, int]:
        """Solved rounds by solver status (rounds with an empty queue solve nothing)."""
        counts: dict[SolveStatus, int] = {}
        for r in self.rounds:
            if r.status is not None:
                counts[r.status] = counts.get(r.status, 0) + 1
        return counts

    @property
    def wall_clock_rounds(self) -> int:
        """Rounds the solver's wall-clock safety net stopped (``optimization.SolverOptions``)."""
        return sum(r.wall_clock_hit for r in self.rounds)


def run_simulation(
    setup: SimulationSetup,
    policy: Policy,
    policy_name: str,
    on_round: Callable[[int, int], None] | None = None,
) -> SimulationResult:
    fed = setup.federation
    meter = Meter(fed, setup.slot_h, setup.carbon_g_per_kwh, setup.price_usd_per_mwh)
    n_slots = setup.carbon_g_per_kwh.shape[1]
    reserved = np.zeros((len(fed.resources), n_slots), dtype=int)  # GPUs held per slot
    total = fed.resource_total_gpus[:, None]
    by_id = {j.id: j for j in setup.jobs}

    seq = itertools.count()
    events: list[tuple[float, int, int, str]] = []
    for job in setup.jobs:
        heapq.heappush(events, (job.submit_h, ARRIVAL, next(seq), job.id))
    queue: list[Job] = []
    finished: set[str] = set()
    stats = []

    for k in range(setup.n_rounds):
        now_h = k * setup.slot_h
        while events and events[0][0] <= now_h + 1e-9:
            _, kind, _, job_id = heapq.heappop(events)
            if kind == ARRIVAL:
                queue.append(by_id[job_id])
            else:
                if job_id in finished:
                    raise RuntimeError(f"job {job_id} finished twice")
                finished.add(job_id)
        started: Sequence[Assignment] = []
        decide_s = 0.0
        status = None
        wall_clock_hit = False
        if queue:
            window = slice(k, k + setup.horizon_slots)
            carbon_forecast, price_forecast = setup.forecast.apply(
                k, setup.slot_h, setup.carbon_g_per_kwh[:, window],
                setup.price_usd_per_mwh[:, window])
            offers = RoundOffers(
                now_h=now_h,
                slot_h=setup.slot_h,
                free_gpus=np.maximum(total - reserved[:, window], 0),
                price_usd_per_mwh=price_forecast,
                carbon_g_per_kwh=carbon_forecast,
            )
            clock = time.perf_counter()
            started = policy.decide(offers, list(queue))
            decide_s = time.perf_counter() - clock
            solve = policy.last_solve()
            wall_clock_hit = policy.last_hit_wall_clock()
            if solve is not None:
                status, message = solve
                if status is not SolveStatus.OPTIMAL:
                    log.warning("%s round %d: solver %s%s", policy_name, k, status.value,
                                f" ({message})" if message else "")
            started_ids = {a.job_id for a in started}
            for a in started:
                job = by_id[a.job_id]
                resource = fed.resource_of(a.site_id, a.gpu_type)
                record = meter.record_run(job, resource, now_h, a.gpus, a.segments_h)
                for from_h, to_h in a.segments_h or ((now_h, record.finish_h),):
                    held = slice(slot_index(from_h, setup.slot_h),
                                 slots_until(to_h, setup.slot_h))
                    reserved[resource, held] += a.gpus
                heapq.heappush(events, (record.finish_h, COMPLETION, next(seq), job.id))
            queue = [j for j in queue if j.id not in started_ids]
        stats.append(RoundStats(k, len(queue) + len(started), len(started), decide_s, status,
                                wall_clock_hit))
        if on_round is not None:
            on_round(k + 1, setup.n_rounds)

    while events:  # let every started job run to completion
        _, kind, _, job_id = heapq.heappop(events)
        if kind == COMPLETION:
            if job_id in finished:
                raise RuntimeError(f"job {job_id} finished twice")
            finished.add(job_id)
    never_arrived = {j.id for j in setup.jobs} - finished - {j.id for j in queue}
    left = sorted({j.id for j in queue} | never_arrived)
    left_jobs = [by_id[i] for i in left]
    reasons = unserved_reasons(left_jobs, fed, policy.reachable(left_jobs))
    return SimulationResult(
        policy=policy_name,
        jobs=meter.jobs_frame(),
        outside=setup.outside.serve(left_jobs, fed, reasons),
        site_slots=meter.site_slots_frame(setup.n_rounds),
        rounds=tuple(stats),
        run_h=setup.run_h,
        total_gpus=int(fed.resource_total_gpus.sum()),
    )


def check_conservation(setup: SimulationSetup, result: SimulationResult) -> Sequence[str]:
    """Every job either ran exactly once or is reported unfinished (returns the violations)."""
    ran = list(result.jobs["job_id"]) if len(result.jobs) else []
    problems = [f"{j} ran twice" for j in set(ran) if ran.count(j) > 1]
    accounted = set(ran) | set(result.unfinished)
    problems += [f"{j.id} unaccounted" for j in setup.jobs if j.id not in accounted]
    problems += [f"{j} both ran and unfinished" for j in set(ran) & set(result.unfinished)]
    return problems
