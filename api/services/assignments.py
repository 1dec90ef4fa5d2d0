"""Assignments: a site reads its jobs and moves them forward (``api.states`` has the rules).

Completion is exactly once: only the job's live assignment may complete it, once it was
started, and no earlier than ``min_runtime_fraction`` of its expected transfer and run time
after the start (409 otherwise: a completion right after the assignment billed energy never
used); the hours between the start and completion reports are recorded
(``reported_runtime_h``) beside the expected ones. A report on a withdrawn assignment answers
409; a late completion is still recorded on the assignment
(``late_completion_at_s``) so the audit shows which site finished work the broker took back.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update

from api import mappers, schemas
from api.errors import ConflictError, ForbiddenError, NotFoundError
from api.models import AssignmentRow, JobRow
from api.services.context import Context
from api.states import (
    FORWARD_ORDER,
    JOB_STATUS,
    STAMPS,
    AssignmentStatus,
    JobStatus,
    may_move,
)


class AssignmentService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def list(self, site_id: str,
             statuses: Sequence[AssignmentStatus]) -> list[schemas.AssignmentOut]:
        with self.ctx.db.read() as s:
            rows = s.execute(
                select(AssignmentRow, JobRow).join(JobRow, JobRow.id == AssignmentRow.job_id)
                .where(AssignmentRow.site_id == site_id, AssignmentRow.status.in_(statuses))
                .order_by(AssignmentRow.id)
            ).all()
            return [mappers.assignment_out(a, j) for a, j in rows]

    def advance(self, site_id: str, assignment_id: int,
                to: AssignmentStatus) -> schemas.AssignmentOut:
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
                    JobRow.id == a.job_id, JobRow.status != JobStatus.COMPLETED,
                ).values(status=JOB_STATUS[to]))
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
