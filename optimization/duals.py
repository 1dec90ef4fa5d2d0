r"""Prices for the market: the duals of the allocation problem's LP relaxation.

The LP relaxation (P), with x_o >= 0 the jobs on option o and u_d >= 0 the jobs deferred:

    min  sum_o c_o x_o + sum_d p_d u_d
    s.t. sum_{o of d} x_o + u_d = n_d                       (y_d,      free)
         sum_{o on r running in t} gpus_o x_o <= free_{r,t}  (pi_{r,t} >= 0)
         sum_o carbon_kg_o x_o <= cap                        (kappa    >= 0, when capped)

and its dual (D):

    max  sum_d n_d y_d - sum_{r,t} free_{r,t} pi_{r,t} - cap kappa
    s.t. y_d <= p_d
         y_{d(o)} <= c_o + gpus_o sum_{t in run(o)} pi_{r(o),t} + carbon_kg_o kappa   for all o

Read as a market: pi_{r,t} is the clearing price of one GPU of pool r in slot t (USD per
GPU-slot, like a locational marginal price), kappa the carbon price that the cap implies (USD
per kg, on top of the carbon price already in c_o), y_d what one more job of demand d would
cost the federation (USD per job, at most its deferral penalty). Complementary slackness: a
pool-slot that is not full has pi = 0; a job that runs on o pays exactly its value,
c_o + gpus_o * (rent of its GPU-slots) + carbon_kg_o * kappa = y_d, and every option it did
not take would cost at least that; a cap that does not bind has kappa = 0. At tax kappa
(no cap), the capped plan minimises the taxed cost: kappa is the tax that gives the same
emissions.

Why the LP relaxation and not "fix the integers and re-solve". Every variable of this model is
integer; fixing them all leaves an LP whose only feasible point is the plan, so any dual
vector that prices the fixed columns is optimal and HiGHS reports an arbitrary one (all zeros,
typically): no information. The LP relaxation's duals are also the better-founded choice:
relaxing the capacity and cap rows in a Lagrangian way leaves one subproblem per demand,
min {c'x + p u : sum x + u = n_d, x, u integer >= 0}, whose LP has integral vertices (one
equality with unit coefficients). By Geoffrion's theorem the Lagrangian dual of the MILP then
equals the LP relaxation, and its optimal multipliers, the LP duals above, are the *convex
hull prices* of the market (Gribik, Hogan and Pope 2007): the uniform prices that minimise the
total uplift (what participants would forgo, at those prices, by following the MILP plan);
that uplift equals the MILP optimum minus the LP bound, zero when the LP is integral.

When the LP's optimal dual is not unique (a primal-degenerate LP: e.g. a pool exactly filled
by whole jobs), HiGHS returns one vertex of the optimal dual face; every such price vector is a
valid clearing price. The option columns carry no upper bound (x_o <= n_d is implied by the
balance row), so no marginal value hides in a bound's reduced cost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from optimization.column_generation import solve_lp_by_columns
from optimization.problem import AllocationProblem
from optimization.solver import SafetyNet, SolverOptions, SolveStatus


@dataclass(frozen=True)
class AllocationDuals:
    """LP-relaxation prices of one round (module docstring for the maths).

    status                            OPTIMAL, or NO_SOLUTION when the LP was not solved to
                                      optimality within its budget (then prices are nan)
    lp_bound_usd                      the LP optimum (a lower bound on the MILP optimum)
    capacity_price_usd_per_gpu_slot   pi[r, t] >= 0, shape (resources, slots); 0 in cells no
                                      option uses and where capacity does not bind
    demand_price_usd_per_job          y[d], marginal cost of one more job of demand d
    carbon_price_usd_per_kg           kappa >= 0 when a cap is set, else None
    option_x                          the LP solution: (fractional) jobs per option
    """

    status: SolveStatus
    lp_bound_usd: float
    capacity_price_usd_per_gpu_slot: np.ndarray
    demand_price_usd_per_job: np.ndarray
    carbon_price_usd_per_kg: float | None
    message: str = ""
    option_x: np.ndarray = field(default_factory=lambda: np.zeros(0))
    demand_count: np.ndarray = field(default_factory=lambda: np.zeros(0))
    option_demand: np.ndarray = field(default_factory=lambda: np.zeros(0, int))

    @property
    def deferred_x(self) -> np.ndarray:
        """(Fractional) jobs of each demand the LP solution defers."""
        if not len(self.option_x):
            return np.zeros(0)
        return self.demand_count - np.bincount(self.option_demand, weights=self.option_x,
                                               minlength=len(self.demand_count))


def allocation_lp_duals(problem: AllocationProblem, options: SolverOptions,
                        initial_options: np.ndarray | None = None) -> AllocationDuals:
    """Solve the LP relaxation (column generation over all options, one highspy object) and
    return its capacity, demand and carbon-cap duals as prices (signs as in the docstring:
    HiGHS reports d(objective)/d(rhs), <= 0 for a binding <= row, so prices are its negation,
    with float noise of the wrong sign clipped to 0). ``initial_options``: columns to start
    from (``solve_lp_by_columns``)."""
    p = problem
    net = SafetyNet(options.time_limit_s)
    relaxation = solve_lp_by_columns(p, options, net, initial_options=initial_options,
                                     bounded=False)
    priced = relaxation.priced
    capped = p.carbon_cap_kg is not None
    if priced is None or not priced.complete:
        nan_prices = np.full(p.capacity_gpus.shape, math.nan)
        return AllocationDuals(SolveStatus.NO_SOLUTION, relaxation.bound_usd, nan_prices,
                               np.full(p.n_demands, math.nan), math.nan if capped else None,
                               "the LP relaxation was not solved within its budget"
                               + (" (wall-clock safety net hit)" if net.hit else ""))
    layout = relaxation.master.layout
    prices = np.zeros(p.capacity_gpus.size)
    duals, objective = priced.row_duals, priced.objective_usd
    first = layout.first_capacity_row
    prices[layout.cells] = np.maximum(-duals[first: first + len(layout.cells)], 0.0)
    carbon = None
    if layout.carbon_row is not None:
        carbon = max(-float(duals[layout.carbon_row]), 0.0)
    return AllocationDuals(
        status=SolveStatus.OPTIMAL,
        lp_bound_usd=objective,
        capacity_price_usd_per_gpu_slot=prices.reshape(p.capacity_gpus.shape),
        demand_price_usd_per_job=np.asarray(duals[: p.n_demands], float).copy(),
        carbon_price_usd_per_kg=carbon,
        option_x=np.asarray(priced.option_x, float).copy(),
        demand_count=p.demand_count,
        option_demand=p.option_demand,
    )
