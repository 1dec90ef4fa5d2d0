"""Moldable jobs on the live broker: a job gives a GPU range, the planner chooses the count,
and the assignment carries it (issue 20, step 7)."""

from __future__ import annotations

import pytest

from tests.api.conftest import bearer, offer_body
from tests.api.test_routes import register

pytestmark = pytest.mark.anyio

ONE_V100 = 4.394774823323071  # ResNet-50 (batch 64) steps/s, Gavel
FOUR_V100 = 9.451949566394442  # the same job on 4 V100s: 2.15x, not 4x


async def test_the_planner_chooses_the_count_and_the_assignment_carries_it(broker):
    """north: 4 free V100s at 50 USD/MWh, PUE 1, no carbon price (the test settings). A job
    of 1 h on 4 V100s (9.45 x 3,600 steps) that may run on 1 to 4: on 1 GPU it takes
    9.45 / 4.39 = 2.151 h, 0.645 kWh, 0.032 USD (+ 0.011 of delay); on 2, 1.193 h, 0.716 kWh;
    on 4, 1 h, 1.2 kWh, 0.06 USD (+ 0.02). The planner runs it on one GPU; the assignment
    says 1, with the 1-GPU run time. A job of fixed count runs on its own count."""
    c = broker.client
    north = await register(broker, "north", {"V100": 4}, pue=1.0, egress_usd_per_gb=0.0)
    await c.put("/v1/sites/north/offer", json=offer_body(1, {"V100": 4}), headers=bearer(north))
    moldable = {"id": "m1", "home_site": "north", "job_type": "resnet50", "gpus": 4,
                "min_gpus": 1, "max_gpus": 4, "work_steps": FOUR_V100 * 3600.0}
    fixed = {**moldable, "id": "f1", "min_gpus": None, "max_gpus": None, "gpus": 2,
             "work_steps": ONE_V100 * 3600.0}
    for body in (moldable, fixed):
        r = await c.post("/v1/jobs", json=body, headers=broker.admin())
        assert r.status_code == 201, r.text
    plan = (await c.post("/v1/plans", headers=broker.admin())).json()
    assert len(plan["assigned"]) == 2
    planned = {p["job_id"]: p["gpus"] for p in plan["planned"]}
    assert planned == {"north/m1": 1, "north/f1": 2}
    got = (await c.get("/v1/sites/north/assignments", headers=bearer(north))).json()
    by_job = {a["job"]["id"]: a for a in got["assignments"]}
    m1 = by_job["m1"]
    assert (m1["gpus"], m1["job"]["gpus"], m1["job"]["min_gpus"], m1["job"]["max_gpus"]) == (
        1, 4, 1, 4)
    assert m1["runtime_h"] == pytest.approx(FOUR_V100 / ONE_V100)
    assert m1["energy_kwh"] == pytest.approx(0.3 * FOUR_V100 / ONE_V100)
    assert by_job["f1"]["gpus"] == 2


@pytest.mark.parametrize(("extra", "says"), [
    ({"min_gpus": 1}, "give both min_gpus and max_gpus"),
    ({"min_gpus": 3, "max_gpus": 4}, "needs min_gpus <= gpus <= max_gpus"),
])
async def test_a_bad_range_is_refused_and_nothing_is_stored(broker, extra, says):
    c = broker.client
    await register(broker, "north", {"V100": 4}, pue=1.0, egress_usd_per_gb=0.0)
    body = {"id": "x", "home_site": "north", "job_type": "resnet50", "gpus": 2,
            "work_steps": 1000.0, **extra}
    r = await c.post("/v1/jobs", json=body, headers=broker.admin())
    assert r.status_code == 422 and says in r.text
    assert (await c.get("/v1/jobs/x", headers=broker.admin())).status_code == 404
