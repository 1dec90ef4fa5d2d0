"""The live broker pauses a running preemptible job on a carbon spike and resumes it later
(through the app's HTTP routes, worked out by hand).

One site, north: one V100 (300 W, PUE 1.2: 0.36 kWh an hour), energy at 50 USD/MWh, carbon
priced at 100 USD/t, delay at 0.005 USD/GPU-h. A 2 h job (1 h done when the spike shows)
with 0.1 h of checkpoint overhead:

- going on: 1 h at 900 g: 0.018 USD energy + 0.0324 USD carbon + 0.005 delay = 0.0554 USD;
- pausing and resuming after the spike (the next hour, at 100 g): the hour of work plus
  0.2 h (the work since its last checkpoint, then reading it back): 1.2 h x 0.36 kWh =
  0.0216 USD energy + 0.00432 carbon + 0.005 x 2.2 h delay = 0.03692 USD: it pauses.

Acknowledged, the job is queued with half its work done and its checkpoint at north; resumed,
it runs the other half plus 0.1 h reading the checkpoint back (written when it paused).
"""

from __future__ import annotations

import pytest

from api.app import create_app
from api.clock import Clock
from tests.api.conftest import Broker, bearer, offer_body, served, site_body

pytestmark = pytest.mark.anyio
HOUR_STEPS = 4.394774823323071 * 3600.0  # resnet50 on one V100 for an hour


@pytest.fixture
async def priced(make_settings, wall):
    app = create_app(make_settings(carbon_price_usd_per_t=100.0), Clock(1.0, wall))
    async with served(app) as client:
        yield Broker(client, wall, app.state.services)


async def pause_offer(broker, token: str, sequence: int, free: list[int],
                      carbon: list[float], holding: list[int]) -> None:
    """North's offer of its one V100, with free GPUs, carbon and the jobs it holds per slot."""
    body = {**offer_body(sequence, {"V100": 1}), "free_gpus": {"V100": free},
            "carbon_g_per_kwh": carbon, "holding": holding}
    r = await broker.client.put("/v1/sites/north/offer", json=body, headers=bearer(token))
    assert r.status_code == 200, r.text


async def pause_post(broker, token: str, path: str, body: dict | None = None):
    """POST to one of north's assignment routes."""
    return await broker.client.post(f"/v1/sites/north/assignments/{path}", json=body,
                                    headers=bearer(token))


async def _running_job(broker, preemptible: bool = True) -> tuple[str, int]:
    """north's token and the assignment of a 2 h job it runs from 0 h, an hour later."""
    r = await broker.client.post("/v1/sites", json=site_body("north", {"V100": 1}))
    token = r.json()["token"]
    await pause_offer(broker, token, 1, [1] * 6, [100.0] * 6, [])
    extra = {"preemptible": True, "checkpoint_overhead_h": 0.1} if preemptible else {}
    r = await broker.client.post("/v1/jobs", headers=broker.admin(), json={
        "id": "j1", "home_site": "north", "job_type": "resnet50", "gpus": 1,
        "work_steps": 2 * HOUR_STEPS, **extra})
    assert r.status_code == 201, r.text
    [first] = (await broker.client.post("/v1/plans", headers=broker.admin())).json()["assigned"]
    for action in ("ack", "start"):
        assert (await pause_post(broker, token, f"{first}/{action}")).status_code == 200
    broker.wall.now_s += 3600.0
    # the spike: 900 g now, 100 g after; the running job holds the one GPU this hour
    await pause_offer(broker, token, 2, [0, 1, 1, 1, 1, 1], [900.0] + [100.0] * 5, [first])
    return token, first


async def test_a_running_job_is_paused_over_a_spike_and_resumed_after(priced):
    token, first = await _running_job(priced)
    round_ = (await priced.client.post("/v1/plans", headers=priced.admin())).json()
    assert round_["paused"] == [first] and round_["assigned"] == []
    r = await priced.client.get("/v1/sites/north/assignments", headers=bearer(token))
    [held] = r.json()["assignments"]
    assert (held["id"], held["directive"]) == (first, "pause")
    r = await pause_post(priced, token, f"{first}/pause", {"progress": 0.5})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["requeue_reason"]) == ("requeued", "paused")
    job = (await priced.client.get("/v1/jobs/j1", headers=priced.admin())).json()
    assert job["status"] == "queued" and job["paused_site"] == "north"
    assert job["done_steps"] == pytest.approx(HOUR_STEPS)
    # an hour on, the spike has passed: it resumes where its checkpoint is
    priced.wall.now_s += 3600.0
    await pause_offer(priced, token, 3, [1] * 6, [100.0] * 6, [])
    [second] = (await priced.client.post("/v1/plans", headers=priced.admin())).json()["assigned"]
    r = await priced.client.get("/v1/sites/north/assignments", headers=bearer(token))
    [resumed] = r.json()["assignments"]
    assert resumed["id"] == second and resumed["directive"] is None
    assert resumed["runtime_h"] == pytest.approx(1.1)  # the other hour, after 0.1 h reading
    for action in ("ack", "start"):
        assert (await pause_post(priced, token, f"{second}/{action}")).status_code == 200
    job = (await priced.client.get("/v1/jobs/j1", headers=priced.admin())).json()
    assert job["status"] == "running" and job["paused_site"] is None
    assert (await pause_post(priced, token, f"{second}/complete")).status_code == 200
    # billed: the hour before the pause (half of the first 2 h run: 0.36 kWh) and the 1.1 h
    # after it (0.396 kWh), one job completed
    summary = (await priced.client.get("/v1/summary", headers=priced.admin())).json()
    [north] = summary["by_site"]
    assert north["jobs_completed"] == 1
    assert summary["energy_kwh"] == pytest.approx(0.36 + 0.396)


async def test_a_job_that_may_not_pause_runs_through_the_spike(priced):
    token, first = await _running_job(priced, preemptible=False)
    round_ = (await priced.client.post("/v1/plans", headers=priced.admin())).json()
    assert round_["paused"] == []
    r = await pause_post(priced, token, f"{first}/pause", {"progress": 0.5})
    assert r.status_code == 409 and "no pause was asked" in r.json()["message"]


async def test_a_pause_not_acknowledged_in_time_requeues_the_job(priced):
    token, first = await _running_job(priced)
    assert (await priced.client.post("/v1/plans", headers=priced.admin())).json()[
        "paused"] == [first]
    priced.wall.now_s += 91.0  # ack_timeout_s is 90 in the tests
    await pause_offer(priced, token, 3, [0, 1, 1, 1, 1, 1], [900.0] + [100.0] * 5, [first])
    round_ = (await priced.client.post("/v1/plans", headers=priced.admin())).json()
    assert round_["requeued"] == ["north/j1"]
    r = await priced.client.get("/v1/sites/north/assignments?status=requeued",
                                headers=bearer(token))
    assert [a["requeue_reason"] for a in r.json()["assignments"]] == ["directive-timeout"]
    r = await pause_post(priced, token, f"{first}/pause", {"progress": 0.5})
    assert r.status_code == 409
    job = (await priced.client.get("/v1/jobs/j1", headers=priced.admin())).json()
    assert job["done_steps"] == 0.0  # nothing it did was acknowledged: it starts over


async def test_an_elastic_job_grows_before_a_spike_as_a_new_assignment(priced):
    """north has 2 V100s, one of them busy when the elastic job (1-2 GPUs, 4 h of work on one,
    0.1 h per resize) starts: it starts on one. An hour on, both are free and the grid turns
    dirty (2000 g) after this hour: it may not pause (not preemptible); on one GPU it would run
    2 GPU-hours in the dirt, on two about 1.2 after its 0.1 h restart, so the round resizes
    it. Acknowledged at a quarter done, the old run is billed for its hour (0.36 kWh) and the
    job goes on at north on 2 GPUs: the 3 hours left on one, at two GPUs' throughput, plus
    0.1 h."""
    from sites import default_affinity

    r = await priced.client.post("/v1/sites", json=site_body("north", {"V100": 2}))
    token = r.json()["token"]
    await pause_offer(priced, token, 1, [1] * 6, [100.0] * 6, [])
    r = await priced.client.post("/v1/jobs", headers=priced.admin(), json={
        "id": "e1", "home_site": "north", "job_type": "resnet50", "gpus": 1, "min_gpus": 1,
        "max_gpus": 2, "work_steps": 4 * HOUR_STEPS, "elastic": True,
        "resize_overhead_h": 0.1})
    assert r.status_code == 201, r.text
    [first] = (await priced.client.post("/v1/plans", headers=priced.admin())).json()["assigned"]
    for action in ("ack", "start"):
        assert (await pause_post(priced, token, f"{first}/{action}")).status_code == 200
    priced.wall.now_s += 3600.0
    await pause_offer(priced, token, 2, [1] * 6, [100.0] + [2000.0] * 5, [first])
    round_ = (await priced.client.post("/v1/plans", headers=priced.admin())).json()
    assert (round_["resized"], round_["paused"], round_["assigned"]) == ([first], [], [])
    [held] = (await priced.client.get("/v1/sites/north/assignments",
                                      headers=bearer(token))).json()["assignments"]
    assert (held["directive"], held["directive_gpus"]) == ("resize", 2)
    r = await pause_post(priced, token, f"{first}/resize", {"progress": 0.25})
    assert r.status_code == 200, r.text
    grown = r.json()
    affinity = default_affinity()
    two_over_one = (affinity.job_steps_per_s("resnet50", "V100", 2)
                    / affinity.job_steps_per_s("resnet50", "V100", 1))
    assert (grown["gpus"], grown["status"], grown["site_id"]) == (2, "assigned", "north")
    assert grown["runtime_h"] == pytest.approx(3.0 / two_over_one + 0.1)
    job = (await priced.client.get("/v1/jobs/e1", headers=priced.admin())).json()
    assert job["done_steps"] == pytest.approx(HOUR_STEPS) and job["status"] == "assigned"
    summary = (await priced.client.get("/v1/summary", headers=priced.admin())).json()
    assert summary["energy_kwh"] == pytest.approx(0.36)  # the first run's hour, billed
