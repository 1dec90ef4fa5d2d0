"""A round too big to list its options: the same round as ``build_round_problem``, held as an
``optimization.option_grid.OptionGrid`` (runs x start slots, costs in one table).

Everything is priced by the functions that price a listed round: the runs (``job_runs``), the
deadline test (``deadline_options``' comparison, entry by entry), the costs
(``price_start_grid``, the grid form of ``price_options``), the lateness and deferral prices
(``waiting_prices``) and the must-run penalties. Listing an option of the grid
(``RoundGrid.lister``) prices it with ``price_options`` itself, so the plan's options carry
exactly the costs an enumerated round would give them.

``waiting_prices`` reads, per demand, its cheapest and dearest option and, for a demand that
can meet its deadline nowhere, every option's lateness. A demand that can meet it is handed
only its cheapest and dearest options (lateness 0 on every kept option): the same prices from
two options, where listing them all would take the memory this module exists to save.

Interrupted runs of preemptible jobs (``interrupted_options``) are not held: at this scale a
preemptible job runs contiguously, as any other (its schedule is found run by run in Python,
minutes at 6M runs).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from broker.costs import waiting_prices
from broker.demands import group_identical_jobs, must_run_penalties
from broker.federation import Federation
from broker.jobs import Job
from broker.offers import RoundOffers
from broker.options import (
    DEADLINE_TOLERANCE_H,
    OPTION_COLUMNS,
    Options,
    Runs,
    job_runs,
    option_columns,
    price_options,
    price_start_grid,
)
from optimization import AllocationProblem
from optimization.option_grid import CHUNK_ENTRIES, OptionGrid
from sites.timegrid import slots_until
from sites.units import usd_per_t_to_usd_per_kg

if TYPE_CHECKING:  # the planner builds grids: it imports this module
    from broker.planner import PlannerConfig


def start_offsets(offers: RoundOffers, offsets: Sequence[int] | None) -> np.ndarray:
    """The horizon slots a job may start in (all of them by default)."""
    horizon = offers.horizon_slots
    chosen = np.array(offsets if offsets is not None else range(horizon), dtype=np.int64)
    return chosen[chosen < horizon]


def listed_options_estimate(federation: Federation, offers: RoundOffers, jobs: Sequence[Job],
                            offsets: Sequence[int] | None) -> int:
    """At most how many options listing the round would give (each job at each GPU count it
    may run on, on every pool it is not barred from, at every start): cheap, before anything
    is built."""
    n_pools = len(federation.resources)
    pools = sum(len(job.gpu_counts) * (
        n_pools - int(federation.barred_pools(job).sum())
        if job.excluded_sites or job.allowed_sites is not None else n_pools) for job in jobs)
    return pools * len(start_offsets(offers, offsets))


@dataclass(frozen=True)
class RoundGrid:
    """A round's grid and what maps its options back to runs and jobs."""

    grid: OptionGrid
    demands: tuple[tuple[Job, ...], ...]
    runs: Runs

    def boundary(self, index: np.ndarray) -> np.ndarray:
        """Which of these options go on where their job runs now (``Runs.boundary``)."""
        return self.runs.boundary[np.asarray(index, dtype=np.int64) // self.grid.n_starts]


class _Lister:
    """Option indices of the grid -> ``AllocationProblem`` option columns, priced by
    ``price_options`` (with each late demand's lateness, as ``build_round_problem`` adds it)."""

    def __init__(self, runs: Runs, offsets: np.ndarray, offers: RoundOffers,
                 delay_cost_usd_per_gpu_h: float, late_runs: np.ndarray,
                 late_usd: np.ndarray) -> None:
        self.runs, self.offsets, self.offers = runs, offsets, offers
        self.delay = delay_cost_usd_per_gpu_h
        self.late_runs, self.late_usd = late_runs, late_usd

    def __call__(self, index: np.ndarray) -> dict[str, np.ndarray]:
        n_starts = len(self.offsets)
        run, s = np.divmod(np.asarray(index, dtype=np.int64), n_starts)
        start = self.offsets[s]
        options = Options(self.runs, run, start, start * self.offers.slot_h, self.offers.slot_h)
        priced = price_options(options, self.offers.price_usd_per_mwh,
                               self.offers.carbon_g_per_kwh, self.offers.slot_h,
                               delay_from_h=0.0, delay_cost_usd_per_gpu_h=self.delay)
        columns = priced.problem_columns(
            held_slots=np.minimum(options.slots, self.offers.horizon_slots - start))
        at = np.searchsorted(self.late_runs, run)
        late = at < len(self.late_runs)
        late[late] = self.late_runs[at[late]] == run[late]
        columns["option_delay_cost_usd"][late] += self.late_usd[at[late], s[late]]
        return columns


def build_round_grid(federation: Federation, offers: RoundOffers, queue: Sequence[Job],
                     config: PlannerConfig) -> RoundGrid:
    """``build_round_problem``'s round as a grid (module docstring)."""
    demands = group_identical_jobs(queue)
    reps = [d[0] for d in demands]
    slot_h, now = offers.slot_h, offers.now_h
    offsets = start_offsets(offers, config.start_offsets)
    runs = job_runs(federation, reps)
    deadline = np.array([np.inf if j.deadline_h is None else j.deadline_h for j in reps])
    must_run = np.array([j.state is not None and not j.preemptible for j in reps], dtype=bool)
    priced = _price_grid(runs, len(reps), offsets, offers, config, deadline,
                         bool(must_run.any()))
    run_starts, cost = priced.run_starts, priced.cost_usd

    # waiting prices: each on-time demand's cheapest and dearest options (lateness 0), and
    # every option of a demand late wherever it runs
    bounds = np.searchsorted(runs.job, np.arange(len(reps) + 1))
    has = bounds[1:] > bounds[:-1]
    on_time = np.flatnonzero(priced.meets_somewhere & has)
    extremes = []
    cheapest = priced.cheapest_start
    run_least = np.full(len(runs), np.inf)
    has_start = np.flatnonzero(cheapest >= 0)
    run_least[has_start] = cost[has_start, cheapest[has_start]]
    for ufunc, per_run, empty in ((np.minimum, run_least, np.inf),
                                  (np.maximum, priced.run_most_usd, -np.inf)):
        per_demand = np.full(len(reps), empty)
        per_demand[has] = ufunc.reduceat(per_run, bounds[:-1][has])
        extremes.append(per_demand[on_time])
    late_runs = np.flatnonzero(~priced.meets_somewhere[runs.job] & (run_starts > 0))
    late_row, late_s = np.nonzero(np.arange(len(offsets))[None, :]
                                  < run_starts[late_runs, None])
    late_run = late_runs[late_row]
    late_h = np.maximum(now + offsets[late_s] * slot_h + runs.occupy_h[late_run]
                        - deadline[runs.job[late_run]], 0.0)
    waiting = waiting_prices(
        np.concatenate([on_time, on_time, runs.job[late_run]]),
        np.concatenate([*extremes, cost[late_run, late_s]]),
        np.concatenate([np.zeros(2 * len(on_time)), late_h]),
        np.array([j.gpus for j in reps], dtype=int), np.isfinite(deadline), slot_h,
        offers.horizon_slots * slot_h, config.delay_cost_usd_per_gpu_h)
    late_usd = np.zeros((len(late_runs), len(offsets)))
    late_usd[late_row, late_s] = waiting.option_lateness_usd[2 * len(on_time):]
    cost[late_runs] += late_usd
    if len(late_runs):  # lateness moves a late run's cheapest start
        late_valid = np.arange(len(offsets))[None, :] < run_starts[late_runs, None]
        cheapest[late_runs] = np.where(late_valid, cost[late_runs], np.inf).argmin(axis=1)
    penalty = must_run_penalties(priced.abs_cost_usd, waiting.deferral_penalty_usd, must_run)
    public = AllocationProblem(
        capacity_gpus=np.asarray(offers.free_gpus, dtype=float).reshape(
            len(federation.resources), offers.horizon_slots),
        demand_count=np.array([len(d) for d in demands], dtype=int),
        deferral_penalty_usd=penalty,
        **option_columns({name: [] for name in OPTION_COLUMNS}),
        carbon_price_usd_per_kg=usd_per_t_to_usd_per_kg(config.carbon_price_usd_per_t),
        carbon_cap_kg=config.carbon_cap_kg,
    )
    grid = OptionGrid(
        public=public, run_demand=runs.job, run_resource=runs.resource, run_gpus=runs.gpus,
        run_slots=np.maximum(slots_until(runs.occupy_h, slot_h), 1), starts=offsets,
        run_starts=run_starts, cost_usd=cost, carbon_kg=priced.carbon_kg,
        lister=_Lister(runs, offsets, offers, config.delay_cost_usd_per_gpu_h, late_runs,
                       late_usd),
        known_cheapest_start=cheapest)
    return RoundGrid(grid, demands, runs)


@dataclass(frozen=True)
class _GridPrices:
    """The grid's tables, and what the waiting prices read of them (over valid starts)."""

    cost_usd: np.ndarray  # (runs, starts), before lateness
    carbon_kg: np.ndarray | None  # (runs, starts), under a carbon cap only
    run_starts: np.ndarray  # per run: its leading starts that are options
    cheapest_start: np.ndarray  # per run: its cheapest option's start index (-1: none)
    run_most_usd: np.ndarray  # per run: its dearest option (-inf: none)
    abs_cost_usd: float  # sum of |cost| over every option (0 unless a job must run)
    meets_somewhere: np.ndarray  # per job: some option meets its deadline


def _price_grid(runs: Runs, n_jobs: int, offsets: np.ndarray, offers: RoundOffers,
                config: PlannerConfig, deadline: np.ndarray, must_run: bool) -> _GridPrices:
    """Every run at every start, priced chunk by chunk of whole jobs (``price_start_grid``),
    with ``deadline_options``' test: the starts that meet a deadline, or every start of a job
    that meets it nowhere (completion grows with the start, so the starts kept lead); a run
    that goes on where its job runs has start 0 only. ``must_run``: the round has a job that
    must run (the sum of |cost| is then needed, ``must_run_penalties``).

    Chunks are independent and write disjoint rows, so ``config.solver.threads`` threads
    price them (numpy releases the GIL): the same tables whatever the threads."""
    n_runs, n_starts = len(runs), len(offsets)
    cost = np.empty((n_runs, n_starts))
    carbon = np.empty((n_runs, n_starts)) if config.carbon_cap_kg is not None else None
    run_starts = np.zeros(n_runs, dtype=np.int64)
    cheapest = np.full(n_runs, -1, dtype=np.int64)
    most = np.full(n_runs, -np.inf)
    meets_somewhere = np.zeros(n_jobs, dtype=bool)
    start_h = offsets * offers.slot_h
    first_start = 1 if n_starts and offsets[0] == 0 else 0
    bounds = np.searchsorted(runs.job, np.arange(n_jobs + 1))
    per_chunk = max(1, CHUNK_ENTRIES // max(1, n_starts))
    chunks = []
    j = 0
    while j < n_jobs:
        j_end = min(n_jobs, max(j + 1, int(np.searchsorted(bounds, bounds[j] + per_chunk,
                                                              "right")) - 1))
        chunks.append((int(bounds[j]), int(bounds[j_end])))
        j = j_end

    def price(chunk: tuple[int, int]) -> float:
        """Price runs lo:hi (whole jobs); the sum of |cost| over their options (0 unless a
        job must run)."""
        lo, hi = chunk
        part = runs.take(np.arange(lo, hi))
        priced = price_start_grid(part, offsets, offers.price_usd_per_mwh,
                                  offers.carbon_g_per_kwh, offers.slot_h,
                                  config.carbon_price_usd_per_t, config.delay_cost_usd_per_gpu_h,
                                  with_carbon=carbon is not None)
        block = cost[lo:hi]
        block[:] = priced.cost_usd
        if carbon is not None:
            carbon[lo:hi] = priced.carbon_kg
        meets = np.full(hi - lo, n_starts)
        timed = np.flatnonzero(np.isfinite(deadline[part.job]))  # jobs with a deadline
        if len(timed):
            completion_h = start_h[None, :] + part.occupy_h[timed, None]
            meets[timed] = (offers.now_h + completion_h <= deadline[part.job[timed], None]
                            + DEADLINE_TOLERANCE_H).sum(axis=1)
        np.logical_or.at(meets_somewhere, part.job, meets > 0)
        starts = np.where(meets_somewhere[part.job], meets, n_starts)
        starts = np.where(part.boundary, np.minimum(starts, first_start), starts)
        run_starts[lo:hi] = starts
        cheapest[lo:hi] = block.argmin(axis=1)
        most[lo:hi] = block.max(axis=1)
        cut = np.flatnonzero(starts < n_starts)  # runs with fewer starts: masked
        if len(cut):
            masked = np.where(np.arange(n_starts)[None, :] < starts[cut, None], block[cut],
                              np.inf)
            cheapest[lo + cut] = np.where(starts[cut] > 0, masked.argmin(axis=1), -1)
            masked[~np.isfinite(masked)] = -np.inf
            most[lo + cut] = masked.max(axis=1)
        if not must_run:
            return 0.0
        valid = np.arange(n_starts)[None, :] < starts[:, None]
        return float(np.abs(block, where=valid, out=np.zeros_like(block)).sum())

    with ThreadPoolExecutor(max(1, config.solver.threads)) as pool:
        abs_cost_usd = sum(pool.map(price, chunks))  # summed in chunk order, as one thread
    return _GridPrices(cost, carbon, run_starts, cheapest, most, abs_cost_usd, meets_somewhere)
