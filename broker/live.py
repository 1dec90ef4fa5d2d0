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
from broker.demands import group_identical_jobs
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
)
from broker.round_grid import listed_options_estimate
from optimization import SolveStatus, relative_gap
from optimization.problem import trivial_lower_bound
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
    """The queue with each job restricted to its candidate sites (``Job.allowed_sites``), so
    a round's options grow with its jobs, not with jobs x sites.

    A round's options are jobs x pools x start slots: 5,000 jobs at 200 sites of three GPU
    types over 24 slots are 72M options, more than any round can build in its budget (11M
    took 9 s to build). Each job's candidates are its home, the site it runs on (a running
    job), the sites its jobs reach in a fill by cost and volume, and ``spare_sites`` more:

    - a job ranks pools by a lower bound on what any of its options there costs: its energy
      at the site's cheapest slot of the horizon (energy price + carbon price x carbon
      intensity per kWh), plus its delay cost were it to start now. Transfer costs are left
      out: they are the same at every site but home, which is always a candidate. Both parts
      grow with the run's hours, work / throughput, so jobs that differ only in work rank
      pools alike (``_Ranking``, built once per kind of job);
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
    cheap pool a more urgent job takes in the fill but not in the plan). Deferring a job is
    also priced from its candidates' options (``broker.costs.waiting_prices``: the dearest
    plus a horizon of delay), so a round's objective and gap are those of the reduced round;
    ``bench/live_round.py --compare-full`` costs its plan as the full round would and
    measures it against the full round's bound.

    With ``spare_sites`` at least the number of sites with pools, nothing is left out.
    """
    site = federation.resource_site
    with_pools = sorted(set(site.tolist()))
    if not queue or len(with_pools) <= spare_sites:
        return list(queue)
    free = np.asarray(offers.free_gpus, dtype=float)
    room = free.sum(axis=1)  # free GPU-slots of each pool, less what the fill took
    cheapest_kwh = np.min(cost_per_kwh_usd(offers.price_usd_per_mwh, offers.carbon_g_per_kwh,
                                           config.carbon_price_usd_per_t), axis=1)[site]
    rankings: dict[tuple, _Ranking] = {}
    demands = group_identical_jobs(queue)
    allowed: dict[int, frozenset[str]] = {}  # by the job object (ids are the caller's)
    for jobs in sorted(demands, key=lambda d: urgency_key(d[0])):
        job = jobs[0]
        kind = (job.job_type, job.gpu_types, job.gpu_counts)
        rank = rankings.get(kind)
        if rank is None:
            rank = rankings[kind] = _Ranking.of(federation, job, free.max(axis=1), cheapest_kwh,
                                                config.delay_cost_usd_per_gpu_h)
        order, gpus, hours = rank.order, rank.gpus, rank.hours_per_step * job.work_steps
        if job.excluded_sites or job.allowed_sites is not None:
            ok = ~federation.barred_pools(job)[order]
            order, gpus, hours = order[ok], gpus[ok], hours[ok]
        if job.state is not None and job.state.computing:  # it goes on where it runs first
            here = _resource(federation, job.state.site_id, job.state.gpu_type)
            first = order == here
            order, gpus, hours = (np.concatenate([a[first], a[~first]])
                                  for a in (order, gpus, hours))
        keep = {federation.site_index[job.home_site]}
        if job.state is not None:
            keep.add(federation.site_index[job.state.site_id])
        need = gpus * np.clip(slots_until(hours, offers.slot_h), 1, offers.horizon_slots)
        fits = np.floor(room[order] / np.maximum(need, 1.0) + 1e-9)
        placed = np.cumsum(fits)
        # the pools the fill reaches: up to the one its last job goes to (all: too little room)
        reach = min(int(np.searchsorted(placed, len(jobs))) + 1, len(order))
        before = np.concatenate([[0.0], placed])[:reach]  # jobs placed before each pool
        take = np.clip(np.minimum(fits[:reach], len(jobs) - before), 0, None)
        room[order[:reach]] -= take * need[:reach]
        keep.update(site[order[:reach][take > 0]].tolist())
        later = order[reach:][room[order[reach:]] >= need[reach:] - 1e-9]
        keep.update(_first_new(site[later], keep, spare_sites))
        sites = frozenset(federation.sites[i].id for i in keep)
        for j in jobs:
            allowed[id(j)] = sites
    return [replace(j, allowed_sites=allowed[id(j)]) for j in queue]


def _first_new(sites: np.ndarray, known: set[int], n: int) -> list[int]:
    """The first ``n`` distinct entries of ``sites`` not in ``known`` (read in short chunks:
    the spares are near the front)."""
    found: list[int] = []
    for start in range(0, len(sites), 64):
        for s in sites[start:start + 64].tolist():
            if s not in known and s not in found:
                found.append(s)
                if len(found) == n:
                    return found
    return found


@dataclass(frozen=True)
class _Ranking:
    """The pools one kind of job (job type, GPU types, GPU counts) may run on, cheapest first
    by a lower bound on its cost per step of work there (``candidate_sites``), with the GPU
    count of that bound and the run's hours per step."""

    order: np.ndarray
    gpus: np.ndarray
    hours_per_step: np.ndarray

    @classmethod
    def of(cls, federation: Federation, job: Job, most_free: np.ndarray,
           cheapest_kwh: np.ndarray, delay_usd_per_gpu_h: float) -> _Ranking:
        pools = np.arange(len(federation.resources))
        per_step = np.full(len(pools), np.inf)
        gpus = np.zeros(len(pools), dtype=int)
        hours = np.zeros(len(pools))
        for k in job.gpu_counts:
            one = runtime_h(1.0, federation.throughput_row(job.job_type, job.gpu_types, k))
            ok = (most_free >= k) & np.isfinite(one)  # a pool that never frees k: no option
            one = np.where(ok, one, 0.0)
            cost = (federation.run_energy_kwh(np.full(len(pools), k), pools, one) * cheapest_kwh
                    + delay_cost_usd(k, one, delay_usd_per_gpu_h))
            better = ok & (cost < per_step)
            per_step[better], gpus[better], hours[better] = cost[better], k, one[better]
        order = np.flatnonzero(np.isfinite(per_step))
        order = order[np.argsort(per_step[order], kind="stable")]
        return cls(order, gpus[order], hours[order])


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
# The MILP's own model build (from the greedy plan's options) is outside its solver time
# limit; it takes a few times the numpy build of the options (what the greedy plan's time
# mostly is), so that much is set aside.
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
    return _greedy(federation, offers, queue, config)[0]


def _greedy(federation: Federation, offers: RoundOffers, queue: Sequence[Job],
            config: PlannerConfig) -> tuple[Plan, RoundProblem]:
    begun = time.perf_counter()
    rp = build_round_problem(federation, offers, queue, config)
    order = sorted(range(len(rp.demands)), key=lambda d: urgency_key(rp.demands[d][0]))
    counts = greedy_option_counts(rp, order)
    return plan_from_counts(federation, offers, rp, counts, "greedy plan (broker.live)",
                            bound_usd=trivial_lower_bound(rp.problem),
                            elapsed_s=time.perf_counter() - begun), rp


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


def _grid_plan(federation: Federation, offers: RoundOffers, queue: Sequence[Job],
               config: PlannerConfig, budget_s: float) -> AnytimePlan:
    """A round above ``PlannerConfig.max_listed_options`` held as a grid (``MilpPlanner.
    plan_grid``: its greedy plan first, then the LP within the budget less what mapping the
    plan back takes, ``AFTER_PLAN_SHARE``)."""
    after = AFTER_PLAN_SHARE * budget_s if math.isfinite(budget_s) and budget_s > 0 else 0.0
    solver = replace(config.solver, time_limit_s=max(budget_s - after, MIN_SOLVER_S))
    plan = MilpPlanner(federation, replace(config, solver=solver)).plan_grid(offers, queue)
    method = GREEDY if "plan from greedy" in plan.message else "milp"
    return AnytimePlan(plan, method, plan.status.value if method == "milp"
                       else f"{GREEDY} ({plan.status.value})")


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
    if listed_options_estimate(federation, offers, queue,
                               config.start_offsets) > config.max_listed_options:
        return _grid_plan(federation, offers, queue, config, budget_s)
    greedy, rp = _greedy(federation, offers, queue, config)
    spent = time.perf_counter() - begun
    after = AFTER_PLAN_SHARE * budget_s if math.isfinite(budget_s) and budget_s > 0 else 0.0
    left = budget_s - spent - MILP_BUILD_PER_GREEDY_S * spent - after
    if left < MIN_SOLVER_S:
        return AnytimePlan(greedy, GREEDY, f"{GREEDY} (no time for the MILP)")
    solver = replace(config.solver, time_limit_s=left)
    # the round the greedy plan was built on (a second build took seconds at 5,000 jobs)
    milp = MilpPlanner(federation, replace(config, solver=solver)).plan_problem(offers, rp)
    solved = milp.status.has_solution and (bool(milp.assignments) or not greedy.assignments)
    tolerance = 1e-9 * max(1.0, abs(greedy.objective_usd))
    # both bounds hold for the same round: the better one is kept
    bound = max(greedy.bound_usd, milp.bound_usd if math.isfinite(milp.bound_usd) else -math.inf)
    if solved and milp.objective_usd <= greedy.objective_usd + tolerance:
        return AnytimePlan(replace(milp, bound_usd=bound), "milp", milp.status.value)
    kept = replace(greedy, bound_usd=bound, solve_time_s=greedy.solve_time_s + milp.solve_time_s)
    return AnytimePlan(kept, GREEDY, f"{GREEDY} ({milp.status.value})")
