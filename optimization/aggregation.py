r"""Aggregation of near-identical demands, with a proven bound on what it changes.

Two demands (groups of identical jobs) are *near-identical* within a tolerance tau when

* their **footprints** are identical: the same options (each demand's sorted by footprint,
  ``OptionOrder``, and paired position by position), each on the same resource, start, slots
  and GPUs (and, under a carbon cap, the same emissions, since those sit in the cap's row), so
  a job of one uses exactly the capacity a job of the other would;
* their **capped costs** differ by at most tau on every option, and their deferral penalties by
  at most tau. A job's capped cost of option o is

      \hat c_j(o) = min(c_j(o), penalty_j):

  an option dearer than deferring is never needed (deferring instead costs no more and frees
  capacity), so costs above the penalty do not matter and are not compared.

Grouping: demands are bucketed by a hash of their footprint (checked exactly against the
bucket's first member), then each bucket is clustered greedily, members in order of penalty:
a member joins the first cluster whose per-option range of capped costs (and range of
penalties) stays within tau with it, else opens a cluster. Every cluster G is one demand of
the aggregated problem, with

    count_G = sum_{j in G} count_j,   penalty_G = min_{j in G} penalty_j,
    c_G(o)  = min_{j in G} c_j(o)

(every cost part and the emissions of option o come from that cheapest member's option o, so
the parts add up to c_G(o): a tighter price than the sum of per-part minima, and consistent).

**Lower bound.** OPT_agg <= OPT_orig, for the MILP and for the LP relaxation. Any original
plan x (integer or fluid) maps to the aggregated plan X_G(o) = sum_{j in G} x_j(o), deferring
U_G = sum_{j in G} u_j. It is feasible: the balance rows sum up, and the capacity (and cap)
rows see the same GPUs (and emissions) since the footprints are identical. It costs no more:
c_G(o) <= c_j(o) and penalty_G <= penalty_j term by term. So the aggregated optimum bounds
the original's from below. So does the Lagrangian bound of the *original* problem at the
aggregated LP's capacity duals (``original_bound``: the cells are the same, and
``column_generation.lagrangian_bound`` is valid for any duals of the right signs). At the
complete aggregated LP's duals it is at least that LP's value: at equal duals each original
demand's best priced option (or deferral) costs at least its cluster's, and the aggregated
problem's Lagrangian bound equals its LP optimum there (strong duality).

**Upper bound.** Let delta_j = max(max_o (\hat c_j(o) - c_G(o)), penalty_j - penalty_G, 0)
(at most tau: both ends lie in the cluster's range). ``disaggregate`` hands each cluster's
jobs X_G(o) and U_G to its members (a minimum-cost assignment; any assignment is feasible,
the footprints being identical), and a job handed option o whose cost exceeds its penalty
defers instead (less capacity, no more cost). A job of G on option o handed to j then costs
\hat c_j(o) <= c_G(o) + delta_j, a deferral penalty_j <= penalty_G + delta_j, so

    cost_orig(disaggregate(X)) <= cost_agg(X) + sum_j count_j delta_j,

and with X an aggregated optimum, OPT_agg <= OPT_orig <= OPT_agg + sum_j count_j delta_j
(``Aggregation.bound_usd``, at most tau times the number of jobs merged). The same holds for
the LP relaxation: split each fractional X_G(o) and U_G among the members in any proportions
that give member j count_j in all (equal totals, so such a split exists); every unit of job
still pays at most delta_j above its cluster's price. A disaggregated
plan's own cost is an upper bound on OPT_orig too, usually much nearer: it pays only the
excess of the options actually used. With tau = 0 only demands whose capped costs and
penalties are equal merge, delta is 0, and the optimum is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import linear_sum_assignment

from optimization.allocation_matrix import AllocationLayout
from optimization.column_generation import lagrangian_bound, split_duals
from optimization.problem import AllocationProblem, deferred_of, plan_cost_usd

# A cluster whose jobs number at most this is split among its members by an exact assignment
# (a jobs x jobs table); above, greedily (each job to its cheapest member with jobs left).
ASSIGNMENT_MAX_JOBS = 256

_FOOTPRINT = ("option_resource", "option_start", "option_slots", "option_gpus")
_PER_OPTION = (
    "option_resource", "option_start", "option_slots", "option_gpus", "option_energy_kwh",
    "option_energy_cost_usd", "option_carbon_kg", "option_transfer_cost_usd",
    "option_delay_cost_usd",
)


@dataclass(frozen=True)
class Aggregation:
    """An aggregated problem and how it maps to the original one (module docstring).

    group_of[j]     the aggregated demand of original demand j
    option_map[o]   the aggregated option of original option o (same position in its demand)
    delta_usd[j]    delta_j: what a job of j may cost above its cluster's price
    order           the order in which footprints were compared (``OptionOrder``)
    """

    problem: AllocationProblem
    original: AllocationProblem
    group_of: np.ndarray
    option_map: np.ndarray
    delta_usd: np.ndarray
    tolerance_usd: float
    order: OptionOrder

    @property
    def bound_usd(self) -> float:
        """sum_j count_j delta_j: OPT_orig <= OPT_agg + this."""
        return float(self.original.demand_count @ self.delta_usd)

    def aggregate_plan(self, option_count: np.ndarray) -> np.ndarray:
        """An original plan (jobs per option) as the aggregated plan of no greater cost."""
        return np.bincount(self.option_map, weights=option_count,
                           minlength=self.problem.n_options)


@dataclass(frozen=True)
class Disaggregated:
    """An original plan made from an aggregated one: ``cost_usd`` <= ``aggregated_cost_usd``
    + ``Aggregation.bound_usd`` (module docstring)."""

    option_count: np.ndarray
    deferred_count: np.ndarray
    cost_usd: float
    aggregated_cost_usd: float


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a well-spread 64-bit hash of each entry (wrapping uint64)."""
    x = x.astype(np.uint64, copy=True)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


@dataclass(frozen=True)
class OptionOrder:
    """The options demand by demand, each demand's sorted by footprint (``order``; None when
    they are listed so already), and their footprint keys in that order: two options have
    the same footprint exactly when all their keys are equal. Footprints are compared
    position by position in this order, whatever the order the options came in."""

    order: np.ndarray | None
    keys: tuple[np.ndarray, ...]

    @classmethod
    def of(cls, p: AllocationProblem) -> OptionOrder:
        # (resource, start, slots, gpus) packed into one integer when it fits in 63 bits, each
        # field apart otherwise; under a cap emissions too (coefficients of the cap's row).
        fields = [np.asarray(getattr(p, name)) for name in _FOOTPRINT]
        spans = [p.n_resources, p.n_slots + 1, p.n_slots + 1,
                 int(np.max(fields[3], initial=0)) + 1]
        packable = (all(f.dtype.kind in "iu" and (f >= 0).all() for f in fields)
                    and np.prod(np.array(spans, dtype=float)) < 2.0**63)
        keys = fields
        if packable:
            packed = fields[0].astype(np.int64)
            for field, span in zip(fields[1:], spans[1:], strict=True):
                packed = packed * span + field
            keys = [packed]
        if p.carbon_cap_kg is not None:
            keys.append(np.asarray(p.option_carbon_kg))
        demand = np.asarray(p.option_demand)
        same = demand[1:] == demand[:-1]
        listed_so = packable and bool(
            (demand[1:] >= demand[:-1]).all() and (~same | (keys[0][1:] > keys[0][:-1])).all())
        if listed_so:
            return cls(None, tuple(keys))
        order = np.lexsort((*keys[::-1], demand))
        return cls(order, tuple(key[order] for key in keys))

    def take(self, values: np.ndarray) -> np.ndarray:
        """``values`` (one per option) in this order."""
        return values if self.order is None else np.asarray(values)[self.order]

    def original(self, at: np.ndarray) -> np.ndarray:
        """The options' own indices of positions ``at`` in this order."""
        return at if self.order is None else self.order[at]


def _positions(p: AllocationProblem) -> np.ndarray:
    """Each option's position within its demand (options demand by demand)."""
    g = p.demand_groups
    return np.arange(p.n_options) - np.repeat(g.bounds[:-1], g.sizes)


def footprint_buckets(p: AllocationProblem, order: OptionOrder | None = None) -> np.ndarray:
    """A bucket id per demand: equal exactly when two demands' footprints are identical
    (the same options, compared in footprint order).

    Hashes every option's footprint with its position, sums per demand (with the option
    count beside), then checks each demand option by option against its bucket's first
    member: a hash collision could only split a bucket, never merge unequal footprints.
    """
    order = OptionOrder.of(p) if order is None else order
    g = p.demand_groups
    sizes = g.sizes
    position = _positions(p)
    salt = _mix(np.arange(int(sizes.max(initial=0)), dtype=np.uint64) + np.uint64(1))
    h = salt[position]
    for key in order.keys:
        bits = np.ascontiguousarray(key)
        bits = (bits.astype(np.float64) if bits.dtype.kind == "f" else
                bits.astype(np.int64)).view(np.uint64)
        h = _mix(h ^ bits)
    has = sizes > 0
    starts = g.bounds[:-1][has]
    summed = np.zeros((p.n_demands, 2), dtype=np.uint64)
    summed[has, 0] = np.add.reduceat(h, starts)
    summed[:, 1] = sizes.astype(np.uint64)
    _, first, bucket = np.unique(summed, axis=0, return_index=True, return_inverse=True)
    bucket = bucket.reshape(-1)
    rep = first[bucket]  # the lowest-index demand of each bucket
    theirs = np.repeat(g.bounds[rep], sizes) + position
    differs = np.zeros(p.n_options, dtype=bool)
    for key in order.keys:
        differs |= key != key[theirs]
    bad = np.zeros(p.n_demands, dtype=bool)
    if has.any():
        bad[has] = np.logical_or.reduceat(differs, starts)
    bucket[bad] = bucket.max(initial=-1) + 1 + np.arange(np.count_nonzero(bad))
    return bucket


def _capped_costs(p: AllocationProblem, order: OptionOrder) -> np.ndarray:
    """\\hat c_j(o) = min(c_j(o), penalty_j) for every option, in ``order``."""
    return np.minimum(order.take(p.option_cost_usd),
                      np.repeat(p.deferral_penalty_usd, p.demand_groups.sizes))


def _cluster(rows: np.ndarray, penalty: np.ndarray, tolerance: float) -> np.ndarray:
    """Greedy clusters of one footprint bucket (module docstring): a label per member."""
    m = len(penalty)
    label = np.empty(m, dtype=np.int64)
    lo, hi = np.empty_like(rows), np.empty_like(rows)
    p_lo, p_hi = np.empty(m), np.empty(m)
    k_open = 0
    for j in np.argsort(penalty, kind="stable"):
        row, pen = rows[j], penalty[j]
        fits = ((np.maximum(p_hi[:k_open], pen) - np.minimum(p_lo[:k_open], pen) <= tolerance)
                & (np.maximum(hi[:k_open], row) - np.minimum(lo[:k_open], row)
                   <= tolerance).all(axis=1))
        if fits.any():
            k = int(np.argmax(fits))
            np.minimum(lo[k], row, out=lo[k])
            np.maximum(hi[k], row, out=hi[k])
            p_lo[k], p_hi[k] = min(p_lo[k], pen), max(p_hi[k], pen)
        else:
            k, k_open = k_open, k_open + 1
            lo[k], hi[k], p_lo[k], p_hi[k] = row, row, pen, pen
        label[j] = k
    return label


def aggregate(p: AllocationProblem, tolerance_usd: float) -> Aggregation:
    """Merge near-identical demands within ``tolerance_usd`` (module docstring)."""
    if not tolerance_usd >= 0:
        raise ValueError(f"tolerance_usd must be >= 0, got {tolerance_usd}")
    g = p.demand_groups
    bounds, sizes = g.bounds, g.sizes
    order = OptionOrder.of(p)
    bucket = footprint_buckets(p, order)
    capped = _capped_costs(p, order)
    cost = order.take(p.option_cost_usd)
    penalty = np.asarray(p.deferral_penalty_usd, float)
    label = np.zeros(p.n_demands, dtype=np.int64)  # cluster within its bucket
    delta = np.zeros(p.n_demands)  # 0 for a demand alone: capped cost <= its own cost
    cheapest: dict[int, np.ndarray] = {}  # first member -> option (group order) per position
    members_of = np.argsort(bucket, kind="stable")
    edges = np.flatnonzero(np.diff(bucket[members_of])) + 1
    for members in np.split(members_of, edges):
        if len(members) < 2:
            continue
        width = int(sizes[members[0]])
        at = bounds[members][:, None] + np.arange(width)[None, :]
        rows = capped[at]
        label[members] = _cluster(rows, penalty[members], tolerance_usd)
        for k in np.unique(label[members]):
            mine = label[members] == k
            if np.count_nonzero(mine) < 2:
                continue
            who, costs = members[mine], cost[at[mine]]
            which = np.argmin(costs, axis=0)  # the cheapest member at each position
            least = costs[which, np.arange(width)]
            delta[who] = np.maximum(
                penalty[who] - penalty[who].min(),
                (rows[mine] - least[None, :]).max(axis=1, initial=0.0))
            cheapest[int(who[0])] = at[mine][which, np.arange(width)]
    _, first, group_of = np.unique(np.stack([bucket, label], axis=1), axis=0,
                                   return_index=True, return_inverse=True)
    # number aggregated demands in order of their first member
    renumber = np.empty(len(first), dtype=np.int64)
    renumber[np.argsort(first, kind="stable")] = np.arange(len(first))
    group_of = renumber[group_of.reshape(-1)]
    n_groups = len(first)
    rep = np.empty(n_groups, dtype=np.int64)
    rep[renumber] = first

    agg_sizes = sizes[rep]
    agg_bounds = np.concatenate([[0], np.cumsum(agg_sizes)]).astype(np.int64)
    # each aggregated option's source (group order): its first member's option, or the
    # cheapest member's (every cost part and emissions from that one option)
    source = np.repeat(bounds[rep], agg_sizes) + np.arange(int(agg_bounds[-1])) - np.repeat(
        agg_bounds[:-1], agg_sizes)
    for first_member, options in cheapest.items():
        group = group_of[first_member]
        source[agg_bounds[group]: agg_bounds[group + 1]] = options
    original_index = order.original(source)
    columns: dict[str, object] = {name: np.asarray(getattr(p, name))[original_index]
                                  for name in _PER_OPTION}
    agg_penalty = np.full(n_groups, np.inf)
    np.minimum.at(agg_penalty, group_of, penalty)
    problem = replace(
        p, demand_count=np.bincount(group_of, weights=p.demand_count,
                                    minlength=n_groups).astype(np.asarray(p.demand_count).dtype),
        deferral_penalty_usd=agg_penalty,
        option_demand=np.repeat(np.arange(n_groups), agg_sizes),
        **columns)  # type: ignore[arg-type]
    option_map = np.empty(p.n_options, dtype=np.int64)
    mapped = np.repeat(agg_bounds[group_of], sizes) + _positions(p)
    option_map[order.original(np.arange(p.n_options))] = mapped
    return Aggregation(problem, p, group_of, option_map, delta, float(tolerance_usd), order)


def _split_jobs(cost: np.ndarray, member_jobs: np.ndarray, choice_jobs: np.ndarray) -> np.ndarray:
    """How many jobs of each choice (column) each member (row) takes, at least total cost,
    with every member taking its jobs and every choice getting its jobs (equal totals)."""
    take = np.zeros(cost.shape, dtype=np.int64)
    if member_jobs.sum() <= ASSIGNMENT_MAX_JOBS:
        rows = np.repeat(np.arange(len(member_jobs)), member_jobs)
        cols = np.repeat(np.arange(len(choice_jobs)), choice_jobs)
        r, c = linear_sum_assignment(cost[np.ix_(rows, cols)])
        np.add.at(take, (rows[r], cols[c]), 1)
        return take
    # Greedy: choices with the largest spread among members first, each job to its cheapest
    # member with jobs left.
    left = member_jobs.astype(np.int64).copy()
    spread = cost.max(axis=0) - cost.min(axis=0)
    for k in np.argsort(-spread, kind="stable"):
        need = int(choice_jobs[k])
        for j in np.argsort(cost[:, k], kind="stable"):
            if not need:
                break
            n = min(need, int(left[j]))
            take[j, k] += n
            left[j] -= n
            need -= n
    return take


def disaggregate(agg: Aggregation, option_count: np.ndarray) -> Disaggregated:
    """An original plan from an aggregated integer plan (module docstring: its cost is within
    ``agg.bound_usd`` of the aggregated plan's, and feasible whenever that one is)."""
    p, a = agg.original, agg.problem
    x_agg = np.rint(np.asarray(option_count, float)).astype(np.int64)
    if x_agg.shape != (a.n_options,):
        raise ValueError(f"option_count has shape {x_agg.shape}, expected ({a.n_options},): "
                         f"one entry per option of the aggregated problem")
    deferred_agg = deferred_of(a, x_agg)
    if (x_agg < 0).any() or (deferred_agg < 0).any():
        raise ValueError("option_count must be >= 0 and assign each aggregated demand at most "
                         "its count of jobs")
    g = p.demand_groups
    capped = _capped_costs(p, agg.order)
    members = np.argsort(agg.group_of, kind="stable")
    first = np.searchsorted(agg.group_of[members], np.arange(a.n_demands + 1))
    # a demand alone in its group takes its group's plan as it is (its options map one to one)
    alone = (np.diff(first) == 1)[agg.group_of[p.option_demand]]
    x = np.where(alone, x_agg[agg.option_map], 0)
    agg_bounds = a.demand_groups.bounds
    for group in np.flatnonzero(np.diff(first) > 1):
        who = members[first[group]: first[group + 1]]
        used = np.flatnonzero(x_agg[agg_bounds[group]: agg_bounds[group + 1]])
        # choices: the used options, then deferral; costs per member: capped cost, penalty
        table = np.empty((len(who), len(used) + 1))
        table[:, :-1] = capped[g.bounds[who][:, None] + used[None, :]]
        table[:, -1] = p.deferral_penalty_usd[who]
        jobs = np.append(x_agg[agg_bounds[group] + used], deferred_agg[group])
        take = _split_jobs(table, np.asarray(p.demand_count)[who].astype(np.int64), jobs)
        at = g.bounds[who][:, None] + used[None, :]
        at = agg.order.original(at)
        np.add.at(x, at.reshape(-1), take[:, :-1].reshape(-1))
    # a job handed an option dearer than its deferral defers instead
    x[p.option_cost_usd > p.deferral_penalty_usd[p.option_demand]] = 0
    deferred = deferred_of(p, x)
    return Disaggregated(x, deferred, plan_cost_usd(p, x, deferred),
                         plan_cost_usd(a, x_agg, deferred_agg))


def original_bound(agg: Aggregation, aggregated_layout: AllocationLayout,
                   row_duals: np.ndarray, layout: AllocationLayout | None = None) -> float:
    """The original problem's Lagrangian bound at the capacity (and cap) duals of an LP of the
    aggregated problem (``column_generation.lagrangian_bound``: valid for any duals of the
    right signs; the two problems have the same capacity cells and cap)."""
    _, mu, lam = split_duals(aggregated_layout, row_duals)
    return lagrangian_bound(AllocationLayout(agg.original) if layout is None else layout,
                            mu, lam)
