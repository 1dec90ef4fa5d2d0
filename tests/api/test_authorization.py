"""The authorization matrix: site A against site B's resources, no token, bad token, admin.

401: no token or an unknown one. 403: a valid token acting outside its rights.
"""

from __future__ import annotations

import pytest

from tests.api.conftest import bearer, job_body, offer_body, site_body

pytestmark = pytest.mark.anyio


@pytest.fixture
async def world(broker):
    """Sites a and b, each with an offer, a queued job and one assignment of its own."""
    c = broker.client
    tokens = {}
    for site in ("a", "b"):
        tokens[site] = (await c.post("/v1/sites", json=site_body(site))).json()["token"]
        await c.put(f"/v1/sites/{site}/offer", json=offer_body(1), headers=bearer(tokens[site]))
        await c.post("/v1/jobs", json=job_body(f"job-{site}", site, dataset_gb=10),
                     headers=bearer(tokens[site]))
    plan = (await c.post("/v1/plans", headers=broker.admin())).json()
    by_site = {p["site_id"]: p["job_id"] for p in plan["planned"]}
    assert set(by_site) == {"a", "b"}, plan  # moving costs egress: each runs its own
    assignment = {}
    for site in ("a", "b"):
        [a] = (await c.get(f"/v1/sites/{site}/assignments", headers=bearer(tokens[site]))).json()[
            "assignments"]
        assignment[site] = a["id"]
    return broker, tokens, assignment


def routes(assignment_b: int) -> list[tuple[str, str, dict | None]]:
    """Every route that touches site b's resources."""
    b = f"/v1/sites/b/assignments/{assignment_b}"
    return [
        ("GET", "/v1/sites/b", None),
        ("DELETE", "/v1/sites/b", None),
        ("PUT", "/v1/sites/b/offer", offer_body(9)),
        ("GET", "/v1/sites/b/offer", None),
        ("GET", "/v1/sites/b/assignments", None),
        ("POST", f"{b}/ack", None),
        ("POST", f"{b}/start", None),
        ("POST", f"{b}/complete", None),
        ("GET", "/v1/jobs/job-b", None),
        ("POST", "/v1/jobs", job_body("sneaky", "b")),
        ("POST", "/v1/jobs/batch", {"jobs": [job_body("sneaky", "b")]}),
    ]


async def test_site_a_cannot_touch_site_bs_resources(world):
    broker, tokens, assignment = world
    for method, path, body in routes(assignment["b"]):
        r = await broker.client.request(method, path, json=body, headers=bearer(tokens["a"]))
        assert r.status_code == 403, (method, path, r.text)
    # and nothing changed at b
    r = await broker.client.get("/v1/sites/b", headers=bearer(tokens["b"]))
    assert r.json()["status"] == "active" and r.json()["offer_sequence"] == 1


async def test_site_a_cannot_use_its_own_path_for_bs_assignment(world):
    broker, tokens, assignment = world
    r = await broker.client.post(f"/v1/sites/a/assignments/{assignment['b']}/ack",
                                 headers=bearer(tokens["a"]))
    assert r.status_code == 403


@pytest.mark.parametrize("headers", [{}, bearer("not-a-token"),
                                     {"Authorization": "Basic YTpi"}])
async def test_no_or_bad_token_is_401(world, headers):
    broker, _, assignment = world
    protected = [*routes(assignment["b"]), ("GET", "/v1/sites", None),
                 ("GET", "/v1/jobs", None), ("POST", "/v1/plans", None),
                 ("GET", "/v1/plans/latest", None), ("GET", "/v1/summary", None)]
    for method, path, body in protected:
        r = await broker.client.request(method, path, json=body, headers=headers)
        assert r.status_code == 401, (method, path, r.text)


@pytest.mark.parametrize(("method", "path"), [("POST", "/v1/plans"),
                                              ("GET", "/v1/plans/latest"),
                                              ("GET", "/v1/jobs")])
async def test_admin_routes_refuse_site_tokens(world, method, path):
    broker, tokens, _ = world
    r = await broker.client.request(method, path, headers=bearer(tokens["a"]))
    assert r.status_code == 403


async def test_admin_reads_everything_but_cannot_speak_for_a_site(world):
    broker, _, assignment = world
    c, admin = broker.client, broker.admin()
    for path in ("/v1/sites/b", "/v1/sites/b/offer", "/v1/sites/b/assignments",
                 "/v1/jobs/job-b", "/v1/sites"):
        assert (await c.get(path, headers=admin)).status_code == 200, path
    assert (await c.put("/v1/sites/b/offer", json=offer_body(9),
                        headers=admin)).status_code == 403
    r = await c.post(f"/v1/sites/b/assignments/{assignment['b']}/ack", headers=admin)
    assert r.status_code == 403


async def test_a_site_reads_its_own(world):
    broker, tokens, assignment = world
    c, a = broker.client, bearer(tokens["a"])
    for path in ("/v1/sites/a", "/v1/sites/a/offer", "/v1/sites/a/assignments",
                 "/v1/jobs/job-a", "/v1/sites", "/v1/summary"):
        assert (await c.get(path, headers=a)).status_code == 200, path
    assert (await c.post(f"/v1/sites/a/assignments/{assignment['a']}/ack",
                         headers=a)).status_code == 200
