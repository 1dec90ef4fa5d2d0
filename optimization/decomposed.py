r"""The LP relaxation decomposed by resource: sites price their own options, a coordinator
holds the master. Exact: it ends at the central LP's optimum, with its duals.

The round's LP (``optimization.allocation_matrix``), with x, u >= 0:

    min  sum_o c_o x_o + sum_d p_d u_d
    s.t. sum_{o of d} x_o + u_d = count_d                        (y_d, free)
         sum_{o on r running in t} gpus_o x_o <= free_{r,t}      (mu_{r,t} <= 0)
         sum_o carbon_kg_o x_o <= cap                            (lambda <= 0, when capped)

**Shards.** The resources are split into shards (a site's GPU pools, or several sites'); a shard
holds the options of its resources only, with their costs: the site's private data. Each option
lies on one resource, so every option is in exactly one shard, and a capacity row involves the
options of one shard only. The balance rows and the carbon cap link the shards.

**Master (at the coordinator).** Dantzig-Wolfe column generation: the master is the LP above
over the columns offered so far (every deferral u_d from the start, so it is always feasible),
held in one ``MatrixLP`` with the rows of :class:`~optimization.allocation_matrix.
AllocationLayout`. The coordinator knows the public part of the round (demand counts,
penalties, free GPUs per cell, the cap) and each shard's occupied cells (which rows exist), never
a site's options beyond the columns it offered. Its columns carry x_o, u_d <= count_d by
default, as the full LP's do (implied by the balance rows: same optimum, faster dual simplex).

**Pricing subproblem (at each shard).** Given the master's duals (y, mu, lambda), shard s
prices each of its options,

    priced_o = c_o - gpus_o * sum_{t in run(o)} mu_{r(o),t} - carbon_kg_o * lambda,
    rc_o     = priced_o - y_{d(o)},

with the window prefix sums of ``optimization.column_generation.priced_costs`` on its own
arrays, and returns (a) m_{s,d} = min over its options of demand d of priced_o (+inf where it
has none) and (b) its ``k`` cheapest options per demand with rc_o < -tol, as column data (the
option's arrays, its index in the round and its rc). The reduced cost of every option is a
shard's own sum, so the union of the shards' negative options is exactly what central pricing
finds: when no shard offers a column the master's duals are dual feasible for the whole LP, and
the master's optimum is the central LP optimum (strong duality), not an approximation. The
coordinator keeps each demand's ``k`` cheapest of all the offers, which are the round's ``k``
cheapest: the master grows as under central pricing, whatever the number of shards.

**Bound at every round.** Relaxing the capacity and cap rows with any mu <= 0, lambda <= 0
(Lagrangian relaxation; weak duality) gives a lower bound on the LP and the MILP,

    L(mu, lambda) = sum_{(r,t)} free_{r,t} mu_{r,t} + cap * lambda
                    + sum_d count_d * min(p_d, min_s m_{s,d}),

the bound of ``column_generation.lagrangian_bound``: a demand's cheapest priced option is the
least of the shards' minima, so every shard's minimum is needed (one shard's alone may lie
above it, and the sum would not be a bound). With y_d = min(p_d, min_s m_{s,d}), (y, mu,
lambda) is a dual-feasible point of the full LP whose dual objective is L: the duals returned
are those of the best L, and when pricing is complete L is the optimum and they are optimal.
A solve stopped by its rounds budget (``SolverOptions.pricing_rounds``) or the wall-clock
safety net reports the best L so far.

Executors (:class:`ShardPricers`): :class:`InProcessPricers` here (tests, the 1-worker
baseline); Dask workers in ``scenarios.decomposed``, which scatters each shard once and sends
only the duals every round. Nothing here imports Dask.

What leaves a site: the cells its options occupy (once), then per round its per-demand minimum
priced cost and the few columns it offers, as a bid; never its other options or their costs.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

import numpy as np

from optimization.allocation_matrix import AllocationLayout
from optimization.column_generation import (
    ADDED_PER_DEMAND_PER_ROUND,
    INITIAL_OPTIONS_PER_DEMAND,
    MIN_SOLVE_BUDGET_S,
    RC_TOLERANCE,
    cheapest_per_demand,
    lagrangian_value,
    priced_costs,
    split_duals,
)
from optimization.problem import AllocationProblem
from optimization.solver import MatrixSolution, SafetyNet, SolverOptions, SolveStatus

# The option arrays of AllocationProblem, read from the dataclass itself (one list, not a copy).
OPTION_FIELDS = tuple(f.name for f in dataclasses.fields(AllocationProblem)
                      if f.name.startswith("option_"))


def with_options(p: AllocationProblem, columns: dict[str, np.ndarray]) -> AllocationProblem:
    """``p``'s public part (demands, free GPUs, carbon price and cap) with these options."""
    arrays: dict[str, Any] = dict(columns)
    return dataclasses.replace(p, **arrays)


def public_part(p: AllocationProblem) -> AllocationProblem:
    """The round without its options: what the coordinator knows."""
    return with_options(p, {name: getattr(p, name)[:0] for name in OPTION_FIELDS})


@dataclass(frozen=True)
class Shard:
    """The options on some resources (a site's pools): the round's public part with these
    options only, and each option's index in the round (what the coordinator names it by)."""

    resources: np.ndarray
    problem: AllocationProblem
    option_index: np.ndarray

    @cached_property
    def layout(self) -> AllocationLayout:
        """Its rows (computed once, on the worker that holds it)."""
        return AllocationLayout(self.problem)

    @property
    def cells(self) -> np.ndarray:
        """The flat (resource, slot) cells its options occupy: capacity rows the master needs."""
        return self.layout.cells


def split_by_resource(p: AllocationProblem,
                      resource_groups: Sequence[Sequence[int] | np.ndarray]) -> list[Shard]:
    """One shard per group of resources; the groups must partition the resources."""
    owner = np.full(p.n_resources, -1)
    for k, group in enumerate(resource_groups):
        group = np.asarray(group, dtype=int)
        if (owner[group] >= 0).any():
            raise ValueError(f"resource group {k} repeats a resource of another group")
        owner[group] = k
    if (owner < 0).any():
        raise ValueError(f"resources {np.flatnonzero(owner < 0).tolist()} are in no group")
    shard_of = owner[p.option_resource]
    shards = []
    for k, group in enumerate(resource_groups):
        index = np.flatnonzero(shard_of == k)
        columns = {name: getattr(p, name)[index] for name in OPTION_FIELDS}
        shards.append(Shard(np.sort(np.asarray(group, dtype=int)), with_options(p, columns),
                            index))
    return shards


def resource_groups(owner_of_resource: np.ndarray, options_per_resource: np.ndarray,
                    n_groups: int) -> list[np.ndarray]:
    """Resources in ``n_groups`` groups, an owner's (a site's) resources kept together, the
    owners dealt largest first to the group with the fewest options (pricing time is linear in
    the options). Fewer groups when there are fewer owners; none is empty."""
    owners, owner_id = np.unique(owner_of_resource, return_inverse=True)
    weight = np.bincount(owner_id, weights=options_per_resource, minlength=len(owners))
    n_groups = max(1, min(n_groups, len(owners)))
    load = np.zeros(n_groups)
    group_of_owner = np.empty(len(owners), dtype=int)
    for owner in np.argsort(-weight, kind="stable"):
        g = int(np.argmin(load))
        group_of_owner[owner] = g
        load[g] += weight[owner]
    return [np.flatnonzero(group_of_owner[owner_id] == g) for g in range(n_groups)]


@dataclass(frozen=True)
class Duals:
    """What the coordinator sends a shard each round: balance y (None for the first call: offer
    the cheapest options outright), capacity mu <= 0 per flat cell, carbon lambda <= 0, and the
    round indices of the master's columns that price below zero (sorted; at their upper bound,
    or within the LP's tolerance): a shard offers none of them, they are held already."""

    y: np.ndarray | None
    mu: np.ndarray
    lam: float
    held_negative: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


@dataclass(frozen=True)
class ShardOffer:
    """A shard's answer: its per-demand minimum priced cost (+inf where it has no option of the
    demand) and the columns it offers (``OPTION_FIELDS`` arrays, their round indices and reduced
    costs)."""

    min_priced_usd: np.ndarray
    option_index: np.ndarray
    columns: dict[str, np.ndarray]
    score: np.ndarray  # each offered column's reduced cost (its priced cost at the first call)
    pricing_s: float  # time spent pricing at the shard


def price_shard(shard: Shard, duals: Duals, k: int) -> ShardOffer:
    """The pricing subproblem of one shard (module docstring): per-demand minima of the priced
    costs, and each demand's ``k`` cheapest options of negative reduced cost (with ``duals.y``
    None: each demand's ``k`` cheapest at these prices, as the first master's columns)."""
    started = time.perf_counter()
    p = shard.problem
    priced = priced_costs(shard.layout, duals.mu, duals.lam)
    least = p.demand_groups.minimum(priced)
    score = priced  # the minima are taken: reduced costs in its place
    if duals.y is None:
        chosen = cheapest_per_demand(p, score, k)
    else:
        score -= duals.y[p.option_demand]
        among = score < -RC_TOLERANCE
        # shard.option_index is sorted: the held columns' places by binary search
        at = np.searchsorted(shard.option_index, duals.held_negative)
        at = at[at < len(shard.option_index)]
        among[at[np.isin(shard.option_index[at], duals.held_negative)]] = False
        chosen = cheapest_per_demand(p, score, k, among=among)
    return ShardOffer(least, shard.option_index[chosen],
                      {name: getattr(p, name)[chosen] for name in OPTION_FIELDS}, score[chosen],
                      time.perf_counter() - started)


def shard_cells(shard: Shard) -> np.ndarray:
    return shard.cells


class ShardPricers(Protocol):
    """Where the shards live and price: in this process, or on Dask workers."""

    def cells(self) -> list[np.ndarray]:
        """Each shard's occupied cells (asked once)."""
        ...

    def price(self, duals: Duals, k: int) -> list[ShardOffer]:
        """Every shard's :func:`price_shard` at these duals, in shard order."""
        ...


class InProcessPricers:
    """The shards priced one after the other in this process."""

    def __init__(self, shards: Sequence[Shard]) -> None:
        self.shards = list(shards)

    def cells(self) -> list[np.ndarray]:
        return [shard_cells(shard) for shard in self.shards]

    def price(self, duals: Duals, k: int) -> list[ShardOffer]:
        return [price_shard(shard, duals, k) for shard in self.shards]


@dataclass(frozen=True)
class RoundRecord:
    """One pricing round: the master's value before it, the bound after it, what it cost."""

    master_usd: float
    bound_usd: float
    columns_offered: int  # by all shards together
    columns_added: int  # of which the master took
    pricing_s: float  # wall time of the round's pricing, transport included
    shard_pricing_s: float  # the longest shard's own pricing time
    master_s: float  # the master LP's solve before this pricing


@dataclass(frozen=True)
class DecomposedLP:
    """The decomposed solve's outcome. ``complete``: no shard offered a column, so
    ``objective_usd`` is the LP optimum over every option. ``bound_usd``: the best Lagrangian
    bound (the objective itself when complete); (y, mu, lam) are its duals, dual feasible for
    the whole LP with the bound as dual objective (``Coordinator.bound``): when complete, the
    LP's optimal duals (strong duality)."""

    objective_usd: float
    bound_usd: float
    complete: bool
    y: np.ndarray
    mu: np.ndarray
    lam: float
    option_index: np.ndarray  # round index of each master column
    option_x: np.ndarray  # its value in the master's last solution
    deferred: np.ndarray  # per demand
    history: list[RoundRecord] = field(default_factory=list)
    setup_s: float = 0.0
    pricing_s: float = 0.0
    master_s: float = 0.0
    total_s: float = 0.0
    message: str = ""

    @property
    def rounds(self) -> int:
        return len(self.history)

    def x_of(self, n_options: int) -> np.ndarray:
        """The master's solution as one value per option of the round."""
        x = np.zeros(n_options)
        x[self.option_index] = self.option_x
        return x


class Coordinator:
    """The master LP over the columns the shards offered (module docstring)."""

    def __init__(self, public: AllocationProblem, cells: np.ndarray, options: SolverOptions,
                 bounded: bool = True) -> None:
        self.public = public
        self.bounded = bounded
        self.layout = AllocationLayout(public, cells=cells)
        self.lp = self.layout.new_lp(options)
        self.option_index = np.zeros(0, dtype=np.int64)
        self._held = np.zeros(0, dtype=np.int64)  # option_index, sorted
        self._batches: list[AllocationProblem] = []  # the held columns' data, in column order
        self.bound_usd = -np.inf  # the best Lagrangian bound so far, and its duals
        self.best = Duals(None, np.zeros(public.n_resources * public.n_slots), 0.0)
        self.stopped = ""  # why the last pricing rounds ended before pricing was complete
        self.setup_s = 0.0
        self.last: MatrixSolution | None = None  # the master's last optimal solve

    def add(self, offers: Sequence[ShardOffer], k: int) -> int:
        """Append, of the offered columns not yet held, each demand's ``k`` lowest-scoring
        (ties to the lowest round index, as central pricing breaks them); how many.

        Each shard offers its own ``k`` cheapest, so their union holds the ``k`` cheapest of
        the whole round: the master grows as under central pricing, whatever the number of
        shards (taking every shard's ``k`` made the 1000x12x24 master 4x slower with 4)."""
        index = np.concatenate([offer.option_index for offer in offers])
        new = np.flatnonzero(~np.isin(index, self._held, assume_unique=True))
        if not len(new):
            return 0
        new = new[np.argsort(index[new], kind="stable")]
        batch = with_options(self.public, {
            name: np.concatenate([offer.columns[name] for offer in offers])[new]
            for name in OPTION_FIELDS})
        score = np.concatenate([offer.score for offer in offers])[new]
        chosen = cheapest_per_demand(batch, score, k)
        taken = with_options(self.public, {name: getattr(batch, name)[chosen]
                                           for name in OPTION_FIELDS})
        AllocationLayout(taken, cells=self.layout.cells).option_columns(
            np.arange(taken.n_options), bounded=self.bounded).add_to(self.lp)
        self.option_index = np.concatenate([self.option_index, index[new][chosen]])
        self._held = np.union1d(self._held, index[new][chosen])
        self._batches.append(taken)
        return len(chosen)

    def held(self) -> AllocationProblem:
        """The round with the held columns as its options, in column order."""
        if len(self._batches) != 1:  # one problem of every held column, in column order
            self._batches = [with_options(self.public, {
                name: np.concatenate([getattr(self.public, name)[:0],
                                      *(getattr(b, name) for b in self._batches)])
                for name in OPTION_FIELDS})]
        return self._batches[0]

    def held_negative(self, y: np.ndarray, mu: np.ndarray, lam: float) -> np.ndarray:
        """Round indices of the held columns whose reduced cost is below -tol at these duals
        (priced from the columns' own data, as a shard prices them), sorted."""
        if not self._batches:
            return np.zeros(0, dtype=np.int64)
        held = self.held()
        rc = priced_costs(AllocationLayout(held, cells=self.layout.cells), mu, lam)
        rc -= y[held.option_demand]
        return np.sort(self.option_index[rc < -RC_TOLERANCE])

    def bound(self, duals: Duals, offers: Sequence[ShardOffer]) -> tuple[float, np.ndarray]:
        """L(mu, lambda) of the module docstring from every shard's minima, and its y: each
        demand's min(p_d, least priced option), the balance duals that make (y, mu, lambda)
        dual feasible for the whole LP with L as dual objective."""
        p = self.public
        least = np.minimum.reduce([offer.min_priced_usd for offer in offers])
        y = np.minimum(p.deferral_penalty_usd, least)
        return lagrangian_value(p, duals.mu, duals.lam, y), y


@dataclass(frozen=True)
class PricedRound:
    """One round of :func:`pricing_rounds`: the master's solution, its duals, the offers."""

    solved: MatrixSolution
    duals: Duals
    offers: list[ShardOffer]
    added: int
    pricing_s: float


def pricing_rounds(coordinator: Coordinator, pricers: ShardPricers, options: SolverOptions,
                   net: SafetyNet, per_round: int) -> Iterator[PricedRound]:
    """Solve the master, price at its duals, add the offered columns; again, for at most
    ``options.pricing_rounds`` rounds. The last round yielded added nothing when pricing is
    complete; otherwise ``coordinator.stopped`` says why it ended (the safety net, the
    master's own failure, the rounds budget)."""
    coordinator.stopped = f"stopped after {options.pricing_rounds} pricing rounds"
    for k in range(options.pricing_rounds):
        if k and net.expired():
            coordinator.stopped = "stopped by the wall-clock safety net"
            return
        solved = coordinator.lp.solve(max(net.left_s(), MIN_SOLVE_BUDGET_S))
        net.note(solved.result)
        if solved.result.status is not SolveStatus.OPTIMAL:
            coordinator.stopped = f"master LP: {solved.result.message}"
            return
        y, mu, lam = split_duals(coordinator.layout, solved.row_duals)
        duals = Duals(y, mu, lam, coordinator.held_negative(y, mu, lam))
        priced_at = time.perf_counter()
        offers = pricers.price(duals, per_round)
        took = time.perf_counter() - priced_at
        added = coordinator.add(offers, per_round)
        yield PricedRound(solved, duals, offers, added, took)
        if not added:
            coordinator.stopped = ""
            return


def solve_decomposed(public: AllocationProblem, pricers: ShardPricers, options: SolverOptions,
                     net: SafetyNet, *, per_round: int = ADDED_PER_DEMAND_PER_ROUND,
                     initial: int = INITIAL_OPTIONS_PER_DEMAND,
                     bounded: bool = True) -> DecomposedLP:
    """The LP relaxation of the round whose public part is ``public`` by column generation
    with pricing at the shards, for at most ``options.pricing_rounds`` pricing rounds (and the
    safety net ``net``). Each shard first offers its ``initial`` cheapest options per demand,
    then at most ``per_round`` per demand a round.

    ``bounded``: the master's columns carry x_o <= count_d and u_d <= count_d (implied by the
    balance rows, so the same optimum; dual simplex flips columns between bounds instead of
    pivoting them). A column at its upper bound may then price below zero at the master's own
    y, so the duals returned are the bound's (``Coordinator.bound``), dual feasible either way.
    """
    return solve_with_coordinator(open_coordinator(public, pricers, options, bounded, initial),
                                  pricers, options, net, per_round)


def open_coordinator(public: AllocationProblem, pricers: ShardPricers, options: SolverOptions,
                     bounded: bool = True, initial: int = INITIAL_OPTIONS_PER_DEMAND,
                     prices: Duals | None = None) -> Coordinator:
    """A coordinator holding each demand's ``initial`` cheapest options of every shard, with
    the trivial bound L(0, 0) (``Coordinator.bound_usd``). ``prices``: capacity and carbon
    duals to price the first columns at instead of 0 (an estimate of the LP's, a sample's
    say): each demand's ``initial`` cheapest *priced* options, and the bound L(mu, lambda)."""
    started = time.perf_counter()
    cells = np.unique(np.concatenate([np.zeros(0, dtype=np.int64), *pricers.cells()]))
    coordinator = Coordinator(public, cells, options, bounded)
    zero = Duals(None, np.zeros(public.n_resources * public.n_slots), 0.0)
    at = zero if prices is None else Duals(None, prices.mu, prices.lam)
    first = pricers.price(at, initial)
    coordinator.bound_usd, best_y = coordinator.bound(at, first)
    coordinator.best = Duals(best_y, at.mu, at.lam)
    coordinator.add(first, initial)
    coordinator.setup_s = time.perf_counter() - started
    return coordinator


def solve_with_coordinator(coordinator: Coordinator, pricers: ShardPricers,
                           options: SolverOptions, net: SafetyNet,
                           per_round: int = ADDED_PER_DEMAND_PER_ROUND) -> DecomposedLP:
    """:func:`solve_decomposed` from an opened coordinator: pricing rounds, the best
    Lagrangian bound kept (``Coordinator.bound_usd``, its duals ``Coordinator.best``)."""
    started = time.perf_counter() - coordinator.setup_s
    public = coordinator.public
    history: list[RoundRecord] = []
    pricing_s = 0.0
    last = None
    complete = False
    for round_ in pricing_rounds(coordinator, pricers, options, net, per_round):
        last = coordinator.last = round_.solved
        pricing_s += round_.pricing_s
        duals = round_.duals
        at, at_y = coordinator.bound(duals, round_.offers)
        if at > coordinator.bound_usd:
            coordinator.bound_usd, coordinator.best = at, Duals(at_y, duals.mu, duals.lam)
        history.append(RoundRecord(last.result.objective, coordinator.bound_usd,
                                   sum(len(offer.option_index) for offer in round_.offers),
                                   round_.added, round_.pricing_s,
                                   max(offer.pricing_s for offer in round_.offers),
                                   last.result.solve_time_s))
        if not round_.added:
            complete = True
            coordinator.bound_usd = max(coordinator.bound_usd, last.result.objective)
    message = coordinator.stopped
    bound, best = coordinator.bound_usd, coordinator.best
    n_d = public.n_demands
    assert best.y is not None
    if last is None:
        return DecomposedLP(np.nan, bound, False, best.y, best.mu, best.lam,
                            np.zeros(0, dtype=np.int64), np.zeros(0), public.demand_count * 1.0,
                            history, coordinator.setup_s, pricing_s, coordinator.lp.solve_s,
                            time.perf_counter() - started, message or "no master LP solved")
    x = last.x  # columns added after the last solve are not in it
    return DecomposedLP(last.result.objective, bound, complete, best.y, best.mu, best.lam,
                        coordinator.option_index[:len(x) - n_d], x[n_d:].copy(), x[:n_d].copy(),
                        history, coordinator.setup_s, pricing_s, coordinator.lp.solve_s,
                        time.perf_counter() - started, message)
