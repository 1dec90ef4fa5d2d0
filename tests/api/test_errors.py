"""A dead database connection is a 503 to retry; any other database failure stays a 500."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import OperationalError

from api.errors import install_error_handlers

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def failing_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/lost")
    async def lost() -> None:  # as psycopg reports a server that restarted
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection"),
                               connection_invalidated=True)

    @app.get("/broken")
    async def broken() -> None:
        raise OperationalError("SELECT 1", {}, Exception("disk I/O error"))

    return app


async def test_a_lost_connection_is_503_with_retry_after():
    transport = httpx.ASGITransport(app=failing_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://broker") as c:
        r = await c.get("/lost")
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert r.json()["message"] == "the database connection was lost; retry"
        assert (await c.get("/broken")).status_code == 500
