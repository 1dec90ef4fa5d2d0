"""Request bodies over the limit get 413 unread; batches over the limit get 422 naming it;
/docs is served offline (no external host referenced)."""

from __future__ import annotations

import re

import pytest

from api.app import create_app
from api.clock import Clock
from tests.api.conftest import bearer, job_body, served, site_body

pytestmark = pytest.mark.anyio


@pytest.fixture
async def small(make_settings, wall):
    app = create_app(make_settings(max_body_bytes=4096), Clock(1.0, wall))
    async with served(app) as client:
        yield client


async def test_a_body_over_the_limit_is_413(small, wall):
    big = {**site_body("north"), "zone": "z" * 5000}
    r = await small.post("/v1/sites", json=big)
    assert r.status_code == 413 and "4096 bytes" in r.json()["message"]


async def test_a_streamed_body_without_length_is_cut_at_the_limit(small):
    sent = []

    async def chunks():
        for _ in range(100):  # 100 x 1 KiB, never declared
            sent.append(1)
            yield b" " * 1024

    r = await small.post("/v1/sites", content=chunks(),
                         headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert len(sent) <= 6  # read up to the limit (4 KiB), not the 100 KiB offered


async def test_a_body_within_the_limit_is_served(small):
    assert (await small.post("/v1/sites", json=site_body("north"))).status_code == 201


async def test_a_batch_over_the_limit_names_it(broker):
    await broker.client.post("/v1/sites", json=site_body("north"))
    jobs = [job_body(f"j{i}", "north") for i in range(1001)]
    r = await broker.client.post("/v1/jobs/batch", json={"jobs": jobs}, headers=broker.admin())
    assert r.status_code == 422
    assert r.json()["message"] == "body.jobs: 1001 jobs; at most 1000 per batch"


async def test_docs_are_served_offline(broker):
    page = await broker.client.get("/docs")
    assert page.status_code == 200
    html = page.text
    assert not re.search(r"(?:src|href)=['\"](?:https?:)?//", html), html  # no external host
    assets = re.findall(r"(?:src|href)=['\"](/[^'\"]+)['\"]", html)
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets)
    for asset in assets:
        r = await broker.client.get(asset)
        assert r.status_code == 200 and len(r.content) > 500, asset
    assert (await broker.client.get("/redoc")).status_code == 404  # off: one docs page
    paths = (await broker.client.get("/openapi.json")).json()["paths"]
    assert "/v1/enrolments" in paths and "/v1/sites/{site_id}/heartbeat" in paths


async def test_admin_token_in_bearer_is_never_echoed(broker):
    r = await broker.client.get("/v1/jobs", headers=bearer("wrong"))
    assert r.status_code == 401 and "wrong" not in r.text
