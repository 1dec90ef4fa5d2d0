"""Assignments: a site reads its jobs and moves them forward (``api.states`` has the rules).

Completion is exactly once: only the job's live assignment may complete it, once it was
started, and no earlier than ``min_runtime_fraction`` of its expected transfer and run time
after the start (409 otherwise: a completion right after the assignment billed energy never
used); the hours between the start and completion reports are recorded
(``reported_runtime_h``) beside the expected ones. A report on a withdrawn assignment answers
409; a late completion is still recorded on the assignment
(``late_completion_at_s``) so the audit shows which site finished work the broker took back.

A site may also end an assignment itself: it *rejects* a job it will not run (its acceptance
policy; the job is requeued and never planned on that site again, ``api.services.round_read``),
or reports that the run *failed* (the job is requeued, preferably elsewhere, until it has failed
``max_attempts`` times). What the executor reports (run id, exit code and state, last log
lines) is kept on the assignment, for the job's history.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from api import mappers, schemas
from api.errors import ConflictError, ForbiddenError, NotFoundError
from api.models import AssignmentRow, JobRow, JobRunRow, SiteRow
from api.services import leases
from api.services.context import Context
from api.states import (
    FORWARD_ORDER,
    JOB_FINAL,
    JOB_STATUS,
    LIVE,
    PAUSED_REASON,
    RESIZED_REASON,
    STAMPS,
    AssignmentStatus,
    Directive,
    JobStatus,
    may_move,
)
from broker.jobs import InFlight
from broker.live import live_federation
from broker.options import run_of


class AssignmentService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def list(self, site_id: str, statuses: Sequence[AssignmentStatus],
             with_run: bool = False) -> list[schemas.AssignmentOut]:
        """The site's assignments; ``with_run``: with their jobs' run specs on the live ones
        (only when the site itself asks: never for the admin, never for another site)."""
        with self.ctx.db.read() as s:
            rows = s.execute(
                select(AssignmentRow, JobRow).join(JobRow, JobRow.id == AssignmentRow.job_id)
                .where(AssignmentRow.site_id == site_id, AssignmentRow.status.in_(statuses))
                .order_by(AssignmentRow.id)
            ).all()
            live = [a.job_id for a, _ in rows if a.status in LIVE]
            runs: dict[str, dict] = dict(s.execute(select(JobRunRow.job_id, JobRunRow.spec).where(
                JobRunRow.job_id.in_(live))).all()) if with_run and live else {}
            return [mappers.assignment_out(a, j, runs.get(a.job_id) if a.status in LIVE
                                           else None) for a, j in rows]

    def _owned(self, s: Session, site_id: str, assignment_id: int) -> AssignmentRow:
        a = s.get(AssignmentRow, assignment_id)
        if a is None:
            raise NotFoundError(f"no assignment {assignment_id}")
        if a.site_id != site_id:
            raise ForbiddenError(f"assignment {assignment_id} is not this site's")
        return a

    def reject(self, site_id: str, assignment_id: int,
               body: schemas.RejectIn) -> schemas.AssignmentOut:
        """The site refuses the job: requeued, never planned on this site again. A running
        job cannot be rejected (report it failed); a withdrawn one answers 409."""
        wall = self.ctx.clock.wall_s()
        with self.ctx.db.write() as s:
            a = self._owned(s, site_id, assignment_id)
            if a.status == AssignmentStatus.RUNNING:
                raise ConflictError(f"assignment {assignment_id} is running; report it "
                                    "failed instead of rejecting it")
            if a.status not in LIVE:
                raise ConflictError(f"assignment {assignment_id} is {a.status}; nothing to "
                                    "reject")
            leases.withdraw_job(s, a.job_id, wall, leases.REJECTED)
            s.refresh(a)
            a.run_message = body.reason
            job = s.get(JobRow, a.job_id)
            assert job is not None
            return mappers.assignment_out(a, job)

    def pause(self, site_id: str, assignment_id: int,
              body: schemas.PauseIn) -> schemas.AssignmentOut:
        """The site paused the job on the broker's word: the assignment is requeued
        (``paused``); the job is queued with the work done (``progress`` of what this
        assignment was given) and where its checkpoint is. A repeat answers as the first."""
        wall = self.ctx.clock.wall_s()
        with self.ctx.db.write() as s:
            a = self._owned(s, site_id, assignment_id)
            job = s.get(JobRow, a.job_id)
            assert job is not None
            if a.status == AssignmentStatus.REQUEUED and a.requeue_reason == PAUSED_REASON:
                return mappers.assignment_out(a, job)  # a repeated report
            if a.status != AssignmentStatus.RUNNING or a.directive != Directive.PAUSE:
                raise ConflictError(f"assignment {assignment_id} is {a.status}"
                                    + ("" if a.directive else " and no pause was asked"))
            job.done_steps += body.progress * (job.work_steps - job.done_steps)
            _bill_share(a, body.progress)
            job.paused_site, job.paused_gpu_type, job.paused_gpus = a.site_id, a.gpu_type, a.gpus
            leases.withdraw_job(s, a.job_id, wall, PAUSED_REASON)
            job.status = JobStatus.QUEUED
            s.flush()
            s.refresh(a)
            return mappers.assignment_out(a, job)

    def resize(self, site_id: str, assignment_id: int,
               body: schemas.PauseIn) -> schemas.AssignmentOut:
        """The site stopped the job for the broker's resize: the assignment is requeued
        (``resized``) and billed for its share of the run, as a pause is; the job goes on at
        the same site and GPU type on the directive's count, as a new assignment (to
        acknowledge and start as any other), whose run is the work left at that count's
        throughput plus the job's ``resize_overhead_h``. Carbon and energy cost keep the old
        run's per-kWh figures (same site, the next hours). Returns the new assignment."""
        wall = self.ctx.clock.wall_s()
        with self.ctx.db.write() as s:
            a = self._owned(s, site_id, assignment_id)
            job = s.get(JobRow, a.job_id)
            site = s.get(SiteRow, a.site_id)
            assert job is not None and site is not None
            if a.status != AssignmentStatus.RUNNING or a.directive != Directive.RESIZE \
                    or not a.directive_gpus:
                raise ConflictError(f"assignment {assignment_id} is {a.status}"
                                    + ("" if a.directive else " and no resize was asked"))
            gpus = a.directive_gpus
            per_kwh = ((a.carbon_kg / a.energy_kwh, a.energy_cost_usd / a.energy_kwh)
                       if a.energy_kwh > 0 else (0.0, 0.0))
            job.done_steps += body.progress * (job.work_steps - job.done_steps)
            _bill_share(a, body.progress)
            leases.withdraw_job(s, a.job_id, wall, RESIZED_REASON)
            # the rest of the job going on where it ran, on the new count: the option model's
            # boundary run (its work at that count's throughput, after resize_overhead_h)
            rest = dataclasses.replace(mappers.job(job), state=InFlight(
                a.site_id, a.gpu_type, a.gpus, computing=True, restart_h=0.0,
                done_steps=job.done_steps))
            fed = live_federation([mappers.site_spec(site)], {site.id}, self.ctx.gpu_catalog,
                                  self.ctx.affinity, self.ctx.settings.transfer_gbps)
            run = run_of(fed, rest, fed.resource_of(a.site_id, a.gpu_type), gpus,
                         boundary=True)
            hours, kwh = float(run.runtime_h[0]), float(run.energy_kwh[0])
            new = AssignmentRow(
                job_id=a.job_id, site_id=a.site_id, gpu_type=a.gpu_type, gpus=gpus,
                round_id=a.round_id, status=AssignmentStatus.ASSIGNED,
                start_h=self.ctx.clock.hours_at(wall), transfer_h=0.0, runtime_h=hours,
                energy_kwh=kwh, carbon_kg=kwh * per_kwh[0], energy_cost_usd=kwh * per_kwh[1],
                transfer_cost_usd=0.0, created_at_s=wall)
            s.add(new)
            job.status = JobStatus.ASSIGNED
            job.attempts += 1
            s.flush()
            return mappers.assignment_out(new, job)

    def fail(self, site_id: str, assignment_id: int,
             report: schemas.RunReport) -> schemas.AssignmentOut:
        """The run failed: the assignment is ``failed`` with what the executor reported; its
        job is queued again, or ``failed`` once it has failed ``max_attempts`` times. A repeat
        is a no-op; a withdrawn assignment answers 409."""
        wall = self.ctx.clock.wall_s()
        with self.ctx.db.write() as s:
            a = self._owned(s, site_id, assignment_id)
            if a.status == AssignmentStatus.REQUEUED:
                raise ConflictError(f"assignment {assignment_id} was withdrawn "
                                    f"({a.requeue_reason}) and its job requeued")
            if a.status == AssignmentStatus.COMPLETED:
                raise ConflictError(f"assignment {assignment_id} completed already")
            job = s.get(JobRow, a.job_id)
            assert job is not None
            if a.status == AssignmentStatus.FAILED:  # a repeated report
                return mappers.assignment_out(a, job)
            a.status = AssignmentStatus.FAILED
            a.completed_at_s = wall  # when the run ended
            _record(a, report, wall)
            s.flush()
            failures = s.scalar(select(func.count()).select_from(AssignmentRow).where(
                AssignmentRow.job_id == a.job_id,
                AssignmentRow.status == AssignmentStatus.FAILED)) or 0
            if job.status not in JOB_FINAL:
                job.status = (JobStatus.FAILED if failures >= self.ctx.settings.max_attempts
                              else JobStatus.QUEUED)
            return mappers.assignment_out(a, job)

    def advance(self, site_id: str, assignment_id: int, to: AssignmentStatus,
                report: schemas.RunReport | None = None) -> schemas.AssignmentOut:
        """Move an assignment forward; repeats and late reports (start after complete) are
        no-ops; a withdrawn assignment answers 409 (its job went back to the queue)."""
        wall = self.ctx.clock.wall_s()
        withdrawn: str | None = None
        with self.ctx.db.write() as s:
            a = s.get(AssignmentRow, assignment_id)
            if a is None:
                raise NotFoundError(f"no assignment {assignment_id}")
            if a.site_id != site_id:
                raise ForbiddenError(f"assignment {assignment_id} is not this site's")
            current = AssignmentStatus(a.status)
            if current == AssignmentStatus.FAILED:
                raise ConflictError(f"assignment {assignment_id} failed already")
            if current == AssignmentStatus.REQUEUED:
                withdrawn = a.requeue_reason or "withdrawn"
                if to == AssignmentStatus.COMPLETED and a.late_completion_at_s is None:
                    a.late_completion_at_s = wall  # committed, then 409 below
            elif FORWARD_ORDER[current] < FORWARD_ORDER[to]:
                self._check_completion(a, current, to, wall)
                for status, order in FORWARD_ORDER.items():
                    if FORWARD_ORDER[current] < order <= FORWARD_ORDER[to] and status in STAMPS:
                        setattr(a, STAMPS[status], wall)
                a.status = to
                a.renewed_at_s = wall  # an ack or a report is a sign of life
                if to == AssignmentStatus.COMPLETED and a.started_at_s is not None:
                    a.reported_runtime_h = self.ctx.clock.hours_at(wall) - (
                        self.ctx.clock.hours_at(a.started_at_s))
                s.execute(update(JobRow).where(
                    JobRow.id == a.job_id, JobRow.status.not_in(JOB_FINAL),
                ).values(status=JOB_STATUS[to]))
                if to == AssignmentStatus.RUNNING:  # resumed: its state is here from now on
                    s.execute(update(JobRow).where(JobRow.id == a.job_id).values(
                        paused_site=None, paused_gpu_type=None, paused_gpus=None))
            if report is not None and current != AssignmentStatus.REQUEUED:
                _record(a, report, wall)
            job = s.get(JobRow, a.job_id)
            out = mappers.assignment_out(a, job) if job is not None else None
        if withdrawn is not None or out is None:
            raise ConflictError(f"assignment {assignment_id} was withdrawn ({withdrawn}) and "
                                "its job requeued; do not run it")
        return out

    def _check_completion(self, a: AssignmentRow, current: AssignmentStatus,
                          to: AssignmentStatus, wall: float) -> None:
        """A forward move must be allowed (a completion needs a start), and a completion
        must come no earlier than ``min_runtime_fraction`` of the expected time after it."""
        if not may_move(current, to):
            raise ConflictError(f"assignment {a.id} is {current}: report its start before "
                                f"its {to}")
        if to != AssignmentStatus.COMPLETED or a.started_at_s is None:
            return
        expected_s = self.ctx.clock.wall_seconds(a.transfer_h + a.runtime_h)
        earliest = a.started_at_s + self.ctx.settings.min_runtime_fraction * expected_s
        if wall < earliest:
            fraction = self.ctx.settings.min_runtime_fraction
            raise ConflictError(
                f"assignment {a.id} completed {wall - a.started_at_s:.0f} s after its start; "
                f"not before {earliest - a.started_at_s:.0f} s ({fraction:g} of its expected "
                f"{expected_s:.0f} s)")


def _bill_share(a: AssignmentRow, progress: float) -> None:
    """A run stopped on the broker's word is billed for what it ran (``api.services.summary``):
    its share of the run the assignment was given (the data transfer, if any, in full)."""
    a.runtime_h *= progress
    a.energy_kwh *= progress
    a.carbon_kg *= progress
    a.energy_cost_usd *= progress


def _record(a: AssignmentRow, report: schemas.RunReport, wall: float) -> None:
    """Keep what the executor reported (fields it left out keep what an earlier report said).

    The executor's start and end times replace the broker's stamps (when it heard of them)
    where the run has reached that point; a time in the broker's future is taken as now."""
    if report.ref is not None:
        a.run_ref = report.ref
    if report.exit_code is not None:
        a.exit_code = report.exit_code
    if report.exit_state is not None:
        a.exit_state = report.exit_state
    if report.message is not None:
        a.run_message = report.message
    if report.energy_kwh is not None:
        a.measured_energy_kwh = report.energy_kwh
    if report.started_at_s is not None and a.started_at_s is not None:
        a.started_at_s = min(report.started_at_s, wall)
    if report.ended_at_s is not None and a.completed_at_s is not None:
        a.completed_at_s = min(report.ended_at_s, wall)
