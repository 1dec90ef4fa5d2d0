"""The site agent against a scripted broker (httpx.MockTransport) and a fake clock."""

from __future__ import annotations

import json

import httpx
import pytest

from sites import ConstantSignal, ListSignal, SiteSpec
from sites.agent import (
    AgentConfig,
    AgentError,
    Backoff,
    IncompatibleBrokerError,
    LocalJob,
    SiteAgent,
)

SITE = SiteSpec("north", "hydro", {"V100": 4, "K80": 2}, pue=1.1)


class FakeTime:
    def __init__(self) -> None:
        self.now_s = 100.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now_s

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now_s += seconds


def config(tmp_path, **extra) -> AgentConfig:
    values = dict(site=SITE, carbon_g_per_kwh=ListSignal((100.0, 200.0, 300.0)),
                  price_usd_per_mwh=ConstantSignal(50.0), broker_url="http://broker",
                  state_file=tmp_path / "state.json", horizon_slots=4, time_scale=3600.0,
                  signal_hours=3, backoff=Backoff(0.1, 1.0, 5.0))
    values.update(extra)
    return AgentConfig(**values)


def agent(tmp_path, handler, clock: FakeTime, **extra) -> SiteAgent:
    client = httpx.Client(base_url="http://broker", transport=httpx.MockTransport(handler))
    return SiteAgent(config(tmp_path, **extra), client, clock.monotonic, clock.sleep)


def test_registers_after_the_broker_comes_back_with_growing_jittered_delays(tmp_path):
    clock, calls = FakeTime(), []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if len(calls) <= 3:
            raise httpx.ConnectError("refused", request=request)
        if len(calls) == 4:
            return httpx.Response(503)
        return httpx.Response(201, json={"token": "tok", "site": {}})

    a = agent(tmp_path, handler, clock)
    a.ensure_registered()
    assert a.state.token == "tok"
    assert len(clock.slept) == 4
    for attempt, delay in enumerate(clock.slept):  # 0.1 x 2^k, capped at 1, jitter in [.5, 1]
        assert 0.5 * min(1.0, 0.1 * 2**attempt) <= delay <= min(1.0, 0.1 * 2**attempt)
    assert json.loads((tmp_path / "state.json").read_text())["token"] == "tok"


def test_gives_up_after_the_retry_budget(tmp_path):
    clock = FakeTime()

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(AgentError, match="unreachable"):
        agent(tmp_path, handler, clock).ensure_registered()
    assert 5.0 <= sum(clock.slept) <= 6.0


def test_resumes_with_its_stored_token(tmp_path):
    (tmp_path / "state.json").write_text(json.dumps(
        {"site_id": "north", "broker_url": "http://broker", "token": "kept", "sequence": 7}))
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path, request.headers.get("authorization")))
        return httpx.Response(200, json={})

    a = agent(tmp_path, handler, FakeTime())
    a.ensure_registered()
    assert seen == [("GET", "/v1/sites/north", "Bearer kept")]
    assert a.state.sequence == 7


def test_offer_counts_local_jobs_and_reads_the_signals(tmp_path):
    clock, bodies = FakeTime(), []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json={})

    a = agent(tmp_path, handler, clock)
    a.state.token = "tok"
    clock.now_s += 1.0  # one simulated hour later: the signals have moved on by a slot
    # running, 2 simulated hours left; waiting (counted from now for its whole 1.5 h)
    a.jobs[1] = LocalJob(1, "j1", "V100", 3, 5.0, started_s=clock.now_s - 3.0,
                         ends_s=clock.now_s + 2.0)
    a.jobs[2] = LocalJob(2, "j2", "V100", 1, 1.5)
    assert a.send_offer()
    body = bodies[-1]
    assert body["sequence"] == 1
    assert body["free_gpus"] == {"V100": [0, 0, 4, 4], "K80": [2, 2, 2, 2]}
    assert body["carbon_g_per_kwh"] == [200.0, 300.0, 100.0, 200.0]  # repeats past the data
    assert body["price_usd_per_mwh"] == [50.0] * 4


def test_a_stale_sequence_jumps_to_the_brokers(tmp_path):
    answers = iter([httpx.Response(409, json={"current_sequence": 41}),
                    httpx.Response(200, json={})])
    sent = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content)["sequence"])
        return next(answers)

    a = agent(tmp_path, handler, FakeTime())
    a.state.token = "tok"
    assert not a.send_offer()
    assert a.send_offer()
    assert sent == [1, 42]


def test_takes_acknowledges_runs_and_completes_jobs(tmp_path):
    clock, posted = FakeTime(), []
    assignment = {"id": 5, "gpu_type": "K80", "transfer_h": 0.5, "runtime_h": 1.5,
                  "job": {"id": "j5", "gpus": 2}}
    withdrawn = {**assignment, "id": 6, "job": {"id": "j6", "gpus": 1}}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":  # the broker lists only live assignments
            live = [assignment] if posted else [assignment, withdrawn]
            return httpx.Response(200, json={"assignments": live})
        posted.append(request.url.path.rsplit("/", 2)[-2:])
        return httpx.Response(409 if "/6/" in request.url.path else 200, json={})

    a = agent(tmp_path, handler, clock)
    a.state.token = "tok"
    assert a.fetch_assignments() == 1
    assert a.fetch_assignments() == 0  # already held
    a.run_jobs()
    assert posted == [["5", "ack"], ["6", "ack"], ["5", "start"]]
    clock.now_s += 1.9  # 2 simulated hours at 3600x take 2 s
    a.run_jobs()
    assert a.completed == []
    clock.now_s += 0.2
    a.run_jobs()
    assert a.completed == ["j5"] and posted[-1] == ["5", "complete"]


def test_the_state_file_is_private(tmp_path):
    a = agent(tmp_path, lambda r: httpx.Response(201, json={"token": "secret", "site": {}}),
              FakeTime())
    (tmp_path / "state.json.tmp").write_text("{}")  # a leftover, world-readable
    (tmp_path / "state.json.tmp").chmod(0o644)
    a.ensure_registered()
    assert (tmp_path / "state.json").stat().st_mode & 0o777 == 0o600


def test_a_different_slot_h_stops_the_agent_before_it_registers(tmp_path):
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path))
        if request.url.path == "/v1/health":
            return httpx.Response(200, json={"status": "ok", "slot_h": 0.5})
        return httpx.Response(201, json={"token": "t", "site": {}})

    with pytest.raises(IncompatibleBrokerError, match=r"slot_h 1 differs from the broker's 0.5"):
        agent(tmp_path, handler, FakeTime()).run(duration_s=5)
    assert seen == [("GET", "/v1/health")]
    assert not (tmp_path / "state.json").exists()


def test_duration_is_honoured_while_the_broker_is_unreachable_and_each_retry_is_said(tmp_path):
    clock, lines = FakeTime(), []

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    a = SiteAgent(config(tmp_path, backoff=Backoff(0.5, 1.0, 300.0)),
                  httpx.Client(base_url="http://broker", transport=httpx.MockTransport(handler)),
                  clock.monotonic, clock.sleep, say=lines.append)
    a.run(duration_s=3.0)  # returns: no AgentError, no 300 s of silent retries
    assert 3.0 <= clock.now_s - 100.0 <= 3.01
    assert lines and all(line.startswith("broker unreachable (ConnectError: refused; "
                                         "retrying, next try in ") for line in lines)


def test_a_restarted_agent_re_adopts_its_jobs_before_its_first_offer(tmp_path):
    (tmp_path / "state.json").write_text(json.dumps(
        {"site_id": "north", "broker_url": "http://broker", "token": "kept", "sequence": 3}))
    clock, calls, lines = FakeTime(), [], []
    held = {"id": 7, "status": "running", "gpu_type": "V100", "transfer_h": 0.0,
            "runtime_h": 10.0, "job": {"id": "j7", "gpus": 3}}

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        calls.append((request.method, path))
        if path == "/v1/health":
            return httpx.Response(200, json={"slot_h": 1.0})
        if path.endswith("/assignments"):
            return httpx.Response(200, json={"assignments": [held]})
        if path.endswith("/offer"):
            offered.append(json.loads(request.content))
            return httpx.Response(200, json={"revoked": []})
        return httpx.Response(200, json={})

    offered: list[dict] = []
    a = SiteAgent(config(tmp_path, offer_interval_s=100.0),
                  httpx.Client(base_url="http://broker", transport=httpx.MockTransport(handler)),
                  clock.monotonic, clock.sleep, say=lines.append)
    a.run(duration_s=0.5)
    first_offer = calls.index(("PUT", "/v1/sites/north/offer"))
    assert ("GET", "/v1/sites/north/assignments") in calls[:first_offer]
    assert not any(path.endswith("/ack") for _, path in calls)  # acknowledged long ago
    assert offered[0]["free_gpus"]["V100"][0] == 1  # 4 - the 3 it still runs
    assert offered[0]["holding"] == [7]
    assert "resumed as site north" in lines
    assert any(line.startswith("job j7 re-adopted") for line in lines)


def test_a_revoked_lease_drops_the_job(tmp_path):
    lines: list[str] = []
    clock = FakeTime()
    client = httpx.Client(base_url="http://broker", transport=httpx.MockTransport(
        lambda r: httpx.Response(200, json={"revoked": [5]})))
    a = SiteAgent(config(tmp_path), client, clock.monotonic, clock.sleep, say=lines.append)
    a.state.token = "tok"
    a.jobs[5] = LocalJob(5, "j5", "V100", 2, 3.0)
    assert a.send_offer()
    assert a.jobs == {}
    assert "job j5 withdrawn by the broker (revoked): stopped" in lines


def test_heartbeats_between_sparse_offers_keep_the_site_alive(tmp_path):
    """Offers every 60 s, heartbeats every 10 s in between (the broker takes a site silent for
    its heartbeat timeout, 40 s by default, for dead); a heartbeat's revoked leases drop."""
    clock, calls = FakeTime(), []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append((clock.now_s, request.method, request.url.path))
        if request.url.path.endswith("/heartbeat"):
            assert json.loads(request.content) == {"holding": [5] if 5 in a.jobs else []}
            return httpx.Response(200, json={"renewed": [], "revoked": [5]})
        if request.url.path.endswith("/offer"):
            return httpx.Response(200, json={"revoked": []})
        return httpx.Response(200, json={"assignments": []})

    a = agent(tmp_path, handler, clock, offer_interval_s=60.0, heartbeat_interval_s=10.0,
              poll_interval_s=100.0)
    a.state.token = "tok"
    a.jobs[5] = LocalJob(5, "j5", "V100", 2, 300.0)
    a._loop(clock.now_s + 65.0, None)
    sent = [(t - 100.0, path.rsplit("/", 1)[1]) for t, method, path in calls
            if method != "GET"]
    offers = [t for t, what in sent if what == "offer"]
    beats = [t for t, what in sent if what == "heartbeat"]
    assert offers[:2] == [0.0, pytest.approx(60.0, abs=0.3)]
    assert len(beats) == 5 and all(
        b - p <= 10.3 for p, b in zip([0.0, *beats[:-1]], beats, strict=True))
    assert 5 not in a.jobs  # revoked by the first heartbeat


def test_a_finished_job_holds_its_gpus_now_until_its_completion_is_reported(tmp_path):
    """Listed in ``holding`` until reported, its GPUs are not offered free now (the broker
    refuses free now plus held beyond the fleet); later slots are free."""
    clock = FakeTime()
    a = agent(tmp_path, lambda r: httpx.Response(200), clock)
    job = LocalJob(5, "j5", "V100", 3, 1.0)
    job.started_s, job.ends_s = clock.now_s - 10.0, clock.now_s - 1.0  # ended, unreported
    a.jobs[5] = job
    assert a.free_gpus(clock.now_s)["V100"] == [1, 4, 4, 4]


@pytest.mark.parametrize(("directive", "said"), [("pause", "paused"),
                                               ("resize", "stopped to resize")])
def test_a_directive_stops_the_job_and_reports_its_progress(tmp_path, directive, said):
    """A job started 30 min ago with 30 min to go (the simulated executor's clock): on the
    broker's word (a pause, or a resize: the job comes back as a new assignment) it stops,
    reports half its run done at the directive's route, and leaves the agent's jobs (its
    GPUs are free in the next offer)."""
    clock, posted = FakeTime(), []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json={"assignments": [{"id": 5, "directive": directive}]})
        posted.append((request.url.path, json.loads(request.content)))
        return httpx.Response(200, json={})

    lines: list[str] = []
    a = agent(tmp_path, handler, clock)
    a.say = lines.append
    a.state.token = "tok"
    job = LocalJob(5, "j5", "V100", 2, 1.0)
    job.started_s, job.ends_s = clock.now_s - 1800.0, clock.now_s + 1800.0
    a.jobs[5] = job
    assert a.fetch_assignments() == 0
    assert posted == [(f"/v1/sites/north/assignments/5/{directive}", {"progress": 0.5})]
    assert a.jobs == {} and job.stopping
    assert f"job j5 {said} on the broker's word at 50%" in lines
