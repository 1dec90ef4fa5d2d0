"""``/v1/sites``: register, list, read and deregister sites."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from api.auth import CurrentPrincipal, RegistrationToken, Service, check_site_access
from api.errors import UnauthorizedError
from api.schemas import ID_PATTERN, SiteOut, SiteRegistered, SiteRegistration

router = APIRouter(prefix="/sites", tags=["sites"])
SiteId = Annotated[str, Path(pattern=ID_PATTERN)]


@router.post("", status_code=status.HTTP_201_CREATED)
def register_site(
    body: SiteRegistration, service: Service, token: RegistrationToken
) -> SiteRegistered:
    """Register a site; the answer carries its bearer token (shown once, stored hashed)."""
    if not service.may_register(token):
        raise UnauthorizedError("registration needs the registration token")
    return service.register_site(body)


@router.get("")
def list_sites(service: Service, who: CurrentPrincipal) -> list[SiteOut]:
    return service.list_sites()


@router.get("/{site_id}")
def read_site(site_id: SiteId, service: Service, who: CurrentPrincipal) -> SiteOut:
    check_site_access(who, site_id)
    return service.get_site(site_id)


@router.delete("/{site_id}")
def deregister_site(site_id: SiteId, service: Service, who: CurrentPrincipal) -> SiteOut:
    """The site leaves: its token is revoked and its unfinished jobs go back to the queue."""
    check_site_access(who, site_id)
    return service.deregister_site(site_id)
