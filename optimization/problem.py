"""The allocation problem as plain arrays: what the broker hands to the optimizer.

The optimizer knows nothing of sites or jobs. A *demand* is a group of identical jobs (count 1
for a single job); a *resource* is one pool of identical GPUs (a GPU type at a site); an
*option* is "run one unit of demand d on resource r starting at slot t", with its resource use
and its cost parts already priced by the broker.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from optimization.status import SolveStatus, relative_gap


@dataclass(frozen=True)
class AllocationProblem:
    """Arrays of one planning round. Option arrays all have length ``n_options``.

    capacity_gpus[r, t]      free GPUs of resource r in horizon slot t
    demand_count[d]          identical jobs in demand d
    deferral_penalty_usd[d]  cost of deferring one job of demand d to a later round
    option_demand[o], option_resource[o], option_start[o]   what option o is
    option_slots[o]          horizon slots it occupies from its start (clipped to the horizon)
    option_gpus[o]           GPUs it holds while it runs
    option_energy_kwh[o], option_energy_cost_usd[o], option_carbon_kg[o],
    option_transfer_cost_usd[o], option_delay_cost_usd[o]   its cost parts for one job
    carbon_price_usd_per_kg  weight of emissions in the objective
    carbon_cap_kg            optional limit on the round's emissions
    """

    capacity_gpus: np.ndarray
    demand_count: np.ndarray
    deferral_penalty_usd: np.ndarray
    option_demand: np.ndarray
    option_resource: np.ndarray
    option_start: np.ndarray
    option_slots: np.ndarray
    option_gpus: np.ndarray
    option_energy_kwh: np.ndarray
    option_energy_cost_usd: np.ndarray
    option_carbon_kg: np.ndarray
    option_transfer_cost_usd: np.ndarray
    option_delay_cost_usd: np.ndarray
    carbon_price_usd_per_kg: float = 0.0
    carbon_cap_kg: float | None = None

    def __post_init__(self) -> None:
        n = len(self.option_demand)
        for name in (
            "option_resource", "option_start", "option_slots", "option_gpus",
            "option_energy_kwh", "option_energy_cost_usd", "option_carbon_kg",
            "option_transfer_cost_usd", "option_delay_cost_usd",
        ):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has length {len(getattr(self, name))}, expected {n}")
        if len(self.deferral_penalty_usd) != self.n_demands:
            raise ValueError("deferral_penalty_usd must have one entry per demand")
        if (self.option_slots < 1).any():
            raise ValueError("every option occupies at least one slot")
        if (self.option_start + self.option_slots > self.n_slots).any():
            raise ValueError("option_slots must be clipped to the horizon")

    @property
    def n_demands(self) -> int:
        return len(self.demand_count)

    @property
    def n_resources(self) -> int:
        return self.capacity_gpus.shape[0]

    @property
    def n_slots(self) -> int:
        return self.capacity_gpus.shape[1]

    @property
    def n_options(self) -> int:
        return len(self.option_demand)

    @cached_property
    def option_cost_usd(self) -> np.ndarray:
        """Objective coefficient of each option: energy + carbon + transfer + delay cost
        (computed once per problem: the hot loops read it many times)."""
        return (
            self.option_energy_cost_usd
            + self.carbon_price_usd_per_kg * self.option_carbon_kg
            + self.option_transfer_cost_usd
            + self.option_delay_cost_usd
        )

    @cached_property
    def demand_groups(self) -> DemandGroups:
        """The options grouped by demand (computed once: pricing reads it every round)."""
        return DemandGroups.of(self.option_demand, self.n_demands)

    @cached_property
    def _window_ends(self) -> tuple[np.ndarray, np.ndarray]:
        """Where each option's run window starts and ends in the flat per-resource prefix
        sums of :meth:`window_sums` (row r has n_slots + 1 entries)."""
        row = self.option_resource.astype(np.int64) * (self.n_slots + 1) + self.option_start
        kind = np.int32 if self.n_resources * (self.n_slots + 1) < 2**31 else np.int64
        return row.astype(kind), (row + self.option_slots).astype(kind)

    def window_cells(self, weight: np.ndarray, rows: np.ndarray | None = None,
                     n_rows: int = 1) -> np.ndarray:
        """sum_o weight_o [o runs in cell c] for every flat (resource, slot) cell c, on row
        ``rows[o]`` of an (n_rows, cells) table (one row by default): what the options hold
        in each cell. A run begun adds, a run ended takes off, summed along each row (a run
        lies within its resource's slots): linear in the options, not in their cells."""
        cells = self.n_resources * self.n_slots
        first = self.option_resource.astype(np.int64) * self.n_slots + self.option_start
        if rows is not None:
            first = first + np.asarray(rows, dtype=np.int64) * (cells + 1)
        size = n_rows * (cells + 1)
        change = np.bincount(first, weights=weight, minlength=size)
        change -= np.bincount(first + self.option_slots, weights=weight, minlength=size)
        return np.cumsum(change.reshape(n_rows, cells + 1), axis=1)[:, :cells]

    def window_sums(self, per_cell: np.ndarray) -> np.ndarray:
        r"""sum_{t in run(o)} v_{r(o), t} for every option o, for a value v per (resource,
        slot) cell (flat or (resources, slots)).

        Implicit in the options: the few (resource, start, slots) windows are priced by prefix
        sums over each resource's slots, and each option reads its window's two ends (a
        gather from a table of resources x (slots + 1) entries, which stays in cache), instead
        of summing its cells one by one.
        """
        prefix = np.zeros((self.n_resources, self.n_slots + 1))
        np.cumsum(np.reshape(per_cell, (self.n_resources, self.n_slots)), axis=1,
                  out=prefix[:, 1:])
        flat = prefix.reshape(-1)
        begin, end = self._window_ends
        sums = flat.take(end)
        sums -= flat.take(begin)
        return sums

    def option_cells(self, o: int | np.integer) -> np.ndarray:
        """The flat (resource, slot) cells option ``o`` occupies."""
        first = int(self.option_resource[o]) * self.n_slots + int(self.option_start[o])
        return np.arange(first, first + int(self.option_slots[o]))

    def occupancy(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Nonzeros of the capacity rows: (option, resource, slot) for every occupied cell."""
        options = np.repeat(np.arange(self.n_options), self.option_slots)
        offsets = np.arange(len(options)) - np.repeat(
            np.cumsum(self.option_slots) - self.option_slots, self.option_slots
        )
        slots = self.option_start[options] + offsets
        return options, self.option_resource[options], slots


@dataclass(frozen=True)
class DemandGroups:
    """Options grouped by demand: ``order`` lists the options demand by demand (None when
    they already are: options come job by job), ``bounds[d]:bounds[d + 1]`` is demand d's
    stretch of it. Per-demand reductions are then one ``reduceat`` (``np.minimum.at``, its
    unbuffered equivalent, is ten times slower on millions of options)."""

    order: np.ndarray | None
    bounds: np.ndarray

    @classmethod
    def of(cls, option_demand: np.ndarray, n_demands: int) -> DemandGroups:
        demand = np.asarray(option_demand)
        order = None
        if len(demand) > 1 and (demand[1:] < demand[:-1]).any():
            order = np.argsort(demand, kind="stable")
            demand = demand[order]
        return cls(order, np.searchsorted(demand, np.arange(n_demands + 1)))

    @property
    def sizes(self) -> np.ndarray:
        return np.diff(self.bounds)

    def grouped(self, values: np.ndarray) -> np.ndarray:
        """``values`` (one per option) in group order."""
        return values if self.order is None else values[self.order]

    def minimum(self, values: np.ndarray, initial: np.ndarray | None = None) -> np.ndarray:
        """min over each demand's options of ``values`` (and of ``initial[d]`` when given;
        +inf for a demand without options)."""
        return self._reduce(np.minimum, values, initial, np.inf)

    def maximum(self, values: np.ndarray, initial: np.ndarray | None = None) -> np.ndarray:
        """max over each demand's options of ``values`` (and of ``initial[d]`` when given;
        -inf for a demand without options)."""
        return self._reduce(np.maximum, values, initial, -np.inf)

    def _reduce(self, ufunc: np.ufunc, values: np.ndarray, initial: np.ndarray | None,
                empty: float) -> np.ndarray:
        out = (np.full(len(self.bounds) - 1, empty) if initial is None
               else np.asarray(initial, dtype=float).copy())
        has = self.bounds[1:] > self.bounds[:-1]
        if has.any():
            reduced = ufunc.reduceat(self.grouped(values), self.bounds[:-1][has])
            out[has] = ufunc(out[has], reduced)
        return out


COST_PARTS = (
    "energy_cost_usd",
    "carbon_cost_usd",
    "transfer_cost_usd",
    "delay_cost_usd",
    "deferral_cost_usd",
)


@dataclass(frozen=True)
class AllocationSolution:
    """How many jobs of each demand take each option, how many are deferred, and the cost.

    ``status`` is OPTIMAL when the plan is proven within the requested MIP gap of
    ``bound_usd`` (a valid lower bound on the round's optimum), FEASIBLE when a limit was hit
    first (the plan is still feasible), and something else only when the round has no plan
    but "defer everything" (``message`` says why: HiGHS's own words where it failed).
    ``wall_clock_hit``: the wall-clock safety net stopped a stage (``SolverOptions``), so this
    plan may differ on another machine or at another load.
    """

    status: SolveStatus
    option_count: np.ndarray  # per option, integer
    deferred_count: np.ndarray  # per demand, integer
    objective_usd: float
    bound_usd: float
    cost_breakdown_usd: dict[str, float]
    build_time_s: float
    solve_time_s: float
    message: str = ""
    wall_clock_hit: bool = False

    @property
    def gap(self) -> float:
        """Relative gap of the plan to the bound (:func:`optimization.status.relative_gap`)."""
        return relative_gap(self.objective_usd, self.bound_usd)


def breakdown_usd(
    p: AllocationProblem, option_count: np.ndarray, deferred_count: np.ndarray
) -> dict[str, float]:
    """The named cost parts (and energy/carbon totals) of an allocation (integer or fluid)."""
    x = np.asarray(option_count, float)
    # A plan uses few of its options (a period problem has millions): sum over those only.
    used = np.flatnonzero(x)
    x = x[used]
    carbon_kg = float(p.option_carbon_kg[used] @ x)
    return {
        "energy_cost_usd": float(p.option_energy_cost_usd[used] @ x),
        "carbon_cost_usd": p.carbon_price_usd_per_kg * carbon_kg,
        "transfer_cost_usd": float(p.option_transfer_cost_usd[used] @ x),
        "delay_cost_usd": float(p.option_delay_cost_usd[used] @ x),
        "deferral_cost_usd": float(p.deferral_penalty_usd @ np.asarray(deferred_count, float)),
        "energy_kwh": float(p.option_energy_kwh[used] @ x),
        "carbon_kg": carbon_kg,
    }


def plan_cost_usd(p: AllocationProblem, option_count: np.ndarray,
                  deferred_count: np.ndarray) -> float:
    """Objective value of a plan: the sum of its cost parts."""
    parts = breakdown_usd(p, option_count, deferred_count)
    return sum(parts[k] for k in COST_PARTS)


def deferred_of(p: AllocationProblem, option_count: np.ndarray) -> np.ndarray:
    """Jobs each demand defers under ``option_count`` (its count less the jobs it assigns)."""
    assigned = np.bincount(p.option_demand, weights=option_count, minlength=p.n_demands)
    return np.rint(p.demand_count - assigned).astype(int)


def make_solution(p: AllocationProblem, status: SolveStatus, option_count: np.ndarray,
                  bound_usd: float, build_s: float, solve_s: float,
                  message: str = "", wall_clock_hit: bool = False) -> AllocationSolution:
    """An AllocationSolution for an integer plan; deferrals and costs follow from it."""
    x = np.rint(option_count).astype(int)
    deferred = deferred_of(p, x)
    return AllocationSolution(
        status=status, option_count=x, deferred_count=deferred,
        objective_usd=plan_cost_usd(p, x, deferred), bound_usd=bound_usd,
        cost_breakdown_usd=breakdown_usd(p, x, deferred),
        build_time_s=build_s, solve_time_s=solve_s, message=message,
        wall_clock_hit=wall_clock_hit,
    )


def all_deferred(p: AllocationProblem, status: SolveStatus, build_s: float = 0.0,
                 solve_s: float = 0.0, message: str = "") -> AllocationSolution:
    """The always-feasible fallback plan: start nothing, defer everyone."""
    return make_solution(p, status, np.zeros(p.n_options, int), -np.inf, build_s, solve_s,
                         message)


def trivial_lower_bound(p: AllocationProblem) -> float:
    """sum_d count_d min(penalty_d, min_{o of d} c_o): every job alone on its cheapest way,
    capacity and cap ignored. A valid lower bound on the round's optimum."""
    per_demand = p.demand_groups.minimum(p.option_cost_usd, initial=p.deferral_penalty_usd)
    return float(p.demand_count @ per_demand)
