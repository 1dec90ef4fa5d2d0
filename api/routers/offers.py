"""``/v1/sites/{site_id}/offer``: a site keeps its offer current (only its own)."""

from __future__ import annotations

from fastapi import APIRouter

from api.auth import CurrentPrincipal, Service, check_site_access
from api.routers.sites import SiteId
from api.schemas import OfferIn, OfferOut

router = APIRouter(prefix="/sites/{site_id}/offer", tags=["offers"])


@router.put("")
def put_offer(site_id: SiteId, body: OfferIn, service: Service, who: CurrentPrincipal) -> OfferOut:
    """Replace the site's offer; 409 if ``sequence`` is not above the stored one."""
    check_site_access(who, site_id, admin_allowed=False)
    return service.put_offer(site_id, body)


@router.get("")
def read_offer(site_id: SiteId, service: Service, who: CurrentPrincipal) -> OfferOut:
    check_site_access(who, site_id)
    return service.get_offer(site_id)
