"""``/v1/sites/{site_id}/assignments``: a site reads, acknowledges and reports its jobs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.auth import CurrentPrincipal, CurrentSite, Service, check_site_access
from api.routers.sites import SiteId
from api.schemas import AssignmentOut, AssignmentsOut, AssignmentStatus
from api.service import BrokerService, Principal

router = APIRouter(prefix="/sites/{site_id}/assignments", tags=["assignments"])
AssignmentId = Annotated[int, Path(ge=1, le=2**62)]
LIVE: list[AssignmentStatus] = ["assigned", "acknowledged", "running"]


@router.get("")
def list_assignments(
    site_id: SiteId, service: Service, who: CurrentPrincipal,
    status: Annotated[list[AssignmentStatus] | None, Query()] = None,
) -> AssignmentsOut:
    """The site's assignments (default: the live ones: assigned, acknowledged, running)."""
    check_site_access(who, site_id)
    return AssignmentsOut(assignments=service.list_assignments(site_id, status or LIVE))


def _advance(
    site_id: str, assignment_id: int, me: str, service: BrokerService, to: str
) -> AssignmentOut:
    check_site_access(Principal(site_id=me), site_id, admin_allowed=False)
    return service.advance(site_id, assignment_id, to)


@router.post("/{assignment_id}/ack")
def acknowledge(
    site_id: SiteId, assignment_id: AssignmentId, service: Service, me: CurrentSite
) -> AssignmentOut:
    """Take the job (idempotent); 409 if it was withdrawn because the site went stale."""
    return _advance(site_id, assignment_id, me, service, "acknowledged")


@router.post("/{assignment_id}/start")
def report_start(
    site_id: SiteId, assignment_id: AssignmentId, service: Service, me: CurrentSite
) -> AssignmentOut:
    return _advance(site_id, assignment_id, me, service, "running")


@router.post("/{assignment_id}/complete")
def report_completion(
    site_id: SiteId, assignment_id: AssignmentId, service: Service, me: CurrentSite
) -> AssignmentOut:
    return _advance(site_id, assignment_id, me, service, "completed")
