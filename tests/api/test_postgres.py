"""The same broker on PostgreSQL, when a server is given (``CARBONFED_TEST_POSTGRES_URL``).

Each test runs in a fresh schema of its own (``api.db.postgres_schema``). The schemathesis
run and the end-to-end tests also run on PostgreSQL through the ``db_url`` fixture.
"""

from __future__ import annotations

import uuid

import pytest

from api.app import create_app
from api.db import Database, postgres_schema, schema_revision
from tests.api.conftest import ADMIN, POSTGRES_URL, bearer, job_body, offer_body, served

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(POSTGRES_URL is None,
                       reason="set CARBONFED_TEST_POSTGRES_URL to a PostgreSQL URL"),
]


async def test_enrol_register_offer_plan_complete_on_postgres(make_settings):
    assert POSTGRES_URL is not None
    with postgres_schema(POSTGRES_URL, "carbonfed_test") as url:
        app = create_app(make_settings(db_url=url, open_registration=False))
        site, job = f"pg-{uuid.uuid4().hex[:8]}", f"pg-job-{uuid.uuid4().hex[:8]}"
        admin = bearer(ADMIN)
        async with served(app) as c:
            once = (await c.post("/v1/enrolments", json={"id": site, "zone": "z",
                                                        "gpus": {"V100": 4}},
                                 headers=admin)).json()["enrolment_token"]
            r = await c.post("/v1/sites", json={"id": site, "zone": "z", "gpus": {"V100": 4}},
                             headers=bearer(once))
            token = r.json()["token"]
            assert (await c.put(f"/v1/sites/{site}/offer", json=offer_body(1),
                                headers=bearer(token))).status_code == 200
            assert (await c.put(f"/v1/sites/{site}/offer", json=offer_body(1),
                                headers=bearer(token))).status_code == 409
            big = await c.put(f"/v1/sites/{site}/offer", json=offer_body(2**62),
                              headers=bearer(token))  # BIGINT, not INTEGER
            assert big.status_code == 200
            assert (await c.post(f"/v1/sites/{site}/reset-sequence",
                                 headers=admin)).status_code == 200
            assert (await c.put(f"/v1/sites/{site}/offer", json=offer_body(1),
                                headers=bearer(token))).status_code == 200
            r = await c.post("/v1/jobs", json=job_body(job, site), headers=admin)
            assert r.status_code == 201
            plan = (await c.post("/v1/plans", headers=admin)).json()
            assert f"{site}/{job}" in [p["job_id"] for p in plan["planned"]]
            [a] = (await c.get(f"/v1/sites/{site}/assignments", headers=bearer(token))).json()[
                "assignments"]
            for action in ("ack", "start", "complete"):  # a completion needs a start
                r = await c.post(f"/v1/sites/{site}/assignments/{a['id']}/{action}",
                                 headers=bearer(token))
            assert r.json()["status"] == "completed"
        db = Database(url)
        assert schema_revision(db.engine) == "0007"  # through Alembic, in its own schema
        db.dispose()


async def test_offers_survive_a_server_side_disconnect(make_settings):
    """When the server drops its connections (a restart, a failover), the request that finds
    its pooled connection dead gets 503, and the next one succeeds on a fresh connection:
    offers (autocommit connections of their own) and everything else alike."""
    assert POSTGRES_URL is not None
    with postgres_schema(POSTGRES_URL, "carbonfed_test") as url:
        app = create_app(make_settings(db_url=url))
        site = f"pg-{uuid.uuid4().hex[:8]}"
        async with served(app) as c:
            r = await c.post("/v1/sites", json={"id": site, "zone": "z", "gpus": {"V100": 4}})
            token = bearer(r.json()["token"])
            assert (await c.put(f"/v1/sites/{site}/offer", json=offer_body(1),
                                headers=token)).status_code == 200
            killer = Database(url)
            with killer.engine.connect() as k:
                killed = k.exec_driver_sql(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()").scalar()
            killer.dispose()
            assert killed >= 1
            statuses = [(await c.put(f"/v1/sites/{site}/offer", json=offer_body(n),
                                     headers=token)).status_code for n in (2, 3)]
            assert statuses == [503, 200]
            # heartbeats and reads use the other pool, whose connections died too: once
            beats = [(await c.post(f"/v1/sites/{site}/heartbeat", json={"holding": []},
                                   headers=token)).status_code for _ in range(2)]
            assert beats == [503, 200]
            r = await c.get(f"/v1/sites/{site}/offer", headers=token)
            assert r.status_code == 200 and r.json()["sequence"] == 3
