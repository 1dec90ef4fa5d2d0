"""The life cycles of sites, jobs and assignments: every status and allowed move, in one place.

An assignment (one hand-over of a job to a site) moves::

    assigned --ack--> acknowledged --start--> running --complete--> completed
       |                  |                      |
       +-- not acked -----+-- lease not renewed -+--> requeued  (its job goes back to queued)
       |   within ack_timeout_s   within lease_s      (also: site disabled or deregistered,
       |                                              the site rejected it, the job cancelled,
       |                                              running past its maximum run time)
       +------------------+----------------------+--> failed  (the run exited non-zero)

A running preemptible job may get the broker's pause directive: its site stops it and
acknowledges with its progress (``/pause``), and the assignment is requeued (reason
``paused``); its job is queued with the work done and where its checkpoint is, to resume
later, there or elsewhere. A running elastic job may get a resize directive: acknowledged
(``/resize``), the assignment is requeued (``resized``) and the job goes on at the same site
on the new count as a new assignment. A directive not acknowledged within ``ack_timeout_s``
requeues the assignment (``directive-timeout``).

A completion is accepted only for a running job, and no earlier than ``min_runtime_fraction``
of its expected transfer and run time after its start (``api.services.assignments``).

A job is ``queued`` until a round assigns it, then mirrors its live assignment's status; when
that assignment is requeued the job is ``queued`` again. When it fails the job is ``queued``
again until it has failed ``max_attempts`` times, then ``failed``. ``completed`` is final for
both; so are a job's ``failed`` and ``cancelled`` and an assignment's ``failed``.
"""

from __future__ import annotations

from enum import StrEnum


class AssignmentStatus(StrEnum):
    ASSIGNED = "assigned"
    ACKNOWLEDGED = "acknowledged"
    RUNNING = "running"
    COMPLETED = "completed"
    REQUEUED = "requeued"
    FAILED = "failed"


class JobStatus(StrEnum):
    QUEUED = "queued"
    ASSIGNED = "assigned"
    ACKNOWLEDGED = "acknowledged"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"  # failed max_attempts times
    CANCELLED = "cancelled"  # its home site or the admin cancelled it


# Job statuses no assignment ever leaves.
JOB_FINAL: tuple[JobStatus, ...] = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


class SiteState(StrEnum):
    ENROLLED = "enrolled"  # an admin enrolled it; it has not registered yet
    ACTIVE = "active"  # registered: its token works
    DISABLED = "disabled"  # an admin disabled it: token refused, live jobs requeued
    DEREGISTERED = "deregistered"  # it left (or an admin removed it); re-enrolment is admin's


A = AssignmentStatus
# Forward moves a site reports (a start may skip the ack; a completion needs the start: a
# completion of a job never started billed energy never used), and the broker's withdrawal of
# a live assignment. Completed and requeued are final.
TRANSITIONS: dict[AssignmentStatus, frozenset[AssignmentStatus]] = {
    A.ASSIGNED: frozenset({A.ACKNOWLEDGED, A.RUNNING, A.REQUEUED, A.FAILED}),
    A.ACKNOWLEDGED: frozenset({A.RUNNING, A.REQUEUED, A.FAILED}),
    A.RUNNING: frozenset({A.COMPLETED, A.REQUEUED, A.FAILED}),
    A.COMPLETED: frozenset(),
    A.REQUEUED: frozenset(),
    A.FAILED: frozenset(),
}
# The requeue reason of a job the site refused (api.services.leases): it is never planned on
# that site again (api.services.round_read).
REJECTED_REASON = "rejected"
# The requeue reason of a job its site paused on the broker's word (``Directive.PAUSE``): the
# job is queued with the work it did and where its checkpoint is.
PAUSED_REASON = "paused"


class Directive(StrEnum):
    """The broker's word on a running assignment, acknowledged by its site within
    ``ack_timeout_s`` (else the assignment is requeued, as an unacknowledged one is)."""

    PAUSE = "pause"  # a preemptible job: stop it (its checkpoint kept), report its progress
    RESIZE = "resize"  # an elastic job: stop it, report its progress; it goes on here on
    # ``directive_gpus`` GPUs, as a new assignment


# The requeue reason of an assignment its site stopped for a resize: the job goes on at the
# same site on the new count (a new assignment).
RESIZED_REASON = "resized"

# Assignments that ended: the job left the site (withdrawn, or its run ended).
ENDED: tuple[AssignmentStatus, ...] = (A.COMPLETED, A.REQUEUED, A.FAILED)
# Assignments that hold a job (and GPUs) at a site.
LIVE: tuple[AssignmentStatus, ...] = (A.ASSIGNED, A.ACKNOWLEDGED, A.RUNNING)
# Assignments under a lease that the site renews (acknowledged ones and running ones).
LEASED: tuple[AssignmentStatus, ...] = (A.ACKNOWLEDGED, A.RUNNING)
# The forward order, so a repeated or late report (start after complete) is a no-op.
FORWARD_ORDER: dict[AssignmentStatus, int] = {
    A.ASSIGNED: 0, A.ACKNOWLEDGED: 1, A.RUNNING: 2, A.COMPLETED: 3,
}
# The timestamp column each forward status sets when reached.
STAMPS: dict[AssignmentStatus, str] = {
    A.ACKNOWLEDGED: "acknowledged_at_s", A.RUNNING: "started_at_s", A.COMPLETED: "completed_at_s",
}
# The job status mirroring each assignment status.
JOB_STATUS: dict[AssignmentStatus, JobStatus] = {
    A.ASSIGNED: JobStatus.ASSIGNED, A.ACKNOWLEDGED: JobStatus.ACKNOWLEDGED,
    A.RUNNING: JobStatus.RUNNING, A.COMPLETED: JobStatus.COMPLETED,
    A.REQUEUED: JobStatus.QUEUED,
}


def may_move(current: AssignmentStatus, to: AssignmentStatus) -> bool:
    return to in TRANSITIONS[current]
