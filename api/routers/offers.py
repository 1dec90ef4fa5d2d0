"""``/v1/sites/{site_id}/offer`` and ``/heartbeat``: a site keeps its offer and leases current."""

from __future__ import annotations

from fastapi import APIRouter

from api.auth import AllServices, CurrentPrincipal, CurrentSite, Offers, check_site_access
from api.routers.sites import SiteId
from api.schemas import HeartbeatIn, HeartbeatOut, OfferIn, OfferOut
from api.services import Principal

router = APIRouter(prefix="/sites/{site_id}", tags=["offers"])


@router.put("/offer")
async def put_offer(site_id: SiteId, body: OfferIn, services: AllServices,
                    who: CurrentPrincipal) -> OfferOut:
    """Replace the site's offer (409 if ``sequence`` is not above the stored one) and renew
    the leases of the assignments it lists in ``holding``."""
    # Async, with the write placed by the database (``Database.run_write``): a sync route would
    # hop to the thread pool twice (once more to validate the response), on the hottest route.
    check_site_access(who, site_id, admin_allowed=False)
    return await services.ctx.db.run_write(services.offers.put, site_id, body)


@router.get("/offer")
def read_offer(site_id: SiteId, offers: Offers, who: CurrentPrincipal) -> OfferOut:
    check_site_access(who, site_id)
    return offers.get(site_id)


@router.post("/heartbeat")
async def heartbeat(site_id: SiteId, body: HeartbeatIn, services: AllServices,
                    me: CurrentSite) -> HeartbeatOut:
    """Renew the leases of the listed assignments; ``revoked`` lists those no longer held."""
    check_site_access(Principal(site_id=me), site_id, admin_allowed=False)
    return await services.ctx.db.run_write(services.offers.heartbeat, site_id, body)
