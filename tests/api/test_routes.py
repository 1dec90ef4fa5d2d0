"""Every route through httpx's ASGI transport: the happy path, the lifecycle and error cases."""

from __future__ import annotations

import asyncio
import random

import pytest

from tests.api.conftest import bearer, job_body, offer_body, site_body

pytestmark = pytest.mark.anyio


async def register(broker, site_id: str, gpus: dict[str, int] | None = None, **extra) -> str:
    r = await broker.client.post("/v1/sites", json=site_body(site_id, gpus, **extra))
    assert r.status_code == 201, r.text
    return r.json()["token"]


async def test_health_needs_no_token(broker):
    r = await broker.client.get("/v1/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ok" and r.json()["sites"] == 0


async def test_openapi_docs_are_served(broker):
    assert (await broker.client.get("/docs")).status_code == 200
    assert "/v1/sites/{site_id}/offer" in (await broker.client.get("/openapi.json")).json()["paths"]


async def test_register_list_read_deregister(broker):
    c = broker.client
    token = await register(broker, "north", {"V100": 2, "K80": 0})
    listed = (await c.get("/v1/sites", headers=bearer(token))).json()
    assert [s["id"] for s in listed] == ["north"] and listed[0]["status"] == "no-offer"
    r = await c.get("/v1/sites/north", headers=bearer(token))
    assert r.json()["gpus"] == {"V100": 2, "K80": 0}
    assert (await c.delete("/v1/sites/north", headers=bearer(token))).json()["status"] == (
        "deregistered")
    assert (await c.get("/v1/sites/north", headers=bearer(token))).status_code == 401  # revoked
    assert (await c.get("/v1/sites/north", headers=broker.admin())).json()["status"] == (
        "deregistered")
    assert (await c.post("/v1/sites", json=site_body("north"))).status_code == 409


async def test_duplicate_registration_is_409(broker):
    await register(broker, "north")
    r = await broker.client.post("/v1/sites", json=site_body("north"))
    assert r.status_code == 409 and "already registered" in r.json()["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (site_body("n", {"X100": 2}), "body.gpus.X100"),
        (site_body("n", {"V100": -1}), "body.gpus.V100"),
        (site_body("n", {"V100": 0}), "body.gpus"),
        (site_body("n", pue=0.5), "body.pue"),
        (site_body("bad id!"), "body.id"),
        ({**site_body("n"), "color": "red"}, "body.color"),
        ({"zone": "z", "gpus": {"V100": 1}}, "body.id"),
    ],
)
async def test_bad_registration_names_the_field(broker, body, field):
    r = await broker.client.post("/v1/sites", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["message"].startswith(field)


async def test_offer_sequence_protects_newer_offers(broker):
    c = broker.client
    token = await register(broker, "north")
    assert (await c.put("/v1/sites/north/offer", json=offer_body(5),
                        headers=bearer(token))).status_code == 200
    for stale in (5, 4):
        r = await c.put("/v1/sites/north/offer", json=offer_body(stale, carbon=1),
                        headers=bearer(token))
        assert r.status_code == 409 and r.json()["current_sequence"] == 5
    r = await c.get("/v1/sites/north/offer", headers=bearer(token))
    assert r.json()["sequence"] == 5 and r.json()["carbon_g_per_kwh"][0] == 300.0
    assert (await c.put("/v1/sites/north/offer", json=offer_body(6),
                        headers=bearer(token))).status_code == 200


async def test_concurrent_offers_keep_the_highest_sequence(broker):
    """Offers race through the thread pool: the highest sequence wins, whatever the order, and
    every refusal names a stored sequence above its own."""
    c = broker.client
    token = await register(broker, "north")
    sequences = list(range(1, 41))
    random.Random(7).shuffle(sequences)
    answers = await asyncio.gather(*(
        c.put("/v1/sites/north/offer", json=offer_body(n, carbon=n), headers=bearer(token))
        for n in sequences))
    for n, r in zip(sequences, answers, strict=True):
        assert r.status_code in (200, 409), r.text
        if r.status_code == 409:
            assert r.json()["current_sequence"] >= n
    assert max(n for n, r in zip(sequences, answers, strict=True) if r.status_code == 200) == 40
    stored = (await c.get("/v1/sites/north/offer", headers=bearer(token))).json()
    assert stored["sequence"] == 40 and stored["carbon_g_per_kwh"][0] == 40.0


async def test_offer_for_a_deregistered_site_is_refused(broker):
    c = broker.client
    token = await register(broker, "north")
    assert (await c.delete("/v1/sites/north", headers=broker.admin())).status_code == 200
    r = await c.put("/v1/sites/north/offer", json=offer_body(1), headers=bearer(token))
    assert r.status_code == 401  # the token died with the registration


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"carbon_g_per_kwh": [1.0] * 5}, "body"),
        ({"free_gpus": {"V100": [1] * 5}}, "body"),
        ({"free_gpus": {"K80": [1] * 6}}, "body.free_gpus.K80"),
        ({"free_gpus": {"V100": [9] * 6}}, "body.free_gpus.V100"),
        ({"slot_h": 0.5}, "body.slot_h"),
        ({"sequence": -1}, "body.sequence"),
        ({"price_usd_per_mwh": []}, "body.price_usd_per_mwh"),
        ({"start": "2024-01-01T00:00:00"}, "body.start"),  # no time zone
    ],
)
async def test_bad_offer_names_the_field(broker, change, field):
    token = await register(broker, "north")
    r = await broker.client.put("/v1/sites/north/offer", json={**offer_body(1), **change},
                                headers=bearer(token))
    assert r.status_code == 422, r.text
    assert r.json()["message"].startswith(field), r.json()["message"]


async def test_malformed_json_is_422(broker):
    token = await register(broker, "north")
    r = await broker.client.put("/v1/sites/north/offer", content=b"{not json",
                                headers={**bearer(token), "Content-Type": "application/json"})
    assert r.status_code == 422


async def test_jobs_single_batch_read_and_errors(broker):
    c = broker.client
    token = await register(broker, "north")
    r = await c.post("/v1/jobs", json=job_body("j1", "north"), headers=bearer(token))
    assert r.status_code == 201 and r.json()["status"] == "queued"
    r = await c.post("/v1/jobs/batch", json={"jobs": [job_body("j2", "north"),
                                                      job_body("j3", "north")]},
                     headers=broker.admin())
    assert r.json()["accepted"] == 2
    assert (await c.get("/v1/jobs/j2", headers=bearer(token))).json()["status"] == "queued"
    assert (await c.get("/v1/jobs/nope", headers=broker.admin())).status_code == 404
    assert len((await c.get("/v1/jobs", headers=broker.admin())).json()) == 3
    assert (await c.post("/v1/jobs", json=job_body("j1", "north"),
                         headers=broker.admin())).status_code == 409
    r = await c.post("/v1/jobs/batch", json={"jobs": [job_body("j9", "north"),
                                                      job_body("j9", "north")]},
                     headers=broker.admin())
    assert r.status_code == 422 and r.json()["message"].startswith("body.jobs[1].id")
    assert (await c.get("/v1/jobs/j9", headers=broker.admin())).status_code == 404  # none kept


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"job_type": "tetris"}, "body.job_type"),
        ({"home_site": "nowhere"}, "body.home_site"),
        ({"gpus": 0}, "body.gpus"),
        ({"gpus": 8}, "body.gpus"),  # no pool has 8 GPUs
        ({"work_steps": 0}, "body.work_steps"),
        ({"submit_h": 5, "deadline_h": 4}, "body.deadline_h"),
        ({"dataset_gb": -1}, "body.dataset_gb"),
    ],
)
async def test_bad_job_names_the_field(broker, change, field):
    await register(broker, "north")
    r = await broker.client.post("/v1/jobs", json={**job_body("j", "north"), **change},
                                 headers=broker.admin())
    assert r.status_code == 422, r.text
    assert r.json()["message"].startswith(field), r.json()["message"]


async def test_plan_assign_ack_start_complete_and_summary(broker):
    c = broker.client
    north = await register(broker, "north", {"V100": 2}, pue=1.0)
    await c.put("/v1/sites/north/offer", json=offer_body(1, {"V100": 2}, price=100, carbon=200),
                headers=bearer(north))
    await c.post("/v1/jobs", json=job_body("j1", "north"), headers=broker.admin())
    assert (await c.get("/v1/plans/latest", headers=broker.admin())).status_code == 404
    plan = (await c.post("/v1/plans", headers=broker.admin())).json()
    assert plan["status"] == "optimal" and len(plan["assigned"]) == 1
    assert (await c.get("/v1/plans/latest", headers=broker.admin())).json() == plan
    [a] = (await c.get("/v1/sites/north/assignments", headers=bearer(north))).json()[
        "assignments"]
    assert a["job"]["id"] == "j1" and a["runtime_h"] == pytest.approx(1.0)
    # 1 GPU x 300 W x PUE 1.0 x 1 h = 0.3 kWh; 0.3 x 200 g = 0.06 kg; 0.3 x 100 / 1000 = 0.03 USD
    assert a["energy_kwh"] == pytest.approx(0.3)
    path = f"/v1/sites/north/assignments/{a['id']}"
    for action, status in (("ack", "acknowledged"), ("ack", "acknowledged"),
                           ("start", "running"), ("complete", "completed"),
                           ("start", "completed")):  # repeats and late reports are no-ops
        r = await c.post(f"{path}/{action}", headers=bearer(north))
        assert r.status_code == 200 and r.json()["status"] == status
    assert (await c.get("/v1/jobs/j1", headers=bearer(north))).json()["status"] == "completed"
    assert (await c.post("/v1/sites/north/assignments/999/ack",
                         headers=bearer(north))).status_code == 404
    summary = (await c.get("/v1/summary", headers=bearer(north))).json()
    assert summary["jobs"] == {"completed": 1}
    assert summary["energy_kwh"] == pytest.approx(0.3)
    assert summary["carbon_kg"] == pytest.approx(0.06)
    assert summary["energy_cost_usd"] == pytest.approx(0.03)
    assert summary["by_site"][0]["jobs_completed"] == 1
    done = (await c.get("/v1/sites/north/assignments", params={"status": "completed"},
                        headers=bearer(north))).json()["assignments"]
    assert [x["id"] for x in done] == [a["id"]]


async def test_unacknowledged_jobs_of_a_stale_site_go_back_to_the_queue(broker):
    c = broker.client
    north = await register(broker, "north")
    south = await register(broker, "south")
    await c.put("/v1/sites/north/offer", json=offer_body(1, price=10), headers=bearer(north))
    await c.put("/v1/sites/south/offer", json=offer_body(1, price=90), headers=bearer(south))
    await c.post("/v1/jobs", json=job_body("j1", "south"), headers=broker.admin())
    plan = (await c.post("/v1/plans", headers=broker.admin())).json()
    [assigned] = plan["assigned"]
    assert plan["planned"][0]["site_id"] == "north"
    broker.wall.now_s += 61  # north stops offering; south keeps going
    await c.put("/v1/sites/south/offer", json=offer_body(2, price=90), headers=bearer(south))
    assert (await c.get("/v1/sites/north", headers=bearer(north))).json()["status"] == "stale"
    plan = (await c.post("/v1/plans", headers=broker.admin())).json()
    assert plan["requeued"] == ["south/j1"]
    assert [p["site_id"] for p in plan["planned"]] == ["south"]  # stale north gets nothing
    r = await c.post(f"/v1/sites/north/assignments/{assigned}/ack", headers=bearer(north))
    assert r.status_code == 409  # withdrawn: north must not run it
    job = (await c.get("/v1/jobs/j1", headers=broker.admin())).json()
    assert job["site_id"] == "south" and job["attempts"] == 2


async def test_acknowledged_jobs_stay_and_reserve_gpus_until_the_offer_shows_them(broker):
    c = broker.client
    north = await register(broker, "north", {"V100": 1})
    await c.put("/v1/sites/north/offer", json=offer_body(1, {"V100": 1}), headers=bearer(north))
    await c.post("/v1/jobs/batch", json={"jobs": [job_body("j1", "north"),
                                                  job_body("j2", "north")]},
                 headers=broker.admin())
    first = (await c.post("/v1/plans", headers=broker.admin())).json()
    assert len(first["assigned"]) == 1
    again = (await c.post("/v1/plans", headers=broker.admin())).json()
    assert again["assigned"] == []  # the one V100 is taken although the offer says free
    await c.post(f"/v1/sites/north/assignments/{first['assigned'][0]}/ack",
                 headers=bearer(north))
    broker.wall.now_s += 120  # stale, but acknowledged work is not withdrawn
    plan = (await c.post("/v1/plans", headers=broker.admin())).json()
    assert plan["requeued"] == [] and plan["status"] == "no-capacity"


async def test_deregistration_requeues_the_sites_live_jobs(broker):
    c = broker.client
    north = await register(broker, "north")
    await c.put("/v1/sites/north/offer", json=offer_body(1), headers=bearer(north))
    await c.post("/v1/jobs", json=job_body("j1", "north"), headers=broker.admin())
    [a] = (await c.post("/v1/plans", headers=broker.admin())).json()["assigned"]
    await c.post(f"/v1/sites/north/assignments/{a}/ack", headers=bearer(north))
    await c.delete("/v1/sites/north", headers=broker.admin())
    assert (await c.get("/v1/jobs/j1", headers=broker.admin())).json()["status"] == "queued"
