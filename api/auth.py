"""Bearer-token authentication as typed FastAPI dependencies.

Tokens are random (``secrets``), stored only as sha256 hashes and compared in constant time.
401: no token or an unknown one; 403: a valid token that may not do this.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.errors import ForbiddenError, UnauthorizedError
from api.service import BrokerService, Principal

_bearer = HTTPBearer(auto_error=False, description="admin token or a site's token")


async def get_service(request: Request) -> BrokerService:
    return request.app.state.service


Service = Annotated[BrokerService, Depends(get_service)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def bearer_token(credentials: Credentials) -> str | None:
    return credentials.credentials if credentials is not None else None


async def current_principal(credentials: Credentials, service: Service) -> Principal:
    """Who calls. Async on purpose: the token lookup is one indexed read (well under a
    millisecond, never waits for a writer), cheaper inline than a hop to the thread pool."""
    if credentials is None:
        raise UnauthorizedError("missing bearer token")
    token = credentials.credentials
    if service.is_admin(token):
        return Principal(admin=True)
    site_id = service.site_for_token(token)
    if site_id is None:
        raise UnauthorizedError("unknown or revoked token")
    return Principal(site_id=site_id)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


async def require_admin(who: CurrentPrincipal) -> Principal:
    if not who.admin:
        raise ForbiddenError("needs the admin token")
    return who


async def require_site(who: CurrentPrincipal) -> str:
    if who.site_id is None:
        raise ForbiddenError("needs a site's token")
    return who.site_id


AdminToken = Annotated[Principal, Depends(require_admin)]
CurrentSite = Annotated[str, Depends(require_site)]
RegistrationToken = Annotated[str | None, Depends(bearer_token)]


def check_site_access(who: Principal, site_id: str, admin_allowed: bool = True) -> None:
    """A site may touch only its own resources; the admin any (where ``admin_allowed``)."""
    if who.site_id == site_id or (who.admin and admin_allowed):
        return
    raise ForbiddenError(f"this token may not act for site '{site_id}'")
