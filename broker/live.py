"""The live broker's bridge to the planner: registered sites and their offers -> a planning round.

The REST API keeps sites, offers and jobs in a database; each round it hands them to this module,
which builds the same ``Federation`` and ``RoundOffers`` the simulator builds, so the live broker
plans with ``broker.planner.MilpPlanner`` itself, not a copy.

Offers are advertised per site with their own slot 0 (``start_h`` on the broker's clock); a round
starting at ``now_h`` reads each offer from the slot that contains ``now_h``. Slots an offer does
not cover offer no GPUs (capacity nobody promised) and repeat the nearest advertised signal.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from broker.costs import cost_per_kwh_usd, delay_cost_usd
from broker.federation import Federation
from broker.jobs import Job
from broker.offers import RoundOffers
from broker.options import at_starts, price_options, runs_on
from broker.planner import (
    MilpPlanner,
    Plan,
    PlannerConfig,
    RoundProblem,
    assignments_from_counts,
    build_round_problem,
    group_identical_jobs,
)
from optimization import AllocationProblem, SolveStatus, relative_gap
from sites.affinity import AffinityMatrix
from sites.gpus import GpuType
from sites.scaling import runtime_h
from sites.spec import SiteSpec
from sites.timegrid import SLOT_EPS, slot_index, slots_until


@dataclass(frozen=True)
class SiteOffer:
    """One site's advertised horizon: slot ``i`` covers ``[start_h + i slot_h, +slot_h)``."""

    site_id: str
    start_h: float
    slot_h: float
    free_gpus: Mapping[str, Sequence[int]]  # GPU type -> free GPUs per slot
    price_usd_per_mwh: Sequence[float]
    carbon_g_per_kwh: Sequence[float]

    def __post_init__(self) -> None:
        n = len(self.price_usd_per_mwh)
        if n == 0 or len(self.carbon_g_per_kwh) != n:
            raise ValueError("price and carbon forecasts must cover the same, non-empty horizon")
        if any(len(v) != n for v in self.free_gpus.values()):
            raise ValueError("free_gpus must cover the same horizon as the forecasts")


@dataclass(frozen=True)
class Reservation:
    """GPUs the broker handed to a site that the site's current offer does not show yet."""

    site_id: str
    gpu_type: str
    gpus: int
    start_h: float
    end_h: float


def shortlist_sites(
    offers: Mapping[str, SiteOffer], usable: set[str], max_sites: int | None,
    carbon_price_usd_per_t: float,
) -> set[str]:
    """The ``max_sites`` usable sites a round gives GPU pools to (None: every usable site):
    those with free GPUs, cheapest first (mean energy price plus carbon price x mean carbon
    intensity over their offer).

    A cap bounds a round's memory whatever the federation's size. It is not how a round
    stays small: ``candidate_sites`` bounds every job's options to a few sites, chosen by
    cost and room, so a round can look at every site (a cap cuts off the sites beyond it,
    full or not: with the 32 cheapest full, nothing else was planned).
    """
    if max_sites is None or len(usable) <= max_sites:
        return set(usable)
    ranked = []
    for site in usable:
        offer = offers[site]
        if not any(max(v, default=0) > 0 for v in offer.free_gpus.values()):
            continue
        cost = float(cost_per_kwh_usd(np.mean(offer.price_usd_per_mwh),
                                      np.mean(offer.carbon_g_per_kwh), carbon_price_usd_per_t))
        ranked.append((cost, site))
    return {site for _, site in sorted(ranked)[:max_sites]}


def live_federation(
    sites: Sequence[SiteSpec],
    usable: set[str],
    gpu_catalog: Mapping[str, GpuType],
    affinity: AffinityMatrix,
    transfer_gbps: float,
) -> Federation:
    """The federation of a round: every site listed, but only ``usable`` ones keep their GPUs.

    Sites that cannot take work now (stale, deregistered, no offer) stay in the federation with no
    GPU pools, because queued jobs may call them home (egress price, transfer time).
    """
    specs = tuple(
        s if s.id in usable else SiteSpec(s.id, s.zone, {}, s.pue, s.egress_usd_per_gb)
        for s in sites
    )
    return Federation(specs, gpu_catalog, affinity, transfer_gbps)


def _offer_slots(offer: SiteOffer, now_h: float, slot_h: float, horizon_slots: int) -> np.ndarray:
    """Index into the offer of each round slot (may fall outside the offer)."""
    first = slot_index(now_h - offer.start_h, slot_h)
    return first + np.arange(horizon_slots)


def round_offers(
    federation: Federation,
    offers: Mapping[str, SiteOffer],
    now_h: float,
    slot_h: float,
    horizon_slots: int,
    reservations: Sequence[Reservation] = (),
    releases: Sequence[Reservation] = (),
) -> RoundOffers:
    """The ``RoundOffers`` of a round at ``now_h``: offers aligned to the round's slots.

    Free GPUs are the advertised ones minus ``reservations`` (never below 0), plus
    ``releases``: the GPUs of running jobs the round may pause (their offer leaves them out;
    the round plans them again, going on where they run among their options). A site without an
    offer gets flat zero signals; it has no GPU pools in a federation built by
    ``live_federation``, so they are never read.
    """
    n_sites, n_res = len(federation.sites), len(federation.resources)
    free = np.zeros((n_res, horizon_slots), dtype=int)
    price = np.zeros((n_sites, horizon_slots))
    carbon = np.zeros((n_sites, horizon_slots))
    for s, site in enumerate(federation.sites):
        offer = offers.get(site.id)
        if offer is None:
            continue
        if not math.isclose(offer.slot_h, slot_h):
            raise ValueError(f"site {site.id}: offer slot_h {offer.slot_h} != broker's {slot_h}")
        idx = _offer_slots(offer, now_h, slot_h, horizon_slots)
        n = len(offer.price_usd_per_mwh)
        inside = (idx >= 0) & (idx < n)
        clipped = np.clip(idx, 0, n - 1)
        price[s] = np.asarray(offer.price_usd_per_mwh, float)[clipped]
        carbon[s] = np.asarray(offer.carbon_g_per_kwh, float)[clipped]
        for r, (site_i, gpu) in enumerate(federation.resources):
            if site_i == s and gpu in offer.free_gpus:
                advertised = np.asarray(offer.free_gpus[gpu], dtype=int)[clipped]
                free[r] = np.where(inside, advertised, 0)
    for res, sign in [(r, -1) for r in reservations] + [(r, 1) for r in releases]:
        pool = _resource(federation, res.site_id, res.gpu_type)
        if pool is None:
            continue
        slot_from = now_h + np.arange(horizon_slots) * slot_h
        overlaps = (slot_from < res.end_h - SLOT_EPS) & (
            slot_from + slot_h > res.start_h + SLOT_EPS
        )
        free[pool] += sign * np.where(overlaps, res.gpus, 0)
    return RoundOffers(
        now_h=now_h,
        slot_h=slot_h,
        free_gpus=np.maximum(free, 0),
        price_usd_per_mwh=price,
        carbon_g_per_kwh=carbon,
    )


def _resource(federation: Federation, site_id: str, gpu_type: str) -> int | None:
    site_i = federation.site_index.get(site_id)
    if site_i is None or (site_i, gpu_type) not in federation.resources:
        return None
    return federation.resources.index((site_i, gpu_type))


# --- candidate sites: a job's options at a few sites, not at every site ----------------------

def candidate_sites(federation: Federation, offers: RoundOffers, queue: Sequence[Job],
                    config: PlannerConfig, spare_sites: int) -> list[Job]:
    """The queue with each job barred (``Job.excluded_sites``) from the sites outside its
    candidates, so a round's options grow with its jobs, not with jobs x sites.

    A round's options are jobs x pools x start slots: 5,000 jobs at 200 sites of three GPU
    types over 24 slots are 72M options, more than any round can build in its budget (11M
    took 9 s to build). Each job's candidates are its home, the site it runs on (a running
    job), the sites its jobs reach in a fill by cost and volume, and ``spare_sites`` more:

    - a job ranks pools by a lower bound on what any of its options there costs: its energy
      at the site's cheapest slot of the horizon (energy price + carbon price x carbon
      intensity per kWh), plus its delay cost were it to start now. Transfer costs are left
      out: they are the same at every site but home, which is always a candidate;
    - a pool that never has the job's GPUs free in the horizon is no candidate (none of its
      options there is feasible: leaving it out loses nothing);
    - demands (identical jobs), most urgent first as the greedy plan takes them
      (``urgency_key``), fill their pools in that order by volume: a pool takes as many jobs
      as its free GPU-slots over the horizon hold (a job: its GPUs x the slots its run
      holds), less what more urgent demands took. The sites the fill reaches are candidates;
    - then the next ``spare_sites`` sites in the job's order that have room left.

    What it may lose: the options outside the candidates. A plan is optimal (or within its
    gap) over the candidates only, and the full round may do better when a job's best site
    lies beyond its fill and spares: (1) the lower bound misranks it (a site with one very
    cheap slot ranks above one cheaper over the job's whole run), or (2) the fill's volume
    guess is off beyond what the spares absorb (free GPU-slots no run's shape fits, or a
    cheap pool a more urgent job takes in the fill but not in the plan). A round's reported
    gap is therefore to the bound of the reduced round; ``bench/live_round.py`` measures the
    reduced round's plan against the full round's LP bound.

    With ``spare_sites`` at least the number of sites with pools, nothing is left out.
    """
    n_res = len(federation.resources)
    site = federation.resource_site
    with_pools = sorted(set(site.tolist()))
    if not queue or len(with_pools) <= spare_sites:
        return list(queue)
    slot_h, horizon = offers.slot_h, offers.horizon_slots
    free = np.asarray(offers.free_gpus, dtype=float)
    room = free.sum(axis=1)  # free GPU-slots of each pool, less what the fill took
    most = free.max(axis=1)
    cheapest_kwh = np.min(cost_per_kwh_usd(offers.price_usd_per_mwh, offers.carbon_g_per_kwh,
                                           config.carbon_price_usd_per_t), axis=1)[site]
    pools = np.arange(n_res)
    demands = group_identical_jobs(queue)
    reps = [d[0] for d in demands]
    runs_there = federation.steps_per_s(reps) > 0  # its GPU types, restrictions, exclusions
    ids = np.array([s.id for s in federation.sites], dtype=object)
    has_pools = np.zeros(len(ids), dtype=bool)
    has_pools[with_pools] = True
    barred: dict[int, frozenset[str]] = {}  # by the job object (ids are the caller's)
    for d in sorted(range(len(demands)), key=lambda d: urgency_key(reps[d])):
        job = reps[d]
        bound, need = _pool_bounds(federation, job, runs_there[d], most, cheapest_kwh, pools,
                                   config.delay_cost_usd_per_gpu_h, slot_h, horizon)
        order = np.flatnonzero(np.isfinite(bound))
        order = order[np.argsort(bound[order], kind="stable")]
        if job.state is not None and job.state.computing:  # it goes on where it runs first
            here = _resource(federation, job.state.site_id, job.state.gpu_type)
            order = np.concatenate([[here], order[order != here]]) if here is not None else order
        keep = {federation.site_index[job.home_site]}
        if job.state is not None:
            keep.add(federation.site_index[job.state.site_id])
        fits = np.floor(room[order] / np.maximum(need[order], 1.0) + 1e-9)
        placed = np.cumsum(fits)
        last = int(np.searchsorted(placed, len(demands[d])))  # the pool the fill ends in
        filled = order[:last + 1]
        before = np.concatenate([[0.0], placed[:last]])[:len(filled)]
        take = np.clip(np.minimum(fits[:last + 1], len(demands[d]) - before), 0, None)
        room[filled] -= take * need[filled]
        keep.update(site[filled[take > 0]].tolist())
        later = order[last + 1:]
        later = later[room[later] >= need[later] - 1e-9]
        spare = [s for s in dict.fromkeys(site[later].tolist()) if s not in keep][:spare_sites]
        keep.update(spare)
        out = has_pools.copy()
        out[list(keep)] = False
        # one set per demand: its jobs share their exclusions (``group_identical_jobs``)
        left_out = job.excluded_sites | frozenset(ids[out].tolist())
        for j in demands[d]:
            barred[id(j)] = left_out
    return [replace(j, excluded_sites=barred[id(j)]) if barred[id(j)] else j for j in queue]


def _pool_bounds(federation: Federation, job: Job, runs_there: np.ndarray, most: np.ndarray,
                 cheapest_kwh: np.ndarray, pools: np.ndarray, delay_usd_per_gpu_h: float,
                 slot_h: float, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Per pool: a lower bound on the cost of ``job``'s options there (inf: none is
    feasible) and the GPU-slots its run holds there, at its cheapest GPU count."""
    bound = np.full(len(pools), np.inf)
    need = np.zeros(len(pools))
    for k in job.gpu_counts:
        hours = runtime_h(job.work_steps,
                          federation.throughput_row(job.job_type, job.gpu_types, k))
        ok = runs_there & (most >= k) & np.isfinite(hours)
        hours = np.where(ok, hours, 0.0)
        cost = (federation.run_energy_kwh(np.full(len(pools), k), pools, hours) * cheapest_kwh
                + delay_cost_usd(k, hours, delay_usd_per_gpu_h))
        better = ok & (cost < bound)
        bound[better] = cost[better]
        need[better] = k * np.clip(slots_until(hours, slot_h), 1, horizon)[better]
    return bound, need


@dataclass(frozen=True)
class RunEstimate:
    """What running a job on a pool is expected to take and cost, from the site's forecasts."""

    transfer_h: float  # shipping the data set first (0 at home)
    runtime_h: float
    energy_kwh: float
    carbon_kg: float
    energy_cost_usd: float
    transfer_cost_usd: float

    @property
    def occupy_h(self) -> float:
        return self.transfer_h + self.runtime_h


def estimate_run(
    federation: Federation, round_: RoundOffers, job: Job, site_id: str, gpu_type: str,
    start_offset: int, gpus: int | None = None,
) -> RunEstimate:
    """Run time, energy, emissions and cost of ``job`` on ``gpus`` GPUs (default: its own
    count) of a pool: the round's option for it (``broker.options``), priced on the round's
    forecasts exactly as the planner priced it."""
    return estimate_runs(federation, round_, [
        (job, site_id, gpu_type, start_offset, job.gpus if gpus is None else gpus)])[0]


def estimate_runs(
    federation: Federation, round_: RoundOffers,
    starts: Sequence[tuple[Job, str, str, int, int]],
) -> list[RunEstimate]:
    """``estimate_run`` of many (job, site id, GPU type, start offset, GPUs) at once: a
    round's starts are priced together (one at a time, 900 starts took 0.6 s)."""
    if not starts:
        return []
    pools = []
    for _, site_id, gpu_type, _, _ in starts:
        r = _resource(federation, site_id, gpu_type)
        if r is None:
            raise ValueError(f"no pool {gpu_type} at {site_id}")
        pools.append(r)
    jobs = [job for job, *_ in starts]
    runs = runs_on(federation, jobs, np.arange(len(jobs)), np.array(pools),
                   np.array([gpus for *_, gpus in starts], dtype=int))
    options = at_starts(runs, np.array([[offset] for _, _, _, offset, _ in starts]),
                        round_.slot_h)
    priced = price_options(options, round_.price_usd_per_mwh, round_.carbon_g_per_kwh,
                           round_.slot_h, delay_from_h=0.0, delay_cost_usd_per_gpu_h=0.0)
    run = options.runs
    return [RunEstimate(
        transfer_h=float(run.transfer_h[i]),
        runtime_h=float(run.runtime_h[i]),
        energy_kwh=float(run.energy_kwh[i]),
        carbon_kg=float(priced.carbon_kg[i]),
        energy_cost_usd=float(priced.energy_cost_usd[i]),
        transfer_cost_usd=float(run.transfer_cost_usd[i]),
    ) for i in range(len(starts))]


# --- anytime planning -----------------------------------------------------------------------
#
# A round must hand out work whatever the queue size. The MILP may run out of time without an
# incumbent; so a round first builds a greedy plan over the very options and costs the MILP
# sees (fast, always feasible), then lets the MILP improve on it within the rest of the budget,
# and keeps whichever plan costs less.

GREEDY = "greedy"
MIN_SOLVER_S = 0.2  # below this the MILP cannot do better than the greedy plan in practice
# The MILP's own model build is outside its solver time limit; it takes a few times the numpy
# build of the same options (what the greedy plan's time mostly is), so that much is set aside.
MILP_BUILD_PER_GREEDY_S = 3.0
# Share of a round's budget kept for what follows the plan (mapping it to jobs, the starts'
# estimates, the round's record): rounds of 5,000 jobs whose MILP took all the rest ended
# 1 s past a 10 s budget on a loaded machine.
AFTER_PLAN_SHARE = 0.1


def urgency_key(job: Job) -> tuple[bool, float, float, str]:
    """Most urgent first: jobs with a deadline (earliest first), then the oldest."""
    return (job.deadline_h is None, job.deadline_h or 0.0, job.submit_h, job.id)


def greedy_option_counts(rp: RoundProblem, jobs_urgency: Sequence[int]) -> np.ndarray:
    """Place each demand's jobs, most urgent demand first, on its cheapest option with room.

    ``jobs_urgency`` orders the demands. Room is checked over every slot an option occupies
    (a prefix sum of "too few GPUs" per pool and slot), so the plan respects every capacity.
    """
    p = rp.problem
    cap = np.array(p.capacity_gpus, dtype=float)
    cost = p.option_cost_usd
    counts = np.zeros(p.n_options, dtype=int)
    by_demand = np.argsort(p.option_demand, kind="stable")
    bounds = np.searchsorted(p.option_demand[by_demand], np.arange(p.n_demands + 1))
    for d in jobs_urgency:
        options = by_demand[bounds[d]:bounds[d + 1]]
        if len(options) == 0:
            continue
        options = options[np.argsort(cost[options], kind="stable")]
        res, start = p.option_resource[options], p.option_start[options]
        end = np.minimum(start + p.option_slots[options], p.n_slots)
        gpus = p.option_gpus[options]  # a moldable demand's options differ in GPU count
        # the demand's own pools only (a round over hundreds of sites has thousands of pools)
        pools, local = np.unique(res, return_inverse=True)
        for _ in range(int(p.demand_count[d])):
            room = np.zeros(len(options), dtype=bool)
            for k_gpus in np.unique(gpus):
                short = np.concatenate([np.zeros((len(pools), 1)),
                                        np.cumsum(cap[pools] < k_gpus - 1e-9, axis=1)], axis=1)
                same = gpus == k_gpus
                room[same] = (short[local[same], end[same]]
                              - short[local[same], start[same]]) == 0
            if not room.any():
                break
            k = int(np.argmax(room))  # options are sorted by cost: the first with room
            cap[res[k], start[k]:end[k]] -= gpus[k]
            counts[options[k]] += 1
    return counts


def plan_from_counts(
    federation: Federation, offers: RoundOffers, rp: RoundProblem, counts: np.ndarray,
    message: str, bound_usd: float = -math.inf, elapsed_s: float = 0.0,
) -> Plan:
    """A ``Plan`` from option counts, mapping counts to jobs as ``MilpPlanner`` does."""
    p = rp.problem
    assignments, deferred = assignments_from_counts(federation, offers, rp, counts)
    placed = np.zeros(p.n_demands)
    np.add.at(placed, p.option_demand, counts)
    objective = float(counts @ p.option_cost_usd
                      + (p.demand_count - placed) @ p.deferral_penalty_usd)
    return Plan(tuple(assignments), tuple(deferred), SolveStatus.FEASIBLE, message, objective,
                bound_usd, {}, p.n_options, 0.0, elapsed_s)


def greedy_plan(
    federation: Federation, offers: RoundOffers, queue: Sequence[Job], config: PlannerConfig
) -> Plan:
    """A feasible plan in under a second for hundreds of jobs (``greedy_option_counts``)."""
    begun = time.perf_counter()
    rp = build_round_problem(federation, offers, queue, config)
    order = sorted(range(len(rp.demands)), key=lambda d: urgency_key(rp.demands[d][0]))
    counts = greedy_option_counts(rp, order)
    return plan_from_counts(federation, offers, rp, counts, "greedy plan (broker.live)",
                            bound_usd=separable_bound_usd(rp.problem),
                            elapsed_s=time.perf_counter() - begun)


def separable_bound_usd(p: AllocationProblem) -> float:
    """A lower bound on a round's optimum with no solver: every job on its cheapest option or
    deferred, whichever costs less, as if capacity were unlimited (dropping the capacity rows
    only widens the feasible set). Weak where capacity binds, but every plan gets a proven
    gap, a greedy plan with no time for the MILP too."""
    if p.n_demands == 0:
        return 0.0
    cheapest = np.full(p.n_demands, np.inf)
    np.minimum.at(cheapest, p.option_demand, p.option_cost_usd)
    return float(p.demand_count @ np.minimum(cheapest, p.deferral_penalty_usd))


def plan_gap(plan: Plan) -> float | None:
    """Relative gap between the plan's cost and the best bound known (None: no bound)."""
    if not (math.isfinite(plan.objective_usd) and math.isfinite(plan.bound_usd)):
        return None
    return relative_gap(plan.objective_usd, plan.bound_usd)


@dataclass(frozen=True)
class AnytimePlan:
    """A round's plan and how it was found."""

    plan: Plan
    method: str  # "milp", or "greedy" when the greedy plan was kept
    status: str  # the MILP's status, or "greedy (<the MILP's status or why it did not run>)"


def anytime_plan(
    federation: Federation, offers: RoundOffers, queue: Sequence[Job], config: PlannerConfig,
    budget_s: float,
) -> AnytimePlan:
    """A feasible plan within about ``budget_s``: greedy first, then the MILP improves on it.

    The MILP gets what is left of the budget; its plan is kept only if it costs no more than the
    greedy one (a time-limited solve may return nothing, or something worse). A greedy plan
    kept over a MILP answer reports the MILP's status as ``greedy (<status>)`` and its bound.
    """
    begun = time.perf_counter()
    greedy = greedy_plan(federation, offers, queue, config)
    spent = time.perf_counter() - begun
    after = AFTER_PLAN_SHARE * budget_s if math.isfinite(budget_s) and budget_s > 0 else 0.0
    left = budget_s - spent - MILP_BUILD_PER_GREEDY_S * spent - after
    if left < MIN_SOLVER_S:
        return AnytimePlan(greedy, GREEDY, f"{GREEDY} (no time for the MILP)")
    solver = replace(config.solver, time_limit_s=left)
    milp = MilpPlanner(federation, replace(config, solver=solver)).plan(offers, queue)
    solved = milp.status.has_solution and (bool(milp.assignments) or not greedy.assignments)
    tolerance = 1e-9 * max(1.0, abs(greedy.objective_usd))
    # both bounds hold for the same round: the better one is kept
    bound = max(greedy.bound_usd, milp.bound_usd if math.isfinite(milp.bound_usd) else -math.inf)
    if solved and milp.objective_usd <= greedy.objective_usd + tolerance:
        return AnytimePlan(replace(milp, bound_usd=bound), "milp", milp.status.value)
    kept = replace(greedy, bound_usd=bound, solve_time_s=greedy.solve_time_s + milp.solve_time_s)
    return AnytimePlan(kept, GREEDY, f"{GREEDY} ({milp.status.value})")
