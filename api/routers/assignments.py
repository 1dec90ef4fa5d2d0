"""``/v1/sites/{site_id}/assignments``: a site reads, acknowledges and reports its jobs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query

from api.auth import Assignments, CurrentPrincipal, CurrentSite, check_site_access
from api.routers.sites import SiteId
from api.schemas import (
    MAX_ROW_ID,
    AssignmentOut,
    AssignmentsOut,
    PauseIn,
    RejectIn,
    RunReport,
)
from api.services import Principal
from api.states import LIVE, AssignmentStatus

router = APIRouter(prefix="/sites/{site_id}/assignments", tags=["assignments"])
AssignmentId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
OptionalReport = Annotated[RunReport | None, Body()]


@router.get("")
def list_assignments(
    site_id: SiteId, assignments: Assignments, who: CurrentPrincipal,
    status: Annotated[list[AssignmentStatus] | None, Query()] = None,
) -> AssignmentsOut:
    """The site's assignments (default: the live ones: assigned, acknowledged, running). The
    live ones carry their job's ``run`` spec only when the site itself reads them."""
    check_site_access(who, site_id)
    own = not who.admin and who.site_id == site_id
    return AssignmentsOut(assignments=assignments.list(site_id, status or LIVE, with_run=own))


def _advance(site_id: str, assignment_id: int, me: str, assignments: Assignments,
             to: AssignmentStatus, report: RunReport | None = None) -> AssignmentOut:
    check_site_access(Principal(site_id=me), site_id, admin_allowed=False)
    return assignments.advance(site_id, assignment_id, to, report)


@router.post("/{assignment_id}/ack")
def acknowledge(site_id: SiteId, assignment_id: AssignmentId, assignments: Assignments,
                me: CurrentSite) -> AssignmentOut:
    """Take the job (idempotent); 409 if it was withdrawn (ack timeout, stale site)."""
    return _advance(site_id, assignment_id, me, assignments, AssignmentStatus.ACKNOWLEDGED)


@router.post("/{assignment_id}/start")
def report_start(site_id: SiteId, assignment_id: AssignmentId, assignments: Assignments,
                 me: CurrentSite, report: OptionalReport = None) -> AssignmentOut:
    """The run started (optional body: the executor's id for it, e.g. the Slurm job id)."""
    return _advance(site_id, assignment_id, me, assignments, AssignmentStatus.RUNNING, report)


@router.post("/{assignment_id}/complete")
def report_completion(site_id: SiteId, assignment_id: AssignmentId, assignments: Assignments,
                      me: CurrentSite, report: OptionalReport = None) -> AssignmentOut:
    """Complete the job (exactly once); 409 if its lease expired and it was requeued (the
    late completion is recorded). Optional body: the executor's exit state."""
    return _advance(site_id, assignment_id, me, assignments, AssignmentStatus.COMPLETED,
                    report)


@router.post("/{assignment_id}/fail")
def report_failure(site_id: SiteId, assignment_id: AssignmentId, assignments: Assignments,
                   me: CurrentSite, report: RunReport) -> AssignmentOut:
    """The run failed (exit code, state, last log lines): the job is requeued, preferably on
    another site, until it has failed ``max_attempts`` times; 409 if it was withdrawn."""
    check_site_access(Principal(site_id=me), site_id, admin_allowed=False)
    return assignments.fail(site_id, assignment_id, report)


@router.post("/{assignment_id}/pause")
def report_pause(site_id: SiteId, assignment_id: AssignmentId, assignments: Assignments,
                 me: CurrentSite, body: PauseIn) -> AssignmentOut:
    """The job was paused on the broker's word (its directive): it is queued again with the
    work done and where its checkpoint is; 409 if no pause was asked or it was withdrawn."""
    check_site_access(Principal(site_id=me), site_id, admin_allowed=False)
    return assignments.pause(site_id, assignment_id, body)


@router.post("/{assignment_id}/resize")
def report_resize(site_id: SiteId, assignment_id: AssignmentId, assignments: Assignments,
                  me: CurrentSite, body: PauseIn) -> AssignmentOut:
    """The job was stopped for the broker's resize (its directive): it goes on here on the
    directive's GPU count as the new assignment answered (acknowledge and start it as any
    other); 409 if no resize was asked or it was withdrawn."""
    check_site_access(Principal(site_id=me), site_id, admin_allowed=False)
    return assignments.resize(site_id, assignment_id, body)


@router.post("/{assignment_id}/reject")
def reject(site_id: SiteId, assignment_id: AssignmentId, assignments: Assignments,
           me: CurrentSite, body: RejectIn) -> AssignmentOut:
    """Refuse the job (the site's acceptance policy): it is requeued and never offered to
    this site again. Only before it runs; 409 if it was withdrawn or runs."""
    check_site_access(Principal(site_id=me), site_id, admin_allowed=False)
    return assignments.reject(site_id, assignment_id, body)
