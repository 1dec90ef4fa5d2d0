"""Planning rounds: requeue what expired, plan the most urgent queued jobs, hand out starts.

Rounds run on one worker thread of their own (``submit``), never on the request path: the API
keeps answering while a round is solved, and two rounds never overlap. Each round:

1. requeues assignments whose ack timed out, whose lease expired or whose site went stale
   (a short write transaction);
2. reads (a read transaction: writers never wait for it) at most ``max_jobs_per_round``
   queued jobs whose ``submit_h`` has come, in fair-share order across home sites (each
   site's most urgent first: a deadline still ahead, earliest first; a passed deadline counts
   as none), so a huge queue never makes a round unsolvable and no site's queue crowds out
   another's (``api.services.round_read.fair_share``);
3. plans them anytime (``broker.live.anytime_plan``): a greedy plan first, then the MILP
   within the rest of ``solver_time_limit_s``, keeping the cheaper; status and gap reported;
4. claims each job that starts now (``UPDATE ... WHERE status = 'queued'``) for its site.

Steps 2 and 3 run in a worker process by default (``planner_process``,
``api.services.planner_pool``), which opens the database itself: on the planning thread their
Python-heavy mapping and option building would hold the GIL for seconds, and every request
would wait. The writes (steps 1 and 4) stay on the planning thread, as a few set-based
statements each (milliseconds, whatever the round's size): on SQLite every offer, written on
the event loop, waits for them; done row by row through the ORM they held it 30-100 ms.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, cast

from sqlalchemy import Connection, Table, insert, select, update

from api import mappers, schemas
from api.db import is_in_memory
from api.errors import NotFoundError
from api.models import AssignmentRow, JobRow, PlanRoundRow, SiteRow
from api.services import leases
from api.services.context import Context
from api.services.planner_pool import InlineSolver, ProcessSolver, RoundSolver
from api.services.round_read import RoundOutcome, RoundQuery
from api.settings import Settings
from api.states import AssignmentStatus, Directive, JobStatus, SiteState
from broker.live import plan_gap
from broker.live_round import RoundRules
from broker.planner import PlannerConfig
from sites.affinity import AffinityMatrix
from sites.gpus import GpuType

_ROUNDS = cast(Table, PlanRoundRow.__table__)


BULKY = ("planned", "deferred")  # a round's per-job lists: ~100 bytes a job it considered


def _prune(c: Connection, round_id: int) -> None:
    """Keep only the figures of round ``round_id`` (it fell out of ``plan_history_rounds``):
    its planned starts and deferred jobs go, their count stays. One round per round, by key,
    so the write lock is held no longer for it; the row stays (assignments refer to it)."""
    if round_id < 1:
        return
    plan = c.scalar(select(_ROUNDS.c.plan).where(_ROUNDS.c.id == round_id))
    if not plan or "planned" not in plan:
        return
    compact = {k: v for k, v in plan.items() if k not in BULKY}
    compact.update(deferred_count=len(plan.get("deferred", ())), pruned=True)
    c.execute(update(_ROUNDS).where(_ROUNDS.c.id == round_id).values(plan=compact))


def planner_config(st: Settings) -> PlannerConfig:
    return PlannerConfig.build(
        carbon_price_usd_per_t=st.carbon_price_usd_per_t,
        delay_cost_usd_per_gpu_h=st.delay_cost_usd_per_gpu_h, method=st.solver_method,
        time_limit_s=st.solver_time_limit_s, mip_gap=st.solver_mip_gap,
        threads=st.solver_threads, aggregate_tolerance_usd=st.solver_aggregate_tolerance_usd,
    )


def round_rules(st: Settings, gpu_catalog: Mapping[str, GpuType],
                affinity: AffinityMatrix) -> RoundRules:
    """What every round of a broker with these settings shares (``bench/live_round.py``
    plans with them too)."""
    return RoundRules(planner_config(st), dict(gpu_catalog), affinity, st.transfer_gbps,
                      st.slot_h, st.horizon_slots, st.max_sites_per_round,
                      st.spare_sites_per_job)


class PlanningService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.rules = round_rules(ctx.settings, ctx.gpu_catalog, ctx.affinity)
        self._lock = threading.Lock()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="carbonfed-planner")
        # a worker process cannot open a database that lives in this process's memory
        in_worker = ctx.settings.planner_process and not is_in_memory(ctx.db.url)
        self.solver: RoundSolver = ProcessSolver() if in_worker else InlineSolver(ctx.db)

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
            self.solver.ready()  # a worker still starting would spend the round's budget
            begun = time.perf_counter()
            st = self.ctx.settings
            with self.ctx.db.write_connection() as c:
                requeued = leases.expire(c, st, self.ctx.clock.wall_s())
            query = RoundQuery(self.ctx.db.url, self.ctx.clock, st.stale_after_s,
                               st.max_jobs_per_round, st.heartbeat_timeout_s)
            # the budget covers the whole round: reading the database is spent from it too
            budget_s = st.solver_time_limit_s - (time.perf_counter() - begun)
            outcome = self.solver.solve(self.rules, query, budget_s)
            return self._record(outcome, requeued, begun)

    def _record(self, outcome: RoundOutcome, requeued: list[str],
                begun: float) -> schemas.PlanOut:
        """Store the round and claim its starts: everything is computed first, so the write
        transaction (on SQLite every offer on the event loop waits for it) is five statements
        of a few milliseconds, whatever the round's size."""
        result, wall = outcome.solved, outcome.wall_s
        plan = result.plan
        planned = [] if plan is None else [
            schemas.PlannedStart(job_id=a.job_id, site_id=a.site_id, gpu_type=a.gpu_type,
                                 gpus=a.gpus, start_offset=a.start_offset,
                                 start_h=a.start_h).model_dump()
            for a in plan.assignments
        ]
        values: dict[str, Any] = dict(
            now_h=outcome.now_h, created_at_s=wall, status=result.status,
            objective_usd=mappers.finite(plan.objective_usd) if plan else None,
            bound_usd=mappers.finite(plan.bound_usd) if plan else None,
            n_options=plan.n_options if plan else 0, queued=outcome.queued,
            solve_time_s=plan.solve_time_s if plan else 0.0,
            plan={"planned": planned,
                  "deferred": list(outcome.considered) if plan is None else list(plan.deferred),
                  "requeued": requeued, "assigned": [],
                  "considered": len(outcome.considered), "held": outcome.held,
                  "gap": plan_gap(plan) if plan else None,
                  "method": result.method, "solved_by_pid": result.pid},
        )
        estimates = result.estimates or {}
        running = outcome.running
        # a replanned running job goes on where it runs (resized when the plan changed its
        # count), or is paused (resumed in a later round, once its site has stopped it):
        # never assigned anew in the same round
        going_on = {a.job_id: a.gpus for a in (plan.starting_now if plan else ())
                    if a.boundary}
        # (a job that may not pause always has a plan that goes on: its deferral is priced
        # above any plan; should none come back, it is left running)
        pauses = [a_id for job_id, (a_id, _, may_pause) in running.items()
                  if job_id not in going_on and may_pause]
        resizes = {a_id: going_on[job_id] for job_id, (a_id, gpus, _) in running.items()
                   if job_id in going_on and going_on[job_id] != gpus}
        starts = {a.job_id: dict(
            job_id=a.job_id, site_id=a.site_id, gpu_type=a.gpu_type, gpus=a.gpus,
            status=AssignmentStatus.ASSIGNED, start_h=a.start_h,
            transfer_h=est.transfer_h, runtime_h=est.runtime_h, energy_kwh=est.energy_kwh,
            carbon_kg=est.carbon_kg, energy_cost_usd=est.energy_cost_usd,
            transfer_cost_usd=est.transfer_cost_usd, created_at_s=wall,
        ) for a in (plan.starting_now if plan else ()) if a.job_id not in running
            for est in [estimates[a.job_id]]}
        with self.ctx.db.write_connection() as c:
            round_id = c.scalar(insert(_ROUNDS).returning(_ROUNDS.c.id), values)
            # a site disabled or gone while we solved gets nothing: its jobs stay queued
            active = set(c.scalars(
                select(SiteRow.id).where(SiteRow.state == SiteState.ACTIVE,
                                         SiteRow.id.in_({s["site_id"] for s in starts.values()}))
            )) if starts else set()
            starting = [job for job, start in starts.items() if start["site_id"] in active]
            # one conditional UPDATE for all starts: a job requeued or taken meanwhile is skipped
            claimed = set(c.scalars(
                update(JobRow).where(JobRow.id.in_(starting), JobRow.status == JobStatus.QUEUED)
                .values(status=JobStatus.ASSIGNED, attempts=JobRow.attempts + 1)
                .returning(JobRow.id)
            )) if starting else set()
            rows = [{**starts[job], "round_id": round_id} for job in starting if job in claimed]
            assigned = list(c.scalars(
                insert(AssignmentRow).returning(AssignmentRow.id, sort_by_parameter_order=True),
                rows)) if rows else []
            paused = list(c.scalars(
                update(AssignmentRow).where(
                    AssignmentRow.id.in_(pauses), AssignmentRow.directive.is_(None),
                    AssignmentRow.status == AssignmentStatus.RUNNING)
                .values(directive=Directive.PAUSE, directive_at_s=wall)
                .returning(AssignmentRow.id))) if pauses else []
            resized = [a_id for a_id, gpus in resizes.items() if c.scalar(
                update(AssignmentRow).where(
                    AssignmentRow.id == a_id, AssignmentRow.directive.is_(None),
                    AssignmentRow.status == AssignmentStatus.RUNNING)
                .values(directive=Directive.RESIZE, directive_gpus=gpus, directive_at_s=wall)
                .returning(AssignmentRow.id)) is not None]
            values["plan"] = {**values["plan"], "assigned": assigned, "paused": paused,
                              "resized": resized,
                              "elapsed_s": time.perf_counter() - begun}
            c.execute(update(_ROUNDS).where(_ROUNDS.c.id == round_id)
                      .values(plan=values["plan"]))
            _prune(c, round_id - self.ctx.settings.plan_history_rounds)
        return mappers.plan_out(PlanRoundRow(id=round_id, **values))

    def latest(self) -> schemas.PlanOut:
        with self.ctx.db.read() as s:
            row = s.scalars(select(PlanRoundRow).order_by(PlanRoundRow.id.desc())).first()
            if row is None:
                raise NotFoundError("no planning round yet")
            return mappers.plan_out(row)
