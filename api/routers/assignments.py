"""``/v1/sites/{site_id}/assignments``: a site reads, acknowledges and reports its jobs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.auth import Assignments, CurrentPrincipal, CurrentSite, check_site_access
from api.routers.sites import SiteId
from api.schemas import MAX_ROW_ID, AssignmentOut, AssignmentsOut
from api.services import Principal
from api.states import LIVE, AssignmentStatus

router = APIRouter(prefix="/sites/{site_id}/assignments", tags=["assignments"])
AssignmentId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]


@router.get("")
def list_assignments(
    site_id: SiteId, assignments: Assignments, who: CurrentPrincipal,
    status: Annotated[list[AssignmentStatus] | None, Query()] = None,
) -> AssignmentsOut:
    """The site's assignments (default: the live ones: assigned, acknowledged, running)."""
    check_site_access(who, site_id)
    return AssignmentsOut(assignments=assignments.list(site_id, status or LIVE))


def _advance(site_id: str, assignment_id: int, me: str, assignments: Assignments,
             to: AssignmentStatus) -> AssignmentOut:
    check_site_access(Principal(site_id=me), site_id, admin_allowed=False)
    return assignments.advance(site_id, assignment_id, to)


@router.post("/{assignment_id}/ack")
def acknowledge(site_id: SiteId, assignment_id: AssignmentId, assignments: Assignments,
                me: CurrentSite) -> AssignmentOut:
    """Take the job (idempotent); 409 if it was withdrawn (ack timeout, stale site)."""
    return _advance(site_id, assignment_id, me, assignments, AssignmentStatus.ACKNOWLEDGED)


@router.post("/{assignment_id}/start")
def report_start(site_id: SiteId, assignment_id: AssignmentId, assignments: Assignments,
                 me: CurrentSite) -> AssignmentOut:
    return _advance(site_id, assignment_id, me, assignments, AssignmentStatus.RUNNING)


@router.post("/{assignment_id}/complete")
def report_completion(site_id: SiteId, assignment_id: AssignmentId, assignments: Assignments,
                      me: CurrentSite) -> AssignmentOut:
    """Complete the job (exactly once); 409 if its lease expired and it was requeued (the
    late completion is recorded)."""
    return _advance(site_id, assignment_id, me, assignments, AssignmentStatus.COMPLETED)
