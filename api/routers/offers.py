"""``/v1/sites/{site_id}/offer``: a site keeps its offer current (only its own)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from api.auth import CurrentPrincipal, Service, check_site_access
from api.routers.sites import SiteId
from api.schemas import OfferIn, OfferOut

router = APIRouter(prefix="/sites/{site_id}/offer", tags=["offers"])


@router.put("")
async def put_offer(
    site_id: SiteId, body: OfferIn, service: Service, who: CurrentPrincipal
) -> OfferOut:
    """Replace the site's offer; 409 if ``sequence`` is not above the stored one."""
    # Async with one explicit hop for the database write: a sync route would hop to the thread
    # pool twice (once more to validate the response), the hottest route of the broker.
    check_site_access(who, site_id, admin_allowed=False)
    return await run_in_threadpool(service.put_offer, site_id, body)


@router.get("")
def read_offer(site_id: SiteId, service: Service, who: CurrentPrincipal) -> OfferOut:
    check_site_access(who, site_id)
    return service.get_offer(site_id)
