"""A round plans over every site with a fresh offer (issue 22; issue 25, item 12).

A round used to give GPU pools to the 32 cheapest usable sites with free GPUs only
(``max_sites_per_round``): with those full, 128 jobs were assigned while 1,200 GPUs stood free.
Now every usable site is in the round, and each job's options stay at a few candidate sites
(``broker.live.candidate_sites``).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from api.app import create_app
from api.clock import Clock
from tests.api.conftest import ADMIN, bearer, job_body, offer_body, served, site_body
from tests.api.test_anytime import distinct_jobs, fleet

pytestmark = pytest.mark.anyio

SITES = 200
CHEAP = 32  # the old cap
V100_6H = 4.394774823323071 * 3600.0 * 6  # 6 h on a V100: the tests' whole 6-slot horizon


async def test_a_round_over_200_sites_assigns_beyond_the_32_cheapest_when_they_are_full(
        make_settings, wall):
    """The 32 cheapest sites have 2 of their 8 V100s free (one 2-GPU job each, for the whole
    horizon), the other 168 have all 8 free. 64 jobs of 2 GPUs for 6 h: the cheap sites take
    32, and the 32 others must start now elsewhere (deferring any of them costs more)."""
    app = create_app(make_settings(), Clock(1.0, wall))  # the default caps
    async with served(app) as c:
        free = {}
        for i in range(SITES):
            site = f"s{i:03d}"
            r = await c.post("/v1/sites", json=site_body(site, {"V100": 8}))
            free[site] = 2 if i < CHEAP else 8
            body = offer_body(1, {"V100": free[site]}, price=20.0 + i)  # s000 cheapest
            r = await c.put(f"/v1/sites/{site}/offer", json=body,
                            headers=bearer(r.json()["token"]))
            assert r.status_code == 200
        jobs = [job_body(f"j{i:02d}", f"s{i % SITES:03d}", gpus=2, work_steps=V100_6H)
                for i in range(64)]
        r = await c.post("/v1/jobs/batch", json={"jobs": jobs}, headers=bearer(ADMIN))
        assert r.status_code == 201
        plan = (await c.post("/v1/plans", headers=bearer(ADMIN))).json()
    assert plan["considered"] == 64
    starts = [p for p in plan["planned"] if p["start_offset"] == 0]
    assert len(plan["assigned"]) == len(starts) == 64
    used = Counter(p["site_id"] for p in starts)
    assert all(2 * n <= free[site] for site, n in used.items()), used
    beyond = sum(n for site, n in used.items() if int(site[1:]) >= CHEAP)
    assert beyond == 32
    assert plan["gap"] is not None  # the plan's gap to a bound is reported


async def test_a_round_at_default_settings_considers_5000_queued_jobs(make_settings, wall):
    """5,000 distinct queued jobs at 50 sites: one round considers them all (the default
    max_jobs_per_round), plans what fits every pool's offer, and reports its gap."""
    app = create_app(make_settings(solver_method="auto"), Clock(1.0, wall))
    rng = np.random.default_rng(12)
    free: dict[tuple[str, str], int] = {}
    async with served(app) as c:
        for i in range(50):
            site = f"s{i:02d}"
            token = (await c.post("/v1/sites", json=site_body(site, fleet(i)))).json()["token"]
            body = offer_body(1, fleet(i), price=float(rng.uniform(20, 120)),
                              carbon=float(rng.uniform(20, 700)))
            r = await c.put(f"/v1/sites/{site}/offer", json=body, headers=bearer(token))
            assert r.status_code == 200
            free.update({(site, g): n for g, n in fleet(i).items()})
        jobs = distinct_jobs(5000, 50, rng)
        for k in range(0, 5000, 1000):
            r = await c.post("/v1/jobs/batch", json={"jobs": jobs[k:k + 1000]},
                             headers=bearer(ADMIN))
            assert r.status_code == 201, r.text[:300]
        plan = (await c.post("/v1/plans", headers=bearer(ADMIN))).json()
    assert plan["queued"] == plan["considered"] == 5000
    assert len(plan["planned"]) + len(plan["deferred"]) == 5000
    gpus = {f'{j["home_site"]}/{j["id"]}': j["gpus"] for j in jobs}  # plans name jobs home/id
    used: Counter[tuple[str, str]] = Counter()
    for p in plan["planned"]:
        if p["start_offset"] == 0:
            used[(p["site_id"], p["gpu_type"])] += gpus[p["job_id"]]
    assert used and all(n <= free[pool] for pool, n in used.items()), used
    assert len(plan["assigned"]) == sum(1 for p in plan["planned"] if p["start_offset"] == 0)
    assert plan["gap"] is not None and plan["gap"] >= 0
