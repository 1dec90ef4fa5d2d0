"""An exact, scalable way to solve the allocation MILP: LP first, then a MILP over few options.

1. Column generation solves the LP relaxation over *all* options while holding only a few:
   start from each demand's cheapest options, and repeatedly add the options whose reduced
   cost is negative,

       rc_o = c_o - y_{d(o)} - gpus_o * sum_{t in run(o)} y_{r(o), t} - carbon_o * y_cap,

   priced for every option at once with prefix sums of the capacity duals. When no option
   prices out, the LP optimum LB is a lower bound on the MILP optimum.
2. An incumbent UB by LP diving: round fractional jobs up onto the option the LP likes best
   wherever the fixed jobs' GPUs still fit, re-price and re-solve the LP, repeat until the LP
   solution is integral.
3. While UB is further than the MIP gap from LB (and time remains), a MILP restricted to each
   demand's ``RESTRICTED_OPTIONS_PER_DEMAND`` options of lowest reduced cost (doubling each
   time) is solved warm-started from the incumbent. Any answer within the gap of LB is within
   the gap of the true optimum, since LB bounds the full MILP.
4. Reduced-cost fixing: an option with rc_o > UB - LB cannot be part of a solution better than
   UB. When every option with rc_o <= UB - LB was in the restricted MILP, its optimum is the
   full MILP's optimum and its bound is valid for the full problem.
"""

from __future__ import annotations

import time

import numpy as np

from optimization.allocation import COST_PARTS, all_deferred, breakdown_usd
from optimization.allocation_matrix import capacity_cells, option_columns
from optimization.problem import AllocationProblem, AllocationSolution
from optimization.solver import MatrixLP, SolverOptions, SolveStatus

INITIAL_OPTIONS_PER_DEMAND = 4
ADDED_PER_DEMAND_PER_ROUND = 4
MAX_PRICING_ROUNDS = 200
RC_TOLERANCE = 1e-7
GAP_TOLERANCE = 1e-9
RESTRICTED_OPTIONS_PER_DEMAND = 20


class _Master:
    """The restricted LP/MIP over a growing subset of options, held in one highspy object."""

    def __init__(self, p: AllocationProblem, cells: np.ndarray, options: SolverOptions) -> None:
        self.p = p
        self.cells = cells
        self.lp = MatrixLP(options)
        count = p.demand_count.astype(float)
        cap = p.capacity_gpus.reshape(-1)[cells]
        lower = [count, np.full(len(cells), -np.inf)]
        upper = [count, cap]
        if p.carbon_cap_kg is not None:
            lower.append([-np.inf])
            upper.append([p.carbon_cap_kg])
        self.lp.add_rows(np.concatenate(lower), np.concatenate(upper))
        # deferral columns first: the master is feasible from the start
        n_d = p.n_demands
        self.lp.add_columns(p.deferral_penalty_usd, np.zeros(n_d), count,
                            np.arange(n_d), np.arange(n_d), np.ones(n_d))
        self.columns = np.zeros(0, dtype=np.int64)  # option index of master column n_d + i
        self.in_master = np.zeros(p.n_options, dtype=bool)
        self.forbidden = np.zeros(p.n_options, dtype=bool)

    def add(self, options: np.ndarray, integer: bool = False) -> None:
        options = options[~self.in_master[options]]
        if not len(options):
            return
        p = self.p
        starts, rows, vals = option_columns(p, options, self.cells)
        self.lp.add_columns(p.option_cost_usd[options], np.zeros(len(options)),
                            p.demand_count[p.option_demand[options]].astype(float),
                            starts[:-1], rows, vals, integer=integer)
        self.columns = np.concatenate([self.columns, options])
        self.in_master[options] = True


def reduced_costs(p: AllocationProblem, cells: np.ndarray, row_duals: np.ndarray) -> np.ndarray:
    """rc_o for every option from the master's row duals (HiGHS: rc = c - A'y)."""
    n_d = p.n_demands
    cap_dual = np.zeros(p.n_resources * p.n_slots)
    cap_dual[cells] = row_duals[n_d: n_d + len(cells)]
    prefix = np.concatenate(
        [np.zeros((p.n_resources, 1)), np.cumsum(cap_dual.reshape(p.n_resources, p.n_slots), 1)],
        axis=1,
    )
    run_dual = (prefix[p.option_resource, p.option_start + p.option_slots]
                - prefix[p.option_resource, p.option_start])
    rc = p.option_cost_usd - row_duals[p.option_demand] - p.option_gpus * run_dual
    if p.carbon_cap_kg is not None:
        rc -= p.option_carbon_kg * row_duals[n_d + len(cells)]
    return rc


def _cheapest_per_demand(p: AllocationProblem, score: np.ndarray, k: int,
                         among: np.ndarray | None = None) -> np.ndarray:
    """Indices of the ``k`` lowest-scoring options of each demand (optionally among a mask)."""
    idx = np.arange(p.n_options) if among is None else np.flatnonzero(among)
    if not len(idx):
        return idx
    order = idx[np.lexsort((score[idx], p.option_demand[idx]))]
    demand = p.option_demand[order]
    first = np.searchsorted(demand, demand, side="left")
    rank = np.arange(len(order)) - first
    return order[rank < k]


def _price_and_solve(p: AllocationProblem, master: _Master, cells: np.ndarray, deadline: float):
    """Re-solve the master, adding priced-out options until none has negative reduced cost.

    Returns (objective, x, row duals, reduced costs) or None when a solve fails.
    """
    for _ in range(MAX_PRICING_ROUNDS):
        solved = master.lp.solve(max(deadline - time.perf_counter(), 0.1))
        if solved.result.status is not SolveStatus.OPTIMAL:
            return None
        rc = reduced_costs(p, cells, solved.row_duals)
        improving = (rc < -RC_TOLERANCE) & ~master.in_master
        if not improving.any():
            return solved.result.objective, solved.x, solved.row_duals, rc
        master.add(_cheapest_per_demand(p, rc, ADDED_PER_DEMAND_PER_ROUND, among=improving))
    return None


def solve_lp_by_columns(p: AllocationProblem, options: SolverOptions, deadline: float):
    """Column generation for the LP relaxation; returns (master, LB, x, duals, rc)."""
    cells = capacity_cells(p)
    master = _Master(p, cells, options)
    master.add(_cheapest_per_demand(p, p.option_cost_usd, INITIAL_OPTIONS_PER_DEMAND))
    solved = _price_and_solve(p, master, cells, deadline)
    if solved is None:
        return master, None, None, None, None
    return master, *solved


def _column_counts(p: AllocationProblem, columns: np.ndarray, x: np.ndarray):
    """Split a master solution vector into (per option, per demand deferral)."""
    n_d = p.n_demands
    option_x = np.zeros(p.n_options)
    option_x[columns] = x[n_d:]
    return option_x, x[:n_d]


def incumbent_by_diving(p: AllocationProblem, master: _Master, option_x: np.ndarray,
                        deadline: float) -> tuple[np.ndarray, np.ndarray] | None:
    """LP diving: round up fractional jobs where capacity allows, re-optimise the LP, repeat.

    Each dive fixes, for every demand still fractional, one more job onto the option the LP
    likes best (highest value), greedily in order of that value and only while the GPUs of all
    fixed jobs fit in capacity, so the LP stays feasible (unfixed jobs can always defer). The
    LP then re-prices and re-solves around the fixings. Ends when the LP solution is integral.
    """
    cells = master.cells
    fixed = np.zeros(p.n_options)  # jobs fixed onto each option
    used = np.zeros(p.n_resources * p.n_slots)
    _, occ_r, occ_t = p.occupancy()
    occ_start = np.concatenate([[0], np.cumsum(p.option_slots)])
    occ_cell = occ_r * p.n_slots + occ_t
    capacity = p.capacity_gpus.reshape(-1)
    fixed_per_demand = np.zeros(p.n_demands)
    master.add(np.flatnonzero(option_x > 1e-6))
    while True:
        frac = np.abs(option_x - np.rint(option_x)) > 1e-6
        if not frac.any():
            return option_x
        if time.perf_counter() > deadline:
            return None
        candidates = np.flatnonzero(frac)
        candidates = candidates[np.argsort(-option_x[candidates], kind="stable")]
        progressed = False
        for o in candidates:
            d = p.option_demand[o]
            if fixed_per_demand[d] >= p.demand_count[d] or fixed[o] >= np.ceil(option_x[o]):
                continue
            cells_o = occ_cell[occ_start[o]: occ_start[o + 1]]
            if (used[cells_o] + p.option_gpus[o] > capacity[cells_o] + 1e-9).any():
                continue
            used[cells_o] += p.option_gpus[o]
            fixed[o] += 1
            fixed_per_demand[d] += 1
            progressed = True
        column_of = {o: i for i, o in enumerate(master.columns)}
        if progressed:
            chosen = np.flatnonzero(fixed > 0)
            lower, upper = fixed[chosen], p.demand_count[p.option_demand[chosen]].astype(float)
        else:
            # Every fractional option is blocked by the jobs fixed so far: forbid them.
            chosen = candidates
            lower = upper = np.zeros(len(chosen))
        idx = np.array([p.n_demands + column_of[o] for o in chosen])
        master.lp.change_column_bounds(idx, lower, upper)
        master.forbidden[chosen[upper == 0]] = True
        solved = _price_and_solve(p, master, cells, deadline)
        if solved is None:
            return None
        option_x, _ = _column_counts(p, master.columns, solved[1])


def _restricted(p: AllocationProblem, keep: np.ndarray, demands: np.ndarray,
                capacity: np.ndarray):
    """A problem over the chosen demands' options ``keep`` and the given capacity."""
    demand_map = np.flatnonzero(demands)
    new_id = np.full(p.n_demands, -1)
    new_id[demand_map] = np.arange(len(demand_map))
    fields = {name: getattr(p, name) for name in p.__dataclass_fields__}
    for name in fields:
        if name.startswith("option_"):
            fields[name] = fields[name][keep]
    fields["option_demand"] = new_id[p.option_demand[keep]]
    fields["demand_count"] = p.demand_count[demand_map]
    fields["deferral_penalty_usd"] = p.deferral_penalty_usd[demand_map]
    fields["capacity_gpus"] = np.maximum(capacity, 0).reshape(p.n_resources, p.n_slots)
    if p.carbon_cap_kg is not None:
        return None  # the cap couples all demands; the caller falls back to deferral
    return AllocationProblem(**fields), demand_map


def _solve_matrix_mip(p: AllocationProblem, options: SolverOptions, deadline: float,
                      warm: tuple[np.ndarray, np.ndarray] | None):
    """Solve ``p`` as a MIP with highspy; (option counts, deferrals) or None."""
    cells = capacity_cells(p)
    master = _Master(p, cells, options)
    master.add(np.arange(p.n_options), integer=True)
    master.lp.set_integrality(True)
    if warm is not None:
        warm_x, warm_defer = warm
        master.lp.set_solution(np.concatenate([warm_defer, warm_x[master.columns]]))
    solved = master.lp.solve(max(deadline - time.perf_counter(), 0.1))
    if not solved.result.has_solution:
        return None
    option_x, defer_x = _column_counts(p, master.columns, solved.x)
    return np.rint(option_x).astype(int), np.rint(defer_x).astype(int), solved.result


def _objective(p: AllocationProblem, x: np.ndarray, deferred: np.ndarray) -> float:
    parts = breakdown_usd(p, x, deferred)
    return sum(parts[k] for k in COST_PARTS)


def solve_allocation_lp_guided(p: AllocationProblem, options: SolverOptions) -> AllocationSolution:
    started = time.perf_counter()
    deadline = started + options.time_limit_s
    if p.n_options == 0:
        return all_deferred(p, SolveStatus.OPTIMAL.value)
    master, lower, x_lp, _, rc = solve_lp_by_columns(p, options, deadline)
    if lower is None:
        return all_deferred(p, SolveStatus.NO_SOLUTION.value,
                            time.perf_counter() - started - master.lp.solve_s, master.lp.solve_s)
    option_x, _ = _column_counts(p, master.columns, x_lp)
    dived = incumbent_by_diving(p, master, option_x, deadline)
    x = np.zeros(p.n_options, int) if dived is None else np.rint(dived).astype(int)
    deferred = p.demand_count - np.bincount(p.option_demand, weights=x, minlength=p.n_demands)
    deferred = deferred.astype(int)
    upper = _objective(p, x, deferred)
    bound = lower
    restricted_s = 0.0
    per_demand = RESTRICTED_OPTIONS_PER_DEMAND
    everything = np.ones(p.n_demands, bool)
    full_capacity = p.capacity_gpus.reshape(-1)
    while _gap(upper, bound) > options.mip_gap and time.perf_counter() < deadline:
        keep = np.union1d(_cheapest_per_demand(p, rc, per_demand), np.flatnonzero(x > 0))
        restricted = _restricted(p, keep, everything, full_capacity)
        if restricted is None:
            break
        solved = _solve_matrix_mip(restricted[0], options, deadline, warm=(x[keep], deferred))
        if solved is None:
            break
        sub_x, sub_defer, result = solved
        restricted_s += result.solve_time_s
        candidate = np.zeros(p.n_options, int)
        candidate[keep] = sub_x
        value = _objective(p, candidate, sub_defer)
        if value < upper:
            x, deferred, upper = candidate, sub_defer, value
        # The restricted optimum is the global one when every option that could improve on
        # it (reduced cost within the gap to LB) was in the restricted set.
        could_improve = np.flatnonzero(rc <= upper - lower + 1e-9)
        if result.status is SolveStatus.OPTIMAL and np.isin(could_improve, keep).all():
            bound = max(bound, min(result.bound, upper))
            break
        if len(keep) >= p.n_options:
            break
        per_demand *= 2
    status = SolveStatus.OPTIMAL if _gap(upper, bound) <= options.mip_gap else SolveStatus.FEASIBLE
    elapsed = time.perf_counter() - started
    highs_s = master.lp.solve_s + restricted_s
    return AllocationSolution(
        status=status.value,
        option_count=x,
        deferred_count=deferred,
        objective_usd=upper,
        bound_usd=bound,
        cost_breakdown_usd=breakdown_usd(p, x, deferred),
        build_time_s=elapsed - highs_s,
        solve_time_s=highs_s,
    )


def _gap(upper: float, lower: float) -> float:
    """Relative gap, with float noise (below GAP_TOLERANCE) counted as none."""
    gap = (upper - lower) / max(abs(upper), 1e-12)
    return 0.0 if gap <= GAP_TOLERANCE else gap
