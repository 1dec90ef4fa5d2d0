"""An app on a fresh SQLite file per test, driven through httpx's ASGI transport.

The broker's clock is a fake one (``FakeWall``) so staleness and timestamps are deterministic.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, event

from api.app import create_app
from api.clock import Clock
from api.db import postgres_schema
from api.services import Services
from api.settings import Settings
from tests.api.processes import kill
from tests.scenarios.browser import missing, start_browser

ADMIN = "admin-token-for-tests-0123456789-ABCDEFGHIJKLMNOPQRSTUVWXYZ"
WALL0 = 1_700_000_000.0
POSTGRES_URL = os.environ.get("CARBONFED_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> Iterator[str]:
    """The broker's database, once per backend (PostgreSQL when CARBONFED_TEST_POSTGRES_URL
    names a server, else skipped)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'broker.db'}"
        return
    if POSTGRES_URL is None:
        pytest.skip("set CARBONFED_TEST_POSTGRES_URL to a PostgreSQL URL")
    with postgres_schema(POSTGRES_URL, "carbonfed_test") as url:
        yield url


@dataclass
class FakeWall:
    now_s: float = WALL0

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen]]:
    """Processes an end-to-end test starts; all killed (SIGKILL) when it ends."""
    started: list[subprocess.Popen] = []
    try:
        yield started
    finally:
        for p in started:
            kill(p)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def wall() -> FakeWall:
    return FakeWall()


@pytest.fixture
def make_settings(tmp_path) -> Callable[..., Settings]:
    def make(**overrides: object) -> Settings:
        # open registration: most tests are about other things; test_enrolment.py closes it.
        # Rounds on the planning thread: a worker process takes seconds to start, which every
        # app would pay; test_planner_process.py and the end-to-end servers use the process.
        values = dict(db_url=f"sqlite:///{tmp_path / 'broker.db'}", admin_token=ADMIN,
                      open_registration=True, stale_after_s=60.0, horizon_slots=6,
                      ack_timeout_s=90.0, lease_s=600.0,
                      solver_time_limit_s=10.0, solver_method="full", planner_process=False,
                      # the tests' hand-worked costs leave carbon unpriced unless they say so
                      carbon_price_usd_per_t=0.0,
                      # their fake clock stands still between a start and a completion;
                      # test_hardening.py checks the earliest completion
                      min_runtime_fraction=0.0,
                      # refusals at once: the tests count them, they do not flood
                      refusal_delay_s=0.0)
        values.update(overrides)
        return Settings.model_validate(values)

    return make


@dataclass
class Broker:
    client: httpx.AsyncClient
    wall: FakeWall
    services: Services

    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN}"}


@contextlib.asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app through its lifespan, and a client that calls it in-process."""
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://broker"
    ) as client:
        yield client


@contextlib.contextmanager
def statements_on(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements ``engine`` runs inside the block, as they run."""
    seen: list[str] = []

    def record(conn, cursor, statement, *rest) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.fixture
async def broker(make_settings, wall) -> AsyncIterator[Broker]:
    app = create_app(make_settings(), Clock(1.0, wall))
    async with served(app) as client:
        yield Broker(client, wall, app.state.services)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def site_body(site_id: str, gpus: dict[str, int] | None = None, **extra: object) -> dict:
    return {"id": site_id, "zone": f"zone-{site_id}", "gpus": gpus or {"V100": 4},
            "pue": 1.2, "egress_usd_per_gb": 0.02, **extra}


def offer_body(sequence: int, gpus: dict[str, int] | None = None, slots: int = 6,
               price: float = 50.0, carbon: float = 300.0) -> dict:
    gpus = gpus or {"V100": 4}
    return {"sequence": sequence, "slot_h": 1.0,
            "free_gpus": {g: [n] * slots for g, n in gpus.items()},
            "price_usd_per_mwh": [price] * slots, "carbon_g_per_kwh": [carbon] * slots}


def job_body(job_id: str, home: str, **extra: object) -> dict:
    return {"id": job_id, "home_site": home, "job_type": "resnet50", "gpus": 1,
            "work_steps": 4.394774823323071 * 3600.0, **extra}  # 1 h on a V100


@pytest.fixture
def browser():
    """Headless Chromium (``tests.scenarios.browser``); the test skips, saying why, without it."""
    why = missing()
    if why:
        pytest.skip(f"no browser test: {why}")
    driver, why = start_browser()
    if driver is None:
        pytest.skip(f"no browser test: {why}")
    try:
        yield driver
    finally:
        driver.quit()
