"""Jobs carry what to run; sites reject, fail and cancel (through the app's HTTP routes).

A run spec is shown only in the holding site's own assignment list; a rejected job is never
planned on that site again; a failed one goes elsewhere while another site can take it, and
fails for good after ``max_attempts``; a cancelled one is revoked at its site.
"""

from __future__ import annotations

import pytest

from api.app import create_app
from api.clock import Clock
from tests.api.conftest import WALL0, Broker, bearer, job_body, served
from tests.api.test_leases import act, offer, plan, two_sites

pytestmark = pytest.mark.anyio

RUN = {"command": ["python", "train.py", "--epochs", "3"], "env": {"WANDB_KEY": "s3cr3t"},
       "checkpoint_dir": "/scratch/ckpt", "max_runtime_h": 2.0}
SHOWN = {**RUN, "script": None, "image": None}  # as the holding site reads it


async def submit(broker, job_id: str, home: str = "south", **extra: object) -> dict:
    r = await broker.client.post("/v1/jobs", json=job_body(job_id, home, **extra),
                                 headers=broker.admin())
    assert r.status_code == 201, r.text
    return r.json()


async def assignments(broker, site: str, token: str) -> list[dict]:
    r = await broker.client.get(f"/v1/sites/{site}/assignments", headers=bearer(token))
    assert r.status_code == 200, r.text
    return r.json()["assignments"]


async def test_the_run_spec_is_shown_only_to_the_site_holding_the_assignment(broker):
    tokens = await two_sites(broker)  # north is the cheaper
    out = await submit(broker, "j1", run=RUN)
    assert out["has_run"] is True and "run" not in out
    [aid] = (await plan(broker))["assigned"]
    [mine] = await assignments(broker, "north", tokens["north"])
    assert mine["id"] == aid and mine["run"] == SHOWN
    # the admin's view of the same list, the home site's view of the job: no run spec
    r = await broker.client.get("/v1/sites/north/assignments", headers=broker.admin())
    assert r.json()["assignments"][0]["run"] is None
    r = await broker.client.get("/v1/jobs/j1", headers=bearer(tokens["south"]))
    assert r.status_code == 200 and "s3cr3t" not in r.text and "train.py" not in r.text
    # another site: 403, and nothing of the spec in the answer
    r = await broker.client.get("/v1/sites/north/assignments", headers=bearer(tokens["south"]))
    assert r.status_code == 403 and "s3cr3t" not in r.text


@pytest.mark.parametrize(("run", "field", "problem"), [
    ({"command": ["a"], "script": "#!/bin/sh\n"}, "body.run", "a command or a script"),
    ({}, "body.run", "a command or a script"),
    ({"script": "x" * (64 * 1024 + 1)}, "body.run.script", "at most 65536"),
    ({"command": ["a"], "env": {"1BAD": "x"}}, "body.run.env.1BAD", "pattern"),
    ({"command": ["a"], "env": {f"V{i}": "x" for i in range(65)}}, "body.run.env",
     "at most 64"),
    ({"command": ["a"], "max_runtime_h": 0}, "body.run.max_runtime_h", "greater than 0"),
])
async def test_a_bad_run_spec_is_a_one_line_error_naming_the_field(broker, run, field, problem):
    await two_sites(broker)
    r = await broker.client.post("/v1/jobs", json=job_body("j1", "south", run=run),
                                 headers=broker.admin())
    assert r.status_code == 422
    message = r.json()["message"]
    assert message.startswith(field) and problem in message and "\n" not in message


async def test_a_rejected_job_goes_elsewhere_and_never_back(broker):
    tokens = await two_sites(broker)
    await submit(broker, "j1", run=RUN)
    [first] = (await plan(broker))["assigned"]
    r = await broker.client.post(f"/v1/sites/north/assignments/{first}/reject",
                                 json={"reason": "image not allowed"},
                                 headers=bearer(tokens["north"]))
    assert r.status_code == 200 and r.json()["status"] == "requeued"
    assert r.json()["requeue_reason"] == "rejected"
    [second] = (await plan(broker))["assigned"]
    [taken] = await assignments(broker, "south", tokens["south"])
    assert taken["id"] == second and taken["run"] == SHOWN  # the dearer site, with the spec
    r = await broker.client.post(f"/v1/sites/south/assignments/{second}/reject",
                                 json={"reason": "too long"}, headers=bearer(tokens["south"]))
    assert r.status_code == 200
    # both refused it: north is still the cheaper and has room, but never gets it again
    again = await plan(broker)
    assert again["assigned"] == [] and again["deferred"] == ["south/j1"]
    history = (await broker.client.get("/v1/jobs/j1", headers=broker.admin())).json()["history"]
    assert [(h["site_id"], h["requeue_reason"], h["message"]) for h in history] == [
        ("north", "rejected", "image not allowed"), ("south", "rejected", "too long")]


async def test_a_running_job_cannot_be_rejected(broker):
    tokens = await two_sites(broker)
    await submit(broker, "j1")
    [aid] = (await plan(broker))["assigned"]
    assert (await act(broker, "north", tokens["north"], aid, "start")).status_code == 200
    r = await broker.client.post(f"/v1/sites/north/assignments/{aid}/reject",
                                 json={"reason": "no"}, headers=bearer(tokens["north"]))
    assert r.status_code == 409 and "report it failed" in r.json()["message"]


async def fail(broker, site: str, token: str, aid: int, code: int) -> dict:
    report = {"ref": f"slurm-{aid}", "exit_code": code, "exit_state": "FAILED",
              "message": f"exit code {code}\nstderr:\nTraceback ... CUDA error"}
    r = await broker.client.post(f"/v1/sites/{site}/assignments/{aid}/fail", json=report,
                                 headers=bearer(token))
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture
async def strict_broker(make_settings, wall):
    """Two failures end a job; two failed runs in a row flag a site."""
    app = create_app(make_settings(max_attempts=3, flag_after_failures=2), Clock(1.0, wall))
    async with served(app) as client:
        yield Broker(client, wall, app.state.services)


async def test_a_failed_job_runs_again_elsewhere_then_fails_after_max_attempts(strict_broker):
    broker = strict_broker
    tokens = await two_sites(broker)
    await submit(broker, "j1")
    sequence = 2
    sites = []
    for attempt in range(3):
        [aid] = (await plan(broker))["assigned"]
        [held] = [(s, a) for s in tokens for a in await assignments(broker, s, tokens[s])]
        site = held[0]
        sites.append(site)
        out = await fail(broker, site, tokens[site], aid, 1 + attempt)
        assert out["status"] == "failed" and out["exit_code"] == 1 + attempt
        assert out["run_ref"] == f"slurm-{aid}"
        for s in tokens:  # keep both offers fresh
            await offer(broker, s, tokens[s], sequence, price=10.0 if s == "north" else 90.0)
        sequence += 1
    # north (cheaper) first, then south (it failed at north), then north again (both failed:
    # the site it failed at least recently is not preferred, but no other site is left)
    assert sites == ["north", "south", "north"]
    job = (await broker.client.get("/v1/jobs/j1", headers=broker.admin())).json()
    assert job["status"] == "failed" and job["failures"] == 3
    assert [h["exit_code"] for h in job["history"]] == [1, 2, 3]
    assert "CUDA error" in job["history"][0]["message"]
    assert (await plan(broker))["assigned"] == []  # a failed job is final
    summary = (await broker.client.get("/v1/summary", headers=broker.admin())).json()
    totals = {t["site_id"]: t for t in summary["by_site"]}
    assert (totals["north"]["jobs_failed"], totals["south"]["jobs_failed"]) == (2, 1)
    assert totals["north"]["flagged"] is True and totals["south"]["flagged"] is False
    assert summary["jobs"] == {"failed": 1}


async def test_a_completion_after_a_failure_report_is_refused(broker):
    tokens = await two_sites(broker)
    await submit(broker, "j1")
    [aid] = (await plan(broker))["assigned"]
    await fail(broker, "north", tokens["north"], aid, 2)
    assert (await fail(broker, "north", tokens["north"], aid, 2))["status"] == "failed"
    r = await act(broker, "north", tokens["north"], aid, "complete")
    assert r.status_code == 409


async def test_a_cancelled_job_is_revoked_at_its_site_and_never_planned(broker):
    tokens = await two_sites(broker)
    await submit(broker, "j1", run=RUN)
    [aid] = (await plan(broker))["assigned"]
    assert (await act(broker, "north", tokens["north"], aid, "start")).status_code == 200
    r = await broker.client.post("/v1/jobs/j1/cancel", headers=bearer(tokens["north"]))
    assert r.status_code == 403  # only its home site (south) or the admin
    r = await broker.client.post("/v1/jobs/j1/cancel", headers=bearer(tokens["south"]))
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    answer = await offer(broker, "north", tokens["north"], 2, holding=[aid], price=10.0)
    assert answer["revoked"] == [aid]
    assert (await plan(broker))["assigned"] == []
    r = await broker.client.post("/v1/jobs/j1/cancel", headers=broker.admin())
    assert r.status_code == 409


async def test_a_measured_energy_is_kept_beside_the_model_and_the_summary_says_it_used_it(
        broker):
    tokens = await two_sites(broker)
    for job_id in ("j1", "j2"):
        await submit(broker, job_id)  # from south, run at north: the ledger settles them
    aids = (await plan(broker))["assigned"]
    assert len(aids) == 1  # north has one V100: one job now, the other later
    [first] = await assignments(broker, "north", tokens["north"])
    modelled = first["energy_kwh"]
    # the executor's own clock for the run's start and end (the broker's wall is WALL0)
    report = {"ref": "4242", "energy_kwh": modelled / 2, "started_at_s": WALL0 - 100.0,
              "ended_at_s": WALL0 - 10.0}
    r = await broker.client.post(f"/v1/sites/north/assignments/{first['id']}/start",
                                 headers=bearer(tokens["north"]))  # a completion needs a start
    assert r.status_code == 200, r.text
    r = await broker.client.post(f"/v1/sites/north/assignments/{first['id']}/complete",
                                 json=report, headers=bearer(tokens["north"]))
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["measured_energy_kwh"] == modelled / 2 and out["energy_kwh"] == modelled
    summary = (await broker.client.get("/v1/summary", headers=broker.admin())).json()
    north = next(t for t in summary["by_site"] if t["site_id"] == "north")
    assert north["measured_runs"] == 1 and summary["energy_source"] == "measured"
    assert north["energy_kwh"] == pytest.approx(modelled / 2)
    assert north["carbon_kg"] == pytest.approx(first["carbon_kg"] / 2)  # scaled to it
    [attempt] = (await broker.client.get("/v1/jobs/j1", headers=broker.admin())).json()[
        "history"]
    assert (attempt["started_at_s"], attempt["ended_at_s"]) == (WALL0 - 100.0, WALL0 - 10.0)
    ledger = (await broker.client.get("/v1/ledger", headers=broker.admin())).json()
    assert ledger["energy_source"] == "measured"
    [row] = ledger["rows"]
    assert row["energy_kwh"] == pytest.approx(modelled / 2)
    # a second run without a measurement: the totals mix both
    await offer(broker, "north", tokens["north"], 2, price=10.0)
    [second] = (await plan(broker))["assigned"]
    assert (await act(broker, "north", tokens["north"], second, "start")).status_code == 200
    assert (await act(broker, "north", tokens["north"], second, "complete")).status_code == 200
    summary = (await broker.client.get("/v1/summary", headers=broker.admin())).json()
    assert summary["energy_source"] == "mixed"
