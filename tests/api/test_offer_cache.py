"""The offers' cache of each site's claims and stored sequence (``ClaimsCache``).

A replayed offer (a sequence at or below one the broker stored) is refused from the cache,
without a database statement; what an offer read before its site changed is never taken for
current.
"""

from __future__ import annotations

import pytest

from api.app import create_app
from api.clock import Clock
from api.services.offers import Claims, ClaimsCache
from tests.api.conftest import ADMIN, bearer, offer_body, served, statements_on
from tests.api.test_enrolment import enrol, register

CLAIMS = Claims({"V100": 4}, (-500.0, 5000.0), (0.0, 2000.0))


def test_a_sequence_is_remembered_as_the_highest_stored_in_the_epoch():
    cache = ClaimsCache()
    epoch = cache.epoch("north")
    cache.put("north", epoch, claims=CLAIMS)
    assert (cache.get("north"), cache.sequence("north")) == (CLAIMS, None)
    cache.put("north", epoch, sequence=7)
    cache.put("north", epoch, sequence=5)  # a slower offer that read an older stored one
    assert (cache.get("north"), cache.sequence("north")) == (CLAIMS, 7)


def test_what_was_read_before_a_forget_is_never_current():
    cache = ClaimsCache()
    before = cache.epoch("north")  # an offer begins ...
    cache.forget("north")  # ... an admin resets the site's sequence meanwhile ...
    cache.put("north", before, claims=CLAIMS, sequence=9)  # ... and the offer finishes
    assert (cache.get("north"), cache.sequence("north")) == (None, None)
    cache.put("north", cache.epoch("north"), claims=CLAIMS, sequence=1)
    assert cache.sequence("north") == 1
    cache.forget("north")
    assert (cache.get("north"), cache.sequence("north")) == (None, None)


@pytest.mark.anyio
async def test_a_replayed_offer_is_refused_without_a_statement(make_settings, wall):
    app = create_app(make_settings(open_registration=False), Clock(1.0, wall))
    async with served(app) as c:
        token = await register(c, "north", await enrol(c, "north"))
        put = lambda sequence: c.put(  # noqa: E731
            "/v1/sites/north/offer", json=offer_body(sequence), headers=bearer(token))
        assert (await put(5)).status_code == 200
        with statements_on(app.state.services.ctx.db.engine) as statements:
            for replayed in (3, 5):
                r = await put(replayed)
                assert r.status_code == 409 and r.json()["current_sequence"] == 5
        assert statements == []
        assert (await put(6)).status_code == 200
        assert (await c.post("/v1/sites/north/reset-sequence",
                             headers=bearer(ADMIN))).status_code == 200
        assert (await put(1)).status_code == 200  # the reset forgot the remembered 6
        r = await c.get("/v1/sites/north/offer", headers=bearer(token))
        assert r.json()["sequence"] == 1
