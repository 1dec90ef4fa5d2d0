"""A round held as an option grid, solved within its budget: a plan at once, then the LP.

1. **The greedy plan** (``option_grid.grid_greedy``): feasible, in seconds at 138M options.
2. **The LP relaxation by column generation** (the decomposed LP's coordinator,
   ``optimization.decomposed``, with the grid as its one pricing shard,
   ``option_grid.GridPricers``), within what is left of the budget less ``ROUNDING_SHARE``.
   Every pricing round gives a Lagrangian bound, valid whether or not the LP finishes; the
   best one is the plan's proof.
3. **LP rounding**: the master's last solution, whole jobs kept, completed by the grid's greedy
   in order of reduced cost (``lp_guided.lp_rounding``'s rule) over every option.
4. **LP diving** (``grid_dive``, ``lp_guided.incumbent_by_diving``'s rule): jobs fixed onto the
   columns the LP likes best, the master re-solved and re-priced over the whole grid.
5. **A restricted MILP** over the master's columns and the plans' options, warm-started from
   the best plan, when the gap is still open: its plans are the round's, its bound is not.

The cheapest plan is returned with the best bound: OPTIMAL when within the MIP gap, else
FEASIBLE. It lives on a small listed round (``GridSolution.problem``: the options the plans and
the master hold, priced by the broker's own code), which the planner reads as any round.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from optimization.allocation_matrix import AllocationLayout
from optimization.column_generation import (
    ADDED_PER_DEMAND_PER_ROUND,
    MIN_SOLVE_BUDGET_S,
    split_duals,
)
from optimization.decomposed import (
    Coordinator,
    Duals,
    ShardOffer,
    open_coordinator,
    pricing_rounds,
    solve_decomposed,
    solve_with_coordinator,
)
from optimization.lp_guided import fix_one_more, goal_usd, solve_restricted_mip
from optimization.option_grid import (
    GridPlan,
    GridPricers,
    OptionGrid,
    grid_greedy,
    trivial_bound,
)
from optimization.problem import (
    AllocationProblem,
    AllocationSolution,
    deferred_of,
    make_solution,
    plan_cost_usd,
)
from optimization.solver import MatrixSolution, SafetyNet, SolverOptions
from optimization.status import SolveStatus, relative_gap

# Share of the budget kept for rounding the LP after column generation stops.
ROUNDING_SHARE = 0.15
# Column generation starts only when what is left of the budget holds this many passes over
# the grid's table (timed on the trivial bound's): its first pricing and master cannot stop
# midway, and at 138M options they take seconds.
LP_START_PASSES = 6
# A round of at least twice this many demands prices its first columns at the duals of a
# sample this size (``_sample_prices``), which may take this share of the budget left.
SAMPLE_DEMANDS = 500
SAMPLE_SHARE = 0.3
SAMPLE_MAX_OPTIONS = 2_000_000
INTEGRAL_TOLERANCE = 1e-6


def _sample_prices(grid: OptionGrid, options: SolverOptions, net: SafetyNet,
                   sample_demands: int) -> Duals | None:
    """Capacity and carbon prices from the LP of a sample of about ``sample_demands`` demands
    (``OptionGrid.sample``), within ``SAMPLE_SHARE`` of what is left of the budget; None for a
    round under twice that size, or when the sample's master was not solved.

    The whole round's first master then holds each demand's cheapest options *at these
    prices* and starts from their Lagrangian bound: on 5000x20x24 (a 1-in-10 sample, 2.2 s)
    its LP completes in 10 pricing rounds and 12.7 s, bound 3,199 from the first round,
    against 14 rounds, 22.9 s and the trivial bound 1,384 for three rounds from zero prices.
    Any prices give a valid bound, so the sample changes only how fast the LP gets there.
    A sample of more than ``SAMPLE_MAX_OPTIONS`` options is not solved: on 20000x100x24 a
    500-demand sample holds 3.45M options (300 pools x 24 starts each, capacity scaled to a
    40th) and its LP takes 36 s and 73 pricing rounds, most of a 60 s budget."""
    n = grid.public.n_demands
    if n < 2 * sample_demands:
        return None
    sample = grid.sample(n // sample_demands)
    if sample.n_options > SAMPLE_MAX_OPTIONS:
        return None
    sample_net = SafetyNet(SAMPLE_SHARE * net.left_s())
    sampled = solve_decomposed(sample.public, GridPricers(sample), options, sample_net)
    net.hit = net.hit or sample_net.hit  # prices cut by the clock depend on the load
    if not np.isfinite(sampled.objective_usd):
        return None
    return Duals(None, sampled.mu, sampled.lam)


def grid_dive(grid: OptionGrid, coordinator: Coordinator, pricers: GridPricers,
              last: MatrixSolution, options: SolverOptions, net: SafetyNet) -> GridPlan | None:
    """``lp_guided.incumbent_by_diving`` on the grid's master: for every demand still
    fractional, one more job fixed onto the column the LP likes best (highest value) while the
    fixed jobs' GPUs fit and their emissions stay under the cap; re-solve and re-price over
    the whole grid (``decomposed.pricing_rounds``), until the LP is integral (its plan) or
    ``dive_steps`` re-solves or the safety net end it (its last LP rounded: whole jobs kept,
    the rest by the greedy in order of reduced cost). None when not one re-solve was made."""
    p = coordinator.public
    n_d = p.n_demands
    used = np.zeros(p.n_resources * p.n_slots)
    carbon_left = np.inf if p.carbon_cap_kg is None else float(p.carbon_cap_kg)
    fixed = np.zeros(0)  # jobs fixed onto each column (the master only grows)
    fixed_per_demand = np.zeros(n_d)
    for step in range(options.dive_steps + 1):
        x = last.x[n_d:]
        held = coordinator.held()
        fixed = np.concatenate([fixed, np.zeros(held.n_options - len(fixed))])
        frac = np.abs(x - np.rint(x)) > INTEGRAL_TOLERANCE
        if not frac.any():
            whole = np.flatnonzero(np.rint(x) > 0)
            order = np.argsort(coordinator.option_index[whole])
            return GridPlan(coordinator.option_index[whole][order],
                            np.rint(x[whole][order]).astype(np.int64))
        if step == options.dive_steps or net.expired():
            return _rounded(grid, coordinator, last) if step else None
        candidates = np.flatnonzero(frac)
        candidates = candidates[np.argsort(-x[candidates], kind="stable")]
        progressed, carbon_left = fix_one_more(held, candidates, x, fixed, fixed_per_demand,
                                               used, carbon_left)
        if progressed:
            chosen = np.flatnonzero(fixed > 0)
            lower = fixed[chosen]
            upper = (p.demand_count[held.option_demand[chosen]].astype(float)
                     if coordinator.bounded else np.full(len(chosen), np.inf))
        else:  # every fractional column is blocked by the jobs fixed so far: forbid them
            chosen = candidates
            lower = upper = np.zeros(len(chosen))
        coordinator.lp.change_column_bounds(n_d + chosen, lower, upper)
        solved = None
        for round_ in pricing_rounds(coordinator, pricers, options, net,
                                     ADDED_PER_DEMAND_PER_ROUND):
            solved = round_.solved
        if solved is None:
            return _rounded(grid, coordinator, last)
        last = solved
    return _rounded(grid, coordinator, last)


def _rounded(grid: OptionGrid, coordinator: Coordinator, solved: MatrixSolution) -> GridPlan:
    """A master solution's whole jobs, completed by the grid's greedy in order of reduced cost
    at its duals (``lp_guided.lp_rounding``'s rule)."""
    n_d = coordinator.public.n_demands
    whole = np.floor(solved.x[n_d:] + INTEGRAL_TOLERANCE).astype(np.int64)
    kept = np.flatnonzero(whole > 0)
    index = coordinator.option_index[kept]
    order = np.argsort(index)
    y, mu, lam = split_duals(coordinator.layout, solved.row_duals)
    return grid_greedy(grid, start=GridPlan(index[order], whole[kept][order]),
                       duals=Duals(y, mu, lam))


@dataclass(frozen=True)
class GridSolution:
    """The plan on ``problem`` (the listed options: ``option_index`` in the grid), with the
    bound and status of the whole round, and how the time went."""

    problem: AllocationProblem
    option_index: np.ndarray
    solution: AllocationSolution
    greedy_s: float
    lp_rounds: int
    lp_s: float  # column generation's time, the first master included


def solve_option_grid(grid: OptionGrid, options: SolverOptions, lp: bool = True,
                      sample_demands: int = SAMPLE_DEMANDS) -> GridSolution:
    """Greedy, column generation, LP rounding and diving within the budget (module
    docstring); ``lp=False``: the greedy plan alone, with the trivial bound. A round of at
    least 2 x ``sample_demands`` demands first solves a sample's LP (``_sample_prices``)."""
    started = time.perf_counter()
    net = SafetyNet(options.time_limit_s)
    greedy = grid_greedy(grid, net=net)
    plans = [(greedy, "greedy" if not greedy.unplanned else
              f"greedy, cut by the safety net with {greedy.unplanned} demands not reached")]
    greedy_s = time.perf_counter() - started
    bound = trivial_bound(grid)
    pass_s = time.perf_counter() - started - greedy_s  # one pass over the grid's table
    relaxation, rounds = None, 0
    work_net = SafetyNet(max(net.left_s() - ROUNDING_SHARE * options.time_limit_s, 0.0))
    if lp and work_net.left_s() <= LP_START_PASSES * pass_s:
        work_net.hit = True  # the clock, not the work budget, kept the LP out: say so
    elif lp:
        prices = _sample_prices(grid, options, work_net, sample_demands)
        pricers = GridPricers(grid)
        coordinator = open_coordinator(grid.public, pricers, options, prices=prices)
        # the greedy plan's options too, as lp-guided's first master holds them: a spread of
        # jobs that fits, so the first master defers less
        columns = grid.lister(greedy.index)
        coordinator.add([ShardOffer(np.zeros(0), greedy.index, columns,
                                    np.zeros(len(greedy.index)), 0.0)],
                        int(grid.public.demand_count.max(initial=1)))
        relaxation = solve_with_coordinator(coordinator, pricers, options, work_net)
        bound, rounds = max(bound, relaxation.bound_usd), relaxation.rounds
        last = coordinator.last
        if last is not None:
            plans.append((_rounded(grid, coordinator, last), "LP rounding"))
            if not work_net.expired():
                dive = grid_dive(grid, coordinator, pricers, last, options, work_net)
                if dive is not None:
                    plans.append((dive, "LP diving"))
    held = np.zeros(0, dtype=np.int64) if relaxation is None else coordinator.option_index
    index = np.unique(np.concatenate([held, *(plan.index for plan, _ in plans)]))
    p = grid.listed(index)
    upper, x, source = np.inf, np.zeros(p.n_options, dtype=np.int64), "greedy"
    for plan, name in plans:
        counts = np.zeros(p.n_options, dtype=np.int64)
        counts[np.searchsorted(index, plan.index)] = plan.count
        value = plan_cost_usd(p, counts, deferred_of(p, counts))
        if value < upper:
            upper, x, source = value, counts, name
    if (len(held) and options.restricted_mips and relative_gap(upper, bound) > options.mip_gap
            and net.left_s() > MIN_SOLVE_BUDGET_S):
        # a MILP over the master's columns and the plans' options, warm-started from the
        # best plan: its plans are the round's, its bound is not (the grid's bound stands)
        solved = solve_restricted_mip(AllocationLayout(p), np.arange(p.n_options), options,
                                      net, x, goal_usd(bound, options.mip_gap))
        if solved is not None:
            value = plan_cost_usd(p, solved.option_count, deferred_of(p, solved.option_count))
            if value < upper:
                upper, x, source = value, solved.option_count, "restricted MILP"
    status = (SolveStatus.OPTIMAL if relative_gap(upper, bound) <= options.mip_gap
              else SolveStatus.FEASIBLE)
    if relaxation is None:
        lp_note = "no time for the LP" if lp else "greedy only"
    else:
        lp_note = (f"LP {'complete' if relaxation.complete else 'not finished'} after "
                   f"{relaxation.rounds} pricing rounds")
    hit = net.expired() or work_net.hit
    elapsed = time.perf_counter() - started
    master_s = 0.0 if relaxation is None else coordinator.lp.solve_s
    solution = make_solution(
        p, status, x, bound, elapsed - master_s, master_s,
        message=f"plan from {source} over {grid.n_options:,} options held as a grid; "
                f"{lp_note}" + ("; wall-clock safety net hit" if hit else ""),
        wall_clock_hit=hit)
    return GridSolution(p, index, solution, greedy_s, rounds,
                        0.0 if relaxation is None else relaxation.total_s)
