r"""A round's options as runs x start slots, priced and chosen without being listed.

A *run* is a demand on one resource with its GPUs and the slots it holds from its start; an
option is a run at one start slot of a shared grid ``starts``. A round of 20,000 jobs over 300
pools has 6M runs and, at 24 starts, 144M options: listed as arrays (about 150 bytes each) they
would need some 21 GiB. Here the options stay implicit: each run holds its first
``run_starts[i]`` starts (deadlines cut a run's starts at the end: a later start finishes
later), and their costs are one (runs, starts) table. Option (i, s) is named by its index
``i * n_starts + s``; only the options a plan or the master LP takes are listed, by the
broker's own pricing (``lister``), so a listed option is exactly what an enumerated round
would hold.

**Pricing** (the subproblem of column generation, ``optimization.decomposed``): with capacity
duals mu <= 0 per cell and carbon lambda <= 0,

    priced_{i,s} = c_{i,s} - gpus_i * sum_{t in [start_s, start_s + held_{i,s})} mu_{r_i,t}
                   - carbon_{i,s} * lambda,       held_{i,s} = min(slots_i, n_slots - start_s)

The window sums are prefix sums of mu read at two ends, and a run's ends for every start are
one row of a small (resources, slots, starts) table: a row gather per run, chunk by chunk of
whole demands. :class:`GridPricers` answers as a shard of the decomposed LP does, so the
coordinator's master, its bound and its termination proof are the same code.

**The greedy plan** (:func:`grid_greedy`) is ``optimization.greedy``'s, demand by demand on the
demand's valid options worth taking (cost below deferring), in flat index order, so on any
round it picks what the greedy picks on the listed round.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from optimization.column_generation import RC_TOLERANCE, lagrangian_value
from optimization.decomposed import Duals, ShardOffer, with_options
from optimization.greedy import WindowRoom, fill_demand
from optimization.problem import AllocationProblem
from optimization.solver import SafetyNet

# (run, start) entries priced at a time: a few tables of 16 MB each.
CHUNK_ENTRIES = 2_000_000

Lister = Callable[[np.ndarray], dict[str, np.ndarray]]


@dataclass(frozen=True)
class OptionGrid:
    """The options of a round as runs x ``starts`` (module docstring).

    ``public``: the round without options (demands, penalties, free GPUs, carbon price and
    cap). Runs are grouped by demand (``run_demand`` ascending). ``cost_usd[i, s]``: the
    objective coefficient of option (i, s) (``AllocationProblem.option_cost_usd``);
    ``carbon_kg[i, s]``: its emissions, kept only under a carbon cap. Entries at s >=
    ``run_starts[i]`` are not options. ``lister``: option indices -> the option arrays of
    ``AllocationProblem`` for those options, in that order.
    """

    public: AllocationProblem
    run_demand: np.ndarray
    run_resource: np.ndarray
    run_gpus: np.ndarray
    run_slots: np.ndarray
    starts: np.ndarray
    run_starts: np.ndarray
    cost_usd: np.ndarray
    carbon_kg: np.ndarray | None
    lister: Lister
    # per run, the start index of its cheapest option (the first on ties; -1: none), when the
    # builder found it on its way (``cheapest_start`` computes it otherwise)
    known_cheapest_start: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.run_demand)
        for name in ("run_resource", "run_gpus", "run_slots", "run_starts"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has length {len(getattr(self, name))}, expected {n}")
        if self.cost_usd.shape != (n, len(self.starts)):
            raise ValueError(f"cost_usd has shape {self.cost_usd.shape}, "
                             f"expected {(n, len(self.starts))}")
        if n > 1 and (np.diff(self.run_demand) < 0).any():
            raise ValueError("runs must come grouped by demand (run_demand ascending)")
        if self.public.carbon_cap_kg is not None and self.carbon_kg is None:
            raise ValueError("a round with a carbon cap needs carbon_kg")

    @property
    def n_runs(self) -> int:
        return len(self.run_demand)

    @property
    def n_starts(self) -> int:
        return len(self.starts)

    @property
    def n_options(self) -> int:
        return int(self.run_starts.sum())

    @cached_property
    def demand_bounds(self) -> np.ndarray:
        """Demand d's runs are ``bounds[d]:bounds[d + 1]``."""
        return np.searchsorted(self.run_demand, np.arange(self.public.n_demands + 1))

    def sample(self, every: int) -> OptionGrid:
        """Every ``every``-th demand (from the first), its runs and costs, on the free GPUs
        scaled by the share of jobs kept: a small round whose LP prices capacity about as the
        whole round's does. Its duals are an estimate only; any mu <= 0, lambda <= 0 gives a
        valid Lagrangian bound (weak duality), so pricing the whole grid at them is safe."""
        p = self.public
        chosen = np.arange(0, p.n_demands, every)
        share = p.demand_count[chosen].sum() / max(p.demand_count.sum(), 1)
        bounds = self.demand_bounds
        sizes = bounds[chosen + 1] - bounds[chosen]
        runs = np.repeat(bounds[chosen] - np.cumsum(sizes) + sizes, sizes) + np.arange(
            sizes.sum())
        demand = np.repeat(np.arange(len(chosen)), sizes)
        n_starts, parent = self.n_starts, self.lister

        def lister(index: np.ndarray) -> dict[str, np.ndarray]:
            run, s = np.divmod(np.asarray(index, dtype=np.int64), n_starts)
            columns = parent(runs[run] * n_starts + s)
            columns["option_demand"] = demand[run]
            return columns

        public = dataclasses.replace(
            p, capacity_gpus=p.capacity_gpus * share, demand_count=p.demand_count[chosen],
            deferral_penalty_usd=p.deferral_penalty_usd[chosen],
            carbon_cap_kg=None if p.carbon_cap_kg is None else p.carbon_cap_kg * share)
        cheapest = None if self.known_cheapest_start is None else self.known_cheapest_start[runs]
        return OptionGrid(public, demand, self.run_resource[runs], self.run_gpus[runs],
                          self.run_slots[runs], self.starts, self.run_starts[runs],
                          self.cost_usd[runs],
                          None if self.carbon_kg is None else self.carbon_kg[runs], lister,
                          cheapest)

    def chunks(self) -> Iterator[tuple[int, int, int, int]]:
        """(first run, end run, first demand, end demand) of consecutive stretches of whole
        demands, about ``CHUNK_ENTRIES`` entries each (a bigger demand is a chunk alone)."""
        per_chunk = max(1, CHUNK_ENTRIES // max(1, self.n_starts))
        bounds = self.demand_bounds
        d = 0
        while d < self.public.n_demands:
            end = max(d + 1, int(np.searchsorted(bounds, bounds[d] + per_chunk, "right")) - 1)
            end = min(end, self.public.n_demands)
            yield int(bounds[d]), int(bounds[end]), d, end
            d = end

    def valid(self, lo: int, hi: int) -> np.ndarray:
        return np.arange(self.n_starts)[None, :] < self.run_starts[lo:hi, None]

    def held_slots(self, lo: int, hi: int) -> np.ndarray:
        """Slots each option holds within the horizon (``option_slots``)."""
        room = self.public.n_slots - self.starts
        return np.minimum(self.run_slots[lo:hi, None], room[None, :])

    @cached_property
    def cheapest_start(self) -> np.ndarray:
        """Per run, the start index of its cheapest option (the first on ties; -1: none)."""
        if self.known_cheapest_start is not None:
            return self.known_cheapest_start
        out = np.full(self.n_runs, -1, dtype=np.int64)
        for lo, hi, _, _ in self.chunks():
            table = np.where(self.valid(lo, hi), self.cost_usd[lo:hi], np.inf)
            out[lo:hi] = np.where(self.run_starts[lo:hi] > 0, table.argmin(axis=1), -1)
        return out

    def index(self, run: np.ndarray, s: np.ndarray) -> np.ndarray:
        return np.asarray(run, dtype=np.int64) * self.n_starts + s

    def listed(self, index: np.ndarray) -> AllocationProblem:
        """The round with only these options, listed (index order as given)."""
        return with_options(self.public, self.lister(np.asarray(index, dtype=np.int64)))

    def cells(self) -> np.ndarray:
        """The flat (resource, slot) cells some option may occupy, sorted: per resource, from
        its runs' earliest start to their latest end."""
        p = self.public
        runs = self.run_starts > 0
        resource = self.run_resource[runs]
        first = np.full(p.n_resources, p.n_slots)
        last = np.zeros(p.n_resources, dtype=np.int64)
        np.minimum.at(first, resource, self.starts[0])
        latest = self.starts[self.run_starts[runs] - 1]
        np.maximum.at(last, resource, np.minimum(latest + self.run_slots[runs], p.n_slots))
        cells = [r * p.n_slots + np.arange(first[r], last[r]) for r in range(p.n_resources)
                 if last[r] > first[r]]
        return np.concatenate([np.zeros(0, dtype=np.int64), *cells]).astype(np.int64)

    def window_table(self, per_cell: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ends, begins): ``ends[r, k, s]`` = the prefix sum of ``per_cell`` along resource
        r's slots at min(starts[s] + k, n_slots), ``begins[r, s]`` at starts[s]; a window's sum
        for run i at start s is ``ends[r_i, min(slots_i, n_slots), s] - begins[r_i, s]``."""
        p = self.public
        prefix = np.zeros((p.n_resources, p.n_slots + 1))
        np.cumsum(np.reshape(per_cell, (p.n_resources, p.n_slots)), axis=1, out=prefix[:, 1:])
        at = np.minimum(np.arange(p.n_slots + 1)[:, None] + self.starts[None, :], p.n_slots)
        return prefix[:, at], prefix[:, self.starts]

    def priced(self, lo: int, hi: int, windows: tuple[np.ndarray, np.ndarray],
               lam: float) -> np.ndarray:
        """priced_{i,s} of the module docstring for runs lo:hi (+inf where no option)."""
        return self.priced_rows(np.arange(lo, hi), windows, lam)

    def priced_rows(self, runs: np.ndarray, windows: tuple[np.ndarray, np.ndarray],
                    lam: float) -> np.ndarray:
        """priced_{i,s} for the given runs (+inf where no option)."""
        ends, begins = windows
        resource = self.run_resource[runs]
        used = ends[resource, np.minimum(self.run_slots[runs], self.public.n_slots)]
        used -= begins[resource]
        used *= -self.run_gpus[runs, None]
        used += self.cost_usd[runs]
        if lam and self.carbon_kg is not None:
            used -= self.carbon_kg[runs] * lam
        used[np.arange(self.n_starts)[None, :] >= self.run_starts[runs, None]] = np.inf
        return used


def demand_minima(grid: OptionGrid, table: np.ndarray, lo: int, d_lo: int,
                  d_hi: int) -> np.ndarray:
    """min over each demand's options of a chunk's table (+inf for a demand without runs)."""
    rows = table.min(axis=1)
    bounds = grid.demand_bounds[d_lo:d_hi + 1] - lo
    out = np.full(d_hi - d_lo, np.inf)
    has = bounds[1:] > bounds[:-1]
    if has.any():
        out[has] = np.minimum.reduceat(rows, bounds[:-1][has])
    return out


def cheapest_entries(grid: OptionGrid, score: np.ndarray, lo: int, k: int) -> np.ndarray:
    """Option indices of each demand's ``k`` lowest finite scores in a chunk's table (runs
    lo:), ties to the lowest index; sorted."""
    n_starts = grid.n_starts
    if n_starts > k:  # a demand's k lowest are among its runs' k lowest each
        part = np.argpartition(score, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(n_starts), score.shape)
    row = np.repeat(np.arange(len(score)), part.shape[1])
    s = part.reshape(-1)
    value = score[row, s]
    keep = np.isfinite(value)
    row, s, value = row[keep], s[keep], value[keep]
    index = grid.index(lo + row, s)
    demand = grid.run_demand[lo + row]
    order = np.lexsort((index, value, demand))
    demand = demand[order]
    rank = np.arange(len(order)) - np.searchsorted(demand, demand, side="left")
    return np.sort(index[order[rank < k]])


class GridPricers:
    """The pricing subproblem over an option grid, as one shard of ``optimization.decomposed``
    (its ``ShardPricers``): per-demand minima of the priced costs and each demand's ``k``
    cheapest options of negative reduced cost, listed."""

    def __init__(self, grid: OptionGrid) -> None:
        self.grid = grid

    def cells(self) -> list[np.ndarray]:
        return [self.grid.cells()]

    def price(self, duals: Duals, k: int) -> list[ShardOffer]:
        started = time.perf_counter()
        g = self.grid
        windows = g.window_table(duals.mu)
        least = np.full(g.public.n_demands, np.inf)
        chosen = []
        for lo, hi, d_lo, d_hi in g.chunks():
            score = g.priced(lo, hi, windows, duals.lam)
            least[d_lo:d_hi] = demand_minima(g, score, lo, d_lo, d_hi)
            if duals.y is not None:
                score -= duals.y[g.run_demand[lo:hi], None]
                score[score >= -RC_TOLERANCE] = np.inf
                held = duals.held_negative
                held = held[(held >= lo * g.n_starts) & (held < hi * g.n_starts)]
                score.reshape(-1)[held - lo * g.n_starts] = np.inf
            chosen.append(cheapest_entries(g, score, lo, k))
        index = np.concatenate([np.zeros(0, dtype=np.int64), *chosen])
        columns = g.lister(index)
        p = with_options(g.public, columns)
        score = p.option_cost_usd - p.window_sums(duals.mu) * p.option_gpus
        if duals.lam:
            score -= p.option_carbon_kg * duals.lam
        if duals.y is not None:
            score -= duals.y[p.option_demand]
        return [ShardOffer(least, index, columns, score, time.perf_counter() - started)]


def trivial_bound(grid: OptionGrid) -> float:
    """L(0, 0): every demand at its cheapest option or deferred, capacity ignored."""
    p = grid.public
    least = np.full(p.n_demands, np.inf)
    for lo, hi, d_lo, d_hi in grid.chunks():
        table = np.where(grid.valid(lo, hi), grid.cost_usd[lo:hi], np.inf)
        least[d_lo:d_hi] = demand_minima(grid, table, lo, d_lo, d_hi)
    zero = np.zeros(p.n_resources * p.n_slots)
    return lagrangian_value(p, zero, 0.0, np.minimum(p.deferral_penalty_usd, least))


@dataclass(frozen=True)
class GridPlan:
    """Jobs on options of the grid: ``count[j]`` jobs on option ``index[j]`` (sorted).
    ``unplanned``: demands a safety net left deferred before the greedy reached them."""

    index: np.ndarray
    count: np.ndarray
    unplanned: int = 0


def grid_greedy(grid: OptionGrid, start: GridPlan | None = None, duals: Duals | None = None,
                net: SafetyNet | None = None) -> GridPlan:
    """``optimization.greedy.greedy_allocation`` of the listed round, on the grid: the same
    priorities (saving density of a demand's best-ranked option worth taking, the lowest
    index on ties), then each demand's jobs on the best-ranked of its options that fit
    (``fill_demand``). ``start``: a feasible partial plan to complete (its jobs keep their
    options); ``duals``: rank by reduced cost at these duals (default: by cost); ``net``: a
    safety net that, once expired, leaves the demands not yet reached deferred (a feasible
    plan by the budget, however big the round).

    A demand first tries only its options ranked below ``tau_d``, the k-th least of its runs'
    best ranks (a few runs' rows; k the first of ``GREEDY_CANDIDATE_RUNS``): while one of those
    fits, it is the best-ranked that fits, every other option ranking ``tau_d`` or more. Jobs
    left when none fits try the next k, then every option, so the plan is the greedy's own, at
    a fraction of the work."""
    p = grid.public
    penalty = p.deferral_penalty_usd
    windows = None if duals is None else grid.window_table(duals.mu)

    def ranks(runs: np.ndarray) -> np.ndarray:
        if duals is None or windows is None:
            return grid.cost_usd[runs]
        assert duals.y is not None
        return grid.priced_rows(runs, windows, duals.lam) - duals.y[grid.run_demand[runs], None]

    if duals is None:
        best, held, run_least = _leads_by_cost(grid)
    else:
        best, held, run_least = _leads(grid, ranks)
    priority = (penalty - best) / held
    taus = [_kth_least_per_demand(grid, run_least, k) for k in GREEDY_CANDIDATE_RUNS]
    room = WindowRoom(p.capacity_gpus)
    carbon_left = np.inf if p.carbon_cap_kg is None else float(p.carbon_cap_kg)
    left = p.demand_count.astype(np.int64)
    taken: dict[int, int] = {}
    if start is not None and len(start.index):
        run, s = np.divmod(start.index, grid.n_starts)
        slots = np.minimum(grid.run_slots[run], p.n_slots - grid.starts[s])
        for i in range(len(run)):
            room.take(int(grid.run_resource[run[i]]), int(grid.starts[s[i]]), int(slots[i]),
                      float(grid.run_gpus[run[i]] * start.count[i]))
            taken[int(start.index[i])] = int(start.count[i])
        np.subtract.at(left, grid.run_demand[run], start.count)
        if grid.carbon_kg is not None:
            carbon_left -= float(grid.carbon_kg[run, s] @ start.count)
    bounds = grid.demand_bounds
    order = np.argsort(-priority, kind="stable")
    unplanned = 0
    for k, d in enumerate(order):
        if net is not None and k % NET_CHECK_DEMANDS == 0 and net.expired():
            unplanned = len(order) - k
            break
        lo, hi = int(bounds[d]), int(bounds[d + 1])
        jobs = int(left[d])
        if jobs <= 0 or lo == hi or not np.isfinite(best[d]):
            continue
        for tau in (*taus, None):
            if tau is None:
                runs, below = np.arange(lo, hi), np.inf
            else:
                runs, below = lo + np.flatnonzero(run_least[lo:hi] < tau[d]), tau[d]
            rank = ranks(runs)
            row, s = np.nonzero((np.arange(grid.n_starts)[None, :] < grid.run_starts[runs, None])
                                & (grid.cost_usd[runs] < penalty[d]) & (rank < below))
            if not len(row):
                continue
            run = runs[row]
            carbon = np.zeros(len(row)) if grid.carbon_kg is None else grid.carbon_kg[run, s]
            slots = np.minimum(grid.run_slots[run], p.n_slots - grid.starts[s])
            for i, k in fill_demand(room, jobs, grid.run_resource[run], grid.starts[s], slots,
                                    grid.run_gpus[run].astype(float), rank[row, s], carbon,
                                    carbon_left):
                option = int(grid.index(run[i], s[i]))
                taken[option] = taken.get(option, 0) + k
                carbon_left -= k * float(carbon[i])
                jobs -= k
            if jobs == 0:
                break
    index = np.array(sorted(taken), dtype=np.int64)
    return GridPlan(index, np.array([taken[int(o)] for o in index], dtype=np.int64), unplanned)


# The greedy asks its safety net every this many demands (a demand takes ~0.1 ms).
NET_CHECK_DEMANDS = 64


def _leads(grid: OptionGrid, ranks: Callable[[np.ndarray], np.ndarray]
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per demand, the cost of its lead (its best-ranked option worth taking, the lowest index
    on ties; +inf: none) and the GPU-slots the lead holds; per run, its best rank worth
    taking. One pass over the grid."""
    p = grid.public
    penalty = p.deferral_penalty_usd
    best = np.full(p.n_demands, np.inf)
    held = np.ones(p.n_demands)
    run_least = np.full(grid.n_runs, np.inf)
    for lo, hi, d_lo, d_hi in grid.chunks():
        cost = grid.cost_usd[lo:hi]
        worth = grid.valid(lo, hi) & (cost < penalty[grid.run_demand[lo:hi], None])
        table = np.where(worth, ranks(np.arange(lo, hi)), np.inf)
        run_least[lo:hi] = table.min(axis=1, initial=np.inf)
        least = demand_minima(grid, table, lo, d_lo, d_hi)
        row, s = np.nonzero(table == least[grid.run_demand[lo:hi] - d_lo, None])
        keep = np.isfinite(table[row, s])
        row, s = row[keep], s[keep]
        demand = grid.run_demand[lo + row]
        first = np.unique(demand, return_index=True)[1]
        row, s, demand = row[first], s[first], demand[first]
        best[demand] = cost[row, s]
        held[demand] = grid.run_gpus[lo + row] * grid.held_slots(lo, hi)[row, s]
    return best, held, run_least


def _leads_by_cost(grid: OptionGrid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``_leads`` ranking by cost, from each run's cheapest option (``cheapest_start``): a
    pass over the runs, not the options (an option worth taking costs less than deferring,
    so a run's cheapest option is its best worth taking, if it has one)."""
    p = grid.public
    start = grid.cheapest_start
    has = start >= 0
    runs = np.flatnonzero(has)
    run_least = np.full(grid.n_runs, np.inf)
    run_least[runs] = grid.cost_usd[runs, start[runs]]
    run_least[run_least >= p.deferral_penalty_usd[grid.run_demand]] = np.inf
    bounds = grid.demand_bounds
    nonempty = bounds[1:] > bounds[:-1]
    best = np.full(p.n_demands, np.inf)
    best[nonempty] = np.minimum.reduceat(run_least, bounds[:-1][nonempty])
    lead = np.flatnonzero(np.isfinite(run_least) & (run_least == best[grid.run_demand]))
    demand, first = np.unique(grid.run_demand[lead], return_index=True)
    lead = lead[first]
    held = np.ones(p.n_demands)
    slots = np.minimum(grid.run_slots[lead], p.n_slots - grid.starts[start[lead]])
    held[demand] = grid.run_gpus[lead] * slots
    return best, held, run_least


# How many of its runs' rows a demand's jobs try first, then next, in the greedy plan
# (``grid_greedy``), before all of them.
GREEDY_CANDIDATE_RUNS = (8, 48)


def _kth_least_per_demand(grid: OptionGrid, per_run: np.ndarray, k: int) -> np.ndarray:
    """Each demand's k-th least value over its runs (+inf when it has fewer than k)."""
    sizes = np.diff(grid.demand_bounds)
    widest = int(sizes.max(initial=0))
    out = np.full(grid.public.n_demands, np.inf)
    if widest < k:
        return out
    table = np.full((grid.public.n_demands, widest), np.inf)
    demand = grid.run_demand
    table[demand, np.arange(grid.n_runs) - grid.demand_bounds[demand]] = per_run
    return np.partition(table, k - 1, axis=1)[:, k - 1]
