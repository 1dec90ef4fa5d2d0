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

Vectorised within a demand: a demand's options are ranked when it is planned, and the room of a
chunk of a demand's options (their occupied cells laid out contiguously) is one
``minimum.reduceat`` over the free-capacity vector (chunks doubling from the best ranked:
room only shrinks, so an option that did not fit never fits later, and the first that fits
is the same as over all options at once). The Python loop runs over demands (and, for a
demand of many jobs, over the options it fills), never over options one by one.
"""

from __future__ import annotations

import numpy as np

from optimization.problem import AllocationProblem

FIT_TOLERANCE = 1e-9
# A demand's options are tried in chunks, doubling, best ranked first: most jobs take one of
# their first few, and a chunk's room is all the work a try costs (a running job's rest has
# thousands of options).
FIRST_CHUNK = 16


def _cells(p: AllocationProblem, opts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (resource, slot) cells ``opts`` occupy, one option after the other, and where each
    option's cells begin."""
    slots = p.option_slots[opts]
    seg = np.concatenate([[0], np.cumsum(slots)[:-1]])
    offset = np.arange(int(slots.sum())) - np.repeat(seg, slots)
    owner = np.repeat(opts, slots)
    return p.option_resource[owner] * p.n_slots + p.option_start[owner] + offset, seg


def greedy_allocation(p: AllocationProblem, start: np.ndarray | None = None,
                      option_rank: np.ndarray | None = None) -> np.ndarray:
    """Jobs of each demand on each option (integer, per option) of the greedy plan.

    ``start``: a feasible partial plan to complete (e.g. the rounded-down LP solution); its
    jobs keep their options and their GPUs and emissions are taken first.
    ``option_rank``: the order in which a job tries its options (default: cost; e.g. the LP's
    reduced costs, which price the scarce capacity in). Only options cheaper than deferring
    are tried either way.
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
    worth = cost < p.deferral_penalty_usd[p.option_demand]
    # Options by demand (a stable integer sort); each demand's options are ranked only when
    # it is planned (most demands try a few of their first), not all at once up front.
    by_demand = np.argsort(p.option_demand, kind="stable")
    bounds = np.searchsorted(p.option_demand[by_demand], np.arange(p.n_demands + 1))
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
    for d in np.argsort(-priority, kind="stable"):
        remaining = int(left[d])
        if remaining == 0:
            continue
        own = by_demand[bounds[d]:bounds[d + 1]]
        own = own[worth[own]]  # only options cheaper than deferring, best ranked first
        ranked = own[np.argsort(rank[own], kind="stable")]
        lo, end = 0, len(ranked)
        width = FIRST_CHUNK
        while remaining > 0 and lo < end:
            hi = min(end, lo + width)
            opts = ranked[lo:hi]
            own_cells, seg = _cells(p, opts)
            gpus = p.option_gpus[opts].astype(float)
            room = np.minimum.reduceat(free[own_cells], seg)
            fits = np.floor((room + FIT_TOLERANCE) / gpus)
            if np.isfinite(carbon_left):
                carbon = p.option_carbon_kg[opts]
                by_carbon = np.floor((carbon_left + FIT_TOLERANCE) / np.maximum(carbon, 1e-300))
                fits = np.minimum(fits, np.where(carbon > 0, by_carbon, np.inf))
            ok = np.flatnonzero(fits >= 1)
            if not len(ok):  # none of this chunk fits, and taking only ever shrinks room
                lo, width = hi, 2 * width
                continue
            i = ok[0]
            k = int(min(remaining, fits[i]))
            x[opts[i]] += k
            free[own_cells[seg[i]: seg[i] + p.option_slots[opts[i]]]] -= k * gpus[i]
            carbon_left -= k * float(p.option_carbon_kg[opts[i]])
            remaining -= k
    return x
