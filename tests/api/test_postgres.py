"""The same broker on PostgreSQL, when a server is given (``CARBONFED_TEST_POSTGRES_URL``)."""

from __future__ import annotations

import os
import uuid

import httpx
import pytest

from api.app import create_app
from tests.api.conftest import ADMIN, bearer, job_body, offer_body, site_body

URL = os.environ.get("CARBONFED_TEST_POSTGRES_URL")
pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(URL is None, reason="set CARBONFED_TEST_POSTGRES_URL to a PostgreSQL URL"),
]


async def test_register_offer_plan_complete_on_postgres(make_settings):
    app = create_app(make_settings(db_url=URL))
    site, job = f"pg-{uuid.uuid4().hex[:8]}", f"pg-job-{uuid.uuid4().hex[:8]}"
    admin = bearer(ADMIN)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://broker"
    ) as c:
        token = (await c.post("/v1/sites", json=site_body(site))).json()["token"]
        assert (await c.put(f"/v1/sites/{site}/offer", json=offer_body(1),
                            headers=bearer(token))).status_code == 200
        assert (await c.put(f"/v1/sites/{site}/offer", json=offer_body(1),
                            headers=bearer(token))).status_code == 409
        r = await c.post("/v1/jobs", json=job_body(job, site), headers=admin)
        assert r.status_code == 201
        plan = (await c.post("/v1/plans", headers=admin)).json()
        assert job in [p["job_id"] for p in plan["planned"]]
        [a] = (await c.get(f"/v1/sites/{site}/assignments", headers=bearer(token))).json()[
            "assignments"]
        r = await c.post(f"/v1/sites/{site}/assignments/{a['id']}/complete", headers=bearer(token))
        assert r.json()["status"] == "completed"
