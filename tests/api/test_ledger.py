"""``GET /v1/ledger``: who pays whom for jobs run away from home, over real HTTP (ASGI)."""

from __future__ import annotations

import pytest

from tests.api.conftest import bearer, job_body, offer_body
from tests.api.test_routes import register

pytestmark = pytest.mark.anyio


async def test_a_moved_job_is_settled_cost_plus_and_each_site_sees_its_own_rows(
        broker, make_settings):
    """north has no GPU free (its offer is 0), south is clean: north's job j1 runs at south.
    1 GPU x 300 W x PUE 1.0 x 1 h = 0.3 kWh; at 50 USD/MWh 0.015 USD, at 100 g 0.03 kg, and
    at the broker's carbon price of 0 no carbon cost. north pays south 1.1 x 0.015 = 0.0165
    (the default 10% markup). east, which had nothing to do with it, sees no row."""
    c = broker.client
    north = await register(broker, "north", {"V100": 1}, pue=1.0, egress_usd_per_gb=0.0)
    south = await register(broker, "south", {"V100": 1}, pue=1.0, egress_usd_per_gb=0.0)
    east = await register(broker, "east", {"V100": 1}, pue=1.0, egress_usd_per_gb=0.0)
    await c.put("/v1/sites/north/offer", json=offer_body(1, {"V100": 0}), headers=bearer(north))
    await c.put("/v1/sites/south/offer", json=offer_body(1, {"V100": 1}, price=50, carbon=100),
                headers=bearer(south))
    await c.put("/v1/sites/east/offer", json=offer_body(1, {"V100": 0}), headers=bearer(east))
    await c.post("/v1/jobs", json=job_body("j1", "north"), headers=broker.admin())
    assert len((await c.post("/v1/plans", headers=broker.admin())).json()["assigned"]) == 1
    empty = (await c.get("/v1/ledger", headers=broker.admin())).json()
    assert empty["rows"] == [] and empty["scheme"] == "cost-plus"  # nothing completed yet
    [a] = (await c.get("/v1/sites/south/assignments", headers=bearer(south))).json()[
        "assignments"]
    for action in ("ack", "start", "complete"):
        assert (await c.post(f"/v1/sites/south/assignments/{a['id']}/{action}",
                             headers=bearer(south))).status_code == 200

    admin = (await c.get("/v1/ledger", headers=broker.admin())).json()
    [row] = admin["rows"]
    assert (row["payer"], row["payee"], row["job_id"]) == ("north", "south", "j1")
    assert row["energy_usd"] == pytest.approx(0.015)
    assert row["carbon_kg"] == pytest.approx(0.03)
    assert row["amount_usd"] == pytest.approx(0.0165)
    assert row["price_usd"] == pytest.approx(0.0015)
    assert admin["balances_usd"] == pytest.approx({"north": -0.0165, "south": 0.0165})
    assert sum(admin["balances_usd"].values()) == pytest.approx(0.0)

    mine = (await c.get("/v1/ledger", headers=bearer(north))).json()
    assert [r["job_id"] for r in mine["rows"]] == ["j1"]
    assert mine["balances_usd"] == pytest.approx({"north": -0.0165})
    theirs = (await c.get("/v1/ledger", headers=bearer(east))).json()
    assert theirs["rows"] == [] and theirs["balances_usd"] == {"east": 0.0}
    assert (await c.get("/v1/ledger")).status_code == 401
