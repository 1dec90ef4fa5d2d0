"""An anytime, exact-when-given-work way to solve the allocation MILP: LP first, then a MILP
over few options. Every stage keeps the best feasible plan and the best proven bound, so a
round that runs out of budget still returns a plan (FEASIBLE) with an honest gap. Every stage
is bounded by work (``SolverOptions``: pricing rounds, dive steps, restricted MILPs, and HiGHS's
iteration and node limits), never by elapsed time, so the plan is the same on any machine at
any load; the wall clock is only a safety net, reported in the solution when it is hit.

With ``SolverOptions.aggregate_tolerance_usd`` set, near-identical demands are merged first
(:mod:`optimization.aggregation`) when that leaves at most ``AGGREGATION_WORTH`` of them; the
merged round goes through the stages below and its plan is handed back to the original
demands, its bound still proven for the original round.

0. A greedy plan (:mod:`optimization.greedy`): feasible, in milliseconds, the first incumbent.
1. Column generation (:mod:`optimization.column_generation`) solves the LP relaxation over
   *all* options while holding few, starting from each demand's cheapest options and the
   greedy plan's (a spread of jobs that fits: the first master defers less, and needs fewer
   pricing rounds). Every pricing round yields a Lagrangian lower bound; the complete LP
   optimum LB bounds the MILP.
2. LP rounding: the LP's whole jobs (floor of x_LP, which fits where x_LP does), the rest
   placed greedily in order of reduced cost. Then LP diving: round fractional jobs up onto
   the option the LP likes best wherever the fixed jobs' GPUs still fit (and, under a carbon
   cap, their emissions still fit under the cap), re-price and re-solve the LP, repeat until
   the LP solution is integral (at most ``dive_steps`` re-solves).
3. Reduced-cost fixing towards a proof: with the complete LP (optimum LB, reduced costs rc),
   a plan using an option with rc_o > B - LB costs more than B, where B = UB - gap |UB| is
   the bound that would prove the incumbent UB. The *pricing set* {o : rc_o <= B - LB} plus
   the incumbent's options is often a small fraction of all options, and a MILP over it has a
   bound valid for the whole problem (the smaller of its own bound and B), so proving it
   within the gap proves the plan.
4. While UB is further than the MIP gap from the bound (at most ``restricted_mips`` times), a
   restricted MILP
   with every row of the full problem (capacity and carbon cap), warm-started from the
   incumbent, stopping early at a plan the bound alone proves. It holds the pricing set when
   that is at most ``EXACT_SET_GROWTH`` times the alternative, each demand's
   ``RESTRICTED_OPTIONS_PER_DEMAND`` options of lowest reduced cost plus the incumbent's
   options (a heuristic set: its bound is not the problem's). When the heuristic set ends
   proven at its own gap without closing the global one, the next MILP holds the pricing set
   (every option when the LP is not complete); when it ends on its node limit, the set
   doubles.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np

from optimization.aggregation import Aggregation, aggregate, disaggregate
from optimization.allocation_matrix import AllocationLayout
from optimization.column_generation import (
    MIN_SOLVE_BUDGET_S,
    Master,
    PricedLP,
    cheapest_per_demand,
    price_and_solve,
    solve_lp_by_columns,
)
from optimization.greedy import greedy_allocation
from optimization.problem import (
    AllocationProblem,
    AllocationSolution,
    all_deferred,
    deferred_of,
    make_solution,
    plan_cost_usd,
    trivial_lower_bound,
)
from optimization.solver import SafetyNet, SolveResult, SolverOptions, SolveStatus
from optimization.status import relative_gap

RESTRICTED_OPTIONS_PER_DEMAND = 20
# With ``SolverOptions.aggregate_tolerance_usd`` set, the aggregated round is solved instead
# only when it holds at most this share of the demands: aggregation costs seconds on a round
# of 5,000 demands, and a round of distinct jobs gains little from a few merges.
AGGREGATION_WORTH = 0.8
# The first restricted MILP holds the pricing set (every option that could prove or improve
# the plan) instead of each demand's best options when it is at most this many times larger.
EXACT_SET_GROWTH = 1.0
PROOF_MARGIN = 0.999
INTEGRAL_TOLERANCE = 1e-6
FIT_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Dive:
    """Outcome of LP diving: an integer plan and the best Lagrangian bound seen on the way
    (valid for the MILP whatever the fixings). ``finished``: the dive's LP came out integral;
    else its budget ran out first and the plan is its last LP rounded (``lp_rounding``), or
    None when not even one LP of the dive was solved."""

    option_count: np.ndarray | None
    bound_usd: float
    finished: bool = False


def lp_rounding(p: AllocationProblem, priced: PricedLP) -> np.ndarray:
    """An LP solution's whole jobs (x >= floor(x_LP) fits where x_LP does, fixings included:
    x_LP >= them), completed greedily in order of reduced cost: a plan in one greedy pass that
    follows the LP."""
    return greedy_allocation(p, start=np.floor(priced.option_x + INTEGRAL_TOLERANCE),
                             option_rank=priced.reduced_cost_usd)


@dataclass(frozen=True)
class RestrictedSolve:
    """A restricted MILP's plan (jobs per option of the full problem) and HiGHS's outcome."""

    option_count: np.ndarray
    result: SolveResult


def fix_one_more(p: AllocationProblem, candidates: np.ndarray, option_x: np.ndarray,
                 fixed: np.ndarray, fixed_per_demand: np.ndarray, used: np.ndarray,
                 carbon_left: float) -> tuple[bool, float]:
    """A dive's step (``incumbent_by_diving``): one more job fixed onto each of the
    ``candidates`` in order, where its demand has jobs left to fix, the option holds fewer than
    ceil(x) fixed jobs, the GPUs of every fixed job still fit in each cell, and its emissions
    under what is left of the cap. ``fixed`` (per option), ``fixed_per_demand`` and ``used``
    (GPUs per flat cell) are updated in place; whether anything was fixed, and the cap left."""
    capacity = p.capacity_gpus.reshape(-1)
    progressed = False
    for o in candidates:
        d = p.option_demand[o]
        if fixed_per_demand[d] >= p.demand_count[d] or fixed[o] >= np.ceil(option_x[o]):
            continue
        cells_o = p.option_cells(o)
        if (used[cells_o] + p.option_gpus[o] > capacity[cells_o] + FIT_TOLERANCE).any():
            continue
        if p.option_carbon_kg[o] > carbon_left + FIT_TOLERANCE:
            continue
        used[cells_o] += p.option_gpus[o]
        carbon_left -= p.option_carbon_kg[o]
        fixed[o] += 1
        fixed_per_demand[d] += 1
        progressed = True
    return progressed, carbon_left


def incumbent_by_diving(master: Master, priced: PricedLP, net: SafetyNet) -> Dive:
    """LP diving: round up fractional jobs where capacity (and the cap) allow, re-optimise.

    Each dive fixes, for every demand still fractional, one more job onto the option the LP
    likes best (highest value), greedily in order of that value and only while the GPUs of all
    fixed jobs fit in capacity and their emissions under the carbon cap, so the LP stays
    feasible (unfixed jobs can always defer, at zero emissions). The LP then re-prices and
    re-solves around the fixings. Ends when the LP solution is integral, or after
    ``dive_steps`` re-solves (or when the wall-clock safety net ``net`` is hit) with its last
    LP rounded: the dive's progress is kept (on the 5000x20x24 round a dive takes dozens of
    re-solves of up to 5 s, and a budget that ends it is the rule there).
    """
    p = master.p
    fixed = np.zeros(p.n_options)  # jobs fixed onto each option
    fixed_per_demand = np.zeros(p.n_demands)
    used = np.zeros(p.n_resources * p.n_slots)
    carbon_left = np.inf if p.carbon_cap_kg is None else float(p.carbon_cap_kg)
    last, bound = priced, priced.bound_usd
    step = 0
    while True:
        option_x = last.option_x
        frac = np.abs(option_x - np.rint(option_x)) > INTEGRAL_TOLERANCE
        if not frac.any():
            return Dive(np.rint(option_x).astype(int), bound, finished=True)
        if step == master.options.dive_steps or net.expired():
            return Dive(lp_rounding(p, last) if step else None, bound)
        candidates = np.flatnonzero(frac)
        candidates = candidates[np.argsort(-option_x[candidates], kind="stable")]
        progressed, carbon_left = fix_one_more(p, candidates, option_x, fixed, fixed_per_demand,
                                               used, carbon_left)
        if progressed:
            chosen = np.flatnonzero(fixed > 0)
            lower, upper = fixed[chosen], master.upper_of(chosen)
        else:
            # Every fractional option is blocked by the jobs fixed so far: forbid them.
            chosen = candidates
            lower = upper = np.zeros(len(chosen))
        master.lp.change_column_bounds(master.column_of[chosen], lower, upper)
        solved = price_and_solve(master, net, bound, lp_is_bound=False)
        if solved is None:
            return Dive(lp_rounding(p, last) if step else None, bound)
        last, bound = solved, solved.bound_usd
        step += 1


@dataclass(frozen=True)
class PricingSet:
    """Options a plan must use to cost less than ``outside_usd``; any other plan costs more."""

    options: np.ndarray
    outside_usd: float


def proof_bound_usd(upper_usd: float, mip_gap: float) -> float:
    """The smallest bound B with relative_gap(upper, B) <= mip_gap: B = U - gap |U|."""
    return upper_usd - mip_gap * abs(upper_usd)


def pricing_set(priced: PricedLP, incumbent: np.ndarray, upper_usd: float,
                mip_gap: float) -> PricingSet:
    r"""Reduced-cost fixing towards a proof. With the complete LP (optimum LB, row duals
    (y, mu), reduced costs rc_o = c_o - a_o'(y, mu)) every plan x costs at least
    LB + sum_{o : rc_o >= 0} rc_o x_o: the options with rc_o < 0 are master columns at their
    upper bound count_d, whose bound duals w_o = -rc_o add w_o (count_d - x_o) >= 0 instead.
    So a plan using an option with

        rc_o > B - LB,   B = proof_bound_usd(UB, gap),

    costs more than B. A MILP over the other options (and the incumbent's) then has a bound
    b valid for the whole problem as min(b, B): proving it within the gap proves UB, and its
    optimum is the problem's when below B.
    """
    # A hair inside the gap, so that a bound of exactly B proves despite rounding.
    outside_usd = proof_bound_usd(upper_usd, mip_gap * PROOF_MARGIN)
    slack_usd = outside_usd - priced.objective_usd + INTEGRAL_TOLERANCE
    keep = np.union1d(np.flatnonzero(priced.reduced_cost_usd <= slack_usd),
                      np.flatnonzero(incumbent > 0))
    return PricingSet(keep, outside_usd)


def goal_usd(bound_usd: float, mip_gap: float) -> float:
    """The largest cost U with relative_gap(U, bound) <= mip_gap: a plan this cheap is proven
    within the gap by the bound alone."""
    return bound_usd / (1 - mip_gap) if bound_usd >= 0 else bound_usd / (1 + mip_gap)


def solve_restricted_mip(layout: AllocationLayout, keep: np.ndarray, options: SolverOptions,
                         net: SafetyNet, warm: np.ndarray, goal: float) -> RestrictedSolve | None:
    """The MILP over the options ``keep`` only (every row kept, the carbon cap included),
    warm-started from the plan ``warm`` (jobs per option, its options within ``keep``).

    HiGHS stops at its own MIP gap, or earlier, at the first plan costing at most ``goal``
    (a plan the global bound alone proves within the gap).
    """
    master = Master(layout, options)
    master.add(keep, integer=True)
    master.lp.set_integrality(True)
    master.lp.set_mip_goal(options.mip_gap, goal)
    p = layout.problem
    master.lp.set_solution(np.concatenate([deferred_of(p, warm), warm[master.columns]]))
    solved = master.lp.solve(max(net.left_s(), MIN_SOLVE_BUDGET_S))
    net.note(solved.result)
    if not solved.result.has_solution:
        return None
    option_x, _ = master.split(solved.x)
    return RestrictedSolve(np.rint(option_x).astype(int), solved.result)


def solve_allocation_lp_guided(p: AllocationProblem, options: SolverOptions) -> AllocationSolution:
    """Greedy, column generation, diving, restricted MILPs (module docstring), within the
    options' work budget: OPTIMAL when the plan is proven within the MIP gap, else FEASIBLE
    (``wall_clock_hit`` when the safety net stopped a stage)."""
    started = time.perf_counter()
    net = SafetyNet(options.time_limit_s)
    if p.n_options == 0:
        return all_deferred(p, SolveStatus.OPTIMAL)
    if options.aggregate_tolerance_usd > 0:
        agg = aggregate(p, options.aggregate_tolerance_usd)
        if agg.problem.n_demands <= AGGREGATION_WORTH * p.n_demands:
            return _solve_aggregated(agg, options, net, started)
    layout = AllocationLayout(p)
    x = greedy_allocation(p)
    upper = plan_cost_usd(p, x, deferred_of(p, x))
    source = "greedy"
    if net.expired():  # the greedy pass alone spent the safety net: keep its plan
        floor = trivial_lower_bound(p)
        status = (SolveStatus.OPTIMAL if relative_gap(upper, floor) <= options.mip_gap
                  else SolveStatus.FEASIBLE)
        return make_solution(p, status, x, floor, time.perf_counter() - started, 0.0,
                             "plan from greedy; wall-clock safety net hit before the LP",
                             wall_clock_hit=True)
    relaxation = solve_lp_by_columns(p, options, net, layout,
                                     initial_options=np.flatnonzero(x))
    bound, priced, master = relaxation.bound_usd, relaxation.priced, relaxation.master

    def proven() -> bool:
        return relative_gap(upper, bound) <= options.mip_gap

    lp_note = "LP complete" if priced is not None and priced.complete else "LP not finished"
    if priced is not None:
        rounded = lp_rounding(p, priced)
        value = plan_cost_usd(p, rounded, deferred_of(p, rounded))
        if value < upper:
            x, upper, source = rounded, value, "LP rounding"
    if priced is not None and not proven() and not net.expired():
        dive = incumbent_by_diving(master, priced, net)
        bound = max(bound, dive.bound_usd)
        if dive.option_count is not None:
            value = plan_cost_usd(p, dive.option_count, deferred_of(p, dive.option_count))
            if value < upper:
                x, upper = dive.option_count, value
                source = "LP diving" if dive.finished else "LP diving, rounded at its budget"
    highs_s = master.lp.solve_s
    score = p.option_cost_usd if priced is None else priced.reduced_cost_usd
    complete_lp = priced if priced is not None and priced.complete else None
    per_demand = RESTRICTED_OPTIONS_PER_DEMAND
    go_exact = False
    for _ in range(options.restricted_mips):
        if proven() or net.expired():
            break
        keep = np.union1d(cheapest_per_demand(p, score, per_demand), np.flatnonzero(x > 0))
        outside_usd = -np.inf  # what any plan using an option outside ``keep`` costs at least
        if complete_lp is not None:
            exact = pricing_set(complete_lp, x, upper, options.mip_gap)
            if go_exact or len(exact.options) <= EXACT_SET_GROWTH * len(keep):
                keep, outside_usd = exact.options, exact.outside_usd
            elif np.isin(exact.options, keep).all():
                outside_usd = exact.outside_usd
        elif go_exact:
            keep, outside_usd = np.arange(p.n_options), np.inf
        solved = solve_restricted_mip(layout, keep, options, net, x,
                                      goal_usd(bound, options.mip_gap))
        if solved is None:
            break
        highs_s += solved.result.solve_time_s
        value = plan_cost_usd(p, solved.option_count, deferred_of(p, solved.option_count))
        if value < upper:
            x, upper, source = solved.option_count, value, "restricted MILP"
        if solved.result.status is SolveStatus.OPTIMAL:
            # Plans within ``keep`` cost at least its bound, the others at least outside_usd.
            # (Not read on a limit: HiGHS may report a dual bound of 0 before it has one.)
            bound = max(bound, min(solved.result.bound, outside_usd, upper))
        if outside_usd > -np.inf:
            break  # it held every option that could improve or prove: proven, or out of budget
        if solved.result.status is SolveStatus.OPTIMAL:
            # Proven at its own gap, it stopped near its own (higher) bound: a bigger restricted
            # set warm-started from the same plan stops at once the same way, so go straight
            # to every option that could matter (whose bound is the problem's).
            go_exact = True
        else:
            per_demand *= 2
    status = SolveStatus.OPTIMAL if proven() else SolveStatus.FEASIBLE
    elapsed = time.perf_counter() - started
    note = "; wall-clock safety net hit" if net.hit else ""
    return make_solution(p, status, x, bound, elapsed - highs_s, highs_s,
                         message=f"plan from {source}; {lp_note}{note}", wall_clock_hit=net.hit)


def _solve_aggregated(agg: Aggregation, options: SolverOptions, net: SafetyNet,
                      started: float) -> AllocationSolution:
    """The aggregated round solved as any round (within what is left of the safety net), its
    plan handed back to the original demands. Its bound stays proven for the original round:
    it bounds the aggregated optimum, which is at most the original's (``optimization.
    aggregation``); the plan costs at most the aggregated plan plus ``agg.bound_usd``."""
    p = agg.original
    inner = solve_allocation_lp_guided(
        agg.problem, dataclasses.replace(options, aggregate_tolerance_usd=0.0,
                                         time_limit_s=max(net.left_s(), MIN_SOLVE_BUDGET_S)))
    handed_back = disaggregate(agg, inner.option_count)
    plan = handed_back.option_count
    status = (SolveStatus.OPTIMAL
              if relative_gap(handed_back.cost_usd, inner.bound_usd) <= options.mip_gap
              else SolveStatus.FEASIBLE)
    elapsed = time.perf_counter() - started
    note = (f"{p.n_demands} demands aggregated into {agg.problem.n_demands} (within "
            f"{agg.tolerance_usd:g} USD a job); {inner.message}")
    return make_solution(p, status, plan, inner.bound_usd, elapsed - inner.solve_time_s,
                         inner.solve_time_s, message=note, wall_clock_hit=inner.wall_clock_hit)
