"""Planning rounds: requeue what expired, plan the most urgent queued jobs, hand out starts.

Rounds run on one worker thread of their own (``submit``), never on the request path: the API
keeps answering while a round is solved, and two rounds never overlap. Each round:

1. requeues assignments whose ack timed out, whose lease expired or whose site went stale;
2. takes at most ``max_jobs_per_round`` queued jobs whose ``submit_h`` has come, most urgent
   first (earliest deadline, jobs without one last; then the oldest ``submit_h``; then the
   earliest submission), so a huge queue never makes a round unsolvable;
3. plans them anytime (``broker.live.anytime_plan``): a greedy plan first, then the MILP
   within the rest of ``solver_time_limit_s``, keeping the cheaper; status and gap reported;
4. claims each job that starts now (``UPDATE ... WHERE status = 'queued'``) for its site.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, select, update

from api import mappers, schemas
from api.errors import NotFoundError
from api.models import AssignmentRow, JobRow, OfferRow, PlanRoundRow, SiteRow
from api.services import leases
from api.services.context import Context
from api.states import LIVE, AssignmentStatus, JobStatus, SiteState
from broker.federation import Federation
from broker.jobs import Job
from broker.live import (
    Reservation,
    SiteOffer,
    anytime_plan,
    estimate_run,
    live_federation,
    plan_gap,
    round_offers,
    shortlist_sites,
)
from broker.offers import RoundOffers
from broker.planner import Plan, PlannerConfig
from sites import SiteSpec


def planner_config(ctx: Context) -> PlannerConfig:
    st = ctx.settings
    return PlannerConfig.build(
        carbon_price_usd_per_t=st.carbon_price_usd_per_t,
        delay_cost_usd_per_gpu_h=st.delay_cost_usd_per_gpu_h, method=st.solver_method,
        time_limit_s=st.solver_time_limit_s, mip_gap=st.solver_mip_gap,
        threads=st.solver_threads,
    )


@dataclass(frozen=True)
class PlannedRound:
    federation: Federation
    offers: RoundOffers
    plan: Plan | None
    status: str
    method: str = "milp"


@dataclass(frozen=True)
class RoundInput:
    sites: list[SiteSpec]
    usable: set[str]
    offers: dict[str, SiteOffer]
    queue: list[Job]
    reservations: list[Reservation]
    queued: int
    held: int
    requeued: list[str]


class PlanningService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.config = planner_config(ctx)
        self._lock = threading.Lock()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="carbonfed-planner")

    def submit(self) -> Future[schemas.PlanOut]:
        """Run a round on the planning worker (await with ``asyncio.wrap_future``)."""
        return self._worker.submit(self.plan_round)

    def close(self) -> None:
        self._worker.shutdown(wait=True, cancel_futures=True)

    def plan_round(self) -> schemas.PlanOut:
        with self._lock:
            begun = time.perf_counter()
            wall = self.ctx.clock.wall_s()
            now_h = self.ctx.clock.hours_at(wall)
            data = self._read(wall, now_h)
            # the budget covers the whole round: what reading the database took is spent
            budget_s = self.ctx.settings.solver_time_limit_s - (time.perf_counter() - begun)
            result = self.plan(data.sites, data.usable, data.offers, data.queue, now_h,
                               data.reservations, budget_s)
            return self._record(result, data, now_h, wall, begun)

    def _read(self, wall: float, now_h: float) -> RoundInput:
        st = self.ctx.settings
        with self.ctx.db.write() as s:
            requeued = leases.expire(s, st, wall)
            site_rows = s.scalars(select(SiteRow).order_by(SiteRow.number)).all()
            offer_rows = {o.site_id: o for o in s.scalars(select(OfferRow))}
            queued = s.scalar(select(func.count()).select_from(JobRow).where(
                JobRow.status == JobStatus.QUEUED)) or 0
            due = select(JobRow).where(JobRow.status == JobStatus.QUEUED,
                                       JobRow.submit_h <= now_h)
            queue = [mappers.job(r) for r in s.scalars(due.order_by(
                JobRow.deadline_h.is_(None), JobRow.deadline_h, JobRow.submit_h,
                JobRow.submitted_at_s, JobRow.id).limit(st.max_jobs_per_round))]
            held = queued - (s.scalar(select(func.count()).select_from(due.subquery())) or 0)
            live = s.scalars(select(AssignmentRow).where(AssignmentRow.status.in_(LIVE))).all()
            homes = {j.home_site for j in queue}
            usable = {
                r.id for r in site_rows if r.state == SiteState.ACTIVE and r.id in offer_rows
                and offer_rows[r.id].received_at_s >= wall - st.stale_after_s
            }
            sites = [mappers.site_spec(r) for r in site_rows
                     if r.state == SiteState.ACTIVE or r.id in homes]
            offers = {k: mappers.site_offer(v) for k, v in offer_rows.items() if k in usable}
            job_gpus = dict(s.execute(select(JobRow.id, JobRow.gpus).where(
                JobRow.id.in_([a.job_id for a in live]))).all())
            # GPUs of live assignments the site's offer does not say it holds: never offered
            # twice (an offer lists the assignments whose GPUs it already left out).
            holding = {site: set(offer_rows[site].holding or ()) for site in usable}
            reservations = [
                Reservation(a.site_id, a.gpu_type, job_gpus[a.job_id], a.start_h,
                            a.start_h + a.transfer_h + a.runtime_h)
                for a in live if a.site_id in usable and a.id not in holding[a.site_id]
            ]
        return RoundInput(sites, usable, offers, queue, reservations, queued, held, requeued)

    def plan(
        self, sites: Sequence[SiteSpec], usable: set[str], offers: dict[str, SiteOffer],
        queue: Sequence[Job], now_h: float, reservations: Sequence[Reservation] = (),
        budget_s: float | None = None,
    ) -> PlannedRound:
        """The planner's answer for a round (pure: no database), exposed for tests."""
        st = self.ctx.settings
        usable = shortlist_sites(offers, usable, st.max_sites_per_round,
                                 st.carbon_price_usd_per_t)
        fed = live_federation(sites, usable, self.ctx.gpu_catalog, self.ctx.affinity,
                              st.transfer_gbps)
        round_ = round_offers(fed, offers, now_h, st.slot_h, st.horizon_slots, reservations)
        if not queue:
            return PlannedRound(fed, round_, None, "empty-queue")
        if not fed.resources or not np.asarray(round_.free_gpus).any():
            return PlannedRound(fed, round_, None, "no-capacity")
        budget = st.solver_time_limit_s if budget_s is None else budget_s
        found = anytime_plan(fed, round_, queue, self.config, budget)
        return PlannedRound(fed, round_, found.plan, found.status, found.method)

    def _record(self, result: PlannedRound, data: RoundInput, now_h: float,
                wall: float, begun: float) -> schemas.PlanOut:
        plan = result.plan
        by_id = {j.id: j for j in data.queue}
        planned = [] if plan is None else [
            schemas.PlannedStart(job_id=a.job_id, site_id=a.site_id, gpu_type=a.gpu_type,
                                 start_offset=a.start_offset, start_h=a.start_h)
            for a in plan.assignments
        ]
        deferred = list(by_id) if plan is None else list(plan.deferred)
        assigned: list[int] = []
        with self.ctx.db.write() as s:
            row = PlanRoundRow(
                now_h=now_h, created_at_s=wall, status=result.status,
                objective_usd=mappers.finite(plan.objective_usd) if plan else None,
                bound_usd=mappers.finite(plan.bound_usd) if plan else None,
                n_options=plan.n_options if plan else 0, queued=data.queued,
                solve_time_s=plan.solve_time_s if plan else 0.0,
                plan={"planned": [p.model_dump() for p in planned], "deferred": deferred,
                      "requeued": data.requeued, "assigned": [],
                      "considered": len(data.queue), "held": data.held,
                      "gap": plan_gap(plan) if plan else None,
                      "method": result.method},
            )
            s.add(row)
            s.flush()
            active = set(s.scalars(select(SiteRow.id).where(SiteRow.state == SiteState.ACTIVE)))
            for a in plan.starting_now if plan else ():
                if a.site_id not in active:  # disabled or gone while we solved: stays queued
                    continue
                claimed = s.execute(  # an UPDATE: a CursorResult, which has rowcount
                    update(JobRow).where(JobRow.id == a.job_id, JobRow.status == JobStatus.QUEUED)
                    .values(status=JobStatus.ASSIGNED, attempts=JobRow.attempts + 1)
                )
                if getattr(claimed, "rowcount", 0) != 1:
                    continue
                est = estimate_run(result.federation, result.offers, by_id[a.job_id],
                                   a.site_id, a.gpu_type, a.start_offset)
                assignment = AssignmentRow(
                    job_id=a.job_id, site_id=a.site_id, gpu_type=a.gpu_type, round_id=row.id,
                    status=AssignmentStatus.ASSIGNED, start_h=a.start_h,
                    transfer_h=est.transfer_h, runtime_h=est.runtime_h,
                    energy_kwh=est.energy_kwh, carbon_kg=est.carbon_kg,
                    energy_cost_usd=est.energy_cost_usd, transfer_cost_usd=est.transfer_cost_usd,
                    created_at_s=wall,
                )
                s.add(assignment)
                s.flush()
                assigned.append(assignment.id)
            row.plan = {**row.plan, "assigned": assigned,
                        "elapsed_s": time.perf_counter() - begun}
            return mappers.plan_out(row)

    def latest(self) -> schemas.PlanOut:
        with self.ctx.db.read() as s:
            row = s.scalars(select(PlanRoundRow).order_by(PlanRoundRow.id.desc())).first()
            if row is None:
                raise NotFoundError("no planning round yet")
            return mappers.plan_out(row)
