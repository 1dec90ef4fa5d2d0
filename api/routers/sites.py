"""``/v1/sites``: register (with an enrolment token), list, read and deregister sites."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from api.auth import BearerToken, CurrentPrincipal, Sites, check_site_access
from api.gate import audit_admin
from api.schemas import ID_PATTERN, SiteOut, SiteRegistered, SiteRegistration

router = APIRouter(prefix="/sites", tags=["sites"])
SiteId = Annotated[str, Path(pattern=ID_PATTERN)]


@router.post("", status_code=status.HTTP_201_CREATED)
def register_site(body: SiteRegistration, sites: Sites, token: BearerToken) -> SiteRegistered:
    """Register with the one-time enrolment token an admin issued (or without a token when
    the broker runs with open registration); the answer carries the site's bearer token."""
    return sites.register(body, token)


@router.get("")
def list_sites(sites: Sites, who: CurrentPrincipal) -> list[SiteOut]:
    return sites.list()


@router.get("/{site_id}")
def read_site(site_id: SiteId, sites: Sites, who: CurrentPrincipal) -> SiteOut:
    check_site_access(who, site_id)
    return sites.get(site_id)


@router.delete("/{site_id}")
def deregister_site(site_id: SiteId, sites: Sites, who: CurrentPrincipal) -> SiteOut:
    """The site leaves: its token is revoked and its unfinished jobs go back to the queue."""
    check_site_access(who, site_id)
    out = sites.deregister(site_id)
    if who.admin:
        audit_admin("deregister", site=site_id)
    return out
