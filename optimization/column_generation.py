r"""The LP relaxation of the allocation problem over all options while holding few: column
generation, with a valid lower bound at every step.

Start from each demand's cheapest options and repeatedly add the options whose reduced cost

    rc_o = c_o - y_{d(o)} - gpus_o * sum_{t in run(o)} mu_{r(o), t} - carbon_kg_o * lambda

is negative (y: balance duals, mu <= 0: capacity duals, lambda <= 0: carbon-cap dual, in
HiGHS's signs), priced for every option at once with prefix sums of the capacity duals. When
no option prices out, the master's optimum is the LP optimum over all options.

Lower bound at every pricing round (Lagrangian relaxation of the capacity and cap rows with
the master's duals, clipped to their signs; valid for the MILP too):

    L(mu, lambda) = sum_{(r,t)} free_{r,t} mu_{r,t} + cap * lambda
                    + sum_d count_d * min(penalty_d, min_{o of d} (c_o - gpus_o * run_mu_o
                                                                    - carbon_kg_o * lambda))

so a round stopped by its budget (``SolverOptions.pricing_rounds``, or the wall-clock safety net)
still reports a proven bound. With mu = lambda = 0 it is
the trivial bound sum_d count_d min(penalty_d, min_o c_o); at the LP optimum it equals the LP
bound (strong duality).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optimization.allocation_matrix import AllocationLayout
from optimization.problem import AllocationProblem, trivial_lower_bound
from optimization.solver import MatrixLP, SafetyNet, SolverOptions, SolveStatus

INITIAL_OPTIONS_PER_DEMAND = 4
ADDED_PER_DEMAND_PER_ROUND = 4
RC_TOLERANCE = 1e-7
# The least wall clock one LP solve is given when the safety net has (nearly) run out and no LP
# has been solved yet: the LP is what every later stage needs.
MIN_SOLVE_BUDGET_S = 0.05


class Master:
    """The restricted LP/MIP over a growing subset of options, held in one MatrixLP.

    Columns follow :class:`AllocationLayout`: deferrals first, then each added option.
    ``bounded``: option columns carry x_o <= count_d(o) (``AllocationLayout.option_columns``).
    """

    def __init__(self, layout: AllocationLayout, options: SolverOptions, *,
                 bounded: bool = True) -> None:
        self.layout = layout
        self.options = options
        self.bounded = bounded
        self.p = layout.problem
        self.lp: MatrixLP = layout.new_lp(options)
        self.columns = np.zeros(0, dtype=np.int64)  # option index of column n_d + k
        self.column_of = np.full(self.p.n_options, -1, dtype=np.int64)  # -1: not held

    @property
    def in_master(self) -> np.ndarray:
        return self.column_of >= 0

    def add(self, options: np.ndarray, *, integer: bool = False) -> None:
        options = np.unique(options)
        options = options[self.column_of[options] < 0]
        if not len(options):
            return
        self.layout.option_columns(options, bounded=self.bounded).add_to(self.lp,
                                                                         integer=integer)
        self.column_of[options] = self.p.n_demands + len(self.columns) + np.arange(len(options))
        self.columns = np.concatenate([self.columns, options])

    def upper_of(self, options: np.ndarray) -> np.ndarray:
        """The upper bound each of these options' columns was given."""
        if not self.bounded:
            return np.full(len(options), np.inf)
        return self.p.demand_count[self.p.option_demand[options]].astype(float)

    def split(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A master solution vector as (jobs per option, jobs deferred per demand)."""
        n_d = self.p.n_demands
        option_x = np.zeros(self.p.n_options)
        option_x[self.columns] = z[n_d:]
        return option_x, z[:n_d]


@dataclass(frozen=True)
class PricedLP:
    """The master LP after pricing: its solution, duals, reduced costs of all options."""

    objective_usd: float
    option_x: np.ndarray  # per option
    row_duals: np.ndarray
    reduced_cost_usd: np.ndarray  # per option
    complete: bool  # no option prices out: objective_usd is the LP optimum over all options
    bound_usd: float  # best valid lower bound on the MILP found so far


@dataclass(frozen=True)
class Relaxation:
    """Column generation's outcome: the master (to dive in) and its last priced LP (None when
    not even the first master LP was solved in time; ``bound_usd`` is then the trivial one)."""

    master: Master
    priced: PricedLP | None
    bound_usd: float


def split_duals(layout: AllocationLayout, row_duals: np.ndarray):
    """(balance y, capacity mu per flat cell <= 0, carbon lambda <= 0) from HiGHS row duals."""
    p = layout.problem
    n_d, first = p.n_demands, layout.first_capacity_row
    mu = np.zeros(p.n_resources * p.n_slots)
    mu[layout.cells] = np.minimum(row_duals[first: first + len(layout.cells)], 0.0)
    lam = 0.0 if layout.carbon_row is None else min(float(row_duals[layout.carbon_row]), 0.0)
    return row_duals[:n_d], mu, lam


def priced_costs(layout: AllocationLayout, mu: np.ndarray, lam: float) -> np.ndarray:
    """c_o - gpus_o * sum_{t in run(o)} mu_{r(o),t} - carbon_kg_o * lambda for every option
    (the run sums by ``AllocationProblem.window_sums``)."""
    p = layout.problem
    priced = p.window_sums(mu)
    priced *= -p.option_gpus
    priced += p.option_cost_usd
    if lam:
        priced -= p.option_carbon_kg * lam
    return priced


def reduced_costs(layout: AllocationLayout, row_duals: np.ndarray) -> np.ndarray:
    """rc_o for every option from the master's row duals (HiGHS: rc = c - A'y)."""
    y, mu, lam = split_duals(layout, row_duals)
    return priced_costs(layout, mu, lam) - y[layout.problem.option_demand]


def lagrangian_bound(layout: AllocationLayout, mu: np.ndarray, lam: float,
                     priced: np.ndarray | None = None) -> float:
    """L(mu, lambda) of the module docstring: a lower bound for any mu <= 0, lambda <= 0
    (``priced``: ``priced_costs`` at these duals, when already at hand)."""
    p = layout.problem
    if priced is None:
        priced = priced_costs(layout, mu, lam)
    return lagrangian_value(p, mu, lam,
                            p.demand_groups.minimum(priced, initial=p.deferral_penalty_usd))


def lagrangian_value(p: AllocationProblem, mu: np.ndarray, lam: float,
                     least_usd: np.ndarray) -> float:
    """L(mu, lambda) from each demand's least priced way, min(penalty_d, min_o priced_o)
    (``least_usd``; pricing at the sites gathers it from every shard's minima)."""
    cap = 0.0 if p.carbon_cap_kg is None else float(p.carbon_cap_kg) * lam
    return float(p.capacity_gpus.reshape(-1) @ mu + cap + p.demand_count @ least_usd)


# Above this many padded entries per option, ``cheapest_per_demand`` sorts instead of
# partitioning a (demands x most options of a demand) table: demands of very unequal sizes
# (a period plan's) would make the table mostly padding.
PADDED_TABLE_GROWTH = 2.0
# Fewer options than 1 / SORT_SHARE of all to choose among: sorting them is the cheaper way.
SORT_SHARE = 8


def cheapest_per_demand(p: AllocationProblem, score: np.ndarray, k: int,
                        among: np.ndarray | None = None) -> np.ndarray:
    """Indices of the ``k`` lowest-scoring options of each demand (optionally among a mask),
    ties to the lowest index; sorted.

    Over all options, each demand's k-th lowest score is found by partitioning a table of
    demands x options (linear time: a sort of millions of options took a second); the options
    below it are taken, and of those equal to it the first ones, up to k.
    """
    groups = p.demand_groups
    sizes = groups.sizes
    widest = int(sizes.max(initial=0))
    padded = p.n_demands * widest
    few = among is not None and np.count_nonzero(among) * SORT_SHARE < p.n_options
    if few or k >= widest or padded > PADDED_TABLE_GROWTH * p.n_options:
        return _cheapest_by_sorting(p, score, k, among)
    if among is not None:  # the others score +inf and are dropped at the end
        chosen = cheapest_per_demand(p, np.where(among, score, np.inf), k)
        return chosen[among[chosen]]
    table = np.full((p.n_demands, widest), np.inf)
    demand_of = np.repeat(np.arange(p.n_demands), sizes)
    table[demand_of, np.arange(p.n_options) - groups.bounds[:-1][demand_of]] = (
        groups.grouped(score))
    kth = np.partition(table, k - 1, axis=1)[:, k - 1]
    # a demand with fewer than k options keeps them all (its k-th entry is padding)
    kth[sizes < k] = np.inf
    threshold = kth[p.option_demand]
    below = score < threshold
    short = sizes[p.option_demand] < k
    tied = np.flatnonzero((score == threshold) & ~short)
    # of the options tied at a demand's k-th score, the first (k - below) in index order
    below_count = np.bincount(p.option_demand[below], minlength=p.n_demands)
    tied_demand = p.option_demand[tied]
    tied = tied[np.argsort(tied_demand, kind="stable")]
    tied_demand = p.option_demand[tied]
    rank = np.arange(len(tied)) - np.searchsorted(tied_demand, tied_demand, side="left")
    take = tied[rank < k - below_count[tied_demand]]
    return np.union1d(np.flatnonzero(below | short), take)


def _cheapest_by_sorting(p: AllocationProblem, score: np.ndarray, k: int,
                         among: np.ndarray | None) -> np.ndarray:
    idx = np.arange(p.n_options) if among is None else np.flatnonzero(among)
    if not len(idx):
        return idx
    order = idx[np.lexsort((score[idx], p.option_demand[idx]))]
    demand = p.option_demand[order]
    first = np.searchsorted(demand, demand, side="left")
    rank = np.arange(len(order)) - first
    return np.sort(order[rank < k])


def price_and_solve(master: Master, net: SafetyNet, bound_usd: float, *,
                    lp_is_bound: bool = True) -> PricedLP | None:
    """Re-solve the master, adding priced-out options until none has negative reduced cost,
    for at most ``pricing_rounds`` rounds (then ``complete`` is False; the wall-clock safety
    net ``net`` also stops it, and says so). None when the master LP itself fails.

    ``lp_is_bound``: the master's bounds are the problem's own, so its complete LP optimum
    bounds the MILP (False while diving has fixed jobs; the Lagrangian bound stays valid).
    """
    layout = master.layout
    last: PricedLP | None = None
    for _ in range(master.options.pricing_rounds):
        if last is not None and net.expired():
            return last
        solved = master.lp.solve(max(net.left_s(), MIN_SOLVE_BUDGET_S))
        net.note(solved.result)
        if solved.result.status is not SolveStatus.OPTIMAL:
            return last
        y, mu, lam = split_duals(layout, solved.row_duals)
        priced = priced_costs(layout, mu, lam)
        bound_usd = max(bound_usd, lagrangian_bound(layout, mu, lam, priced))
        rc = priced
        rc -= y[master.p.option_demand]
        improving = (rc < -RC_TOLERANCE) & ~master.in_master
        option_x, _ = master.split(solved.x)
        complete = not improving.any()
        if complete and lp_is_bound:
            bound_usd = max(bound_usd, solved.result.objective)
        last = PricedLP(solved.result.objective, option_x, solved.row_duals, rc, complete,
                        bound_usd)
        if complete:
            return last
        master.add(cheapest_per_demand(master.p, rc, ADDED_PER_DEMAND_PER_ROUND, among=improving))
    return last


def solve_lp_by_columns(p: AllocationProblem, options: SolverOptions, net: SafetyNet,
                        layout: AllocationLayout | None = None,
                        initial_options: np.ndarray | None = None, *,
                        bounded: bool = True) -> Relaxation:
    """Column generation for the LP relaxation, within ``options.pricing_rounds`` (and the
    wall-clock safety net ``net``).

    ``initial_options`` join the first master beside each demand's cheapest options: the
    columns of a related problem's optimum (a larger coalition's, say) save pricing rounds.

    ``bounded``: the option columns carry x_o <= count_d (implied by the balance rows, so the
    optimum is the same). Dual simplex then flips a priced-in column to its bound where an
    unbounded one needs pivots: on the 5000x20x24 round the master's re-solves take 5-7x less
    time. Without it (the market's prices, ``optimization.duals``) every marginal value stays
    on the rows, none in a bound's reduced cost.
    """
    layout = AllocationLayout(p) if layout is None else layout
    master = Master(layout, options, bounded=bounded)
    first = cheapest_per_demand(p, p.option_cost_usd, INITIAL_OPTIONS_PER_DEMAND)
    if initial_options is not None and len(initial_options):
        first = np.union1d(first, initial_options)
    master.add(first)
    bound = trivial_lower_bound(p)  # L(0, 0)
    priced = price_and_solve(master, net, bound)
    return Relaxation(master, priced, bound if priced is None else priced.bound_usd)
