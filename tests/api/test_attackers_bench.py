"""bench/attackers.py, the attackers bench/api_load.py --attackers runs, against a real
``carbonfed serve`` for 3 s (refusals are held 1 s): each kind is refused as issue 25 requires
(no token: 401, or 429 once its address is over its rate; 413 would do too; the bad batch:
422, then 429 once the site's job budget is spent) and nothing it sent was stored, so the
benchmark cannot measure attackers that do nothing, or that do something else."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx

from tests.api.processes import ADMIN, serving
from tests.realdata import REPO

ATTACKERS = REPO / "bench" / "attackers.py"


def test_the_attackers_are_refused_and_store_nothing(tmp_path):
    with serving(tmp_path, {"CARBONFED_ADMIN_TOKEN": ADMIN}) as url:
        base = {k: v for k, v in os.environ.items() if not k.startswith("CARBONFED_")}
        done = subprocess.run(
            [sys.executable, str(ATTACKERS), "--url", url, "--attackers", "4", "--seconds", "3"],
            env={**base, "CARBONFED_ADMIN_TOKEN": ADMIN}, capture_output=True, text=True,
            timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        lines = done.stdout.splitlines()
        assert lines[0] == "ready"
        result = json.loads(lines[-1])
        admin = {"Authorization": f"Bearer {ADMIN}"}
        sites = httpx.get(f"{url}/v1/sites", headers=admin).json()
        jobs = httpx.get(f"{url}/v1/jobs", headers=admin).json()
    for kind, expected, must in (("no-token", {"401", "413", "429"}, {"401"}),
                                 ("bad-batch", {"422", "429"}, {"422"})):
        tally = result[kind]
        assert tally["attackers"] == 2, result
        assert set(tally["codes"]) <= expected and must <= set(tally["codes"]), result
        # every request but the one in flight at the stop was answered
        assert tally["sent"] - 2 <= sum(tally["codes"].values()) <= tally["sent"], result
    # the bad-batch attackers' own sites, enrolled through the admin; no intruder, no job
    assert sorted(s["id"].rsplit("-", 1)[1] for s in sites) == ["0", "1"], sites
    assert all(s["id"].startswith("attacker-") for s in sites), sites
    assert jobs == []
