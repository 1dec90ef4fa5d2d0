"""Closed enrolment and claims bounded by what was enrolled (issue 12's hijack, as a test).

The broker runs with its defaults here: registration closed, price -500..5,000 USD/MWh, carbon
0..2,000 g/kWh.
"""

from __future__ import annotations

import httpx
import pytest

from api.app import create_app
from api.clock import Clock
from api.settings import Settings
from tests.api.conftest import ADMIN, bearer, job_body, offer_body, served, site_body, statements_on

pytestmark = pytest.mark.anyio


@pytest.fixture
async def closed(make_settings, wall):
    app = create_app(make_settings(open_registration=False), Clock(1.0, wall))
    async with served(app) as client:
        yield client


async def enrol(c: httpx.AsyncClient, site_id: str, gpus: dict[str, int] | None = None,
                **extra: object) -> str:
    body = {"id": site_id, "zone": f"zone-{site_id}", "gpus": gpus or {"V100": 4}, **extra}
    r = await c.post("/v1/enrolments", json=body, headers=bearer(ADMIN))
    assert r.status_code == 201, r.text
    assert r.json()["site"]["status"] == "enrolled"
    return r.json()["enrolment_token"]


async def register(c: httpx.AsyncClient, site_id: str, enrolment_token: str,
                   gpus: dict[str, int] | None = None) -> str:
    r = await c.post("/v1/sites", json=site_body(site_id, gpus), headers=bearer(enrolment_token))
    assert r.status_code == 201, r.text
    return r.json()["token"]


async def test_the_hijack_fails(closed):
    """A stranger with no credentials cannot register a 100,000-GPU site at -10,000 USD/MWh;
    every job goes to enrolled sites, and the stranger can read none of them."""
    c = closed
    north = await register(c, "north", await enrol(c, "north", {"V100": 2}), {"V100": 2})
    await c.put("/v1/sites/north/offer", json=offer_body(1, {"V100": 2}), headers=bearer(north))
    everything = {"K80": 100_000, "P100": 100_000, "V100": 100_000}
    r = await c.post("/v1/sites", json=site_body("evil", everything))
    assert r.status_code == 401 and "closed" in r.json()["message"]
    r = await c.post("/v1/sites", json=site_body("evil", everything), headers=bearer("guess"))
    assert r.status_code == 401
    r = await c.put("/v1/sites/evil/offer", json=offer_body(1, everything, price=-10_000,
                                                          carbon=0), headers=bearer("guess"))
    assert r.status_code == 401
    jobs = [job_body(f"j{i}", "north", dataset_gb=5) for i in range(3)]
    assert (await c.post("/v1/jobs/batch", json={"jobs": jobs},
                         headers=bearer(ADMIN))).status_code == 201
    plan = (await c.post("/v1/plans", headers=bearer(ADMIN))).json()
    assert {p["site_id"] for p in plan["planned"]} == {"north"}
    sites = (await c.get("/v1/sites", headers=bearer(ADMIN))).json()
    assert [s["id"] for s in sites] == ["north"]
    for path in ("/v1/jobs/j0", "/v1/sites/north/assignments", "/v1/summary"):
        assert (await c.get(path)).status_code == 401


async def test_an_enrolled_site_cannot_claim_more_than_its_fleet_or_prices_out_of_range(closed):
    c = closed
    token = await register(c, "north", await enrol(c, "north", {"V100": 4}))
    cases = [
        (offer_body(1, {"V100": 5}), "body.free_gpus.V100", "more than the 4 registered"),
        (offer_body(1, {"K80": 1}), "body.free_gpus.K80", "registered no K80"),
        (offer_body(1, price=-10_000), "body.price_usd_per_mwh[0]", "below the minimum -500"),
        (offer_body(1, price=5001), "body.price_usd_per_mwh[0]", "above the maximum 5000"),
        (offer_body(1, carbon=2001), "body.carbon_g_per_kwh[0]", "above the maximum 2000"),
    ]
    for body, field, problem in cases:
        r = await c.put("/v1/sites/north/offer", json=body, headers=bearer(token))
        assert r.status_code == 422, r.text
        assert r.json()["message"].startswith(field) and problem in r.json()["message"], r.text
    assert (await c.get("/v1/sites/north/offer", headers=bearer(token))).status_code == 404
    ok = await c.put("/v1/sites/north/offer", json=offer_body(1, price=-500, carbon=0),
                     headers=bearer(token))
    assert ok.status_code == 200


async def test_registration_must_fit_the_enrolment_and_its_token_works_once(closed):
    c = closed
    once = await enrol(c, "north", {"V100": 4})
    r = await c.post("/v1/sites", json=site_body("north", {"V100": 8}), headers=bearer(once))
    assert r.status_code == 422 and r.json()["message"].startswith("body.gpus.V100")
    r = await c.post("/v1/sites", json=site_body("south"), headers=bearer(once))
    assert r.status_code == 403  # the token names its site
    r = await c.post("/v1/sites", json={**site_body("north"), "zone": "elsewhere"},
                     headers=bearer(once))
    assert r.status_code == 422 and r.json()["message"].startswith("body.zone")
    await register(c, "north", once)
    r = await c.post("/v1/sites", json=site_body("north"), headers=bearer(once))
    assert r.status_code == 401  # used
    r = await c.post("/v1/enrolments", json={"id": "north", "zone": "z", "gpus": {"V100": 1}},
                     headers=bearer(ADMIN))
    assert r.status_code == 409  # active: disable or deregister first


async def test_per_site_bounds_narrow_the_brokers(closed):
    c = closed
    bounds = {"max_price_usd_per_mwh": 200, "min_carbon_g_per_kwh": 10}
    token = await register(c, "north", await enrol(c, "north", bounds=bounds))
    r = await c.put("/v1/sites/north/offer", json=offer_body(1, price=300), headers=bearer(token))
    assert r.status_code == 422 and "above the maximum 200" in r.json()["message"]
    r = await c.put("/v1/sites/north/offer", json=offer_body(1, carbon=5), headers=bearer(token))
    assert r.status_code == 422 and "below the minimum 10" in r.json()["message"]
    r = await c.post("/v1/enrolments", json={"id": "wide", "zone": "z", "gpus": {"V100": 1},
                                             "bounds": {"max_price_usd_per_mwh": 9000}},
                     headers=bearer(ADMIN))
    assert r.status_code == 422 and r.json()["message"].startswith("body.bounds.max_price")


async def test_disable_enable_rotate_reset_and_re_enrol(closed):
    c, admin = closed, bearer(ADMIN)
    token = await register(c, "north", await enrol(c, "north"))
    r = await c.put("/v1/sites/north/offer", json=offer_body(2**62), headers=bearer(token))
    assert r.status_code == 200  # a runaway sequence: nothing above it is allowed ...
    r = await c.put("/v1/sites/north/offer", json=offer_body(2**62), headers=bearer(token))
    assert r.status_code == 409
    r = await c.post("/v1/sites/north/reset-sequence", headers=admin)  # ... until reset
    assert r.status_code == 200 and r.json()["offer_sequence"] is None
    assert (await c.put("/v1/sites/north/offer", json=offer_body(1),
                        headers=bearer(token))).status_code == 200
    await c.post("/v1/jobs", json=job_body("j1", "north"), headers=admin)
    [assigned] = (await c.post("/v1/plans", headers=admin)).json()["assigned"]
    r = await c.post("/v1/sites/north/disable", headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "disabled"
    assert (await c.get("/v1/sites/north", headers=bearer(token))).status_code == 401
    assert (await c.get("/v1/jobs/j1", headers=admin)).json()["status"] == "queued"
    assert (await c.post("/v1/sites/north/enable", headers=admin)).json()["status"] == (
        "no-offer")  # its offer went with the disable
    assert (await c.get("/v1/sites/north", headers=bearer(token))).status_code == 200
    r = await c.post(f"/v1/sites/north/assignments/{assigned}/ack", headers=bearer(token))
    assert r.status_code == 409  # withdrawn when the site was disabled
    rotated = (await c.post("/v1/sites/north/rotate-token", headers=admin)).json()["token"]
    assert (await c.get("/v1/sites/north", headers=bearer(token))).status_code == 401
    assert (await c.get("/v1/sites/north", headers=bearer(rotated))).status_code == 200
    # a site that left can come back only through the admin
    assert (await c.delete("/v1/sites/north", headers=bearer(rotated))).status_code == 200
    assert (await c.post("/v1/sites", json=site_body("north"))).status_code == 401
    again = await enrol(c, "north", {"V100": 2})
    token = await register(c, "north", again, {"V100": 2})
    site = (await c.get("/v1/sites/north", headers=bearer(token))).json()
    assert site["status"] == "no-offer" and site["gpus"] == {"V100": 2}


@pytest.mark.parametrize("route", ["/v1/enrolments", "/v1/sites/north/disable"])
async def test_admin_routes_refuse_sites(closed, route):
    c = closed
    token = await register(c, "north", await enrol(c, "north"))
    body = {"id": "x", "zone": "z", "gpus": {"V100": 1}}
    assert (await c.post(route, json=body, headers=bearer(token))).status_code == 403
    assert (await c.post(route, json=body)).status_code == 401


@pytest.mark.parametrize("token", ["x", "admin", "a" * 100, "0123456789abcdef" * 2])
def test_weak_admin_tokens_are_refused(token):
    with pytest.raises(ValueError, match="32 bytes of entropy"):
        Settings(admin_token=token)


def test_strong_admin_tokens_are_accepted():
    import secrets

    for token in (secrets.token_urlsafe(32), secrets.token_hex(32), ADMIN):
        assert Settings(admin_token=token).admin_token is not None


async def test_a_restarted_broker_caches_the_tokens_of_active_sites_only(make_settings, wall):
    """At start-up the broker caches every active site's token in one read (a thousand agents
    reconnecting would otherwise each look theirs up); a disabled or merely enrolled site's
    is not cached, and neither works."""
    settings = make_settings(open_registration=False)
    app = create_app(settings, Clock(1.0, wall))
    async with served(app) as c:
        tokens = {site: await register(c, site, await enrol(c, site))
                  for site in ("north", "south", "east")}
        await enrol(c, "west")  # enrolled, never registered
        assert (await c.post("/v1/sites/east/disable", headers=bearer(ADMIN))).status_code == 200
    again = create_app(settings, Clock(1.0, wall))
    async with again.router.lifespan_context(again), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=again), base_url="http://broker"
    ) as c:
        assert again.state.services.tokens.warm() == 2  # north and south
        for site, expected in (("north", 200), ("south", 200), ("east", 401)):
            r = await c.get(f"/v1/sites/{site}", headers=bearer(tokens[site]))
            assert r.status_code == expected, site


async def test_a_new_site_token_is_cached_as_it_registers_and_dies_with_its_site(
        make_settings, wall):
    """A registering fleet's first requests find their tokens cached (no database read each,
    on the event loop); a site disabled before it ever used its token is refused all the
    same."""
    app = create_app(make_settings(open_registration=False), Clock(1.0, wall))
    async with served(app) as c:
        north = await register(c, "north", await enrol(c, "north"))
        south = await register(c, "south", await enrol(c, "south"))
        with statements_on(app.state.services.ctx.db.engine) as statements:
            assert (await c.get("/v1/sites/north/offer", headers=bearer(north))).status_code == 404
        assert not [s for s in statements if "token_sha256" in s], statements
        assert (await c.post("/v1/sites/south/disable", headers=bearer(ADMIN))).status_code == 200
        assert (await c.get("/v1/sites/south", headers=bearer(south))).status_code == 401


@pytest.mark.parametrize("new_fleet", [2, 8])
async def test_offers_are_checked_against_the_fleet_of_the_latest_enrolment(closed, new_fleet):
    """Offers are checked against each site's cached claims; re-enrolling the site with a
    smaller or larger fleet takes effect at once."""
    c = closed
    token = await register(c, "north", await enrol(c, "north", {"V100": 4}), {"V100": 4})
    put = lambda sequence, n: c.put(  # noqa: E731
        "/v1/sites/north/offer", json=offer_body(sequence, {"V100": n}), headers=bearer(token))
    assert (await put(1, 4)).status_code == 200  # claims read and cached
    assert (await c.post("/v1/sites/north/disable", headers=bearer(ADMIN))).status_code == 200
    token = await register(c, "north", await enrol(c, "north", {"V100": new_fleet}),
                           {"V100": new_fleet})
    r = await put(2, new_fleet + 1)
    assert r.status_code == 422 and f"more than the {new_fleet} registered" in r.text
    assert (await put(3, new_fleet)).status_code == 200
    r = await put(3, new_fleet)
    assert r.status_code == 409 and r.json()["current_sequence"] == 3
