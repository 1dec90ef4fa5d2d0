"""Issue 25, item 10: job ids are per home site.

Two sites may each have a job "train-1"; a site's 409 only ever concerns its own ids, so it
never learns whether another site used one, and no site can squat another's ids. A host runs
and reads a job of another home by what its assignment shows. Databases from before (schema
0006) keep every job under its old id.
"""

from __future__ import annotations

import sqlite3

import pytest

from api.app import create_app
from api.clock import Clock
from api.db import Database, schema_revision, upgrade_schema
from tests.api.conftest import Broker, bearer, job_body, offer_body, served, site_body
from tests.api.test_migrations import OLD_ADMIN, rows, v1_database
from tests.api.test_pauses import HOUR_STEPS, pause_offer, pause_post

pytestmark = pytest.mark.anyio


async def sites(broker, free: dict[str, int]) -> dict[str, str]:
    """Sites with offers (``free``: V100s each offers) and their tokens."""
    tokens = {}
    for site, n in free.items():
        r = await broker.client.post("/v1/sites", json=site_body(site))
        tokens[site] = r.json()["token"]
        r = await broker.client.put(f"/v1/sites/{site}/offer", json=offer_body(1, {"V100": n}),
                                    headers=bearer(tokens[site]))
        assert r.status_code == 200, r.text
    return tokens


async def test_two_sites_submit_the_same_id_and_both_are_stored_planned_and_run(broker):
    """South has no free GPU: both "train-1" jobs run at north, which acknowledges, starts
    and completes each by its assignment, and reads each by the id the assignment shows."""
    c = broker.client
    tokens = await sites(broker, {"north": 4, "south": 0})
    for site in ("north", "south"):
        r = await c.post("/v1/jobs", json=job_body("train-1", site), headers=bearer(tokens[site]))
        assert r.status_code == 201, r.text
        assert (r.json()["id"], r.json()["home_site"], r.json()["key"]) == (
            "train-1", site, f"{site}/train-1")
    listed = (await c.get("/v1/jobs", headers=broker.admin())).json()
    assert sorted((j["id"], j["home_site"]) for j in listed) == [
        ("train-1", "north"), ("train-1", "south")]
    plan = (await c.post("/v1/plans", headers=broker.admin())).json()
    assert sorted((p["job_id"], p["site_id"]) for p in plan["planned"]) == [
        ("north/train-1", "north"), ("south/train-1", "north")]
    assert len(plan["assigned"]) == 2
    north = bearer(tokens["north"])
    held = (await c.get("/v1/sites/north/assignments", headers=north)).json()["assignments"]
    assert sorted((a["job"]["id"], a["job"]["home_site"]) for a in held) == [
        ("train-1", "north"), ("train-1", "south")]
    for a in held:
        for action in ("ack", "start", "complete"):
            r = await c.post(f"/v1/sites/north/assignments/{a['id']}/{action}", headers=north)
            assert r.status_code == 200, (action, r.text)
    # each site reads its own "train-1"; north reads south's, which it ran, by saying whose
    for site in ("north", "south"):
        r = await c.get("/v1/jobs/train-1", headers=bearer(tokens[site]))
        assert (r.json()["home_site"], r.json()["status"]) == (site, "completed")
    r = await c.get("/v1/jobs/train-1", params={"home_site": "south"}, headers=north)
    assert (r.json()["home_site"], r.json()["site_id"]) == ("south", "north")
    # south never ran north's: the same 403 as for an id nobody has
    for params in ({"home_site": "north"}, {"home_site": "nowhere"}):
        r = await c.get("/v1/jobs/train-1", params=params, headers=bearer(tokens["south"]))
        assert r.status_code == 403 and "north" not in r.json()["message"], r.text
    # the admin must say which; the ledger bills south for its own "train-1"
    r = await c.get("/v1/jobs/train-1", headers=broker.admin())
    assert r.status_code == 422 and r.json()["message"].startswith("query.home_site:")
    r = await c.get("/v1/jobs/train-1", params={"home_site": "south"}, headers=broker.admin())
    assert r.json()["key"] == "south/train-1"
    ledger = (await c.get("/v1/ledger", headers=broker.admin())).json()["rows"]
    assert [(r["job_id"], r["payer"], r["payee"]) for r in ledger] == [
        ("train-1", "south", "north")]
    summary = (await c.get("/v1/summary", headers=broker.admin())).json()
    assert summary["jobs"]["completed"] == 2


async def test_a_host_holding_two_jobs_of_one_id_is_told_to_say_whose(broker):
    c = broker.client
    tokens = await sites(broker, {"host": 4, "a": 0, "b": 0})
    for site in ("a", "b"):
        r = await c.post("/v1/jobs", json=job_body("x", site), headers=bearer(tokens[site]))
        assert r.status_code == 201
    assert len((await c.post("/v1/plans", headers=broker.admin())).json()["assigned"]) == 2
    host = bearer(tokens["host"])
    r = await c.get("/v1/jobs/x", headers=host)
    assert r.status_code == 422 and "a, b" in r.json()["message"]
    for site in ("a", "b"):
        r = await c.get("/v1/jobs/x", params={"home_site": site}, headers=host)
        assert r.json()["home_site"] == site


async def test_a_host_pauses_another_homes_job_of_the_same_id_as_its_own(make_settings, wall):
    """North runs south's preemptible "j1" (south offers no GPU) while its own "j1" is held for
    later; a carbon spike pauses south's: north acknowledges the pause by the assignment, and
    only south's "j1" is paused."""
    app = create_app(make_settings(carbon_price_usd_per_t=100.0), Clock(1.0, wall))
    async with served(app) as c:
        broker = Broker(c, wall, app.state.services)
        r = await c.post("/v1/sites", json=site_body("north", {"V100": 1}))
        north = r.json()["token"]
        r = await c.post("/v1/sites", json=site_body("south", {"V100": 1}))
        r = await c.put("/v1/sites/south/offer", json=offer_body(1, {"V100": 0}),
                        headers=bearer(r.json()["token"]))
        assert r.status_code == 200
        await pause_offer(broker, north, 1, [1] * 6, [100.0] * 6, [])
        jobs = [job_body("j1", "south", work_steps=2 * HOUR_STEPS, preemptible=True,
                         checkpoint_overhead_h=0.1),
                job_body("j1", "north", submit_h=24.0 * 30)]
        r = await c.post("/v1/jobs/batch", json={"jobs": jobs}, headers=broker.admin())
        assert r.status_code == 201, r.text
        [first] = (await c.post("/v1/plans", headers=broker.admin())).json()["assigned"]
        for action in ("ack", "start"):
            assert (await pause_post(broker, north, f"{first}/{action}")).status_code == 200
        wall.now_s += 3600.0
        await pause_offer(broker, north, 2, [0, 1, 1, 1, 1, 1], [900.0] + [100.0] * 5, [first])
        round_ = (await c.post("/v1/plans", headers=broker.admin())).json()
        assert round_["paused"] == [first]
        r = await c.get("/v1/sites/north/assignments", headers=bearer(north))
        [held] = r.json()["assignments"]
        assert (held["job"]["id"], held["job"]["home_site"], held["directive"]) == (
            "j1", "south", "pause")
        r = await pause_post(broker, north, f"{first}/pause", {"progress": 0.5})
        assert r.status_code == 200, r.text
        theirs = (await c.get("/v1/jobs/j1", params={"home_site": "south"},
                              headers=broker.admin())).json()
        assert (theirs["status"], theirs["paused_site"]) == ("queued", "north")
        assert theirs["done_steps"] == pytest.approx(HOUR_STEPS)
        mine = (await c.get("/v1/jobs/j1", headers=bearer(north))).json()
        assert (mine["home_site"], mine["paused_site"], mine["done_steps"]) == (
            "north", None, 0.0)


async def test_squatted_ids_do_not_fail_the_victims_batch(broker):
    """The attacker takes the victim's ids first, as far-future jobs: the victim's all-or-none
    batch is stored all the same (it was 409 for the attacker's ids)."""
    c = broker.client
    tokens = await sites(broker, {"victim": 4, "attacker": 4})
    ids = [f"exp-{i}" for i in range(20)]
    squat = [job_body(i, "attacker", submit_h=24.0 * 300) for i in ids]
    r = await c.post("/v1/jobs/batch", json={"jobs": squat}, headers=bearer(tokens["attacker"]))
    assert r.status_code == 201
    r = await c.post("/v1/jobs/batch", json={"jobs": [job_body(i, "victim") for i in ids]},
                     headers=bearer(tokens["victim"]))
    assert r.status_code == 201, r.text
    assert r.json()["accepted"] == 20
    assert {j["home_site"] for j in r.json()["jobs"]} == {"victim"}


async def test_a_409_only_ever_concerns_the_callers_own_ids(broker):
    c = broker.client
    tokens = await sites(broker, {"north": 4, "south": 4})
    north, south = bearer(tokens["north"]), bearer(tokens["south"])
    r = await c.post("/v1/jobs", json=job_body("n2-secret-job", "north"), headers=north)
    assert r.status_code == 201
    # another site's id: stored, never 409 (the answer said "already submitted" before)
    r = await c.post("/v1/jobs", json=job_body("n2-secret-job", "south"), headers=south)
    assert r.status_code == 201, r.text
    r = await c.post("/v1/jobs/batch", json={"jobs": [job_body("n2-secret-job", "south")]},
                     headers=south)
    assert r.status_code == 409
    answer = r.json()
    assert answer["job_ids"] == ["n2-secret-job"]
    assert "'south'" in answer["message"] and "north" not in answer["message"]
    # in one batch of the admin's: only the home that used the id is refused, and named
    r = await c.post("/v1/jobs/batch", json={"jobs": [
        job_body("fresh", "north"), job_body("n2-secret-job", "north")]}, headers=bearer(
        tokens["north"]))
    assert r.status_code == 409 and "south" not in r.json()["message"]
    r = await c.post("/v1/jobs/batch", json={"jobs": [
        job_body("fresh", "north"), job_body("fresh", "south")]}, headers=broker.admin())
    assert r.status_code == 201  # one id, two homes: no duplicate
    # a site cancels only its own, by its id
    r = await c.post("/v1/jobs/fresh/cancel", headers=south)
    assert (r.json()["home_site"], r.json()["status"]) == ("south", "cancelled")
    r = await c.get("/v1/jobs/fresh", headers=north)
    assert r.json()["status"] == "queued"


async def test_an_0006_database_keeps_its_jobs_under_their_ids(tmp_path, make_settings, wall):
    """A broker's database at schema 0006, with six jobs, a run spec and five assignments:
    after the upgrade every job is known by its id at its home and keeps its key, so its
    assignments, run spec and plans still find it; its home cannot reuse the id, another
    site can."""
    path = v1_database(tmp_path)
    db = Database(f"sqlite:///{path}")
    upgrade_schema(db.engine, "0006")
    assert schema_revision(db.engine) == "0006"
    with sqlite3.connect(path) as con:
        con.execute("INSERT INTO job_runs VALUES ('j4', '{\"command\": [\"train\"]}')")
    before = rows(path, "jobs", "id, home_site, status")
    assert len(before) == 6
    upgrade_schema(db.engine)
    assert schema_revision(db.engine) == "0007"
    db.dispose()
    assert rows(path, "jobs", "id, home_site, status") == before
    assert rows(path, "jobs", "id, client_id") == [(i, i) for i, _, _ in before]
    assert len(rows(path, "assignments a JOIN jobs j ON j.id = a.job_id", "a.id")) == 5
    assert rows(path, "job_runs r JOIN jobs j ON j.id = r.job_id", "j.client_id") == [("j4",)]
    with sqlite3.connect(path) as con, pytest.raises(sqlite3.IntegrityError):
        con.execute("INSERT INTO jobs (id, client_id, home_site, job_type, gpus, work_steps, "
                    "submit_h, dataset_gb, status, attempts, submitted_at_s) VALUES "
                    "('north/j0', 'j0', 'north', 'resnet50', 1, 1, 0, 0, 'queued', 0, 0)")
    app = create_app(make_settings(db_url=f"sqlite:///{path}", admin_token=None),
                     Clock(1.0, wall))
    async with served(app) as c:
        admin = bearer(OLD_ADMIN)
        job = (await c.get("/v1/jobs/j4", headers=admin)).json()
        assert (job["id"], job["key"], job["home_site"], job["has_run"]) == (
            "j4", "j4", "north", True)
        r = await c.post("/v1/jobs", json=job_body("j4", "north"), headers=admin)
        assert r.status_code == 409 and r.json()["job_ids"] == ["j4"]
        r = await c.post("/v1/jobs", json=job_body("j4", "south"),
                         headers=admin)
        assert r.status_code == 201 and r.json()["key"] == "south/j4"
        r = await c.get("/v1/jobs/j4", headers=admin)
        assert r.status_code == 422  # two homes use it now: the admin says whose
        r = await c.get("/v1/jobs/j1", headers=admin)
        assert (r.json()["status"], r.json()["site_id"]) == ("acknowledged", "south")


def test_the_upgrade_from_0006_widens_the_keys_on_every_backend(db_url):
    """On SQLite and PostgreSQL (which enforces column lengths and foreign keys): a job, its
    run spec and its assignment at 0006 survive, and a 129-character key fits after."""
    db = Database(db_url)
    upgrade_schema(db.engine, "0006")
    with db.engine.begin() as con:
        for statement in (
            "INSERT INTO sites (id, number, zone, gpus, pue, egress_usd_per_gb, state, "
            "registered_at_s) VALUES ('north', 1, 'z', '{\"V100\": 2}', 1.2, 0.0, 'active', 0)",
            "INSERT INTO plan_rounds (id, now_h, created_at_s, status, n_options, queued, "
            "solve_time_s, plan) VALUES (1, 0, 0, 'optimal', 1, 1, 0, '{}')",
            "INSERT INTO jobs (id, home_site, job_type, gpus, work_steps, submit_h, "
            "dataset_gb, status, attempts, submitted_at_s) VALUES "
            "('old-job', 'north', 'resnet50', 1, 1000, 0, 0, 'assigned', 1, 0)",
            "INSERT INTO job_runs (job_id, spec) VALUES ('old-job', '{}')",
            "INSERT INTO assignments (job_id, site_id, gpu_type, gpus, round_id, status, "
            "start_h, transfer_h, runtime_h, energy_kwh, carbon_kg, energy_cost_usd, "
            "transfer_cost_usd, created_at_s) VALUES "
            "('old-job', 'north', 'V100', 1, 1, 'assigned', 0, 0, 1, 1, 1, 1, 0, 0)",
        ):
            con.exec_driver_sql(statement)
    upgrade_schema(db.engine)
    long_id = "j" * 64
    with db.engine.begin() as con:
        assert con.exec_driver_sql(
            "SELECT j.id, j.client_id, a.site_id, r.spec IS NOT NULL FROM jobs j JOIN "
            "assignments a ON a.job_id = j.id JOIN job_runs r ON r.job_id = j.id").all() == [
            ("old-job", "old-job", "north", True)]
        con.exec_driver_sql(
            "INSERT INTO sites (id, number, zone, gpus, pue, egress_usd_per_gb, state, "
            f"registered_at_s) VALUES ('{'s' * 64}', 2, 'z', '{{}}', 1.2, 0.0, 'active', 0)")
        con.exec_driver_sql(
            "INSERT INTO jobs (id, client_id, home_site, job_type, gpus, work_steps, "
            "submit_h, dataset_gb, status, attempts, submitted_at_s) VALUES "
            f"('{'s' * 64}/{long_id}', '{long_id}', '{'s' * 64}', 'resnet50', 1, 1000, 0, 0, "
            "'queued', 0, 0)")
        con.exec_driver_sql(f"INSERT INTO job_runs (job_id, spec) VALUES "
                            f"('{'s' * 64}/{long_id}', '{{}}')")
    db.dispose()
