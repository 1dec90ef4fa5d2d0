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

from broker.costs import cost_per_kwh_usd
from broker.federation import Federation
from broker.jobs import Job
from broker.offers import RoundOffers
from broker.options import at_starts, price_options, run_of
from broker.planner import (
    MilpPlanner,
    Plan,
    PlannerConfig,
    RoundProblem,
    assignments_from_counts,
    build_round_problem,
)
from optimization import SolveStatus, relative_gap
from sites.affinity import AffinityMatrix
from sites.gpus import GpuType
from sites.spec import SiteSpec
from sites.timegrid import SLOT_EPS, slot_index


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
    offers: Mapping[str, SiteOffer], usable: set[str], max_sites: int,
    carbon_price_usd_per_t: float,
) -> set[str]:
    """The ``max_sites`` usable sites a round gives GPU pools to: those with free GPUs, cheapest
    first (mean energy price plus carbon price x mean carbon intensity over their offer).

    A round's options grow with jobs x pools x slots; with a thousand sites even a few hundred
    jobs make millions of options (seconds to build, a gigabyte of memory), so a round looks at
    the cheapest sites with room. The others keep their offers for later rounds.
    """
    if len(usable) <= max_sites:
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
    r = _resource(federation, site_id, gpu_type)
    if r is None:
        raise ValueError(f"no pool {gpu_type} at {site_id}")
    option = at_starts(run_of(federation, job, r, gpus), np.array([start_offset]),
                       round_.slot_h)
    priced = price_options(option, round_.price_usd_per_mwh, round_.carbon_g_per_kwh,
                           round_.slot_h, delay_from_h=0.0, delay_cost_usd_per_gpu_h=0.0)
    run = option.runs
    return RunEstimate(
        transfer_h=float(run.transfer_h[0]),
        runtime_h=float(run.runtime_h[0]),
        energy_kwh=float(run.energy_kwh[0]),
        carbon_kg=float(priced.carbon_kg[0]),
        energy_cost_usd=float(priced.energy_cost_usd[0]),
        transfer_cost_usd=float(run.transfer_cost_usd[0]),
    )


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
        for _ in range(int(p.demand_count[d])):
            room = np.zeros(len(options), dtype=bool)
            for k_gpus in np.unique(gpus):
                short = np.concatenate([np.zeros((cap.shape[0], 1)),
                                        np.cumsum(cap < k_gpus - 1e-9, axis=1)], axis=1)
                same = gpus == k_gpus
                room[same] = (short[res[same], end[same]] - short[res[same], start[same]]) == 0
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
                            elapsed_s=time.perf_counter() - begun)


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
    left = budget_s - spent - MILP_BUILD_PER_GREEDY_S * spent
    if left < MIN_SOLVER_S:
        return AnytimePlan(greedy, GREEDY, f"{GREEDY} (no time for the MILP)")
    solver = replace(config.solver, time_limit_s=left)
    milp = MilpPlanner(federation, replace(config, solver=solver)).plan(offers, queue)
    solved = milp.status.has_solution and (bool(milp.assignments) or not greedy.assignments)
    tolerance = 1e-9 * max(1.0, abs(greedy.objective_usd))
    if solved and milp.objective_usd <= greedy.objective_usd + tolerance:
        return AnytimePlan(milp, "milp", milp.status.value)
    bound = milp.bound_usd if math.isfinite(milp.bound_usd) else -math.inf
    kept = replace(greedy, bound_usd=bound, solve_time_s=greedy.solve_time_s + milp.solve_time_s)
    return AnytimePlan(kept, GREEDY, f"{GREEDY} ({milp.status.value})")
