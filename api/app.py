"""The live broker's FastAPI application: ``create_app(settings)``.

State (database engine, the services, the optional planning loop) is set up in ``lifespan`` and
hung on ``app.state``; nothing lives at module level. Routes are versioned under ``/v1``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from api.clock import Clock
from api.dashboard import routes as dashboard
from api.db import Database
from api.docs import install_docs
from api.errors import install_error_handlers
from api.gate import AuthenticateFirst
from api.limits import BodySizeLimit
from api.routers import (
    assignments,
    enrolments,
    health,
    jobs,
    offers,
    plans,
    rounds,
    sites,
    summary,
)
from api.services import Services
from api.settings import Settings
from api.throttle import JobBudget, Limit, RequestLimits, Tarpit
from api.version import package_version

log = logging.getLogger("carbonfed.api")

# Routes are matched in order: the offer PUT, the hottest route by far (every site every few
# seconds), first; behind the others it was tried against ~25 routes per request. Each is
# included on the app itself with the version prefix: FastAPI matches an included router's
# routes through one more level per nesting, on every request.
ROUTERS = (offers, health, sites, enrolments, jobs, plans, rounds, assignments, summary)


async def planning_loop(services: Services, interval_s: float) -> None:
    """Plan every ``interval_s`` on the planning worker; a failed round is logged and the next
    one tried."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await asyncio.wrap_future(services.planning.submit())
        except Exception:  # the loop must outlive any one bad round
            log.exception("planning round failed")


def create_app(settings: Settings, clock: Clock | None = None) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(settings.db_url)
        services = Services.build(db, settings, clock)
        # A token generated here is never logged: ``carbonfed serve`` settles the token before
        # serving and shows a new one once on the terminal; an app built directly (tests) is
        # given one in its settings.
        await run_in_threadpool(services.start)
        services.planning.start()  # the planning worker process, if any, imports meanwhile
        app.state.services = services
        task = None
        if settings.plan_interval_s is not None:
            task = asyncio.create_task(planning_loop(services, settings.plan_interval_s))
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await run_in_threadpool(services.close)
            db.dispose()

    app = FastAPI(
        title="carbonfed live broker",
        version=package_version(),
        description="Enrolled sites register and advertise GPU offers; the broker plans jobs "
        "with the same MILP as the simulator and leases them to sites.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    install_docs(app)
    for module in ROUTERS:
        app.include_router(module.router, prefix="/v1")
    app.include_router(dashboard.router)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes,
                       read_timeout_s=settings.body_read_timeout_s)
    app.add_middleware(AuthenticateFirst)  # added last: runs first, before a body is read
    app.state.request_limits = RequestLimits(  # per principal: the gate admits each request
        Limit(settings.rate_limit_per_s, settings.rate_limit_burst,
              settings.max_concurrent_requests),
        Limit(settings.anonymous_rate_limit_per_s, settings.anonymous_rate_limit_burst,
              settings.anonymous_max_concurrent_requests),
        jobs=JobBudget(settings.job_submit_rate_per_s, settings.job_submit_burst))
    app.state.tarpit = Tarpit(settings.refusal_delay_s, settings.max_delayed_refusals)
    return app
