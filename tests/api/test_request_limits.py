"""Issue 25, "per-principal concurrency and rate limits": each site's token, the admin's, and
each IP address without a valid token has a request rate (a token bucket) and a number of
requests in flight; over either, 429 with Retry-After, before the body is read, while every
other principal is served as before.

The limiter's clock is turned by hand (``RequestLimits.monotonic``): no timing in the tests.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import anyio
import httpx
import pytest

from api.app import create_app
from api.clock import Clock
from api.throttle import Limit, RequestLimits, Tarpit
from tests.api.conftest import ADMIN, bearer, job_body, offer_body, served, site_body
from tests.api.processes import ADMIN as E2E_ADMIN
from tests.api.processes import serving
from tests.api.test_hardening import raw_request

pytestmark = pytest.mark.anyio
WAIT_S = 20.0  # a deadline for what must happen, not a timing


class Turned:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


async def register(c, *sites: str) -> dict[str, dict[str, str]]:
    headers = {}
    for site in sites:
        r = await c.post("/v1/sites", json=site_body(site))
        assert r.status_code == 201, r.text
        headers[site] = bearer(r.json()["token"])
    return headers


async def test_a_site_over_its_rate_gets_429_and_other_principals_are_unaffected(
        make_settings, wall, caplog):
    caplog.set_level(logging.WARNING, logger="carbonfed.audit")
    app = create_app(make_settings(rate_limit_per_s=0.5, rate_limit_burst=3), Clock(1.0, wall))
    clock = Turned()
    app.state.request_limits.monotonic = clock
    async with served(app) as c:
        sites = await register(c, "north", "south")
        for _ in range(3):
            assert (await c.get("/v1/sites/north", headers=sites["north"])).status_code == 200
        r = await c.get("/v1/sites/north", headers=sites["north"])
        assert r.status_code == 429 and r.headers["retry-after"] == "2", r.text  # 1 / 0.5 s
        assert "request rate" in r.json()["message"]
        # refused before its body is read or parsed: not JSON, not even complete
        r = await c.put("/v1/sites/north/offer", content=b'{"sequence": ',
                        headers={**sites["north"], "content-type": "application/json"})
        assert r.status_code == 429
        # another site, the admin: served
        assert (await c.get("/v1/sites/south", headers=sites["south"])).status_code == 200
        r = await c.put("/v1/sites/south/offer", json=offer_body(1), headers=sites["south"])
        assert r.status_code == 200
        assert (await c.get("/v1/sites", headers=bearer(ADMIN))).status_code == 200
        # one audit line for the run of two refusals, naming the site, not its token
        throttled = [r.getMessage() for r in caplog.records if "throttled" in r.getMessage()]
        assert len(throttled) == 1 and "site:north" in throttled[0], throttled
        assert all(sites["north"]["Authorization"][7:] not in m for m in caplog.messages)
        clock.now_s += 2.0  # one request's worth back
        assert (await c.get("/v1/sites/north", headers=sites["north"])).status_code == 200
        assert (await c.get("/v1/sites/north", headers=sites["north"])).status_code == 429
        assert sum("throttled" in m for m in caplog.messages) == 2  # a new run, a new line


async def test_clients_without_a_valid_token_are_limited_per_address_sites_are_not(
        make_settings, wall):
    app = create_app(make_settings(anonymous_rate_limit_per_s=1.0,
                                   anonymous_rate_limit_burst=5), Clock(1.0, wall))
    app.state.request_limits.monotonic = Turned()
    async with served(app) as c:
        sites = await register(c, "north")  # one of the address's five
        for headers in ({}, bearer("cf_not-a-token"), {}, bearer("cf_guess")):
            assert (await c.get("/v1/sites", headers=headers)).status_code == 401
        for headers in ({}, bearer("cf_not-a-token")):  # the address is over its rate
            r = await c.get("/v1/sites", headers=headers)
            assert r.status_code == 429 and r.headers["retry-after"] == "1"
        r = await c.post("/v1/sites", json=site_body("south"))  # open registration too
        assert r.status_code == 429
        assert (await c.get("/v1/health")).status_code == 429
        # the same address with a site's token is that site, with limits of its own
        assert (await c.get("/v1/sites/north", headers=sites["north"])).status_code == 200


async def test_n_slow_requests_of_one_site_hold_its_slots_the_next_gets_429(make_settings,
                                                                            wall):
    """Two offers of north's send their bodies slowly (held until the test lets them go):
    a third request of north's gets 429 at once; south is served meanwhile."""
    app = create_app(make_settings(max_concurrent_requests=2), Clock(1.0, wall))
    limits: RequestLimits = app.state.request_limits
    async with served(app) as c:
        sites = await register(c, "north", "south")
        go_on = asyncio.Event()
        reading: list[int] = []

        def slow_offer(sequence: int) -> AsyncIterator[bytes]:
            async def chunks() -> AsyncIterator[bytes]:
                reading.append(sequence)  # the gate let it in: its body is being read
                yield b'{"sequence": %d, ' % sequence
                await go_on.wait()
                yield b'"slot_h": 1.0, "free_gpus": {"V100": [4]}, "price_usd_per_mwh": ' \
                      b'[50.0], "carbon_g_per_kwh": [300.0]}'
            return chunks()

        headers = {**sites["north"], "content-type": "application/json"}
        slow = [asyncio.create_task(c.put("/v1/sites/north/offer", content=slow_offer(n),
                                          headers=headers)) for n in (1, 2)]
        with anyio.fail_after(WAIT_S):
            while len(reading) < 2:
                await asyncio.sleep(0)
        assert limits.in_flight("site:north") == 2
        r = await c.get("/v1/sites/north", headers=sites["north"])
        assert r.status_code == 429 and r.headers["retry-after"] == "1", r.text
        assert "in flight" in r.json()["message"]
        r = await c.put("/v1/sites/south/offer", json=offer_body(1), headers=sites["south"])
        assert r.status_code == 200
        assert (await c.get("/v1/sites/south", headers=sites["south"])).status_code == 200
        go_on.set()
        with anyio.fail_after(WAIT_S):
            answers = await asyncio.gather(*slow)
        assert sorted(r.status_code for r in answers) in ([200, 200], [200, 409])
        assert limits.in_flight("site:north") == 0
        assert (await c.get("/v1/sites/north", headers=sites["north"])).status_code == 200


def test_the_bucket_refills_at_its_rate_up_to_its_burst_and_says_when_to_retry():
    clock = Turned()
    limits = RequestLimits(Limit(rate_per_s=4.0, burst=2, concurrent=10),
                           Limit(rate_per_s=1.0, burst=1, concurrent=1), monotonic=clock)
    assert limits.admit("a", anonymous=False) is None
    assert limits.admit("a", anonymous=False) is None
    over = limits.admit("a", anonymous=False)
    assert over is not None and over.retry_after_s == 1  # 0.25 s, rounded up to whole seconds
    again = limits.admit("a", anonymous=False)
    assert over.first and again is not None and not again.first  # one log line per run
    clock.now_s += 10.0  # a long quiet spell refills only up to the burst
    assert [limits.admit("a", anonymous=False) is None for _ in range(3)] == [True, True, False]
    # anonymous: one in flight at a time, released when it ends
    assert limits.admit("ip:1", anonymous=True) is None
    clock.now_s += 5.0
    refused = limits.admit("ip:1", anonymous=True)
    assert refused is not None and "in flight" in refused.message
    limits.release("ip:1")
    assert limits.admit("ip:1", anonymous=True) is None


def test_idle_principals_are_forgotten_beyond_the_bound_busy_ones_never():
    limits = RequestLimits(Limit(1.0, 1, 5), Limit(1.0, 1, 5), monotonic=Turned(), max_keys=4)
    for key in ("busy", "a", "b", "c"):
        assert limits.admit(key, anonymous=True) is None
    for key in ("a", "b", "c"):
        limits.release(key)
    assert limits.admit("d", anonymous=True) is None  # made room: idle ones went
    assert limits.in_flight("busy") == 1
    assert limits.admit("busy", anonymous=True) is not None  # its empty bucket was kept


@pytest.mark.anyio(False)
def test_carbonfed_serve_answers_429_before_reading_a_body(tmp_path):
    """The real server: the admin over its rate (a burst of 3, refilled once in 100 s) gets
    429 for a batch whose 900 kB body is declared and not sent (the answer comes without it);
    a site and a client without a token are served as before."""
    env = {"CARBONFED_ADMIN_TOKEN": E2E_ADMIN, "CARBONFED_OPEN_REGISTRATION": "true",
           "CARBONFED_RATE_LIMIT_PER_S": "0.01", "CARBONFED_RATE_LIMIT_BURST": "3"}
    with serving(tmp_path, env) as url:
        r = httpx.post(f"{url}/v1/sites", json=site_body("north"))
        north = bearer(r.json()["token"])
        for _ in range(3):
            assert httpx.get(f"{url}/v1/sites", headers=bearer(E2E_ADMIN)).status_code == 200
        head = (f"POST /v1/jobs/batch HTTP/1.1\r\nHost: broker\r\nContent-Type: "
                f"application/json\r\nAuthorization: Bearer {E2E_ADMIN}\r\n"
                "Content-Length: 900000\r\n\r\n")
        status, body = raw_request(url, head, b'{"')
        assert status == 429 and b"request rate" in body, body
        assert httpx.get(f"{url}/v1/sites/north", headers=north).status_code == 200
        assert httpx.get(f"{url}/v1/sites").status_code == 401


async def test_a_sites_job_submissions_are_paid_from_its_job_budget_refused_ones_too(
        make_settings, wall):
    """A budget of 3 jobs, 1 back a second: a batch of 5 is let in whole (the budget had some
    left) and leaves a debt of 2; a refused batch is charged as well (its checks cost the
    same); while the budget is spent north's submissions get 429 before the body is read,
    with the seconds until it is positive again, while its other requests, south's
    submissions and the admin's are served."""
    app = create_app(make_settings(job_submit_rate_per_s=1.0, job_submit_burst=3),
                     Clock(1.0, wall))
    clock = Turned()
    limits: RequestLimits = app.state.request_limits
    limits.monotonic = clock
    async with served(app) as c:
        sites = await register(c, "north", "south")
        bad = [job_body("bad-0", "north", job_type="no-such-type")]
        r = await c.post("/v1/jobs/batch", json={"jobs": bad}, headers=sites["north"])
        assert r.status_code == 422, r.text  # refused, and paid for
        assert limits.jobs_left("site:north") == 2.0
        batch = [job_body(f"n{i}", "north") for i in range(5)]
        r = await c.post("/v1/jobs/batch", json={"jobs": batch}, headers=sites["north"])
        assert r.status_code == 201 and r.json()["accepted"] == 5, r.text
        assert limits.jobs_left("site:north") == -3.0
        r = await c.post("/v1/jobs", content=b'{"id": ', headers={
            **sites["north"], "content-type": "application/json"})  # never read
        assert r.status_code == 429 and r.headers["retry-after"] == "4", r.text  # (1 + 3) / 1
        assert "job submission rate" in r.json()["message"]
        assert (await c.get("/v1/sites/north", headers=sites["north"])).status_code == 200
        r = await c.post("/v1/jobs", json=job_body("s0", "south"), headers=sites["south"])
        assert r.status_code == 201, r.text
        r = await c.post("/v1/jobs/batch", json={"jobs": [job_body(f"a{i}", "north")
                                                          for i in range(10)]},
                         headers=bearer(ADMIN))
        assert r.status_code == 201, r.text  # the operator has no job budget
        assert limits.jobs_left("site:north") == -3.0
        clock.now_s += 3.5  # back above zero
        r = await c.post("/v1/jobs", json=job_body("n5", "north"), headers=sites["north"])
        assert r.status_code == 201, r.text
        assert limits.jobs_left("site:north") == -0.5


async def test_refusals_are_held_a_while_a_bounded_number_at_a_time(make_settings, wall):
    """A 401 and a 429 wait ``refusal_delay_s`` before they are sent (here 10 s, the most: the
    test sees them held), at most ``max_delayed_refusals`` at a time: beyond that a refusal is
    sent at once, and every other client is served meanwhile. A client that asks again the
    moment it is refused can then ask once per delay per connection."""
    app = create_app(make_settings(refusal_delay_s=10.0, max_delayed_refusals=2,
                                   rate_limit_per_s=0.001, rate_limit_burst=2),
                     Clock(1.0, wall))
    app.state.request_limits.monotonic = Turned()
    tarpit = app.state.tarpit
    async with served(app) as c:
        sites = await register(c, "north", "south")
        held = [asyncio.create_task(c.get("/v1/sites")),  # no token: 401, held
                asyncio.create_task(c.get("/v1/sites", headers=bearer("cf_guess")))]
        with anyio.fail_after(WAIT_S):
            while tarpit.held < 2:
                await asyncio.sleep(0)
        assert not any(t.done() for t in held)
        with anyio.fail_after(WAIT_S):  # the bound is reached: at once
            assert (await c.get("/v1/sites")).status_code == 401
            assert (await c.get("/v1/sites/south", headers=sites["south"])).status_code == 200
            for _ in range(2):
                assert (await c.get("/v1/sites/north",
                                    headers=sites["north"])).status_code == 200
            assert (await c.get("/v1/sites/north",
                                headers=sites["north"])).status_code == 429  # over its rate
        for t in held:
            t.cancel()
        await asyncio.gather(*held, return_exceptions=True)
        assert tarpit.held == 0
        over = asyncio.create_task(c.get("/v1/sites/north", headers=sites["north"]))
        with anyio.fail_after(WAIT_S):
            while tarpit.held < 1:  # a 429 is held as a 401 is
                await asyncio.sleep(0)
        over.cancel()
        await asyncio.gather(over, return_exceptions=True)


async def test_the_tarpit_holds_up_to_its_bound_and_not_at_all_with_no_delay():
    tarpit = Tarpit(delay_s=3600.0, max_held=1)
    first = asyncio.create_task(tarpit.wait())
    await asyncio.sleep(0)
    assert tarpit.held == 1 and not first.done()
    with anyio.fail_after(WAIT_S):
        await tarpit.wait()  # over the bound: returns at once
        await Tarpit(delay_s=0.0, max_held=10).wait()
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    assert tarpit.held == 0
