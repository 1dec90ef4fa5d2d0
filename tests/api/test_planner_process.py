"""Planning rounds solved in a worker process (``planner_process``, the default).

The round really runs in another process (its pid is recorded and is a child of this one), it
reads from the database and plans exactly what the planning thread does, a worker that dies is
replaced, and a real broker's worker runs at a lower priority and ends with the broker, even a
killed one.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import signal
import sys
from collections.abc import AsyncIterator
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlalchemy import select

from api.app import create_app
from api.clock import Clock
from api.models import PlanRoundRow
from api.services import Services
from api.services.planner_pool import PLANNER_NICENESS, InlineSolver, ProcessSolver
from api.services.round_read import RoundQuery
from tests.api import processes as e2e
from tests.api.conftest import ADMIN, bearer, job_body, offer_body, served, site_body


@pytest.mark.anyio
async def test_a_round_is_solved_in_a_child_process(make_settings, wall):
    app = create_app(make_settings(planner_process=True), Clock(1.0, wall))
    async with served(app) as c:
        for site in ("north", "south"):
            token = (await c.post("/v1/sites", json=site_body(site))).json()["token"]
            r = await c.put(f"/v1/sites/{site}/offer", json=offer_body(1),
                            headers=bearer(token))
            assert r.status_code == 200
        jobs = [job_body(f"j{i}", ("north", "south")[i % 2]) for i in range(4)]
        r = await c.post("/v1/jobs/batch", json={"jobs": jobs}, headers=bearer(ADMIN))
        assert r.status_code in (200, 201)
        r = await c.post("/v1/plans", headers=bearer(ADMIN))
        assert r.status_code == 201
        assert len(r.json()["assigned"]) == 4
        children = {p.pid for p in multiprocessing.active_children()}
        with app.state.services.ctx.db.read() as s:
            solved_by = s.scalars(select(PlanRoundRow)).one().plan["solved_by_pid"]
        assert solved_by != os.getpid()
        assert solved_by in children


@contextlib.asynccontextmanager
async def tiny_broker(make_settings, wall) -> AsyncIterator[tuple[Services, RoundQuery]]:
    """A broker (rounds on demand) holding three sites that differ in price and carbon, each
    with a fresh offer, and twelve queued jobs of one or two GPUs; and the query of a round
    over them now."""
    settings = make_settings()
    app = create_app(settings, Clock(1.0, wall))
    async with served(app) as c:
        fleet = {"V100": 4, "P100": 2}
        for i in range(3):
            site = f"s{i}"
            r = await c.post("/v1/sites", json=site_body(site, fleet, pue=1.1 + 0.1 * i))
            offer = offer_body(1, fleet, price=40.0 + 15 * i, carbon=200.0 + 50 * i)
            r = await c.put(f"/v1/sites/{site}/offer", json=offer,
                            headers=bearer(r.json()["token"]))
            assert r.status_code == 200
        rng = np.random.default_rng(5)
        jobs = [job_body(f"j{i}", f"s{i % 3}", gpus=int(rng.integers(1, 3)),
                         work_steps=float(rng.uniform(2e4, 6e4))) for i in range(12)]
        r = await c.post("/v1/jobs/batch", json={"jobs": jobs}, headers=bearer(ADMIN))
        assert r.status_code in (200, 201)
        services: Services = app.state.services
        yield services, RoundQuery(settings.db_url, services.ctx.clock, settings.stale_after_s,
                                   settings.max_jobs_per_round)


@pytest.mark.anyio
async def test_the_worker_process_reads_and_plans_what_the_planning_thread_does(make_settings,
                                                                              wall):
    # No wall-clock budget: each round's solve is bounded by deterministic work
    # (optimization.SolverOptions), so both processes plan exactly the same whatever the
    # machine's load (with a 20 s budget this failed once on a loaded machine).
    async with tiny_broker(make_settings, wall) as (services, query):
        rules = services.planning.rules
        inline = InlineSolver(services.ctx.db).solve(rules, query, math.inf)
        solver = ProcessSolver()  # opens the database itself, from the query's URL
        try:
            remote = solver.solve(rules, query, math.inf)
        finally:
            solver.close()
    # fair share: every site's first job (ties: by id), then every site's second, ...
    queues = [sorted(f"s{site}/j{i}" for i in range(12) if i % 3 == site)  # keys: home/id
              for site in range(3)]
    turns = tuple(job for turn in zip(*queues, strict=True) for job in sorted(turn))
    assert (remote.considered, remote.queued, remote.held) == (
        inline.considered, inline.queued, inline.held) == (turns, 12, 0)
    here, there = inline.solved, remote.solved
    assert here.plan is not None and there.plan is not None
    assert here.pid == os.getpid() and there.pid != os.getpid()
    assert (there.status, there.method) == (here.status, here.method) == ("optimal", "milp")
    assert there.plan.assignments == here.plan.assignments and here.plan.starting_now
    assert there.plan.objective_usd == here.plan.objective_usd
    assert not here.plan.wall_clock_hit and not there.plan.wall_clock_hit
    assert there.estimates == here.estimates and here.estimates


@pytest.mark.anyio
async def test_a_worker_that_died_is_replaced_for_the_next_round(make_settings, wall):
    async with tiny_broker(make_settings, wall) as (services, query):
        solver = ProcessSolver()
        try:
            first = solver.start().result()
            os.kill(first, signal.SIGKILL)
            with pytest.raises(BrokenProcessPool):
                solver.solve(services.planning.rules, query, 20.0)
            again = solver.solve(services.planning.rules, query, 20.0).solved
            assert again.plan is not None and again.pid not in (first, os.getpid())
        finally:
            solver.close()


def planner_workers(pid: int) -> list[int]:
    """The planning worker processes among a process's live children (Linux /proc)."""
    found = []
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        with_args = Path(f"/proc/{child}/cmdline").read_bytes()
        if b"spawn_main" in with_args and alive(int(child)):
            found.append(int(child))
    return found


def alive(pid: int) -> bool:
    try:  # a zombie (dead, not yet reaped by whoever adopted it) counts as gone
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_real_brokers_worker_is_niced_and_ends_when_the_broker_is_killed(tmp_path,
                                                                          processes):
    port = e2e.free_port()
    env = {**os.environ, "CARBONFED_ADMIN_TOKEN": e2e.ADMIN}
    broker = e2e.carbonfed("serve", "--db", f"sqlite:///{tmp_path / 'broker.db'}", "--host",
                           e2e.HOST, "--port", str(port), env=env, log=tmp_path / "broker.log")
    processes.append(broker)
    found: list[int] = []

    def niced_worker() -> bool:  # started with the broker; niced once it has imported
        found[:] = [w for w in planner_workers(broker.pid)
                    if os.getpriority(os.PRIO_PROCESS, w) == PLANNER_NICENESS]
        return len(found) == 1

    e2e.wait_for(niced_worker, "the broker's planning worker", [broker])
    os.kill(broker.pid, signal.SIGKILL)  # only the broker, not its process group
    broker.wait(timeout=10)
    e2e.wait_for(lambda: not alive(found[0]), "the worker to end with the broker", [])


def test_a_broker_stopped_by_sigterm_leaves_no_semaphore_behind(tmp_path, processes):
    """Its worker pool is shut down and waited for: multiprocessing's resource tracker, which
    outlives the broker, finds nothing to clean up (it used to warn of 5 leaked semaphores at
    every stop)."""
    port = e2e.free_port()
    env = {**os.environ, "CARBONFED_ADMIN_TOKEN": e2e.ADMIN}
    log = tmp_path / "broker.log"
    broker = e2e.carbonfed("serve", "--db", f"sqlite:///{tmp_path / 'broker.db'}", "--host",
                           e2e.HOST, "--port", str(port), env=env, log=log)
    processes.append(broker)
    e2e.wait_for(lambda: len(planner_workers(broker.pid)) == 1, "the planning worker", [broker])
    e2e.wait_for(lambda: httpx.get(f"http://{e2e.HOST}:{port}/v1/health").status_code == 200,
                 "the broker", [broker])
    broker.send_signal(signal.SIGTERM)
    broker.wait(timeout=30)

    def group_gone() -> bool:  # the tracker too: it writes its warning as it ends
        try:
            os.killpg(broker.pid, 0)
        except ProcessLookupError:
            return True
        return False

    e2e.wait_for(group_gone, "the broker's processes to end", [])
    assert "leaked semaphore" not in log.read_text()
