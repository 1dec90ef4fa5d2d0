"""Admin routes: enrol sites and manage their life cycle (``carbonfed admin`` calls these)."""

from __future__ import annotations

from fastapi import APIRouter, status

from api.auth import AdminToken, Sites
from api.gate import audit_admin
from api.routers.sites import SiteId
from api.schemas import Enrolled, EnrolmentIn, SiteOut, SiteRegistered

router = APIRouter(tags=["admin"])


@router.post("/enrolments", status_code=status.HTTP_201_CREATED)
def enrol_site(body: EnrolmentIn, sites: Sites, who: AdminToken) -> Enrolled:
    """Enrol a site (or re-enrol a disabled or deregistered one); the answer carries the
    one-time enrolment token its agent registers with."""
    enrolled = sites.enrol(body)
    audit_admin("enrol", site=body.id, gpus=sum(body.gpus.values()))
    return enrolled


@router.post("/sites/{site_id}/disable")
def disable_site(site_id: SiteId, sites: Sites, who: AdminToken) -> SiteOut:
    """Refuse the site's token, drop its offer and requeue its live jobs."""
    out = sites.disable(site_id)
    audit_admin("disable", site=site_id)
    return out


@router.post("/sites/{site_id}/enable")
def enable_site(site_id: SiteId, sites: Sites, who: AdminToken) -> SiteOut:
    out = sites.enable(site_id)
    audit_admin("enable", site=site_id)
    return out


@router.post("/sites/{site_id}/rotate-token")
def rotate_site_token(site_id: SiteId, sites: Sites, who: AdminToken) -> SiteRegistered:
    """A new token for the site (an enrolled site: a new enrolment token); the old one dies."""
    out = sites.rotate_token(site_id)
    audit_admin("rotate-token", site=site_id)
    return out


@router.post("/sites/{site_id}/reset-sequence")
def reset_offer_sequence(site_id: SiteId, sites: Sites, who: AdminToken) -> SiteOut:
    """Forget the stored offer so the site may start its sequence again."""
    out = sites.reset_sequence(site_id)
    audit_admin("reset-sequence", site=site_id)
    return out
