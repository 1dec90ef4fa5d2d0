"""A fast feasible plan: the incumbent every allocation method starts from.

Demands are taken in order of their best *saving density*: the deferral penalty minus the
cost of their first-choice option o* (the cheapest, unless a rank is given), per GPU-slot that
option holds,

    priority_d = (deferral_penalty_d - c_o*) / (gpus_o* x slots_o*),

highest first (a job that saves much per unit of scarce capacity goes first, as in the
greedy for knapsacks). Each job of the demand then takes the first (cheapest, or best ranked)
of its options that is cheaper than deferring and whose every (resource, slot) cell still has
room for its GPUs, and under a carbon cap whose emissions still fit in what is left of the cap;
a job with no such option is deferred. The result always satisfies job_assignment_balance,
gpu_capacity_limit and carbon_emission_cap.

Vectorised within a demand: the room of every one of a demand's options (the least free GPUs
over its window of slots) is two look-ups in a sparse table of window minima per resource
(``WindowRoom``), so a job's first fitting option is one ``argmin`` over the demand's options,
with no ranking and no cell lists; the table's row of a resource is rebuilt when a job takes
GPUs there. The Python loop runs over demands (and, for a demand of many jobs, over the
options it fills), never over options one by one.
"""

from __future__ import annotations

import numpy as np

from optimization.problem import AllocationProblem

FIT_TOLERANCE = 1e-9


class WindowRoom:
    """Free GPUs per (resource, slot), and the least of them over any window of a resource's
    slots: a sparse table (``level[j][r, t]`` = min over slots t .. t + 2^j - 1), so a
    window [t, t + L) is the smaller of two overlapping power-of-two windows."""

    def __init__(self, free: np.ndarray) -> None:
        self.free = np.array(free, dtype=float)  # (resources, slots), a copy
        n_slots = self.free.shape[1]
        self.level_of = np.zeros(n_slots + 1, dtype=np.int64)  # floor(log2 L), L >= 1
        self.level_of[1:] = np.floor(np.log2(np.arange(1, n_slots + 1))).astype(np.int64)
        self.levels = np.empty((int(self.level_of[-1]) + 1, *self.free.shape))
        self._build(slice(None))

    def _build(self, rows: slice | int) -> None:
        self.levels[0][rows] = self.free[rows]
        for j in range(1, len(self.levels)):
            half = 1 << (j - 1)
            below, level = self.levels[j - 1][rows], self.levels[j][rows]
            level[..., :] = below
            np.minimum(below[..., :-half], below[..., half:], out=level[..., :-half])

    def least(self, resource: np.ndarray, start: np.ndarray, slots: np.ndarray) -> np.ndarray:
        """The least free GPUs over each window [start, start + slots) of ``resource``."""
        j = self.level_of[slots]
        span = np.left_shift(1, j)
        return np.minimum(self.levels[j, resource, start],
                          self.levels[j, resource, start + slots - span])

    def take(self, resource: int, start: int, slots: int, gpus: float) -> None:
        self.free[resource, start:start + slots] -= gpus
        self._build(resource)


def fill_demand(room: WindowRoom, jobs: int, resource: np.ndarray, begin: np.ndarray,
                slots: np.ndarray, gpus: np.ndarray, rank: np.ndarray, carbon: np.ndarray,
                carbon_left: float) -> list[tuple[int, int]]:
    """One demand's ``jobs``, each on the best-ranked of its options (the arrays, one entry
    each; the lowest index on ties) whose window still has room for its GPUs and whose
    emissions fit ``carbon_left``: (option, jobs) pairs, the room taken as it goes. Jobs left
    when nothing fits are deferred."""
    taken: list[tuple[int, int]] = []
    while jobs > 0:
        fits = np.floor((room.least(resource, begin, slots) + FIT_TOLERANCE) / gpus)
        if np.isfinite(carbon_left):
            by_carbon = np.floor((carbon_left + FIT_TOLERANCE) / np.maximum(carbon, 1e-300))
            fits = np.minimum(fits, np.where(carbon > 0, by_carbon, np.inf))
        candidates = np.flatnonzero(fits >= 1)
        if not len(candidates):
            break
        i = int(candidates[np.argmin(rank[candidates])])
        k = int(min(jobs, fits[i]))
        taken.append((i, k))
        room.take(int(resource[i]), int(begin[i]), int(slots[i]), k * gpus[i])
        carbon_left -= k * float(carbon[i])
        jobs -= k
    return taken


def greedy_allocation(p: AllocationProblem, start: np.ndarray | None = None,
                      option_rank: np.ndarray | None = None) -> np.ndarray:
    """Jobs of each demand on each option (integer, per option) of the greedy plan.

    ``start``: a feasible partial plan to complete (e.g. the rounded-down LP solution); its
    jobs keep their options and their GPUs and emissions are taken first.
    ``option_rank``: the order in which a job tries its options (default: cost; e.g. the LP's
    reduced costs, which price the scarce capacity in; ties to the lowest index). Only options
    cheaper than deferring are tried either way.
    """
    x = np.zeros(p.n_options, dtype=np.int64)
    if p.n_options == 0:
        return x
    cost = p.option_cost_usd
    rank = cost if option_rank is None else np.asarray(option_rank, float)
    free = p.capacity_gpus.reshape(-1).astype(float)
    carbon_left = np.inf if p.carbon_cap_kg is None else float(p.carbon_cap_kg)
    left = p.demand_count.astype(np.int64).copy()
    if start is not None:
        x = np.rint(start).astype(np.int64)
        for o in np.flatnonzero(x):  # a plan takes few options: their cells one by one
            free[p.option_cells(o)] -= p.option_gpus[o] * x[o]
        carbon_left -= float(p.option_carbon_kg @ x)
        left -= np.bincount(p.option_demand, weights=x, minlength=p.n_demands).astype(np.int64)
    room = WindowRoom(free.reshape(p.n_resources, p.n_slots))
    worth = cost < p.deferral_penalty_usd[p.option_demand]
    groups = p.demand_groups
    by_demand = np.arange(p.n_options) if groups.order is None else groups.order
    bounds = groups.bounds
    # each demand's first choice: its best-ranked option worth taking (the lowest index on ties)
    masked = np.where(worth, rank, np.inf)[by_demand]
    has_option = bounds[1:] > bounds[:-1]
    lowest = np.full(p.n_demands, np.inf)
    lowest[has_option] = np.minimum.reduceat(masked, bounds[:-1][has_option])
    at_lowest = np.flatnonzero(masked == lowest[p.option_demand[by_demand]])
    lead = by_demand[at_lowest[np.searchsorted(at_lowest, bounds[:-1][has_option])]]
    best = np.full(p.n_demands, np.inf)
    best[has_option] = cost[lead]
    held = np.ones(p.n_demands)
    held[has_option] = p.option_gpus[lead] * p.option_slots[lead]
    priority = (p.deferral_penalty_usd - best) / held
    # the options worth taking, demand by demand (index order within): a demand's are views
    tried = by_demand[worth[by_demand]]
    tried_bounds = np.searchsorted(p.option_demand[tried], np.arange(p.n_demands + 1))
    tried_resource, tried_start = p.option_resource[tried], p.option_start[tried]
    tried_slots, tried_gpus = p.option_slots[tried], p.option_gpus[tried].astype(float)
    tried_rank, tried_carbon = rank[tried], p.option_carbon_kg[tried]
    for d in np.argsort(-priority, kind="stable"):
        lo, hi = tried_bounds[d], tried_bounds[d + 1]
        if left[d] == 0 or lo == hi:
            continue
        for i, k in fill_demand(room, int(left[d]), tried_resource[lo:hi], tried_start[lo:hi],
                                tried_slots[lo:hi], tried_gpus[lo:hi], tried_rank[lo:hi],
                                tried_carbon[lo:hi], carbon_left):
            x[tried[lo + i]] += k
            carbon_left -= k * float(tried_carbon[lo + i])
    return x
