"""Authenticate and throttle before any work: a pure ASGI middleware in front of the body limit
and the app.

Every ``/v1`` route but the public ones (health, version) needs a bearer token the broker knows
(the admin's or an active site's; registration also takes a one-time enrolment token, or none
under open registration). A request without one is answered 401 with a small body at once,
before a byte of its body is read, let alone parsed: a client with no token cannot make the
broker spend time or memory on its body (FastAPI reads and validates the body before it solves
the route's dependencies, so a dependency alone came too late). Routes still check who may do
what (``api.auth``); this only keeps strangers out early.

Failures are counted and written to the audit log (``carbonfed.audit``): the client address,
the route and the running count, never the token.

Then every request (``/v1`` or not) counts against its principal's limits (``api.throttle``):
a site's, the admin's or an enrolment token's, else its IP address's (no token, or a refused
one). Over the rate or with too many requests in flight it gets 429 with Retry-After, before
its body is read; its slot in flight is held until its answer is sent. The first refusal of a
run is an audit line (the principal or address, the route, which limit). A site's job
submission is also refused while the site's job budget is spent; the route charges it for the
jobs it sends (``charge_jobs``). Refusals (401, 429) are answered after a short delay
(``api.throttle.Tarpit``), so that a client retrying at once costs little.
"""

from __future__ import annotations

import json
import logging

from sqlalchemy.exc import DBAPIError
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from api.services import Principal, Services
from api.services.sites import CLOSED
from api.services.tokens import token_hash
from api.throttle import RequestLimits, Tarpit

audit = logging.getLogger("carbonfed.audit")

PREFIX = "/v1/"
PRINCIPAL = "carbonfed_principal"  # the request state's key for who the gate let in
PUBLIC = frozenset({("GET", "/v1/health"), ("GET", "/v1/version")})
REGISTER = ("POST", "/v1/sites")
JOB_SUBMISSIONS = frozenset({("POST", "/v1/jobs"), ("POST", "/v1/jobs/batch")})
ENROLMENT = "enrolment:"  # the limits' key prefix of an enrolment token (never logged)


def bearer_of(scope: Scope) -> str | None:
    """The bearer token of the request's Authorization header, or None."""
    for key, value in scope["headers"]:
        if key == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            return token if scheme.lower() == "bearer" and token else None
    return None


class AuthenticateFirst:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.failures = 0  # since start, for the audit log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        why, key = None, None
        if scope["path"].startswith(PREFIX) and (
                (scope["method"], scope["path"].rstrip("/")) not in PUBLIC):
            services: Services = scope["app"].state.services
            try:
                why, key = self._refusal(services, scope)
            except DBAPIError as error:  # out here no exception handler sees it: api.errors
                if not error.connection_invalidated:
                    raise
                await _answer(send, 503, "the database connection was lost; retry",
                              [(b"retry-after", b"1")])
                return
        client = scope.get("client") or ("?", 0)
        anonymous = key is None
        key = key or f"ip:{client[0]}"
        limits: RequestLimits = scope["app"].state.request_limits
        tarpit: Tarpit = scope["app"].state.tarpit
        submits_jobs = key.startswith(SITE) and (
            scope["method"], scope["path"].rstrip("/")) in JOB_SUBMISSIONS
        over = limits.admit(key, anonymous, submits_jobs)
        if over is not None:
            if over.first:  # one audit line per run of refusals, not one per request
                who = "an enrolment token" if key.startswith(ENROLMENT) else key
                audit.warning("throttled %s: %s %s from %s (%s)", who, scope["method"],
                              scope["path"], client[0], over.message)
            await tarpit.wait()
            await _answer(send, 429, f"{over.message}; retry after {over.retry_after_s} s",
                          [(b"retry-after", str(over.retry_after_s).encode())])
            return
        try:
            if why is None:
                await self.app(scope, receive, send)
                return
            self.failures += 1
            audit.warning("auth failure %d: %s %s from %s (%s)", self.failures,
                          scope["method"], scope["path"], client[0], why)
            await tarpit.wait()
            await _answer(send, 401, why, [(b"www-authenticate", b"Bearer")])
        finally:
            limits.release(key)

    @staticmethod
    def _refusal(services: Services, scope: Scope) -> tuple[str | None, str | None]:
        """Why the request is refused (None: it may go on), and the key of the principal
        whose limits it counts against (None: its client address's)."""
        token = bearer_of(scope)
        registering = (scope["method"], scope["path"].rstrip("/")) == REGISTER
        if token is None:
            if registering:
                return (None if services.ctx.settings.open_registration else CLOSED), None
            return "missing bearer token", None
        who = services.tokens.principal(token)
        if who is not None:
            scope.setdefault("state", {})[PRINCIPAL] = who  # api.auth reads it, not again
            return None, principal_key(who)
        if registering and services.tokens.is_enrolment_token(token):
            return None, f"{ENROLMENT}{token_hash(token)[:16]}"
        return "unknown or revoked token", None


SITE = "site:"


def principal_key(who: Principal) -> str:
    """The key of ``who``'s request limits."""
    return "admin" if who.admin else f"{SITE}{who.site_id}"


def charge_jobs(request: Request, who: Principal, n: int) -> None:
    """A site's submission of ``n`` jobs is paid from its job budget (the admin's is not);
    call on the event loop, before the jobs are checked."""
    if not who.admin:
        limits: RequestLimits = request.app.state.request_limits
        limits.charge_jobs(principal_key(who), n)


def audit_admin(action: str, **facts: object) -> None:
    """One audit line per admin action: what, on what, how many (never a token)."""
    audit.warning("admin %s%s", action, "".join(f" {k}={v}" for k, v in facts.items()))


async def _answer(send: Send, status: int, message: str,
                  headers: list[tuple[bytes, bytes]]) -> None:
    """A small JSON answer that closes the connection (its body, if any, is never read)."""
    payload = json.dumps({"detail": message, "message": message}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
        (b"connection", b"close"), *headers]})
    await send({"type": "http.response.body", "body": payload})
