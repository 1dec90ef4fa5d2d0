"""The fixed-step simulation loop: the same loop runs every policy.

Each round (a slot boundary): completions free GPUs, arrivals join the queue, sites advertise
offers for the horizon, the policy decides which jobs start now, and the meter records them.
Events sit on a heap keyed (time, priority, sequence) so ties resolve deterministically:
completions before arrivals at the same instant, then in insertion order.
"""

from __future__ import annotations

import dataclasses
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
from broker.jobs import InFlight, Job
from broker.metering import PIECE_COLUMNS, Meter
from broker.offers import RoundOffers
from broker.outside import OutsideOption, unserved_reasons
from broker.planner import Assignment
from broker.policies import Policy
from optimization import SolveStatus
from sites.timegrid import SLOT_EPS, slot_index, slots_until

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
    # one row per metered piece of a job (``broker.metering.PIECE_COLUMNS``): a job paused,
    # moved or resized has several
    pieces: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=PIECE_COLUMNS))

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


@dataclass
class _Flight:
    """A started job the loop may cut at a round boundary (a replanning policy's preemptible
    or elastic job): what it holds, and which completion event is its live one."""

    job: Job  # the job as submitted
    resource: int
    gpus: int
    held: list[tuple[int, int]]  # slot ranges [from, to) it holds its GPUs in
    run_start_h: float
    finish_h: float
    completion: int  # the sequence number of its live completion event


class _Loop:
    """The state of one run: queue, reservations, events and the meter."""

    def __init__(self, setup: SimulationSetup, policy: Policy) -> None:
        self.setup = setup
        self.policy = policy
        fed = setup.federation
        self.meter = Meter(fed, setup.slot_h, setup.carbon_g_per_kwh, setup.price_usd_per_mwh)
        n_slots = setup.carbon_g_per_kwh.shape[1]
        self.reserved = np.zeros((len(fed.resources), n_slots), dtype=int)  # GPUs held per slot
        self.by_id = {j.id: j for j in setup.jobs}
        self.seq = itertools.count()
        self.events: list[tuple[float, int, int, str]] = []
        for job in setup.jobs:
            heapq.heappush(self.events, (job.submit_h, ARRIVAL, next(self.seq), job.id))
        self.queue: list[Job] = []
        self.finished: set[str] = set()
        self.flights: dict[str, _Flight] = {}
        self.live_completion: dict[str, int] = {}

    def start(self, job: Job, a: Assignment, now_h: float) -> None:
        """Meter, reserve and schedule the completion of ``a`` (``job`` as queued)."""
        fed, slot_h = self.setup.federation, self.setup.slot_h
        resource = fed.resource_of(a.site_id, a.gpu_type)
        record = self.meter.record_run(job, resource, now_h, a.gpus, a.segments_h, a.boundary)
        held = []
        for from_h, to_h in a.segments_h or ((now_h, record.finish_h),):
            span = (slot_index(from_h, slot_h), slots_until(to_h, slot_h))
            self.reserved[resource, span[0]:span[1]] += a.gpus
            held.append(span)
        seq = next(self.seq)
        self.live_completion[job.id] = seq
        heapq.heappush(self.events, (record.finish_h, COMPLETION, seq, job.id))
        if self.policy.replans and job.replannable:
            piece = self.meter.live[job.id]
            self.flights[job.id] = _Flight(self.by_id[job.id], resource, a.gpus, held,
                                           piece.segments_h[0][0], record.finish_h, seq)

    def cut(self, flight: _Flight, k: int, now_h: float) -> Job:
        """Stop ``flight`` at round ``k``: its GPUs from there on are free again, its
        completion is void, and the rest of it comes back as a job with its state."""
        job = flight.job
        for a, b in flight.held:
            if b > k:
                self.reserved[flight.resource, max(a, k):b] -= flight.gpus
        del self.live_completion[job.id]
        done, computing, paused = self.meter.cut(job.id, now_h)
        site_i, gpu_type = self.setup.federation.resources[flight.resource]
        # a job that may not pause is never stopped: it goes on, or is resized, where it is
        computing = computing or not job.preemptible
        restart_h = job.restart_h(checkpoint_written=paused and not computing)
        return dataclasses.replace(
            job, work_steps=max(job.work_steps - done, job.work_steps * 1e-12),  # > 0 always
            state=InFlight(self.setup.federation.sites[site_i].id, gpu_type, flight.gpus,
                           computing, restart_h, done))

    def replan_running(self, k: int, now_h: float) -> None:
        """Running jobs the policy may pause, move or resize rejoin the queue as their rest."""
        eps_h = SLOT_EPS * self.setup.slot_h
        for job_id, flight in list(self.flights.items()):
            if flight.finish_h <= now_h + eps_h:
                del self.flights[job_id]  # done (its completion is due)
            elif flight.run_start_h <= now_h + eps_h:  # not while its data moves
                del self.flights[job_id]
                self.queue.append(self.cut(flight, k, now_h))

    def arrivals_and_completions(self, now_h: float) -> None:
        while self.events and self.events[0][0] <= now_h + 1e-9:
            self.pop()

    def pop(self) -> None:
        _, kind, seq, job_id = heapq.heappop(self.events)
        if kind == ARRIVAL:
            self.queue.append(self.by_id[job_id])
        elif self.live_completion.get(job_id) == seq:
            if job_id in self.finished:
                raise RuntimeError(f"job {job_id} finished twice")
            self.finished.add(job_id)


def run_simulation(
    setup: SimulationSetup,
    policy: Policy,
    policy_name: str,
    on_round: Callable[[int, int], None] | None = None,
) -> SimulationResult:
    fed = setup.federation
    loop = _Loop(setup, policy)
    total = fed.resource_total_gpus[:, None]
    stats = []

    for k in range(setup.n_rounds):
        now_h = k * setup.slot_h
        loop.arrivals_and_completions(now_h)
        loop.replan_running(k, now_h)
        started: Sequence[Assignment] = []
        decide_s = 0.0
        status = None
        wall_clock_hit = False
        if loop.queue:
            window = slice(k, k + setup.horizon_slots)
            carbon_forecast, price_forecast = setup.forecast.apply(
                k, setup.slot_h, setup.carbon_g_per_kwh[:, window],
                setup.price_usd_per_mwh[:, window])
            offers = RoundOffers(
                now_h=now_h,
                slot_h=setup.slot_h,
                free_gpus=np.maximum(total - loop.reserved[:, window], 0),
                price_usd_per_mwh=price_forecast,
                carbon_g_per_kwh=carbon_forecast,
            )
            clock = time.perf_counter()
            started = policy.decide(offers, list(loop.queue))
            decide_s = time.perf_counter() - clock
            solve = policy.last_solve()
            wall_clock_hit = policy.last_hit_wall_clock()
            if solve is not None:
                status, message = solve
                if status is not SolveStatus.OPTIMAL:
                    log.warning("%s round %d: solver %s%s", policy_name, k, status.value,
                                f" ({message})" if message else "")
            queued = {j.id: j for j in loop.queue}
            for a in started:
                loop.start(queued[a.job_id], a, now_h)
            started_ids = {a.job_id for a in started}
            unstoppable = [j.id for j in loop.queue
                           if j.id not in started_ids and j.state is not None
                           and not j.preemptible]
            if unstoppable:
                raise RuntimeError(f"{policy_name} round {k}: running jobs that may not "
                                   f"pause were left out: {', '.join(unstoppable)}")
            loop.queue = [pause(j) for j in loop.queue if j.id not in started_ids]
        stats.append(RoundStats(k, len(loop.queue) + len(started), len(started), decide_s,
                                status, wall_clock_hit))
        if on_round is not None:
            on_round(k + 1, setup.n_rounds)

    resume_paused(loop, setup.n_rounds * setup.slot_h)
    while loop.events:  # let every started job run to completion
        loop.pop()
    queue = loop.queue
    never_arrived = {j.id for j in setup.jobs} - loop.finished - {j.id for j in queue}
    left = sorted({j.id for j in queue} | never_arrived)
    left_jobs = [loop.by_id[i] for i in left]
    reasons = unserved_reasons(left_jobs, fed, policy.reachable(left_jobs))
    return SimulationResult(
        policy=policy_name,
        jobs=loop.meter.jobs_frame(),
        outside=setup.outside.serve(left_jobs, fed, reasons),
        site_slots=loop.meter.site_slots_frame(setup.n_rounds),
        rounds=tuple(stats),
        run_h=setup.run_h,
        total_gpus=int(fed.resource_total_gpus.sum()),
        pieces=loop.meter.pieces_frame(),
    )


def pause(job: Job) -> Job:
    """A job left in the queue: the rest of a running one no longer runs."""
    if job.state is None or not job.state.computing:
        return job
    return dataclasses.replace(job, state=dataclasses.replace(job.state, computing=False))


def resume_paused(loop: _Loop, end_h: float) -> None:
    """Jobs paused when the rounds end resume where they are, at once: like every started
    job, they finish after the run window (its capacity is no longer planned)."""
    for job in [j for j in loop.queue if j.state is not None]:
        state = job.state
        assert state is not None
        loop.start(job, Assignment(job.id, state.site_id, state.gpu_type, state.gpus, 0, end_h),
                   end_h)
    loop.queue = [j for j in loop.queue if j.state is None]


def check_conservation(setup: SimulationSetup, result: SimulationResult) -> Sequence[str]:
    """Every job either ran exactly once or is reported unfinished (returns the violations)."""
    ran = list(result.jobs["job_id"]) if len(result.jobs) else []
    problems = [f"{j} ran twice" for j in set(ran) if ran.count(j) > 1]
    accounted = set(ran) | set(result.unfinished)
    problems += [f"{j.id} unaccounted" for j in setup.jobs if j.id not in accounted]
    problems += [f"{j} both ran and unfinished" for j in set(ran) & set(result.unfinished)]
    return problems
