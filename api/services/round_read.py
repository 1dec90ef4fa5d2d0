"""A planning round's read and solve, together, wherever the round is solved.

Reading a round's inputs maps a thousand sites and offers to domain objects: a good part of a
second of Python. On a thread of the API process that held the GIL, and every request in
flight waited (p99 of the offer PUTs rose with every round). So the read travels with the
solve: ``read_and_solve`` takes a picklable ``RoundQuery``, opens the database itself when it
runs in the planning worker process (``api.services.planner_pool``), reads, solves, and sends
back only the plan and the counts the round's record keeps (``RoundOutcome``).

The read is a read transaction (writers never wait for it). What changes between the read and
the claims is safe: claims are conditional (``WHERE status = 'queued'``, active sites only).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session, configure_mappers

from api import mappers
from api.clock import Clock
from api.db import Database
from api.models import AssignmentRow, JobRow, OfferRow, SiteRow
from api.states import LIVE, REJECTED_REASON, AssignmentStatus, JobStatus, SiteState
from broker.jobs import InFlight, Job
from broker.live import Reservation
from broker.live_round import RoundRules, RoundTask, SolvedRound, solve_round


@dataclass(frozen=True)
class RoundQuery:
    """What a round reads: the database, the broker's clock, and its read limits.

    The round's time is taken from the clock when the read begins, not when the query is
    made: offers put in between would start after the round's "now" (an hour after, at
    ``time_scale`` 3600, for a second spent handing the round over) and leave nothing to start
    now. So the clock travels with the query (its ``wall`` must pickle: ``time.time`` does).
    """

    db_url: str
    clock: Clock
    stale_after_s: float
    max_jobs: int
    heartbeat_timeout_s: float = float("inf")


@dataclass(frozen=True)
class RoundRead:
    """What a round read: the solver's task, and the queue's counts."""

    task: RoundTask
    wall_s: float  # when it was read
    queued: int  # every queued job
    held: int  # queued jobs whose submit_h has not come
    # replanned running job -> its assignment, the GPUs it runs on, whether it may pause
    running: dict[str, tuple[int, int, bool]] = field(default_factory=dict)


@dataclass(frozen=True)
class RoundOutcome:
    """What comes back to the API process: the solved round, the jobs it considered (most
    urgent first) and the queue's counts."""

    solved: SolvedRound
    wall_s: float  # the round's time: when it was read
    now_h: float
    considered: tuple[str, ...]
    queued: int
    held: int
    # replanned running job -> its assignment, the GPUs it runs on, whether it may pause
    running: dict[str, tuple[int, int, bool]] = field(default_factory=dict)


def fair_share(due: Select, now_h: float, max_jobs: int) -> Select:
    """The ids of at most ``max_jobs`` of the ``due`` jobs, in the round's fair-share order.

    Each home site's queue is put in urgency order: a deadline still ahead first (earliest
    first), then jobs without one or whose deadline has passed (it can no longer be met: it
    loses its urgency and is served late, as a job without a deadline); then the oldest
    ``submit_h``, the earliest submission, the id. The round takes every site's first job,
    then every site's second, and so on (ties between sites: the same urgency order), so one
    site's thousand urgent jobs cannot keep another's out of a round."""
    ahead = case((JobRow.deadline_h > now_h, JobRow.deadline_h), else_=None)
    urgency = (ahead.is_(None), ahead, JobRow.submit_h, JobRow.submitted_at_s, JobRow.id)
    ranked = due.with_only_columns(
        JobRow.id, func.row_number().over(partition_by=JobRow.home_site,
                                          order_by=urgency).label("turn"),
        ahead.is_(None).label("late"), ahead.label("ahead"), JobRow.submit_h,
        JobRow.submitted_at_s).subquery()
    c = ranked.c
    return select(c.id).order_by(c.turn, c.late, c.ahead, c.submit_h, c.submitted_at_s,
                                 c.id).limit(max_jobs)


def _urgency_lost(job: Job, now_h: float) -> Job:
    """A job whose deadline has passed is planned as one without (its lateness is already
    certain; priced as a deadline it would outbid every job still on time)."""
    if job.deadline_h is None or job.deadline_h > now_h:
        return job
    return replace(job, deadline_h=None)


def read_round(db: Database, q: RoundQuery) -> RoundRead:
    """The round's inputs: active, live sites with a fresh offer, at most ``max_jobs`` due
    queued jobs in fair-share order (``fair_share``), and the GPUs live assignments hold."""
    wall_s = q.clock.wall_s()
    now_h = q.clock.hours_at(wall_s)
    with db.read() as s:
        site_rows = s.scalars(select(SiteRow).order_by(SiteRow.number)).all()
        offer_rows = {o.site_id: o for o in s.scalars(select(OfferRow))}
        queued = s.scalar(select(func.count()).select_from(JobRow).where(
            JobRow.status == JobStatus.QUEUED)) or 0
        due = select(JobRow).where(JobRow.status == JobStatus.QUEUED, JobRow.submit_h <= now_h)
        order = list(s.scalars(fair_share(due, now_h, q.max_jobs)))
        rows = {r.id: r for r in s.scalars(select(JobRow).where(JobRow.id.in_(order)))}
        queue = [_urgency_lost(mappers.job(rows[i]), now_h) for i in order]
        held = queued - (s.scalar(select(func.count()).select_from(due.subquery())) or 0)
        refused, failed = _excluded(s, [j.id for j in queue])
        live = s.scalars(select(AssignmentRow).where(AssignmentRow.status.in_(LIVE))).all()
        homes = {j.home_site for j in queue}
        usable = {
            r.id for r in site_rows if r.state == SiteState.ACTIVE and r.id in offer_rows
            and offer_rows[r.id].received_at_s >= wall_s - q.stale_after_s
            and max(offer_rows[r.id].received_at_s, offer_rows[r.id].heartbeat_at_s or 0.0)
            >= wall_s - q.heartbeat_timeout_s  # alive: gets nothing new once it missed it
        }
        sites = [mappers.site_spec(r) for r in site_rows
                 if r.state == SiteState.ACTIVE or r.id in homes]
        queue = [_excluding(j, refused.get(j.id, set()), failed.get(j.id, set()), usable)
                 for j in queue]
        offers = {k: mappers.site_offer(v) for k, v in offer_rows.items() if k in usable}
        # GPUs of live assignments the site's offer does not say it holds: never offered
        # twice (an offer lists the assignments whose GPUs it already left out).
        holding = {site: set(offer_rows[site].holding or ()) for site in usable}
        reservations = [
            Reservation(a.site_id, a.gpu_type, a.gpus, a.start_h,
                        a.start_h + a.transfer_h + a.runtime_h)
            for a in live if a.site_id in usable and a.id not in holding[a.site_id]
        ]
        running = _pausable(s, live, usable, now_h)
    task = RoundTask(sites, frozenset(usable), offers,
                     queue + [job for job, _, _ in running.values()], now_h, reservations,
                     [release for _, release, _ in running.values()])
    return RoundRead(task, wall_s, queued, held,
                     {job_id: (a_id, release.gpus, job.preemptible)
                      for job_id, (job, release, a_id) in running.items()})


def _pausable(s: Session, live: Sequence[AssignmentRow], usable: set[str],
              now_h: float) -> dict[str, tuple[Job, Reservation, int]]:
    """The running preemptible or elastic jobs of usable sites with no directive yet, each as
    the rest of its work with where it runs (``broker.jobs.InFlight``), and its GPUs from now
    to its expected end (the round gives them back: going on where it runs is one of its
    options), and its assignment.

    Its progress is its elapsed over its expected run, after the overhead it began with when
    it ran before (a resumed job reads its checkpoint back, a resized one restarts on its new
    count: the larger of the two is taken when a job may do both)."""
    candidates = [a for a in live if a.status == AssignmentStatus.RUNNING
                  and a.directive is None and a.site_id in usable]
    if not candidates:
        return {}
    rows = {r.id: r for r in s.scalars(select(JobRow).where(
        JobRow.id.in_([a.job_id for a in candidates]),
        JobRow.preemptible.is_(True) | JobRow.elastic.is_(True)))}
    out: dict[str, tuple[Job, Reservation, int]] = {}
    for a in candidates:
        row = rows.get(a.job_id)
        if row is None:
            continue
        restart_h = max(row.checkpoint_overhead_h, row.resize_overhead_h) if (
            row.done_steps > 0) else 0.0
        working_h = a.runtime_h - restart_h
        began_h = a.start_h + a.transfer_h + restart_h
        if working_h <= 0 or now_h <= began_h:
            continue  # still moving its data or reading its checkpoint back: let it be
        progress = (now_h - began_h) / working_h
        if progress >= 1.0:
            continue  # due to end: its completion is on its way
        left = row.work_steps - row.done_steps
        done = row.done_steps + progress * left
        rest = mappers.job(row)
        job = replace(rest, work_steps=left * (1.0 - progress), state=InFlight(
            a.site_id, a.gpu_type, a.gpus, computing=True,
            restart_h=rest.restart_h(checkpoint_written=False), done_steps=done))
        end_h = a.start_h + a.transfer_h + a.runtime_h
        out[row.id] = (job, Reservation(a.site_id, a.gpu_type, a.gpus, now_h, end_h), a.id)
    return out


def _excluded(s: Session, job_ids: list[str]) -> tuple[dict[str, set[str]],
                                                      dict[str, set[str]]]:
    """Per job: the sites that refused it, and the sites where it failed."""
    refused: dict[str, set[str]] = {}
    failed: dict[str, set[str]] = {}
    if not job_ids:
        return refused, failed
    a = AssignmentRow
    ended = s.execute(select(a.job_id, a.site_id, a.status).where(
        a.job_id.in_(job_ids), (a.status == AssignmentStatus.FAILED) | (
            (a.status == AssignmentStatus.REQUEUED) & (a.requeue_reason == REJECTED_REASON)))
    ).all()
    for job, site, status in ended:
        into = failed if status == AssignmentStatus.FAILED else refused
        into.setdefault(job, set()).add(site)
    return refused, failed


def _excluding(job: Job, refused: set[str], failed: set[str], usable: set[str]) -> Job:
    """The job barred from the sites that refused it (always), and from those where it
    failed while a usable site remains that did neither (a failed job goes elsewhere when it
    can, and back to a site where it failed only when no other is left)."""
    excluded = refused | failed if usable - refused - failed else refused
    return replace(job, excluded_sites=frozenset(excluded)) if excluded else job


def read_and_solve(rules: RoundRules, q: RoundQuery, budget_s: float,
                   deadline_s: float | None = None, db: Database | None = None) -> RoundOutcome:
    """Read the round (from ``db``, or from a connection of its own to ``q.db_url``) and solve
    it within what is left of ``budget_s`` (and before ``deadline_s`` on ``time.time()``)."""
    begun = time.perf_counter()
    own = db is None
    source = Database(q.db_url) if db is None else db
    try:
        read = read_round(source, q)
    finally:
        if own:
            source.dispose()
    solved = solve_round(rules, read.task, budget_s - (time.perf_counter() - begun), deadline_s)
    return RoundOutcome(solved, read.wall_s, read.task.now_h,
                        tuple(j.id for j in read.task.queue), read.queued, read.held,
                        read.running)


def worker_ready() -> int:
    """Make a planning worker ready (this module's imports, the ORM's mappers configured, so
    the first round pays for neither); returns its pid."""
    configure_mappers()
    return os.getpid()
