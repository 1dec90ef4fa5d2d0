"""Options: a job on a GPU pool with a GPU count and a start, built and priced in one place.

An option is (job j, pool r = a GPU type at a site, GPU count k, start slot t). Every consumer
builds its options here: the round planner and its greedy plan, the period plan (market), the
live broker's estimates, the baselines' slot counts and the meter's run times. The formulas:

    throughput   = the job's steps/s on k GPUs of r's type       (``sites.scaling``, measured)
    runtime_h    = work_steps / throughput / 3600                        (``sites.scaling``)
    transfer_h   = data set (GB) x 8 / link (Gbit/s) / 3600 when r is away from j's home, else 0
    occupy_h     = transfer_h + runtime_h       (the pool's GPUs are held from the start)
    slots        = max(1, slots_until(occupy_h))                     (``sites.timegrid``)
    energy_kwh   = k x board power x PUE x runtime_h                         (``sites.power``)
    energy_cost_usd, carbon_kg = energy_kwh x the mean price / carbon intensity of the pool's
                   site over the run [start_h + transfer_h, start_h + occupy_h) (``broker.costs``)
    delay_cost_usd = delay price x k x (start_h + occupy_h - reference), the reference being
                   now (a round) or the job's submission (the period plan)

Three steps, one function each: ``job_runs`` (what running a job on a pool takes, any start),
``at_starts`` (runs x start slots), ``price_options`` (cost parts from the signals). A run is
placed where the pool has a GPU type the job runs on (throughput > 0) in enough number.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from broker.costs import (
    cost_per_kwh_usd,
    delay_cost_usd,
    emissions_kg,
    energy_cost_usd,
    transfer_cost_usd,
)
from broker.federation import Federation
from broker.jobs import Job
from sites.scaling import runtime_h
from sites.timegrid import (
    slot_index,
    slot_overlaps,
    slots_until,
    start_grid_means,
    window_means,
)

# A completion this close after a deadline (hours) still meets it: sums of hours carry noise.
DEADLINE_TOLERANCE_H = 1e-9


def meets_deadline(finish_h: np.ndarray | float, deadline_h: np.ndarray | float | None) -> bool:
    """Whether work finishing at ``finish_h`` meets ``deadline_h`` (None: no deadline)."""
    if deadline_h is None:
        return True
    return bool(np.all(np.asarray(finish_h) <= np.asarray(deadline_h) + DEADLINE_TOLERANCE_H))


@dataclass(frozen=True)
class Runs:
    """What running job ``job[i]`` on pool ``resource[i]`` takes, whenever it starts.

    ``job`` indexes the job sequence the runs were built for. For the rest of a job that
    already ran (``Job.state``), ``runtime_h`` holds its restart's ``overhead_h`` first, and
    a ``boundary`` run is the one that goes on at the round boundary where it runs now (no
    restart; an elastic resize's overhead when the count changes): it exists at start 0 only.
    """

    job: np.ndarray
    resource: np.ndarray
    site: np.ndarray  # site index of the pool
    gpus: np.ndarray
    gpu_steps_per_s: np.ndarray  # one GPU's rate (the affinity matrix)
    steps_per_s: np.ndarray  # the job's throughput on its ``gpus`` GPUs
    runtime_h: np.ndarray  # busy hours: overhead_h, then the work
    overhead_h: np.ndarray  # busy hours of restart or resize before the work goes on
    boundary: np.ndarray  # goes on at the round boundary where it runs (start 0 only)
    transfer_h: np.ndarray
    transfer_cost_usd: np.ndarray
    transferred_gb: np.ndarray
    energy_kwh: np.ndarray

    def __len__(self) -> int:
        return len(self.job)

    @property
    def occupy_h(self) -> np.ndarray:
        """Hours the pool's GPUs are held: the data transfer first, then the run."""
        return self.transfer_h + self.runtime_h

    def take(self, index: np.ndarray) -> Runs:
        """The runs at ``index`` (every array taken alike)."""
        return Runs(**{f.name: getattr(self, f.name)[index] for f in dataclasses.fields(self)})


def _moves(federation: Federation, jobs: Sequence[Job], job: np.ndarray,
           site: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gigabytes shipped to run each (job, site) pair, and what shipping them costs.

    A job that has not run ships its data set from home to any other site. The rest of a job
    that ran ships its checkpoint from where its state is, and its data set from home too when
    the new site is neither home nor where it ran.
    """
    egress = np.array([s.egress_usd_per_gb for s in federation.sites])
    home_of = np.array([federation.site_index[j.home_site] for j in jobs], dtype=int)
    state_at = np.array([federation.site_index[j.state.site_id] if j.state is not None
                         else federation.site_index[j.home_site] for j in jobs], dtype=int)
    home, at = home_of[job], state_at[job]
    dataset_gb = np.array([j.dataset_gb for j in jobs], dtype=float)[job]
    checkpoint_gb = np.array([0.0 if j.state is None else j.checkpoint_gb for j in jobs],
                             dtype=float)[job]
    moved = site != at
    data_gb = np.where(moved & (site != home), dataset_gb, 0.0)
    state_gb = np.where(moved, checkpoint_gb, 0.0)
    cost = (transfer_cost_usd(data_gb, egress[home])
            + transfer_cost_usd(state_gb, egress[at]))
    return data_gb + state_gb, cost


def _overheads(jobs: Sequence[Job], job: np.ndarray, gpus: np.ndarray,
               boundary: np.ndarray) -> np.ndarray:
    """Busy hours before the work goes on: 0 for a job that has not run, its state's
    ``restart_h`` for a restart, and at the boundary where it runs, 0 on as many GPUs or its
    ``resize_overhead_h`` on another count."""
    overhead = np.zeros(len(job))
    ran = np.array([j.state is not None for j in jobs], dtype=bool)
    for i in np.flatnonzero(ran[job]) if len(jobs) else ():
        j = jobs[job[i]]
        assert j.state is not None
        if not boundary[i]:
            overhead[i] = j.state.restart_h
        elif gpus[i] != j.state.gpus:
            overhead[i] = j.resize_overhead_h
    return overhead


def runs_on(federation: Federation, jobs: Sequence[Job], job: np.ndarray,
            resource: np.ndarray, gpus: np.ndarray | None = None,
            boundary: np.ndarray | None = None) -> Runs:
    """The runs of the given (job index, pool) pairs (``job_runs`` picks the pairs), on
    ``gpus`` GPUs each (default: each job's own count); ``boundary`` marks the runs that go
    on where the job runs now (``Runs``)."""
    job, resource = np.asarray(job, dtype=int), np.asarray(resource, dtype=int)
    rate = federation.steps_per_s(list(jobs))[job, resource]
    if gpus is None:
        gpus = np.array([j.gpus for j in jobs], dtype=int)[job]
    gpus = np.asarray(gpus, dtype=int)
    boundary = (np.zeros(len(job), dtype=bool) if boundary is None
                else np.asarray(boundary, dtype=bool))
    # one throughput row per (job, count) of the pairs, read at each pair's pool
    pair_key = job * (int(gpus.max(initial=0)) + 1) + gpus
    keys, row_of_pair = np.unique(pair_key, return_inverse=True)
    first = np.zeros(len(keys), dtype=int)
    first[row_of_pair] = np.arange(len(pair_key))
    rows = np.array([federation.throughput_row(jobs[job[i]].job_type, jobs[job[i]].gpu_types,
                                               int(gpus[i])) for i in first])
    steps_per_s = (rows[row_of_pair.reshape(-1), resource] if len(pair_key)
                   else np.zeros(0))
    work = np.array([j.work_steps for j in jobs], dtype=float)[job]
    site = federation.resource_site[resource]
    overhead = _overheads(jobs, job, gpus, boundary)
    hours = runtime_h(work, steps_per_s) + overhead
    gb, transfer_usd = _moves(federation, jobs, job, site)
    return Runs(
        job=job, resource=resource, site=site, gpus=gpus, gpu_steps_per_s=rate,
        steps_per_s=steps_per_s, runtime_h=hours, overhead_h=overhead, boundary=boundary,
        transfer_h=np.asarray(federation.transfer_h(gb), dtype=float),
        transfer_cost_usd=transfer_usd, transferred_gb=gb,
        energy_kwh=federation.run_energy_kwh(gpus, resource, hours),
    )


def _boundary_pairs(federation: Federation, jobs: Sequence[Job]) -> list[tuple[int, int, int]]:
    """(job, count, pool) of the runs that go on where a running job runs now, at each count
    it may run on (one unless it is elastic)."""
    pairs = []
    for i, j in enumerate(jobs):
        if j.state is not None and j.state.computing:
            r = federation.resource_of(j.state.site_id, j.state.gpu_type)
            pairs += [(i, k, r) for k in j.gpu_counts
                      if k <= federation.resource_total_gpus[r]]
    return pairs


def job_runs(federation: Federation, jobs: Sequence[Job]) -> Runs:
    """Every (job, GPU count, pool) where the job can run: a GPU type it runs on (throughput >
    0) in enough number, at each count it may run on (``Job.gpu_counts``); in job, then count,
    then pool order. A running job that may not be paused has only its boundary runs
    (``Runs``); one that may has both, its restarts after."""
    runs_on_type = federation.steps_per_s(list(jobs)) > 0
    restartable = np.array([j.state is None or j.preemptible for j in jobs], dtype=bool)
    total = federation.resource_total_gpus
    parts = []
    for count in sorted({k for j in jobs for k in j.gpu_counts}):
        asks = np.array([count in j.gpu_counts for j in jobs], dtype=bool) & restartable
        job, resource = np.nonzero(runs_on_type & asks[:, None] & (total[None, :] >= count))
        parts.append((job, np.full(len(job), count), resource, np.zeros(len(job), dtype=bool)))
    boundary = _boundary_pairs(federation, jobs)
    if boundary:
        b_job, b_gpus, b_resource = (np.array(a, dtype=int) for a in zip(*boundary, strict=True))
        parts.append((b_job, b_gpus, b_resource, np.ones(len(b_job), dtype=bool)))
    if not parts:
        empty = np.zeros(0, dtype=int)
        return runs_on(federation, jobs, empty, empty, empty)
    job, gpus, resource, at_boundary = (np.concatenate(a) for a in zip(*parts, strict=True))
    if len(parts) == 1:  # one count, no boundary run: np.nonzero's order already
        return runs_on(federation, jobs, job, resource, gpus, at_boundary)
    order = np.lexsort((resource, gpus, ~at_boundary, job))
    return runs_on(federation, jobs, job[order], resource[order], gpus[order],
                   at_boundary[order])


def run_of(federation: Federation, job: Job, resource: int, gpus: int | None = None,
           boundary: bool = False) -> Runs:
    """The one run of ``job`` on ``gpus`` GPUs (default: its own count) of pool ``resource``
    (the meter's and the live broker's view); ``boundary``: it goes on where it runs now."""
    count = None if gpus is None else np.array([gpus], dtype=int)
    return runs_on(federation, [job], np.zeros(1, dtype=int), np.array([resource]), count,
                   np.array([boundary]))


@dataclass(frozen=True)
class Options:
    """Runs at start slots: option ``o`` is run ``run[o]`` starting in slot ``start[o]``.

    ``start_h`` is on the time frame of the signals the options are priced with (a round's:
    hours from now; the period plan's: hours from the start of the run).
    """

    base: Runs  # the runs the options start (``run`` indexes them)
    run: np.ndarray
    start: np.ndarray
    start_h: np.ndarray
    slot_h: float

    def __len__(self) -> int:
        return len(self.start)

    @cached_property
    def runs(self) -> Runs:
        """One run per option: laid out once, when first asked for (filters such as
        ``deadline_options`` work on ``base`` and do not need it)."""
        return self.base.take(self.run)

    @property
    def job(self) -> np.ndarray:
        return self.base.job[self.run]

    @property
    def completion_h(self) -> np.ndarray:
        return self.start_h + self.base.occupy_h[self.run]

    @property
    def slots(self) -> np.ndarray:
        """Slots each option holds its GPUs in, from its start (at least one)."""
        return np.maximum(slots_until(self.base.occupy_h[self.run], self.slot_h), 1)

    def take(self, index: np.ndarray) -> Options:
        return Options(self.base, self.run[index], self.start[index], self.start_h[index],
                       self.slot_h)


def at_starts(runs: Runs, starts: np.ndarray, slot_h: float) -> Options:
    """Each run at each of its start slots: ``starts`` is (runs, k), or k slots for all runs.

    Options come run by run, each run's starts in the order given.
    """
    starts = np.asarray(starts, dtype=int)
    if starts.ndim == 1:
        starts = np.broadcast_to(starts, (len(runs), len(starts)))
    per_run = starts.shape[1] if starts.ndim == 2 else 0
    run = np.repeat(np.arange(len(runs)), per_run)
    start = starts.reshape(-1)
    return Options(runs, run, start, start * slot_h, slot_h)


def deadline_options(options: Options, jobs: Sequence[Job], origin_h: float,
                     met_elsewhere: np.ndarray | None = None) -> np.ndarray:
    """Which options to keep for deadlines: those that meet their job's deadline, and every
    option of a job none of whose options can (it will be late wherever it runs).

    ``origin_h``: the time of the options' frame origin (a round's now); ``met_elsewhere``:
    jobs whose deadline other options (interrupted runs) meet.
    """
    deadline = np.array([np.inf if j.deadline_h is None else j.deadline_h for j in jobs])
    meets = origin_h + options.completion_h <= deadline[options.job] + DEADLINE_TOLERANCE_H
    any_meets = (np.zeros(len(jobs), dtype=bool) if met_elsewhere is None
                 else np.asarray(met_elsewhere, dtype=bool).copy())
    np.logical_or.at(any_meets, options.job, meets)
    return meets | ~any_meets[options.job]


@dataclass(frozen=True)
class PricedOptions:
    """Options with their cost parts for one job each (``AllocationProblem``'s columns)."""

    options: Options
    energy_cost_usd: np.ndarray
    carbon_kg: np.ndarray
    delay_cost_usd: np.ndarray

    def problem_columns(self, held_slots: np.ndarray | None = None,
                        held_gpus: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The ``option_*`` arrays of ``optimization.AllocationProblem`` (demand = job index).

        ``held_slots``/``held_gpus`` replace the options' own (a horizon's clipping, the period
        plan's fluid capacity).
        """
        o = self.options
        base, run = o.base, o.run  # only the run values the problem needs, per option
        return {
            "option_demand": base.job[run],
            "option_resource": base.resource[run],
            "option_start": o.start,
            "option_slots": o.slots if held_slots is None else held_slots,
            "option_gpus": base.gpus[run] if held_gpus is None else held_gpus,
            "option_energy_kwh": base.energy_kwh[run],
            "option_energy_cost_usd": self.energy_cost_usd,
            "option_carbon_kg": self.carbon_kg,
            "option_transfer_cost_usd": base.transfer_cost_usd[run],
            "option_delay_cost_usd": self.delay_cost_usd,
        }


def price_options(options: Options, price_usd_per_mwh: np.ndarray,
                  carbon_g_per_kwh: np.ndarray, signal_slot_h: float,
                  delay_from_h: np.ndarray | float,
                  delay_cost_usd_per_gpu_h: float) -> PricedOptions:
    """Energy cost and emissions over each option's run from the signals (rows: sites, slots
    of ``signal_slot_h`` on the options' frame), and its delay cost from ``delay_from_h`` (per
    job, or one time for all) to its completion."""
    base, run = options.base, options.run  # per-run values, read per option once each
    run_from = options.start_h + base.transfer_h[run]
    run_to = options.completion_h
    price, carbon = window_means((price_usd_per_mwh, carbon_g_per_kwh), base.site[run],
                                 run_from, run_to, signal_slot_h)
    energy_kwh = base.energy_kwh[run]
    reference = (np.asarray(delay_from_h, dtype=float)[base.job[run]]
                 if np.ndim(delay_from_h) else float(delay_from_h))
    return PricedOptions(
        options=options,
        energy_cost_usd=energy_cost_usd(energy_kwh, price),
        carbon_kg=emissions_kg(energy_kwh, carbon),
        delay_cost_usd=delay_cost_usd(base.gpus[run], run_to - reference,
                                      delay_cost_usd_per_gpu_h),
    )


@dataclass(frozen=True)
class PricedGrid:
    """Every run at every start slot of a grid, as (runs, starts) tables: entry [i, s] is
    option (run i, ``starts[s]``), listed or not. ``cost_usd``: its objective coefficient,
    what ``price_options`` and ``PricedOptions.problem_columns`` make of it (energy, carbon at
    its price, transfer, delay: ``optimization.AllocationProblem.option_cost_usd``);
    ``carbon_kg``: its emissions, when asked for."""

    cost_usd: np.ndarray
    carbon_kg: np.ndarray | None


def price_start_grid(runs: Runs, starts: np.ndarray, price_usd_per_mwh: np.ndarray,
                     carbon_g_per_kwh: np.ndarray, slot_h: float, carbon_price_usd_per_t: float,
                     delay_cost_usd_per_gpu_h: float, with_carbon: bool = False) -> PricedGrid:
    """``price_options`` of ``at_starts(runs, starts, slot_h)`` on a round's frame (delay
    from now), without listing the options: one mean per entry, of the cost of a kWh with
    carbon priced in (``cost_per_kwh_usd``: the mean of a sum is the sum of the means), where
    the parts take two (``start_grid_means``)."""
    starts = np.asarray(starts, dtype=np.int64)
    kwh_usd = cost_per_kwh_usd(price_usd_per_mwh, carbon_g_per_kwh, carbon_price_usd_per_t)
    (cost,) = start_grid_means((kwh_usd,), runs.site, runs.transfer_h, runs.occupy_h, starts,
                               slot_h)
    cost *= runs.energy_kwh[:, None]
    cost += runs.transfer_cost_usd[:, None]
    completion_h = starts[None, :] * slot_h + runs.occupy_h[:, None]
    cost += delay_cost_usd(runs.gpus[:, None], completion_h, delay_cost_usd_per_gpu_h)
    carbon = None
    if with_carbon:
        (mean,) = start_grid_means((carbon_g_per_kwh,), runs.site, runs.transfer_h,
                                   runs.occupy_h, starts, slot_h)
        carbon = emissions_kg(runs.energy_kwh[:, None], mean)
    return PricedGrid(cost, carbon)


# --- interrupted runs (preemptible jobs) ---------------------------------------------------

@dataclass(frozen=True)
class Schedule:
    """An interrupted run on one pool: busy intervals ``[from, to)`` in hours on the slots'
    frame, overheads included (a checkpoint written at the end of every segment but the last,
    read back at the start of every segment but the first)."""

    segments_h: tuple[tuple[float, float], ...]
    overhead_h: float  # checkpoint time in all (busy GPUs, no work)

    @property
    def finish_h(self) -> float:
        return self.segments_h[-1][1]

    @property
    def busy_h(self) -> float:
        return sum(b - a for a, b in self.segments_h)


class SlotRanking:
    """The first ``usable`` slots of a cost series, cheapest first (a stable sort), and for any
    m the m cheapest of them as runs of consecutive slots, kept once found: a round prices
    thousands of runs on the same site's signals, and they ask for the same m."""

    def __init__(self, slot_cost: np.ndarray, usable_slots: int) -> None:
        usable = max(0, min(usable_slots, len(slot_cost)))  # none when the deadline passed
        self.order = np.argsort(np.asarray(slot_cost[:usable], dtype=float), kind="stable")
        self._runs: dict[int, tuple[tuple[int, int], ...]] = {}

    def __len__(self) -> int:
        return len(self.order)

    def runs(self, m: int) -> tuple[tuple[int, int], ...]:
        """(first slot, last slot) of each run of the m cheapest slots, in time order."""
        if m not in self._runs:
            chosen = np.sort(self.order[:m])
            breaks = np.flatnonzero(np.diff(chosen) > 1) + 1
            self._runs[m] = tuple((int(r[0]), int(r[-1])) for r in np.split(chosen, breaks))
        return self._runs[m]


def cheapest_schedule(slot_cost: np.ndarray | SlotRanking, runtime_h: float,
                      overhead_h: float, slot_h: float, usable_slots: int) -> Schedule | None:
    """The cheapest whole slots among the first ``usable_slots`` that hold a run of
    ``runtime_h`` hours of work, pausing in between (the interrupting strategy of "Let's Wait
    Awhile", Wiesner et al., Middleware 2021).

    Takes the m cheapest slots, m from ceil(runtime / slot) up, until they hold the work plus
    the overhead of their segments (2 x checkpoint_overhead_h per pause): exactly the cheapest
    set when there is no overhead; the last segment ends when the work is done. None when no
    set fits. ``slot_cost`` may come ranked already (a ``SlotRanking`` of its usable slots,
    which the caller keeps per series).
    """
    ranking = (slot_cost if isinstance(slot_cost, SlotRanking)
               else SlotRanking(slot_cost, usable_slots))
    for m in range(max(1, slots_until(runtime_h, slot_h)), len(ranking) + 1):
        runs = ranking.runs(m)
        overhead = 2.0 * overhead_h * (len(runs) - 1)
        if m * slot_h + 1e-9 < runtime_h + overhead:
            continue
        segments, left = [], runtime_h
        for i, (first, last) in enumerate(runs):
            start, end = first * slot_h, (last + 1) * slot_h
            restore = overhead_h if i > 0 else 0.0
            if i == len(runs) - 1:
                end = start + restore + left
            else:
                left -= end - start - restore - overhead_h
            segments.append((float(start), float(end)))
        if left < -1e-9 or any(b <= a for a, b in segments):
            continue  # a segment too short to hold its own overheads
        return Schedule(tuple(segments), overhead)
    return None


def schedule_busy_per_slot(schedule: Schedule, slot_h: float, n_slots: int) -> np.ndarray:
    """Busy hours of the schedule in each of ``n_slots`` slots."""
    busy = np.zeros(n_slots)
    for a, b in schedule.segments_h:
        slots, hours = slot_overlaps(a, b, slot_h)
        inside = slots < n_slots
        np.add.at(busy, slots[inside], hours[inside])
    return busy


@dataclass(frozen=True)
class InterruptedOptions:
    """Interrupted runs of preemptible jobs, one per run that has one (``interrupted_options``):
    ``AllocationProblem`` columns and each option's schedule (hours from the round's start).

    An option holds its pool over its whole span, gaps included: the round's capacity rows are
    contiguous, so this is conservative (the plan stays feasible; the gaps stay free for later
    rounds, which plan again).
    """

    columns: dict[str, np.ndarray]
    schedules: tuple[Schedule, ...]
    meets_deadline: np.ndarray  # per job: some interrupted option meets its deadline

    def __len__(self) -> int:
        return len(self.schedules)


@dataclass(frozen=True)
class PricedSchedule:
    """A run's interrupted schedule (hours from the signal rows' start) and what it costs."""

    schedule: Schedule
    first_slot: int  # the slot of its first segment
    energy_kwh: float
    energy_cost_usd: float
    carbon_kg: float


def price_schedule(runs: Runs, i: int, checkpoint_overhead_h: float,
                   price_usd_per_mwh: np.ndarray, carbon_g_per_kwh: np.ndarray, slot_h: float,
                   usable_slots: int, carbon_price_usd_per_t: float,
                   ranking: SlotRanking | None = None) -> PricedSchedule | None:
    """Run ``i``'s cheapest schedule over one site's signal rows (slots of ``slot_h`` from
    their start; ``cheapest_schedule`` on the cost of a kWh with carbon priced in), its energy
    and emissions slot by slot, the overheads at full draw; None when no schedule fits or the
    best one does not pause (that is a contiguous option). ``ranking``: those slots ranked
    (``kwh_ranking``), when the caller keeps one per site and usable slots."""
    if ranking is None:
        ranking = kwh_ranking(price_usd_per_mwh, carbon_g_per_kwh, carbon_price_usd_per_t,
                              usable_slots)
    schedule = cheapest_schedule(ranking, float(runs.runtime_h[i]), checkpoint_overhead_h,
                                 slot_h, usable_slots)
    if schedule is None or len(schedule.segments_h) < 2:
        return None
    busy = schedule_busy_per_slot(schedule, slot_h, len(price_usd_per_mwh))
    kwh = busy * float(runs.energy_kwh[i] / runs.runtime_h[i])  # same draw in overheads
    return PricedSchedule(schedule, slot_index(schedule.segments_h[0][0], slot_h),
                          float(kwh.sum()), float(energy_cost_usd(kwh, price_usd_per_mwh).sum()),
                          float(emissions_kg(kwh, carbon_g_per_kwh).sum()))


def kwh_ranking(price_usd_per_mwh: np.ndarray, carbon_g_per_kwh: np.ndarray,
                carbon_price_usd_per_t: float, usable_slots: int) -> SlotRanking:
    """A site's first ``usable_slots`` slots ranked by the cost of a kWh, carbon priced in."""
    return SlotRanking(cost_per_kwh_usd(price_usd_per_mwh, carbon_g_per_kwh,
                                        carbon_price_usd_per_t), usable_slots)


def interruptible(runs: Runs, jobs: Sequence[Job]) -> np.ndarray:
    """The runs that may be interrupted (indices): a preemptible job that runs there and needs
    no data moved first (moving a paused job's checkpoint is not modelled yet). Vectorised:
    every round asks, and most rounds have no preemptible job."""
    preemptible = np.array([j.preemptible for j in jobs], dtype=bool)
    if not preemptible.any():
        return np.zeros(0, dtype=int)
    return np.flatnonzero(preemptible[runs.job] & (runs.transfer_h <= 0) & ~runs.boundary
                          & (runs.runtime_h < np.inf))


OPTION_COLUMNS = ("option_demand", "option_resource", "option_start", "option_slots",
                  "option_gpus", "option_energy_kwh", "option_energy_cost_usd",
                  "option_carbon_kg", "option_transfer_cost_usd", "option_delay_cost_usd")
_INT_COLUMNS = ("option_demand", "option_resource", "option_start", "option_slots")


def option_columns(rows: dict[str, list]) -> dict[str, np.ndarray]:
    """Rows gathered option by option -> ``AllocationProblem`` columns."""
    return {name: np.array(rows[name], dtype=int if name in _INT_COLUMNS else float)
            for name in OPTION_COLUMNS}


def interrupted_options(runs: Runs, jobs: Sequence[Job], price_usd_per_mwh: np.ndarray,
                        carbon_g_per_kwh: np.ndarray, slot_h: float, origin_h: float,
                        carbon_price_usd_per_t: float,
                        delay_cost_usd_per_gpu_h: float) -> InterruptedOptions:
    """For each interruptible run (``interruptible``), its cheapest schedule over the round's
    signals (``price_schedule``) when it pauses at least once and meets the job's deadline."""
    n_slots = price_usd_per_mwh.shape[1]
    rows: dict[str, list] = {name: [] for name in OPTION_COLUMNS}
    schedules: list[Schedule] = []
    met = np.zeros(len(jobs), dtype=bool)
    rankings: dict[tuple[int, int], SlotRanking] = {}  # per (site, usable slots)
    for i in interruptible(runs, jobs):
        job, site = jobs[runs.job[i]], int(runs.site[i])
        usable = n_slots if job.deadline_h is None else min(
            n_slots, slots_until(job.deadline_h - origin_h, slot_h))
        if (site, usable) not in rankings:
            rankings[site, usable] = kwh_ranking(price_usd_per_mwh[site], carbon_g_per_kwh[site],
                                                 carbon_price_usd_per_t, usable)
        priced = price_schedule(runs, i, job.checkpoint_overhead_h, price_usd_per_mwh[site],
                                carbon_g_per_kwh[site], slot_h, usable, carbon_price_usd_per_t,
                                rankings[site, usable])
        if priced is None or not meets_deadline(origin_h + priced.schedule.finish_h,
                                                job.deadline_h):
            continue
        finish = priced.schedule.finish_h
        rows["option_demand"].append(runs.job[i])
        rows["option_resource"].append(runs.resource[i])
        rows["option_start"].append(priced.first_slot)
        rows["option_slots"].append(min(slots_until(finish, slot_h), n_slots) - priced.first_slot)
        rows["option_gpus"].append(runs.gpus[i])
        rows["option_energy_kwh"].append(priced.energy_kwh)
        rows["option_energy_cost_usd"].append(priced.energy_cost_usd)
        rows["option_carbon_kg"].append(priced.carbon_kg)
        rows["option_transfer_cost_usd"].append(float(runs.transfer_cost_usd[i]))
        rows["option_delay_cost_usd"].append(float(delay_cost_usd(
            runs.gpus[i], finish, delay_cost_usd_per_gpu_h)))
        schedules.append(priced.schedule)
        met[runs.job[i]] |= job.deadline_h is not None
    return InterruptedOptions(option_columns(rows), tuple(schedules), met)
