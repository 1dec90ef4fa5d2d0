"""Leases: acknowledge within ack_timeout_s, renew within lease_s, else requeued; completion
exactly once; GPUs of live leases are never offered twice; jobs from the future are held.

The broker's clock is fake (``broker.wall``): ack timeout 90 s, lease 600 s, stale after 60 s.
"""

from __future__ import annotations

import pytest

from tests.api.conftest import bearer, job_body, offer_body, site_body

pytestmark = pytest.mark.anyio


async def two_sites(broker) -> dict[str, str]:
    tokens = {}
    for site, price in (("north", 10.0), ("south", 90.0)):
        r = await broker.client.post("/v1/sites", json=site_body(site, {"V100": 1}))
        tokens[site] = r.json()["token"]
        await offer(broker, site, tokens[site], 1, price=price)
    return tokens


async def offer(broker, site: str, token: str, sequence: int, holding: list[int] | None = None,
                price: float = 50.0, gpus: int = 1) -> dict:
    body = {**offer_body(sequence, {"V100": gpus}, price=price), "holding": holding or []}
    r = await broker.client.put(f"/v1/sites/{site}/offer", json=body, headers=bearer(token))
    assert r.status_code == 200, r.text
    return r.json()


async def plan(broker) -> dict:
    r = await broker.client.post("/v1/plans", headers=broker.admin())
    assert r.status_code == 201, r.text
    return r.json()


async def act(broker, site: str, token: str, assignment: int, action: str):
    return await broker.client.post(f"/v1/sites/{site}/assignments/{assignment}/{action}",
                                    headers=bearer(token))


async def test_an_unacknowledged_assignment_is_requeued_after_the_ack_timeout(broker):
    tokens = await two_sites(broker)
    await broker.client.post("/v1/jobs", json=job_body("j1", "south"), headers=broker.admin())
    [first] = (await plan(broker))["assigned"]
    broker.wall.now_s += 91
    for site in tokens:  # both sites keep offering: only the missing ack counts
        await offer(broker, site, tokens[site], 2, price=10.0 if site == "north" else 90.0)
    again = await plan(broker)
    assert again["requeued"] == ["south/j1"] and len(again["assigned"]) == 1
    r = await act(broker, "north", tokens["north"], first, "ack")
    assert r.status_code == 409 and "ack-timeout" in r.json()["message"]


async def test_an_expired_lease_is_requeued_finished_elsewhere_once_and_the_late_completion_is_409(
        broker):
    c, admin = broker.client, broker.admin()
    tokens = await two_sites(broker)
    await c.post("/v1/jobs", json=job_body("j1", "south"), headers=admin)
    [a] = (await plan(broker))["assigned"]
    assert (await act(broker, "north", tokens["north"], a, "ack")).status_code == 200
    assert (await act(broker, "north", tokens["north"], a, "start")).status_code == 200
    # north renews by listing the job in its offers: a lease of 600 s outlives 3 x 500 s
    for sequence in (2, 3, 4):
        broker.wall.now_s += 500
        await offer(broker, "north", tokens["north"], sequence, holding=[a], price=10.0, gpus=0)
        await offer(broker, "south", tokens["south"], sequence, price=90.0)
        assert (await plan(broker))["requeued"] == []
    # north's agent dies: no renewal for longer than the lease
    broker.wall.now_s += 601
    await offer(broker, "south", tokens["south"], 5, price=90.0)
    round_ = await plan(broker)
    assert round_["requeued"] == ["south/j1"]
    [b] = round_["assigned"]
    job = (await c.get("/v1/jobs/j1", headers=admin)).json()
    assert job["site_id"] == "south" and job["attempts"] == 2
    for action in ("ack", "start", "complete"):
        assert (await act(broker, "south", tokens["south"], b, action)).status_code == 200
    late = await act(broker, "north", tokens["north"], a, "complete")
    assert late.status_code == 409 and "lease-expired" in late.json()["message"]
    old = (await c.get("/v1/sites/north/assignments", params={"status": "requeued"},
                       headers=admin)).json()["assignments"]
    assert [x["id"] for x in old] == [a]
    assert old[0]["requeue_reason"] == "lease-expired"
    assert old[0]["late_completion_at_s"] == broker.wall.now_s  # recorded for the audit
    summary = (await c.get("/v1/summary", headers=admin)).json()
    assert summary["jobs"] == {"completed": 1}
    assert {s["site_id"]: s["jobs_completed"] for s in summary["by_site"]} == {
        "north": 0, "south": 1}


async def test_heartbeat_renews_and_offers_report_revoked_leases(broker):
    c, admin = broker.client, broker.admin()
    tokens = await two_sites(broker)
    await c.post("/v1/jobs", json=job_body("j1", "south"), headers=admin)
    [a] = (await plan(broker))["assigned"]
    await act(broker, "north", tokens["north"], a, "ack")
    for _ in range(3):
        broker.wall.now_s += 500
        r = await c.post("/v1/sites/north/heartbeat", json={"holding": [a, 999]},
                         headers=bearer(tokens["north"]))
        assert r.json() == {"renewed": [a], "revoked": [999]}
        await offer(broker, "north", tokens["north"], 2 + _, holding=[a], price=10.0, gpus=0)
        assert (await plan(broker))["requeued"] == []
    r = await c.post("/v1/sites/south/heartbeat", json={"holding": [a]},
                     headers=bearer(tokens["north"]))
    assert r.status_code == 403
    r = await c.post("/v1/sites/south/heartbeat", json={"holding": [a]},
                     headers=bearer(tokens["south"]))
    assert r.json() == {"renewed": [], "revoked": [a]}  # not south's to renew
    broker.wall.now_s += 601
    await plan(broker)
    answer = await offer(broker, "north", tokens["north"], 9, holding=[a], price=10.0)
    assert answer["revoked"] == [a]


async def test_gpus_of_live_leases_are_never_offered_twice(broker):
    c, admin = broker.client, broker.admin()
    r = await c.post("/v1/sites", json=site_body("north", {"V100": 1}))
    north = r.json()["token"]
    await offer(broker, "north", north, 1)
    await c.post("/v1/jobs/batch", json={"jobs": [job_body("j1", "north"),
                                                  job_body("j2", "north")]}, headers=admin)
    [a] = (await plan(broker))["assigned"]
    await act(broker, "north", north, a, "ack")
    # a restarted agent that forgot j1 offers its V100 as free: the broker still holds it
    await offer(broker, "north", north, 2, holding=[])
    assert (await plan(broker))["assigned"] == []
    # an agent that lists j1 has left its GPU out of free_gpus itself: trusted, not doubled
    await offer(broker, "north", north, 3, holding=[a], gpus=0)
    assert (await plan(broker))["status"] == "no-capacity"
    await act(broker, "north", north, a, "start")
    await act(broker, "north", north, a, "complete")
    await offer(broker, "north", north, 4)
    assert len((await plan(broker))["assigned"]) == 1  # j2, once j1's GPU is back


async def test_a_job_from_the_future_is_held_until_its_submit_time(broker):
    c, admin = broker.client, broker.admin()
    north = (await c.post("/v1/sites", json=site_body("north"))).json()["token"]
    await offer(broker, "north", north, 1, gpus=4)
    await c.post("/v1/jobs", json=job_body("later", "north", submit_h=2.0), headers=admin)
    first = await plan(broker)
    assert first["assigned"] == [] and first["held"] == 1 and first["considered"] == 0
    broker.wall.now_s += 2 * 3600 + 1
    await offer(broker, "north", north, 2, gpus=4)
    second = await plan(broker)
    assert second["held"] == 0 and len(second["assigned"]) == 1


@pytest.mark.parametrize(("change", "field", "problem"), [
    ({"work_steps": 1e15}, "body.work_steps", "above the broker's limit 1e+10"),
    ({"work_steps": 4.39 * 3600 * 24 * 31}, "body.work_steps", "h on 1 V100 is above"),
    ({"gpus": 65}, "body.gpus", "above the broker's limit 64"),
    ({"dataset_gb": 20_000}, "body.dataset_gb", "above the broker's limit 10000"),
    ({"submit_h": 1e7}, "body.submit_h", "more than 8760 h ahead"),
])
async def test_jobs_are_bounded_by_the_brokers_settings(broker, change, field, problem):
    await broker.client.post("/v1/sites", json=site_body("north", {"V100": 100}))
    r = await broker.client.post("/v1/jobs", json={**job_body("j", "north"), **change},
                                 headers=broker.admin())
    assert r.status_code == 422, r.text
    assert r.json()["message"].startswith(field) and problem in r.json()["message"], r.text
