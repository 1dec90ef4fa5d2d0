"""Typed FastAPI dependencies: the services, and bearer-token authentication.

401: no token or an unknown one; 403: a valid token that may not do this.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.errors import ForbiddenError, UnauthorizedError
from api.gate import PRINCIPAL
from api.services import Principal, Services
from api.services.assignments import AssignmentService
from api.services.jobs import JobService
from api.services.offers import OfferService
from api.services.planning import PlanningService
from api.services.sites import SiteService
from api.services.summary import SummaryService

_bearer = HTTPBearer(auto_error=False, description="admin token, a site's token, or an "
                     "enrolment token (registration only)")


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


AllServices = Annotated[Services, Depends(get_services)]


async def _sites(services: AllServices) -> SiteService:
    return services.sites


async def _offers(services: AllServices) -> OfferService:
    return services.offers


async def _jobs(services: AllServices) -> JobService:
    return services.jobs


async def _assignments(services: AllServices) -> AssignmentService:
    return services.assignments


async def _planning(services: AllServices) -> PlanningService:
    return services.planning


async def _summary(services: AllServices) -> SummaryService:
    return services.summary


Sites = Annotated[SiteService, Depends(_sites)]
Offers = Annotated[OfferService, Depends(_offers)]
Jobs = Annotated[JobService, Depends(_jobs)]
Assignments = Annotated[AssignmentService, Depends(_assignments)]
Planning = Annotated[PlanningService, Depends(_planning)]
Summary = Annotated[SummaryService, Depends(_summary)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def bearer_token(credentials: Credentials) -> str | None:
    return credentials.credentials if credentials is not None else None


async def current_principal(request: Request, credentials: Credentials) -> Principal:
    """Who calls. Async on purpose: the token lookup is cached or one indexed read (well under
    a millisecond, never waits for a writer), cheaper inline than a hop to the thread pool."""
    if credentials is None:
        raise UnauthorizedError("missing bearer token")
    let_in = request.scope.get("state", {}).get(PRINCIPAL)  # looked up by api.gate just now
    services: Services = request.app.state.services
    who = let_in if let_in is not None else services.tokens.principal(credentials.credentials)
    if who is None:
        raise UnauthorizedError("unknown or revoked token")
    return who


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
BearerToken = Annotated[str | None, Depends(bearer_token)]


def check_site_access(who: Principal, site_id: str, admin_allowed: bool = True) -> None:
    """A site may touch only its own resources; the admin any (where ``admin_allowed``)."""
    if who.site_id == site_id or (who.admin and admin_allowed):
        return
    raise ForbiddenError(f"this token may not act for site '{site_id}'")
