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
    # Async, and the write (about a millisecond) right on the event loop: handed to a thread it
    # waited for the GIL at every driver call while the loop took new requests (``api.db``).
    check_site_access(who, site_id, admin_allowed=False)
    return services.offers.put(site_id, body)


@router.get("/offer")
def read_offer(site_id: SiteId, offers: Offers, who: CurrentPrincipal) -> OfferOut:
    check_site_access(who, site_id)
    return offers.get(site_id)


@router.post("/heartbeat")
async def heartbeat(site_id: SiteId, body: HeartbeatIn, services: AllServices,
                    me: CurrentSite) -> HeartbeatOut:
    """Renew the leases of the listed assignments; ``revoked`` lists those no longer held."""
    check_site_access(Principal(site_id=me), site_id, admin_allowed=False)
    return services.offers.heartbeat(site_id, body)  # on the loop, as the offer
