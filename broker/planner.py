"""The MILP planner: a round's offers and queue -> an allocation problem -> a plan.

Option generation is vectorised over (job, resource) pairs and start slots; only feasible
options exist: the pool has enough GPUs of a type the job runs on (throughput > 0), and the job
meets its deadline (when none of its options can, it keeps them all and will be late).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from broker.costs import waiting_prices
from broker.demands import group_identical_jobs, must_run_penalties
from broker.federation import Federation
from broker.jobs import Job
from broker.offers import RoundOffers
from broker.options import (
    Schedule,
    at_starts,
    deadline_options,
    interrupted_options,
    job_runs,
    price_options,
)
from broker.round_grid import build_round_grid, listed_options_estimate
from optimization import (
    SOLVE_METHODS,
    AllocationProblem,
    AllocationSolution,
    SolverOptions,
    SolveStatus,
    greedy_allocation,
    relative_gap,
    solve_allocation,
)
from optimization.column_generation import MIN_SOLVE_BUDGET_S, cheapest_per_demand
from optimization.grid_solve import solve_option_grid
from optimization.problem import breakdown_usd, deferred_of, plan_cost_usd
from sites.units import usd_per_t_to_usd_per_kg


@dataclass(frozen=True)
class PlannerConfig:
    carbon_price_usd_per_t: float = 0.0
    delay_cost_usd_per_gpu_h: float = 0.005
    start_offsets: tuple[int, ...] | None = None  # horizon slots a job may start in; None: all
    carbon_cap_kg: float | None = None
    max_wait_h: float = 24.0  # how long the temporal baseline lets a job without deadline wait
    solver: SolverOptions = field(default_factory=SolverOptions)
    method: str = "auto"
    # Above this many options (``listed_options_estimate``) a round keeps them as a grid of
    # runs x starts (``broker.round_grid``) instead of listing them. Listing takes ~150 bytes
    # an option (20000x100x24's 138M would need ~21 GiB), and above a few million options the
    # grid plans better within a budget: 5000x20x24 (6.9M) at 10 s, 19.9% proven against
    # 50.2% listed, at 60 s 2.59% against 3.28% (bench/allocation.py, 2026-12-03).
    max_listed_options: int = 2_000_000

    def __post_init__(self) -> None:
        if self.method not in SOLVE_METHODS:
            raise ValueError(f"unknown solver method '{self.method}' "
                             f"(known: {', '.join(SOLVE_METHODS)})")

    @classmethod
    def build(cls, *, carbon_price_usd_per_t: float, delay_cost_usd_per_gpu_h: float,
              method: str, time_limit_s: float, mip_gap: float, threads: int,
              aggregate_tolerance_usd: float, max_wait_h: float = 24.0,
              carbon_cap_kg: float | None = None,
              max_listed_options: int | None = None) -> PlannerConfig:
        """The one factory from flat settings (a scenario file, the live broker's settings)."""
        return cls(
            carbon_price_usd_per_t=carbon_price_usd_per_t,
            delay_cost_usd_per_gpu_h=delay_cost_usd_per_gpu_h,
            carbon_cap_kg=carbon_cap_kg,
            max_wait_h=max_wait_h,
            solver=SolverOptions(time_limit_s, mip_gap, threads,
                                 aggregate_tolerance_usd=aggregate_tolerance_usd),
            method=method,
            max_listed_options=(cls.max_listed_options if max_listed_options is None
                                else max_listed_options),
        )


# Every planner default, written once (scenario files, the period plan and the live broker's
# settings read theirs from here).
PLANNER_DEFAULTS = PlannerConfig()


@dataclass(frozen=True)
class Assignment:
    job_id: str
    site_id: str
    gpu_type: str
    gpus: int  # GPUs of that type the job runs on
    start_offset: int  # horizon slot the job starts in (0 = now)
    start_h: float
    # a preemptible job's interrupted run: busy intervals [from, to) in hours on the round's
    # clock (broker.options.Schedule); empty: one run from start_h
    segments_h: tuple[tuple[float, float], ...] = ()
    # a running job goes on where it runs, with no restart (``broker.options.Runs.boundary``)
    boundary: bool = False


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
    wall_clock_hit: bool = False  # the solver's wall-clock safety net stopped the round

    @property
    def starting_now(self) -> tuple[Assignment, ...]:
        return tuple(a for a in self.assignments if a.start_offset == 0)


@dataclass(frozen=True)
class RoundProblem:
    """The arrays handed to the optimizer plus what maps its answer back to jobs."""

    problem: AllocationProblem
    demands: tuple[tuple[Job, ...], ...]  # identical jobs grouped, in submit order
    # option index -> its interrupted run (hours from the round's start), for preemptible jobs
    schedules: Mapping[int, Schedule] = field(default_factory=dict)
    # option indices that go on where a running job runs (``broker.options.Runs.boundary``)
    boundary: frozenset[int] = frozenset()


def build_round_problem(
    federation: Federation, offers: RoundOffers, queue: Sequence[Job], config: PlannerConfig
) -> RoundProblem:
    """The round's allocation problem: one demand per group of identical jobs, one option per
    run of a demand (``broker.options``) at each start offset, deadline-feasible ones only
    (every option of a demand that can meet its deadline nowhere), priced on the offers'
    forecasts; options hold their pool until they end or the horizon does."""
    demands = group_identical_jobs(queue)
    reps = [d[0] for d in demands]
    horizon = offers.horizon_slots
    offsets = np.array(
        config.start_offsets if config.start_offsets is not None else range(horizon), dtype=int
    )
    offsets = offsets[offsets < horizon]
    runs = job_runs(federation, reps)
    interrupted = interrupted_options(
        runs, reps, offers.price_usd_per_mwh, offers.carbon_g_per_kwh, offers.slot_h,
        offers.now_h, config.carbon_price_usd_per_t, config.delay_cost_usd_per_gpu_h)
    options = at_starts(runs, offsets, offers.slot_h)
    options = options.take(np.flatnonzero(
        deadline_options(options, reps, offers.now_h, interrupted.meets_deadline)
        & ~(runs.boundary[options.run] & (options.start > 0))))
    priced = price_options(options, offers.price_usd_per_mwh, offers.carbon_g_per_kwh,
                           offers.slot_h, delay_from_h=0.0,
                           delay_cost_usd_per_gpu_h=config.delay_cost_usd_per_gpu_h)
    columns = priced.problem_columns(held_slots=np.minimum(options.slots, horizon - options.start))
    if len(interrupted):
        columns = {k: np.concatenate([v, interrupted.columns[k]]) for k, v in columns.items()}
    problem = AllocationProblem(
        capacity_gpus=np.asarray(offers.free_gpus, dtype=float).reshape(
            len(federation.resources), horizon),
        demand_count=np.array([len(d) for d in demands], dtype=int),
        deferral_penalty_usd=np.zeros(len(reps)),
        **columns,
        carbon_price_usd_per_kg=usd_per_t_to_usd_per_kg(config.carbon_price_usd_per_t),
        carbon_cap_kg=config.carbon_cap_kg,
    )
    # Deferring looks worse than any option, and lateness is priced (``waiting_prices``); the
    # lateness of an option is part of its delay cost (the price of waiting).
    completion_h = np.concatenate([options.completion_h,
                                   [sch.finish_h for sch in interrupted.schedules]])
    deadline = np.array([np.inf if j.deadline_h is None else j.deadline_h for j in reps])
    waiting = waiting_prices(
        problem.option_demand, problem.option_cost_usd,
        np.maximum(offers.now_h + completion_h - deadline[problem.option_demand], 0.0),
        np.array([j.gpus for j in reps], dtype=int), np.isfinite(deadline), offers.slot_h,
        horizon * offers.slot_h, config.delay_cost_usd_per_gpu_h)
    problem = dataclasses.replace(
        problem, deferral_penalty_usd=must_run_penalties(
            float(np.abs(problem.option_cost_usd).sum()), waiting.deferral_penalty_usd,
            np.array([j.state is not None and not j.preemptible for j in reps], dtype=bool)),
        option_delay_cost_usd=problem.option_delay_cost_usd + waiting.option_lateness_usd)
    schedules = {len(options) + i: sch for i, sch in enumerate(interrupted.schedules)}
    return RoundProblem(problem=problem, demands=demands, schedules=schedules,
                        boundary=frozenset(np.flatnonzero(
                            options.base.boundary[options.run]).tolist()))


# The most the rest of a round may be let off (see ``_rest_options``): where the settled jobs
# dwarf the rest, a loose rest would still meet the round's gap but plan the contested jobs
# badly, and those are the ones worth planning.
MAX_REST_MIP_GAP = 0.05


@dataclass(frozen=True)
class Presolved:
    """An exact reduction of a round's problem (``presolve_round``).

    ``settled[o]``: jobs put on option o by the presolve, proven optimal without a solver.
    ``rest``: what is left for the solver (None when the presolve settled every job), whose
    option i is option ``rest_options[i]`` of the full problem and whose demand k is demand
    ``rest_demands[k]``.
    """

    settled: np.ndarray
    rest: AllocationProblem | None
    rest_options: np.ndarray
    rest_demands: np.ndarray


def _slack_cells(p: AllocationProblem, alive: np.ndarray, demand_gpus: np.ndarray) -> np.ndarray:
    """Cells whose capacity no plan over the ``alive`` options can exceed.

    A job takes at most one option, so the most a cell can ever hold is the GPUs of every job
    of every demand with an alive option running in it.
    """
    runs = p.window_cells(alive.astype(float), rows=p.option_demand, n_rows=p.n_demands)
    most = (p.demand_count * demand_gpus) @ (runs > 0)
    return most <= p.capacity_gpus.reshape(-1) + 1e-9


def presolve_round(p: AllocationProblem, max_passes: int = 8) -> Presolved:
    """Drop options no optimal plan needs, and settle the jobs whose choice is forced.

    Options that need more GPUs than a cell they run in has free are dropped first.

    Most rounds of a simulation have few queued jobs and many idle pools: most capacity cells
    cannot bind whatever the plan. An option all of whose cells cannot bind (a *slack*
    option) takes any number of its demand's jobs, so every option of the same demand that
    costs as much or more is dominated (moving its jobs onto the slack option keeps the plan
    feasible and costs no more) and is dropped. Fewer options leave less load on other cells,
    so the test repeats until nothing changes. A demand left with only its slack option, and
    for which running beats deferring, is settled: all its jobs take that option; it leaves
    the problem, and so do its GPUs from the capacity (its cells stay slack for the rest).

    Exact: the reduced problem has the same optimum, plus the settled cost. It is skipped
    under a carbon cap (a slack option still spends the shared cap). Every test reads an
    option's cells as its window (``AllocationProblem.window_sums``, ``window_cells``).
    """
    settled = np.zeros(p.n_options, dtype=np.int64)
    everything = np.arange(p.n_options)
    if p.carbon_cap_kg is not None or p.n_options == 0:
        return Presolved(settled, p, everything, np.arange(p.n_demands))
    cost = p.option_cost_usd
    capacity = p.capacity_gpus.reshape(-1)
    demand_gpus = np.zeros(p.n_demands)  # the most GPUs one job of the demand may hold
    np.maximum.at(demand_gpus, p.option_demand, p.option_gpus)
    # An option that needs more GPUs than some cell it runs in has free can never be taken
    # (options exist where the pool is big enough, not where it is free enough now).
    alive = np.ones(p.n_options, dtype=bool)
    for gpus in np.unique(p.option_gpus):
        short = p.window_sums((capacity + 1e-9 < gpus).astype(float)) > 0
        alive &= ~(short & (p.option_gpus == gpus))
    best = np.zeros(0, dtype=int)  # the cheapest slack option of each demand that has one
    for _ in range(max_passes):
        slack_cell = _slack_cells(p, alive, demand_gpus)
        tight = p.window_sums((~slack_cell).astype(float)) > 0  # a cell that may bind
        # each demand's cheapest slack option (the lowest index on ties)
        best = cheapest_per_demand(p, cost, 1, among=alive & ~tight)
        best_cost = np.full(p.n_demands, np.inf)
        best_cost[p.option_demand[best]] = cost[best]
        keep = alive & (cost < best_cost[p.option_demand])
        keep[best] = True
        if (keep == alive).all():
            break
        alive = keep
    left = np.bincount(p.option_demand[alive], minlength=p.n_demands)
    d_best = p.option_demand[best]
    forced = best[(left[d_best] == 1) & (cost[best] < p.deferral_penalty_usd[d_best])]
    settled[forced] = p.demand_count[p.option_demand[forced]]
    done = np.zeros(p.n_demands, dtype=bool)
    done[p.option_demand[forced]] = True
    rest_options = np.flatnonzero(alive & ~done[p.option_demand])
    rest_demands = np.flatnonzero(~done)
    if not len(rest_demands):
        return Presolved(settled, None, rest_options, rest_demands)
    used = p.window_cells(p.option_gpus * settled)
    renumber = np.full(p.n_demands, -1)
    renumber[rest_demands] = np.arange(len(rest_demands))
    rest = dataclasses.replace(
        p,
        capacity_gpus=p.capacity_gpus - used.reshape(p.capacity_gpus.shape),
        demand_count=p.demand_count[rest_demands],
        deferral_penalty_usd=p.deferral_penalty_usd[rest_demands],
        option_demand=renumber[p.option_demand[rest_options]],
        **{name: getattr(p, name)[rest_options] for name in (
            "option_resource", "option_start", "option_slots", "option_gpus",
            "option_energy_kwh", "option_energy_cost_usd", "option_carbon_kg",
            "option_transfer_cost_usd", "option_delay_cost_usd")},
    )
    return Presolved(settled, rest, rest_options, rest_demands)


def _rest_options(p: AllocationProblem, reduced: Presolved,
                  options: SolverOptions) -> SolverOptions:
    """The solver options for what the presolve left: the round's MIP gap, restated for it.

    The MIP gap is relative to the round's objective, and the settled jobs' cost is part of it
    at zero gap: proving the rest to ``gap x (settled + rest) / rest`` proves the round to
    ``gap``. The rest's optimum is not known beforehand; its greedy plan's cost is an upper
    estimate, which only makes the restated gap tighter than it need be.
    """
    settled_usd = float(p.option_cost_usd @ reduced.settled)
    if options.mip_gap == 0 or settled_usd <= 0 or reduced.rest is None:
        return options
    rest = reduced.rest
    greedy = greedy_allocation(rest)
    upper = plan_cost_usd(rest, greedy, deferred_of(rest, greedy))
    if not upper > 0:
        return options
    gap = min(options.mip_gap * (settled_usd + upper) / upper, MAX_REST_MIP_GAP)
    return dataclasses.replace(options, mip_gap=max(gap, options.mip_gap))


def solve_round(p: AllocationProblem, options: SolverOptions, method: str) -> AllocationSolution:
    """Presolve (``presolve_round``), solve what is left, and answer for the full problem.

    The bound is the settled cost plus the rest's bound (the settled part is optimal), so the
    status and gap keep their meaning.
    """
    started = time.perf_counter()
    reduced = presolve_round(p)
    x = reduced.settled.copy()
    if reduced.rest is None:
        status, message = SolveStatus.OPTIMAL, "presolve settled every job"
        build_s = solve_s = rest_bound = 0.0
        wall_clock_hit = False
    else:
        sub = solve_allocation(reduced.rest, _rest_options(p, reduced, options), method=method)
        x[reduced.rest_options] += sub.option_count
        status, message = SolveStatus(sub.status), sub.message
        build_s, solve_s, rest_bound = sub.build_time_s, sub.solve_time_s, sub.bound_usd
        wall_clock_hit = sub.wall_clock_hit
    deferred = deferred_of(p, x)
    objective = plan_cost_usd(p, x, deferred)
    settled_usd = float(p.option_cost_usd @ reduced.settled)
    if status is SolveStatus.OPTIMAL and (
            relative_gap(objective, settled_usd + rest_bound) > options.mip_gap + 1e-12):
        status = SolveStatus.FEASIBLE  # the rest met its own gap but not the round's
    presolve_s = time.perf_counter() - started - build_s - solve_s
    return AllocationSolution(
        status=status, option_count=x, deferred_count=deferred, objective_usd=objective,
        bound_usd=settled_usd + rest_bound, cost_breakdown_usd=breakdown_usd(p, x, deferred),
        build_time_s=build_s + presolve_s, solve_time_s=solve_s, message=message,
        wall_clock_hit=wall_clock_hit,
    )


def assignments_from_counts(
    federation: Federation, offers: RoundOffers, rp: RoundProblem, counts: np.ndarray,
) -> tuple[list[Assignment], list[str]]:
    """Jobs put on options (``counts[o]`` jobs of option o's demand, in submit order), and the
    ids of the jobs left over (deferred)."""
    p = rp.problem
    assignments: list[Assignment] = []
    deferred: list[str] = []
    # the options used, by demand then index: one pass (a scan of every option per demand
    # took 75 s for 5,000 demands of 11M options)
    used = np.flatnonzero(counts > 0)
    used = used[np.argsort(p.option_demand[used], kind="stable")]
    bounds = np.searchsorted(p.option_demand[used], np.arange(len(rp.demands) + 1))
    for d, jobs in enumerate(rp.demands):
        pending = list(jobs)
        for o in used[bounds[d]:bounds[d + 1]]:
            site_i, gpu = federation.resources[p.option_resource[o]]
            for _ in range(int(counts[o])):
                job = pending.pop(0)
                schedule = rp.schedules.get(int(o))
                segments = () if schedule is None else tuple(
                    (offers.now_h + a, offers.now_h + b) for a, b in schedule.segments_h)
                assignments.append(Assignment(
                    job_id=job.id, site_id=federation.sites[site_i].id, gpu_type=gpu,
                    gpus=int(p.option_gpus[o]), start_offset=int(p.option_start[o]),
                    start_h=offers.now_h + int(p.option_start[o]) * offers.slot_h,
                    segments_h=segments, boundary=int(o) in rp.boundary,
                ))
        deferred.extend(j.id for j in pending)
    return assignments, deferred


class MilpPlanner:
    """Plans a round by solving the allocation MILP; the same code serves simulator and API."""

    def __init__(self, federation: Federation, config: PlannerConfig) -> None:
        self.federation = federation
        self.config = config

    def plan(self, offers: RoundOffers, queue: Sequence[Job]) -> Plan:
        """The round's plan: its options listed, or held as a grid above
        ``PlannerConfig.max_listed_options`` (``plan_grid``)."""
        if listed_options_estimate(self.federation, offers, queue,
                                   self.config.start_offsets) > self.config.max_listed_options:
            return self.plan_grid(offers, queue)
        return self.plan_problem(
            offers, build_round_problem(self.federation, offers, queue, self.config))

    def plan_grid(self, offers: RoundOffers, queue: Sequence[Job]) -> Plan:
        """A round held as a grid (``broker.round_grid``), solved by
        ``optimization.grid_solve`` (greedy, column generation, rounding, diving) within the
        solver's budget, building included; method ``greedy`` stops at the greedy plan."""
        started = time.perf_counter()
        round_grid = build_round_grid(self.federation, offers, queue, self.config)
        built_s = time.perf_counter() - started
        solver = self.config.solver
        solved = solve_option_grid(round_grid.grid, dataclasses.replace(
            solver, time_limit_s=max(solver.time_limit_s - built_s, MIN_SOLVE_BUDGET_S)),
            lp=self.config.method != "greedy")
        boundary = np.flatnonzero(round_grid.boundary(solved.option_index))
        listed = RoundProblem(problem=solved.problem, demands=round_grid.demands,
                              boundary=frozenset(boundary.tolist()))
        return self._plan_of(offers, listed, solved.solution, round_grid.grid.n_options,
                             built_s)

    def plan_problem(self, offers: RoundOffers, round_problem: RoundProblem) -> Plan:
        """``plan`` of a round already built (the live broker's anytime round builds it once
        for its greedy plan and its MILP)."""
        p = round_problem.problem
        solution = solve_round(p, self.config.solver, self.config.method)
        return self._plan_of(offers, round_problem, solution, p.n_options, 0.0)

    def _plan_of(self, offers: RoundOffers, round_problem: RoundProblem,
                 solution: AllocationSolution, n_options: int, built_s: float) -> Plan:
        """The ``Plan`` of a solution on a round's listed options (``built_s``: building a
        grid before it)."""
        assignments, deferred = assignments_from_counts(
            self.federation, offers, round_problem, solution.option_count)
        return Plan(
            assignments=tuple(assignments),
            deferred=tuple(deferred),
            status=SolveStatus(solution.status),
            message=solution.message,
            objective_usd=solution.objective_usd,
            bound_usd=solution.bound_usd,
            cost_breakdown_usd=solution.cost_breakdown_usd,
            n_options=n_options,
            build_time_s=built_s + solution.build_time_s,
            solve_time_s=solution.solve_time_s,
            wall_clock_hit=solution.wall_clock_hit,
        )
