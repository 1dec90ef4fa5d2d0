"""A real broker (``carbonfed serve``) and three real agents (``carbonfed agent``) on loopback.

Jobs are submitted, the broker plans on its own schedule (and on request), every job must reach
exactly one site and complete; then the broker is killed (SIGKILL) and restarted on the same
SQLite file, and nothing may be lost: sites, jobs, assignments, tokens; new work still flows.
Bounded: every wait has a deadline, every process is killed in ``finally``.
"""

from __future__ import annotations

import os

import httpx

from tests.api.processes import (
    ADMIN,
    HOST,
    V100_STEPS_PER_S,
    agent_config,
    carbonfed,
    enrol,
    free_port,
    kill,
    wait_for,
)

SITES = [
    {"id": "north", "zone": "hydro", "pue": 1.1, "gpus": {"V100": 2},
     "signals": {"carbon_g_per_kwh": {"kind": "constant", "value": 30},
                 "price_usd_per_mwh": {"kind": "constant", "value": 80}}},
    {"id": "south", "zone": "coal", "pue": 1.4, "gpus": {"K80": 4, "P100": 2},
     "signals": {"carbon_g_per_kwh": {"kind": "hourly", "values": [500, 800]},
                 "price_usd_per_mwh": {"kind": "constant", "value": 40}}},
    {"id": "west", "zone": "gas", "pue": 1.2, "gpus": {"V100": 1, "P100": 2},
     "signals": {"carbon_g_per_kwh": {"kind": "synthetic", "mean": 350, "amplitude": 50},
                 "price_usd_per_mwh": {"kind": "constant", "value": 60}}},
]


def jobs(prefix: str, n: int) -> list[dict]:
    homes = [s["id"] for s in SITES]
    return [{"id": f"{prefix}{i}", "home_site": homes[i % 3], "job_type": "resnet50", "gpus": 1,
             "work_steps": V100_STEPS_PER_S * 3600.0 * (1 + i % 3), "dataset_gb": 1.0}
            for i in range(n)]


def test_broker_and_three_agents_exactly_once_and_survive_a_kill(tmp_path, processes, db_url):
    port = free_port()
    url = f"http://{HOST}:{port}"
    env = {**os.environ, "CARBONFED_ADMIN_TOKEN": ADMIN, "CARBONFED_HORIZON_SLOTS": "6",
           "CARBONFED_SOLVER_TIME_LIMIT_S": "5"}
    db = db_url
    serve = ("serve", "--db", db, "--host", HOST, "--port", str(port), "--plan-interval-s",
             "0.5", "--stale-after-s", "5", "--time-scale", "3600")
    processes.append(carbonfed(*serve, env=env, log=tmp_path / "broker.log"))
    admin = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10)
    wait_for(lambda: admin.get("/v1/health").status_code == 200, "the broker", processes)

    for site in SITES:  # enrolment is closed by default: the admin enrols each site first
        token = enrol(site, url, env)
        path = agent_config(site, tmp_path)
        processes.append(carbonfed("agent", str(path), "--broker", url, "--enrolment-token",
                                   token, env=env, log=tmp_path / f"{site['id']}.log"))

    def all_sites_active() -> bool:
        listed = admin.get("/v1/sites").json()
        return len(listed) == 3 and all(s["status"] == "active" for s in listed)

    wait_for(all_sites_active, "three registered sites with offers", processes)
    first = jobs("a", 12)
    assert admin.post("/v1/jobs/batch", json={"jobs": first}).status_code == 201
    assert admin.post("/v1/plans").status_code == 201

    def completed(ids: list[str]) -> bool:
        states = admin.get("/v1/jobs").json()
        return all(j["status"] == "completed" for j in states if j["id"] in ids)

    wait_for(lambda: completed([j["id"] for j in first]), "every job to complete", processes)
    before = snapshot(admin, [s["id"] for s in SITES])
    assert len(before["jobs"]) == 12
    completed_assignments = [a for site in before["assignments"].values() for a in site]
    assert sorted(a["job"]["id"] for a in completed_assignments) == sorted(
        j["id"] for j in first), "every job completed at exactly one site"
    assert before["summary"]["jobs"] == {"completed": 12}
    assert before["summary"]["energy_kwh"] > 0

    kill(processes[0])  # SIGKILL: no clean shutdown
    processes[0] = carbonfed(*serve, env=env, log=tmp_path / "broker.log")
    wait_for(lambda: admin.get("/v1/health").status_code == 200, "the restarted broker", processes)
    after = snapshot(admin, [s["id"] for s in SITES])
    assert after["sites"] == before["sites"]
    assert after["jobs"] == before["jobs"]
    assert after["assignments"] == before["assignments"]

    # the agents kept their tokens and resume by themselves: new work still flows
    wait_for(all_sites_active, "agents to resume offering", processes)
    second = jobs("b", 6)
    assert admin.post("/v1/jobs/batch", json={"jobs": second}).status_code == 201
    wait_for(lambda: completed([j["id"] for j in second]), "the second batch to complete",
             processes)
    final = admin.get("/v1/summary").json()
    assert final["jobs"] == {"completed": 18}
    assert sum(s["jobs_completed"] for s in final["by_site"]) == 18


def snapshot(admin: httpx.Client, site_ids: list[str]) -> dict:
    """Everything that must survive a restart (minus clocks and ages)."""
    sites = [{k: v for k, v in s.items() if k not in ("offer_age_s", "status", "offer_sequence")}
             for s in admin.get("/v1/sites").json()]
    assignments = {}
    for site in site_ids:
        r = admin.get(f"/v1/sites/{site}/assignments",
                      params={"status": ["assigned", "acknowledged", "running", "completed",
                                         "requeued"]})
        assignments[site] = r.json()["assignments"]
    summary = admin.get("/v1/summary").json()
    summary.pop("now_h")
    return {"sites": sites, "jobs": admin.get("/v1/jobs").json(), "assignments": assignments,
            "summary": summary}
