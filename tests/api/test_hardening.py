"""Issue 25, the live broker's second attack round: each test pins one mechanism.

Authentication before work, validation errors capped, batch checks outside the write lock,
revocation that sticks (a token cache with an epoch), capacity checked against live leases,
honest leases (no completion without a start or too early; a maximum run time), liveness from
heartbeats, fair shares across sites, and the operational items (version, audit, case-blind
site ids, plan retention, private database files).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import stat
import subprocess
import sys
from urllib.parse import urlparse

import httpx
import pytest

from api.app import create_app
from api.clock import Clock
from tests.api.conftest import ADMIN, bearer, job_body, offer_body, served, site_body
from tests.api.processes import ADMIN as E2E_ADMIN
from tests.api.processes import HOST, free_port, kill, serving, wait_for

pytestmark = pytest.mark.anyio
ANSWER_WAIT_S = 20.0  # a deadline for an answer that must come without the body, not a timing


def read_answer(s: socket.socket) -> tuple[int, bytes]:
    """The status and body of the answer on ``s`` (its head, then Content-Length bytes)."""
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = s.recv(65536)
        if not chunk:
            break
        answer += chunk
    head_part, _, body = answer.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head_part.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(head_part.split()[1]), body


def raw_request(url: str, head: str, partial_body: bytes) -> tuple[int, bytes]:
    """Send a request's head and only part of its declared body; return the status and the
    body of the answer the server sends without waiting for the rest."""
    where = urlparse(url)
    with socket.create_connection((where.hostname, where.port), timeout=ANSWER_WAIT_S) as s:
        s.sendall(head.encode() + partial_body)
        return read_answer(s)


# --- 1. authenticate before work -------------------------------------------------------------

@pytest.mark.anyio(False)
@pytest.mark.parametrize(("method", "path"), [("POST", "/v1/sites"),
                                              ("PUT", "/v1/sites/north/offer"),
                                              ("POST", "/v1/jobs/batch")])
def test_a_request_without_credentials_gets_401_before_its_body_is_read(tmp_path, method,
                                                                         path):
    """A 900 kB body is declared and 2 bytes of it sent: the 401 comes anyway (the server
    never waits for, reads or parses the body)."""
    with serving(tmp_path, {"CARBONFED_ADMIN_TOKEN": E2E_ADMIN}) as url:
        for auth in ("", "Authorization: Bearer cf_not-a-token\r\n"):
            head = (f"{method} {path} HTTP/1.1\r\nHost: broker\r\nContent-Type: "
                    f"application/json\r\n{auth}Content-Length: 900000\r\n\r\n")
            status, body = raw_request(url, head, b'{"')
            assert status == 401, body
            assert len(body) < 300, body
    log = (tmp_path / "broker.log").read_text()
    assert "auth failure 2:" in log and "cf_not-a-token" not in log  # audited, counted


async def test_validation_errors_are_capped(broker):
    body = {**site_body("north"), **{f"unknown{i}": i for i in range(5000)}}
    r = await broker.client.post("/v1/enrolments", json=body, headers=broker.admin())
    assert r.status_code == 422
    answer = r.json()
    assert len(answer["detail"]) == 20 and answer["more_errors"] == 4980
    assert answer["message"].endswith("(and 4980 more errors)")


# --- 3. revocation sticks --------------------------------------------------------------------

async def test_a_lookup_in_flight_during_a_rotation_cannot_cache_the_old_token(broker):
    c = broker.client
    old = (await c.post("/v1/sites", json=site_body("north"))).json()["token"]
    services = broker.services
    tokens, db = services.tokens, services.ctx.db
    tokens.forget("north")  # not cached: the next use looks it up
    real_read = db.read
    rotated = []

    @contextlib.contextmanager
    def read_then_rotate():
        # the lookup has read the old token's row; the rotation commits before it caches it
        with real_read() as session:
            yield session
        if not rotated:
            rotated.append(services.sites.rotate_token("north").token)

    db.read = read_then_rotate
    try:
        assert tokens.site_for_token(old) == "north"  # it was valid when read
    finally:
        db.read = real_read
    assert rotated and tokens.site_for_token(old) is None
    r = await c.get("/v1/sites/north", headers=bearer(old))
    assert r.status_code == 401
    assert (await c.get("/v1/sites/north", headers=bearer(rotated[0]))).status_code == 200


async def test_cached_tokens_expire_after_the_ttl(make_settings, wall):
    app = create_app(make_settings(token_cache_ttl_s=5.0), Clock(1.0, wall))
    async with served(app) as c:
        token = (await c.post("/v1/sites", json=site_body("north"))).json()["token"]
        tokens = app.state.services.tokens
        now = [1000.0]
        tokens.monotonic = lambda: now[0]
        tokens.warm()
        db = app.state.services.ctx.db
        # revoke behind the cache's back (as if a forget were missed)
        with db.write() as s:
            from api.models import SiteRow
            s.get(SiteRow, "north").token_sha256 = None
        assert tokens.site_for_token(token) == "north"  # still cached
        now[0] += 5.1
        assert tokens.site_for_token(token) is None


# --- 2. batch checks outside the write lock --------------------------------------------------

class RecordingLock:
    """The database's write lock, recording when it is taken and released."""

    def __init__(self, inner, events: list[str]) -> None:
        self.inner, self.events = inner, events

    def __enter__(self):
        self.inner.acquire()
        self.events.append("lock")
        return self

    def __exit__(self, *exc) -> None:
        self.events.append("unlock")
        self.inner.release()


@pytest.mark.parametrize("bad", [False, True])
async def test_a_batch_is_checked_while_the_write_lock_is_free(broker, monkeypatch, bad):
    await broker.client.post("/v1/sites", json=site_body("north"))
    db, jobs = broker.services.ctx.db, broker.services.jobs
    events: list[str] = []
    monkeypatch.setattr(db, "_write_lock", RecordingLock(db._write_lock, events))
    check = jobs._check

    def recorded_check(*args, **kwargs):
        events.append("check")
        return check(*args, **kwargs)

    monkeypatch.setattr(jobs, "_check", recorded_check)
    batch = [job_body(f"j{i}", "north") for i in range(5)]
    if bad:
        batch[-1]["job_type"] = "no-such-type"
    r = await broker.client.post("/v1/jobs/batch", json={"jobs": batch},
                                 headers=broker.admin())
    assert r.status_code == (422 if bad else 201), r.text
    assert events.count("check") == 5
    # no check ran while the lock was held; a refused batch never took it
    assert events == ["check"] * 5 + ([] if bad else ["lock", "unlock"])


# --- 7. fairness -----------------------------------------------------------------------------

async def test_a_submit_time_in_the_past_is_clamped_to_now(broker):
    await broker.client.post("/v1/sites", json=site_body("north"))
    broker.wall.now_s += 3 * 3600  # the broker's clock at 3 h
    r = await broker.client.post("/v1/jobs", json=job_body("old", "north", submit_h=0.0),
                                 headers=broker.admin())
    assert r.status_code == 201 and r.json()["submit_h"] == pytest.approx(3.0)
    # a deadline already past is refused at intake: it is before the (clamped) submit time
    r = await broker.client.post("/v1/jobs", json=job_body(
        "late", "north", submit_h=0.0, deadline_h=1.0), headers=broker.admin())
    assert r.status_code == 422 and r.json()["message"].startswith("body.deadline_h: must be")


async def test_a_site_cannot_queue_more_than_its_quota(make_settings, wall):
    app = create_app(make_settings(max_queued_jobs_per_site=3), Clock(1.0, wall))
    async with served(app) as c:
        admin = bearer(ADMIN)
        for site in ("north", "south"):
            await c.post("/v1/sites", json=site_body(site))
        ok = await c.post("/v1/jobs/batch", json={"jobs": [job_body(f"n{i}", "north")
                                                           for i in range(2)]}, headers=admin)
        assert ok.status_code == 201
        r = await c.post("/v1/jobs/batch", json={"jobs": [job_body(f"m{i}", "north")
                                                          for i in range(2)]}, headers=admin)
        assert r.status_code == 422
        assert r.json()["message"] == ("body.jobs: site 'north' would have 4 queued jobs; the "
                                       "broker's limit is 3 per site")
        # another site's queue is its own
        r = await c.post("/v1/jobs", json=job_body("s0", "south"), headers=admin)
        assert r.status_code == 201


# --- 4. capacity where it is used ------------------------------------------------------------

async def test_free_gpus_plus_held_leases_must_fit_the_fleet(broker):
    c, admin = broker.client, broker.admin()
    token = (await c.post("/v1/sites", json=site_body("north", {"V100": 8}))).json()["token"]
    put = {"json": offer_body(1, {"V100": 8}), "headers": bearer(token)}
    assert (await c.put("/v1/sites/north/offer", **put)).status_code == 200
    await c.post("/v1/jobs", json=job_body("big", "north", gpus=8), headers=admin)
    [a] = (await c.post("/v1/plans", headers=admin)).json()["assigned"]
    r = await c.post(f"/v1/sites/north/assignments/{a}/ack", headers=bearer(token))
    assert r.status_code == 200
    # holding the 8-GPU job and offering 8 free: 16 on an 8-GPU fleet
    r = await c.put("/v1/sites/north/offer", json={**offer_body(2, {"V100": 8}), "holding": [a]},
                    headers=bearer(token))
    assert r.status_code == 422, r.text
    assert r.json()["message"] == ("body.free_gpus.V100: 8 free now plus 8 held by the listed "
                                   "live assignments is more than the 8 registered")
    honest = {**offer_body(3, {"V100": 0}), "holding": [a]}
    assert (await c.put("/v1/sites/north/offer", json=honest,
                        headers=bearer(token))).status_code == 200
    # a site may hold more than its fleet (a job waiting there for GPUs): it offers none
    await c.post("/v1/jobs", json=job_body("more", "north", gpus=8), headers=admin)
    broker.wall.now_s += 4 * 3600  # past a's expected end: the planner may place another
    r = await c.post("/v1/sites/north/heartbeat", json={"holding": [a]}, headers=bearer(token))
    assert r.json()["renewed"] == [a]
    # unlisted in the offer: the planner reserves a's GPUs, until its expected end
    await c.put("/v1/sites/north/offer", json=offer_body(5, {"V100": 8}), headers=bearer(token))
    [b] = (await c.post("/v1/plans", headers=admin)).json()["assigned"]
    r = await c.put("/v1/sites/north/offer", json={**offer_body(6, {"V100": 0}),
                                                   "holding": [a, b]}, headers=bearer(token))
    assert r.status_code == 200, r.text
    r = await c.put("/v1/sites/north/offer", json={**offer_body(7, {"V100": 1}),
                                                   "holding": [a, b]}, headers=bearer(token))
    assert r.status_code == 422 and "1 free now plus 16 held" in r.json()["message"]
    # an assignment listed but not live at the site holds nothing
    r = await c.put("/v1/sites/north/offer", json={**offer_body(8, {"V100": 8}),
                                                   "holding": [a + 100]}, headers=bearer(token))
    assert r.status_code == 200 and r.json()["revoked"] == [a + 100]


# --- 5. honest leases ------------------------------------------------------------------------

async def one_assignment(c, admin, gpus: int = 1) -> tuple[str, int]:
    token = (await c.post("/v1/sites", json=site_body("north"))).json()["token"]
    await c.put("/v1/sites/north/offer", json=offer_body(1), headers=bearer(token))
    await c.post("/v1/jobs", json=job_body("j1", "north", gpus=gpus), headers=admin)
    [a] = (await c.post("/v1/plans", headers=admin)).json()["assigned"]
    return token, a


@pytest.fixture
async def honest(make_settings, wall):
    """Completions checked (half the expected time), running jobs bounded (2 x + 300 s)."""
    settings = make_settings(min_runtime_fraction=0.5, max_runtime_factor=2.0,
                             max_runtime_margin_s=300.0, lease_s=100_000.0)
    app = create_app(settings, Clock(1.0, wall))
    async with served(app) as c:
        yield c


async def test_a_completion_needs_a_start_and_half_the_expected_time(honest, wall):
    c, admin = honest, bearer(ADMIN)
    token, a = await one_assignment(c, admin)  # 1 h on a V100, no data set
    path = f"/v1/sites/north/assignments/{a}"
    r = await c.post(f"{path}/complete", headers=bearer(token))
    assert r.status_code == 409 and "report its start" in r.json()["message"]
    assert (await c.post(f"{path}/ack", headers=bearer(token))).status_code == 200
    assert (await c.post(f"{path}/complete", headers=bearer(token))).status_code == 409
    assert (await c.post(f"{path}/start", headers=bearer(token))).status_code == 200
    wall.now_s += 1799  # half of the expected hour is 1800 s
    r = await c.post(f"{path}/complete", headers=bearer(token))
    assert r.status_code == 409 and "not before 1800 s" in r.json()["message"], r.text
    summary = (await c.get("/v1/summary", headers=admin)).json()
    assert summary["jobs"] == {"running": 1} and summary["energy_kwh"] == 0  # nothing billed
    wall.now_s += 1
    r = await c.post(f"{path}/complete", headers=bearer(token))
    assert r.status_code == 200
    assert r.json()["reported_runtime_h"] == pytest.approx(0.5)
    assert r.json()["runtime_h"] == pytest.approx(1.0)


async def test_a_running_job_past_its_maximum_run_time_is_revoked_and_requeued(honest, wall):
    c, admin = honest, bearer(ADMIN)
    token, a = await one_assignment(c, admin)
    path = f"/v1/sites/north/assignments/{a}"
    for action in ("ack", "start"):
        assert (await c.post(f"{path}/{action}", headers=bearer(token))).status_code == 200
    # 2 x 3600 s + 300 s; the site keeps renewing its lease meanwhile
    wall.now_s += 7500
    r = await c.put("/v1/sites/north/offer", json={**offer_body(2, {"V100": 3}),
                                                   "holding": [a]}, headers=bearer(token))
    assert r.status_code == 200 and r.json()["revoked"] == []
    assert (await c.post("/v1/plans", headers=admin)).json()["requeued"] == []
    wall.now_s += 1
    await c.put("/v1/sites/north/offer", json={**offer_body(3, {"V100": 3}), "holding": [a]},
                headers=bearer(token))
    round_ = (await c.post("/v1/plans", headers=admin)).json()
    assert round_["requeued"] == ["north/j1"]
    r = await c.post(f"{path}/complete", headers=bearer(token))
    assert r.status_code == 409 and "max-runtime" in r.json()["message"]


# --- 6. liveness -----------------------------------------------------------------------------

async def test_a_site_that_missed_its_heartbeat_gets_nothing_new_at_once(make_settings, wall):
    settings = make_settings(heartbeat_timeout_s=40.0, stale_after_s=300.0)
    app = create_app(settings, Clock(1.0, wall))
    async with served(app) as c:
        admin, tokens = bearer(ADMIN), {}
        for site, price in (("north", 10.0), ("south", 90.0)):
            tokens[site] = (await c.post("/v1/sites", json=site_body(site))).json()["token"]
            await c.put(f"/v1/sites/{site}/offer", json=offer_body(1, price=price),
                        headers=bearer(tokens[site]))
        await c.post("/v1/jobs", json=job_body("j1", "south"), headers=admin)
        [a] = (await c.post("/v1/plans", headers=admin)).json()["assigned"]
        assert (await c.get("/v1/jobs/j1", headers=admin)).json()["site_id"] == "north"
        # north (cheap) falls silent; south only heartbeats: its offer is 41 s old, not stale
        wall.now_s += 41
        r = await c.post("/v1/sites/south/heartbeat", json={"holding": []},
                         headers=bearer(tokens["south"]))
        assert r.status_code == 200
        await c.post("/v1/jobs", json=job_body("j2", "south"), headers=admin)
        round_ = (await c.post("/v1/plans", headers=admin)).json()
        assert round_["requeued"] == ["south/j1"]  # never acknowledged by a dead site: at once
        jobs = {j["id"]: j for j in (await c.get("/v1/jobs", headers=admin)).json()}
        assert {jobs["j1"]["site_id"], jobs["j2"]["site_id"]} == {"south"}
        assert a not in round_["assigned"]


def considered(round_: dict) -> list[str]:
    return [p["job_id"] for p in round_["planned"]] + round_["deferred"]


async def test_a_round_takes_every_sites_jobs_in_turn(make_settings, wall):
    app = create_app(make_settings(max_jobs_per_round=10), Clock(1.0, wall))
    async with served(app) as c:
        admin = bearer(ADMIN)
        for site in ("victim", "attacker"):
            token = (await c.post("/v1/sites", json=site_body(site))).json()["token"]
            await c.put(f"/v1/sites/{site}/offer", json=offer_body(1), headers=bearer(token))
        await c.post("/v1/jobs/batch", json={"jobs": [job_body(f"v{i}", "victim")
                                                      for i in range(20)]}, headers=admin)
        wall.now_s += 60
        # later, but every one with a deadline: "most urgent first" took only these
        await c.post("/v1/jobs/batch", json={"jobs": [
            job_body(f"x{i}", "attacker", deadline_h=0.5 + i / 1000) for i in range(100)]},
            headers=admin)
        round_ = (await c.post("/v1/plans", headers=admin)).json()
        taken = considered(round_)
        assert len(taken) == 10
        # each site's first five: the victim's by id (same submission), the attacker's by
        # deadline
        victim = sorted(f"victim/v{i}" for i in range(20))[:5]  # plans name jobs by key
        assert sorted(taken) == sorted(victim + [f"attacker/x{i}" for i in range(5)])


async def test_a_job_past_its_deadline_loses_its_urgency(make_settings, wall):
    app = create_app(make_settings(max_jobs_per_round=1), Clock(1.0, wall))
    async with served(app) as c:
        admin = bearer(ADMIN)
        token = (await c.post("/v1/sites", json=site_body("north"))).json()["token"]
        await c.post("/v1/jobs", json=job_body("plain", "north"), headers=admin)
        await c.post("/v1/jobs", json=job_body("urgent", "north", deadline_h=1.0),
                     headers=admin)
        wall.now_s += 1800  # the deadline is ahead: the urgent job goes first
        await c.put("/v1/sites/north/offer", json=offer_body(1, {"V100": 0}),
                    headers=bearer(token))
        assert considered((await c.post("/v1/plans", headers=admin)).json()) == ["north/urgent"]
        wall.now_s += 1801  # now it has passed: it can no longer be met, and waits its turn
        await c.put("/v1/sites/north/offer", json=offer_body(2, {"V100": 0}),
                    headers=bearer(token))
        assert considered((await c.post("/v1/plans", headers=admin)).json()) == ["north/plain"]



# --- 8. slow clients -------------------------------------------------------------------------

@contextlib.contextmanager
def broker_process(tmp_path, *flags: str, env: dict[str, str] | None = None):
    """``carbonfed serve`` with these flags; yields (url, process); killed at the end."""
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith("CARBONFED_")}
    log = (tmp_path / "broker.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "scenarios.cli", "serve", "--db", "broker.db", "--port",
         str(port), *flags], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
        env={**base, "CARBONFED_ADMIN_TOKEN": E2E_ADMIN, **(env or {})},
        start_new_session=True)
    url = f"http://{HOST}:{port}"
    try:
        wait_for(lambda: httpx.get(f"{url}/v1/health").status_code == 200, "broker", [server])
        yield url, server
    finally:
        kill(server)
        log.close()


def half_sent_body(url: str) -> socket.socket:
    """An authenticated POST that declares 1000 bytes and sends 10."""
    where = urlparse(url)
    s = socket.create_connection((where.hostname, where.port), timeout=ANSWER_WAIT_S)
    s.sendall(f"POST /v1/jobs HTTP/1.1\r\nHost: broker\r\nContent-Type: application/json\r\n"
              f"Authorization: Bearer {E2E_ADMIN}\r\nContent-Length: 1000\r\n\r\n"
              '{"id": "j"'.encode())
    return s


@pytest.mark.anyio(False)
def test_sigterm_stops_the_broker_within_the_graceful_timeout_despite_a_half_sent_body(
        tmp_path):
    with broker_process(tmp_path, "--graceful-timeout-s", "1", env={
            "CARBONFED_BODY_READ_TIMEOUT_S": "600"}) as (url, server), half_sent_body(url):
        # answered after the event loop took the stalled request's head (sent before)
        assert httpx.get(f"{url}/v1/health").status_code == 200
        os.killpg(server.pid, signal.SIGTERM)
        # a deadline, not a timing: the old broker waited for the body for ever
        assert server.wait(timeout=ANSWER_WAIT_S) in (0, -signal.SIGTERM)


@pytest.mark.anyio(False)
def test_a_stalled_body_gets_408_and_slow_headers_are_cut(tmp_path):
    with broker_process(tmp_path, "--header-timeout-s", "1",
                        env={"CARBONFED_BODY_READ_TIMEOUT_S": "1"}) as (url, _):
        with half_sent_body(url) as stalled:
            status, body = read_answer(stalled)
            assert status == 408 and b"not received within 1 s" in body, body
        where = urlparse(url)
        with socket.create_connection((where.hostname, where.port),
                                      timeout=ANSWER_WAIT_S) as slow:
            slow.sendall(b"GET /v1/health HTTP/1.1\r\nHost: bro")  # and nothing more
            assert slow.recv(65536) == b""  # closed by the broker, not left waiting
        with socket.create_connection((where.hostname, where.port),
                                      timeout=ANSWER_WAIT_S) as big:
            head = b"GET /v1/health HTTP/1.1\r\nHost: broker\r\n" + b"".join(
                b"X-Pad-%d: %s\r\n" % (i, b"x" * 1000) for i in range(100))  # 100 kB
            with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                big.sendall(head)
            try:
                status = read_answer(big)[0]
            except ConnectionResetError:  # cut while the rest was in flight: the 431 is lost
                status = 431
            assert status == 431
        assert httpx.get(f"{url}/v1/health").status_code == 200  # and it serves on


# --- 9. secrets and operations ---------------------------------------------------------------

async def test_version_route_and_openapi_carry_the_package_version(broker):
    from importlib.metadata import version

    r = await broker.client.get("/v1/version")  # no token needed
    assert r.status_code == 200
    assert r.json() == {"version": version("carbonfed"), "api": "v1"}
    info = (await broker.client.get("/openapi.json")).json()["info"]
    assert info["version"] == version("carbonfed") != "1"


async def test_the_database_and_its_wal_files_are_private(broker, tmp_path):
    await broker.client.post("/v1/sites", json=site_body("north"))  # a write: WAL in use
    files = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.glob("broker.db*")}
    assert {"broker.db", "broker.db-wal", "broker.db-shm"} <= set(files)
    assert set(files.values()) == {0o600}, files


async def test_site_ids_are_compared_without_case(broker):
    c = broker.client
    assert (await c.post("/v1/sites", json=site_body("north"))).status_code == 201
    r = await c.post("/v1/sites", json=site_body("North"))
    assert r.status_code == 409
    assert r.json()["message"] == ("site 'North' conflicts with site 'north' (site ids are "
                                   "compared without case)")
    r = await c.post("/v1/enrolments", json=site_body("NORTH"), headers=broker.admin())
    assert r.status_code == 409 and "conflicts with site 'north'" in r.json()["message"]


async def test_old_rounds_keep_their_figures_only(make_settings, wall):
    app = create_app(make_settings(plan_history_rounds=2), Clock(1.0, wall))
    async with served(app) as c:
        admin = bearer(ADMIN)
        token = (await c.post("/v1/sites", json=site_body("north"))).json()["token"]
        await c.put("/v1/sites/north/offer", json=offer_body(1, {"V100": 0}),
                    headers=bearer(token))
        await c.post("/v1/jobs", json=job_body("j1", "north"), headers=admin)
        rounds = [(await c.post("/v1/plans", headers=admin)).json() for _ in range(3)]
        assert [len(r["deferred"]) for r in rounds] == [1, 1, 1]
        from api.models import PlanRoundRow

        with app.state.services.ctx.db.read() as s:
            plans = {r.id: r.plan for r in s.query(PlanRoundRow)}
        first, *kept = (plans[r["round_id"]] for r in rounds)
        assert "deferred" not in first and "planned" not in first and first["pruned"]
        assert all(p["deferred"] == ["north/j1"] for p in kept)
        listed = (await c.get("/v1/plans", headers=admin)).json()
        assert [r["deferred"] for r in listed] == [1, 1, 1]  # the figures stay


@pytest.mark.parametrize("weak", ["Password1!" * 5, "0123456789abcdef" * 4])
def test_repeated_admin_tokens_are_refused(make_settings, weak):
    with pytest.raises(ValueError, match="32 bytes of entropy"):
        make_settings(admin_token=weak)


@pytest.mark.anyio(False)
def test_the_admin_token_from_a_file_and_admin_actions_audited(tmp_path):
    secret = tmp_path / "admin-token"
    secret.write_text(E2E_ADMIN + "\n")
    secret.chmod(0o600)
    with broker_process(tmp_path, "--admin-token-file", str(secret),
                        env={"CARBONFED_ADMIN_TOKEN": ""}) as (url, server):
        admin = {"Authorization": f"Bearer {E2E_ADMIN}"}
        r = httpx.post(f"{url}/v1/enrolments", json=site_body("north"), headers=admin)
        assert r.status_code == 201
        assert httpx.post(f"{url}/v1/sites/north/rotate-token",
                          headers=admin).status_code == 200
        assert E2E_ADMIN not in " ".join(server.args)
    log = (tmp_path / "broker.log").read_text()
    assert "admin enrol site=north gpus=4" in log and "admin rotate-token site=north" in log
    assert E2E_ADMIN not in log


@pytest.mark.anyio(False)
def test_serve_over_tls(tmp_path):
    import shutil

    if shutil.which("openssl") is None:
        pytest.skip("no openssl command to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith("CARBONFED_")}
    log = (tmp_path / "broker.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "scenarios.cli", "serve", "--db", "broker.db", "--port",
         str(port), "--tls-cert", str(cert), "--tls-key", str(key)], cwd=tmp_path,
        stdout=log, stderr=subprocess.STDOUT, env={**base, "CARBONFED_ADMIN_TOKEN": E2E_ADMIN},
        start_new_session=True)
    url = f"https://{HOST}:{port}"
    trusted = ssl.create_default_context(cafile=str(cert))
    try:
        wait_for(lambda: httpx.get(f"{url}/v1/health", verify=trusted).status_code == 200,
                 "the broker over TLS", [server])
        with pytest.raises(httpx.TransportError):  # plain HTTP is not served
            httpx.get(f"http://{HOST}:{port}/v1/health")
    finally:
        kill(server)
        log.close()
    assert f"carbonfed broker on https://{HOST}:{port}" in (tmp_path / "broker.log").read_text()


async def test_a_site_cannot_queue_more_gpu_hours_than_its_quota(make_settings, wall):
    app = create_app(make_settings(max_queued_gpu_h_per_site=10.0), Clock(1.0, wall))
    async with served(app) as c:
        admin = bearer(ADMIN)
        await c.post("/v1/sites", json=site_body("north", {"V100": 8}))
        hour = 4.394774823323071 * 3600  # resnet50 steps in 1 h on one V100
        assert (await c.post("/v1/jobs", json=job_body("j8", "north", work_steps=8 * hour),
                             headers=admin)).status_code == 201
        r = await c.post("/v1/jobs", json=job_body("j3", "north", work_steps=3 * hour),
                         headers=admin)
        assert r.status_code == 422, r.text
        assert r.json()["message"] == ("body: site 'north' would have 11 queued GPU-hours "
                                       "(V100); the broker's limit is 10 per site")
        ok = await c.post("/v1/jobs", json=job_body("j2", "north"), headers=admin)
        assert ok.status_code == 201  # 1 GPU-hour more still fits
