"""Planning rounds: requeue what expired, plan the most urgent queued jobs, hand out starts.

Rounds run on one worker thread of their own (``submit``), never on the request path: the API
keeps answering while a round is solved, and two rounds never overlap. Each round:

1. requeues assignments whose ack timed out, whose lease expired or whose site went stale
   (a short write transaction);
2. reads (a read transaction: writers never wait for it) at most ``max_jobs_per_round``
   queued jobs whose ``submit_h`` has come, most urgent first (earliest deadline, jobs
   without one last; then the oldest ``submit_h``; then the earliest submission), so a huge
   queue never makes a round unsolvable;
3. plans them anytime (``broker.live.anytime_plan``): a greedy plan first, then the MILP
   within the rest of ``solver_time_limit_s``, keeping the cheaper; status and gap reported;
4. claims each job that starts now (``UPDATE ... WHERE status = 'queued'``) for its site.

Step 3 (``broker.live_round.solve_round``) runs in a worker process by default
(``planner_process``, ``api.services.planner_pool``): on the planning thread its Python-heavy
option building would hold the GIL for seconds, and every request would wait. The database
reads and writes (steps 1, 2 and 4) stay on the planning thread.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import func, insert, select, update

from api import mappers, schemas
from api.errors import NotFoundError
from api.models import AssignmentRow, JobRow, OfferRow, PlanRoundRow, SiteRow
from api.services import leases
from api.services.context import Context
from api.services.planner_pool import InlineSolver, ProcessSolver, RoundSolver
from api.states import LIVE, AssignmentStatus, JobStatus, SiteState
from broker.live import Reservation, plan_gap
from broker.live_round import RoundRules, RoundTask, SolvedRound
from broker.planner import PlannerConfig


def planner_config(ctx: Context) -> PlannerConfig:
    st = ctx.settings
    return PlannerConfig.build(
        carbon_price_usd_per_t=st.carbon_price_usd_per_t,
        delay_cost_usd_per_gpu_h=st.delay_cost_usd_per_gpu_h, method=st.solver_method,
        time_limit_s=st.solver_time_limit_s, mip_gap=st.solver_mip_gap,
        threads=st.solver_threads,
    )


def round_rules(ctx: Context) -> RoundRules:
    st = ctx.settings
    return RoundRules(planner_config(ctx), dict(ctx.gpu_catalog), ctx.affinity,
                      st.transfer_gbps, st.slot_h, st.horizon_slots, st.max_sites_per_round)


@dataclass(frozen=True)
class RoundInput:
    """What a round read: the solver's task, and the counts its record keeps beside the plan."""

    task: RoundTask
    queued: int
    held: int
    requeued: list[str]


class PlanningService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.rules = round_rules(ctx)
        self._lock = threading.Lock()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="carbonfed-planner")
        self.solver: RoundSolver = (ProcessSolver() if ctx.settings.planner_process
                                    else InlineSolver())

    def start(self) -> None:
        """Start the planning worker process, if rounds are solved in one (the app's
        lifespan calls this; ``close`` stops it)."""
        self.solver.start()

    def submit(self) -> Future[schemas.PlanOut]:
        """Run a round on the planning worker (await with ``asyncio.wrap_future``)."""
        return self._worker.submit(self.plan_round)

    def close(self) -> None:
        self.solver.close()  # first: a round waiting on a worker process ends now
        self._worker.shutdown(wait=True, cancel_futures=True)

    def plan_round(self) -> schemas.PlanOut:
        with self._lock:
            begun = time.perf_counter()
            wall = self.ctx.clock.wall_s()
            now_h = self.ctx.clock.hours_at(wall)
            data = self._read(wall, now_h)
            # the budget covers the whole round: what reading the database took is spent
            budget_s = self.ctx.settings.solver_time_limit_s - (time.perf_counter() - begun)
            result = self.solver.solve(self.rules, data.task, budget_s)
            return self._record(result, data, now_h, wall, begun)

    def _read(self, wall: float, now_h: float) -> RoundInput:
        st = self.ctx.settings
        with self.ctx.db.write() as s:
            requeued = leases.expire(s, st, wall)
        # The rest only reads, outside the write transaction: reading and mapping a thousand
        # sites and offers takes a good part of a second, and on SQLite every offer PUT would
        # wait that long for the write lock. The claims in ``_record`` are conditional
        # (``WHERE status = 'queued'``, active sites only), so what changes meanwhile is safe.
        with self.ctx.db.read() as s:
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
        task = RoundTask(sites, frozenset(usable), offers, queue, now_h, reservations)
        return RoundInput(task, queued, held, requeued)

    def _record(self, result: SolvedRound, data: RoundInput, now_h: float,
                wall: float, begun: float) -> schemas.PlanOut:
        plan = result.plan
        by_id = {j.id: j for j in data.task.queue}
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
                      "considered": len(data.task.queue), "held": data.held,
                      "gap": plan_gap(plan) if plan else None,
                      "method": result.method, "solved_by_pid": result.pid},
            )
            s.add(row)
            s.flush()
            active = set(s.scalars(select(SiteRow.id).where(SiteRow.state == SiteState.ACTIVE)))
            # disabled or gone while we solved: stays queued
            starting = [a for a in (plan.starting_now if plan else ()) if a.site_id in active]
            # One conditional UPDATE and one INSERT for all of the round's starts: the write
            # transaction (on SQLite: every offer PUT waits for it) stays short.
            claimed = set(s.scalars(
                update(JobRow).where(JobRow.id.in_([a.job_id for a in starting]),
                                     JobRow.status == JobStatus.QUEUED)
                .values(status=JobStatus.ASSIGNED, attempts=JobRow.attempts + 1)
                .returning(JobRow.id).execution_options(synchronize_session=False)
            )) if starting else set()
            estimates = result.estimates or {}
            rows = [dict(
                job_id=a.job_id, site_id=a.site_id, gpu_type=a.gpu_type, round_id=row.id,
                status=AssignmentStatus.ASSIGNED, start_h=a.start_h,
                transfer_h=est.transfer_h, runtime_h=est.runtime_h, energy_kwh=est.energy_kwh,
                carbon_kg=est.carbon_kg, energy_cost_usd=est.energy_cost_usd,
                transfer_cost_usd=est.transfer_cost_usd, created_at_s=wall,
            ) for a in starting if a.job_id in claimed for est in [estimates[a.job_id]]]
            if rows:
                assigned = list(s.scalars(
                    insert(AssignmentRow).returning(AssignmentRow.id,
                                                    sort_by_parameter_order=True), rows))
            row.plan = {**row.plan, "assigned": assigned,
                        "elapsed_s": time.perf_counter() - begun}
            return mappers.plan_out(row)

    def latest(self) -> schemas.PlanOut:
        with self.ctx.db.read() as s:
            row = s.scalars(select(PlanRoundRow).order_by(PlanRoundRow.id.desc())).first()
            if row is None:
                raise NotFoundError("no planning round yet")
            return mappers.plan_out(row)
