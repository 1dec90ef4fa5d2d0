"""Planning rounds solved in a worker process (``planner_process``, the default).

The round really runs in another process (its pid is recorded and is a child of this one), it
plans exactly what the planning thread plans, a worker that dies is replaced, and a real
broker's worker runs at a lower priority and ends with the broker, even a killed one.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlalchemy import select

from api.app import create_app
from api.clock import Clock
from api.models import PlanRoundRow
from api.services.planner_pool import PLANNER_NICENESS, InlineSolver, ProcessSolver
from broker.jobs import Job
from broker.live import SiteOffer
from broker.live_round import RoundRules, RoundTask
from broker.planner import PlannerConfig
from optimization import SolverOptions
from sites import DEFAULT_GPUS, SiteSpec, default_affinity
from tests.api import processes as e2e
from tests.api.conftest import ADMIN, bearer, job_body, offer_body, site_body


@pytest.mark.anyio
async def test_a_round_is_solved_in_a_child_process(make_settings, wall):
    app = create_app(make_settings(planner_process=True), Clock(1.0, wall))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://broker"
    ) as c:
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


def tiny_task() -> tuple[RoundRules, RoundTask]:
    sites = [SiteSpec(f"s{i}", f"z{i}", {"V100": 4, "P100": 2}, 1.1 + 0.1 * i, 0.02)
             for i in range(3)]
    offers = {s.id: SiteOffer(s.id, 0.0, 1.0, {g: [n] * 6 for g, n in s.gpus.items()},
                              [40.0 + 15 * i] * 6, [200.0 + 50 * i] * 6)
              for i, s in enumerate(sites)}
    rng = np.random.default_rng(5)
    queue = [Job(f"j{i}", f"s{i % 3}", "resnet50", int(rng.integers(1, 3)),
                 float(rng.uniform(2e4, 6e4)), 0.0) for i in range(12)]
    config = PlannerConfig(solver=SolverOptions(20.0, 0.0, 1), method="full")
    rules = RoundRules(config, dict(DEFAULT_GPUS), default_affinity(), 10.0, 1.0, 6, 32)
    return rules, RoundTask(sites, frozenset(offers), offers, queue, 0.0)


def test_the_worker_process_plans_what_the_planning_thread_plans():
    rules, task = tiny_task()
    inline = InlineSolver().solve(rules, task, 20.0)
    solver = ProcessSolver()
    try:
        remote = solver.solve(rules, task, 20.0)
    finally:
        solver.close()
    assert inline.plan is not None and remote.plan is not None
    assert inline.pid == os.getpid() and remote.pid != os.getpid()
    assert (remote.status, remote.method) == (inline.status, inline.method) == ("optimal", "milp")
    assert remote.plan.assignments == inline.plan.assignments
    assert remote.plan.objective_usd == pytest.approx(inline.plan.objective_usd, rel=1e-12)
    assert remote.estimates == inline.estimates and inline.estimates


def test_a_worker_that_died_is_replaced_for_the_next_round():
    rules, task = tiny_task()
    solver = ProcessSolver()
    try:
        first = solver.start().result()
        os.kill(first, signal.SIGKILL)
        with pytest.raises(BrokenProcessPool):
            solver.solve(rules, task, 20.0)
        again = solver.solve(rules, task, 20.0)
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
