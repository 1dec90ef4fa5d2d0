"""The live broker's FastAPI application: ``create_app(settings)``.

State (database engine, broker service, the optional planning loop) is set up in ``lifespan``
and hung on ``app.state``; nothing lives at module level. Routes are versioned under ``/v1``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import APIRouter, FastAPI
from fastapi.concurrency import run_in_threadpool

from api.clock import Clock
from api.db import Database
from api.errors import install_error_handlers
from api.routers import assignments, health, jobs, offers, plans, sites, summary
from api.service import BrokerService
from api.settings import Settings

log = logging.getLogger("carbonfed.api")

ROUTERS = (health, sites, offers, jobs, plans, assignments, summary)


async def planning_loop(service: BrokerService, interval_s: float) -> None:
    """Plan every ``interval_s``; a failed round is logged and the next one tried."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await run_in_threadpool(service.plan_round)
        except Exception:  # the loop must outlive any one bad round
            log.exception("planning round failed")


def create_app(settings: Settings, clock: Clock | None = None) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(settings.db_url)
        service = BrokerService(db, settings, clock)
        generated = await run_in_threadpool(service.start)
        if generated is not None:
            log.warning("generated admin token (shown once): %s", generated)
        app.state.service = service
        task = None
        if settings.plan_interval_s is not None:
            task = asyncio.create_task(planning_loop(service, settings.plan_interval_s))
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            db.dispose()

    app = FastAPI(
        title="carbonfed live broker",
        version="1",
        description="Sites register and advertise GPU offers; the broker plans jobs with the "
        "same MILP as the simulator and hands them to sites.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    v1 = APIRouter(prefix="/v1")
    for module in ROUTERS:
        v1.include_router(module.router)
    app.include_router(v1)
    return app
