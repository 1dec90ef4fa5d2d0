"""A live planning round's compute, pure and picklable: what the broker read -> what to start.

The live broker reads sites, offers and queued jobs from its database, hands them here as one
``RoundTask`` and records the ``SolvedRound`` it gets back. ``solve_round`` builds the round's
federation and offers over every usable site, gives each job a few candidate sites
(``broker.live.candidate_sites``), plans anytime (``broker.live.anytime_plan``) and estimates
what every job starting now will cost. Inputs and outputs are small frozen dataclasses, so the
round can be solved in another process (``api.services.planner_pool``), away from the API's GIL.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from broker.jobs import Job
from broker.live import (
    Reservation,
    RunEstimate,
    SiteOffer,
    anytime_plan,
    candidate_sites,
    estimate_runs,
    live_federation,
    round_offers,
    shortlist_sites,
)
from broker.planner import Plan, PlannerConfig
from sites.affinity import AffinityMatrix
from sites.gpus import GpuType
from sites.spec import SiteSpec


@dataclass(frozen=True)
class RoundRules:
    """What every round of one broker shares (from its settings)."""

    config: PlannerConfig
    gpu_catalog: Mapping[str, GpuType]
    affinity: AffinityMatrix
    transfer_gbps: float
    slot_h: float
    horizon_slots: int
    max_sites: int | None  # sites given GPU pools (None: every usable one)
    spare_sites: int  # each job's sites beyond its fill (``broker.live.candidate_sites``)


@dataclass(frozen=True)
class RoundTask:
    """One round's inputs, as read from the database."""

    sites: Sequence[SiteSpec]
    usable: frozenset[str]
    offers: Mapping[str, SiteOffer]
    queue: Sequence[Job]
    now_h: float
    reservations: Sequence[Reservation] = ()
    # running preemptible jobs the round may pause: their GPUs, back in the round's capacity
    # (the jobs are in ``queue`` with their state, ``broker.jobs.InFlight``)
    releases: Sequence[Reservation] = ()


@dataclass(frozen=True)
class SolvedRound:
    plan: Plan | None
    status: str
    method: str = "milp"
    estimates: Mapping[str, RunEstimate] | None = None  # job id -> its run, jobs starting now
    pid: int = 0  # the process that solved the round


def solve_round(rules: RoundRules, task: RoundTask, budget_s: float,
                deadline_s: float | None = None) -> SolvedRound:
    """The round's plan within ``budget_s`` (and before ``deadline_s`` on ``time.time()``, if
    given: the caller's budget also covers the trip to a worker process)."""
    begun = time.perf_counter()
    if deadline_s is not None:
        budget_s = min(budget_s, deadline_s - time.time())
    usable = shortlist_sites(task.offers, set(task.usable), rules.max_sites,
                             rules.config.carbon_price_usd_per_t)
    fed = live_federation(task.sites, usable, rules.gpu_catalog, rules.affinity,
                          rules.transfer_gbps)
    round_ = round_offers(fed, task.offers, task.now_h, rules.slot_h, rules.horizon_slots,
                          task.reservations, task.releases)
    pid = os.getpid()
    if not task.queue:
        return SolvedRound(None, "empty-queue", pid=pid)
    if not fed.resources or not np.asarray(round_.free_gpus).any():
        return SolvedRound(None, "no-capacity", pid=pid)
    queue = candidate_sites(fed, round_, task.queue, rules.config, rules.spare_sites)
    found = anytime_plan(fed, round_, queue, rules.config,
                         budget_s - (time.perf_counter() - begun))
    by_id = {j.id: j for j in task.queue}
    starting = [a for a in found.plan.starting_now if not _running(by_id[a.job_id])]
    estimates = dict(zip([a.job_id for a in starting], estimate_runs(
        fed, round_, [(by_id[a.job_id], a.site_id, a.gpu_type, a.start_offset, a.gpus)
                      for a in starting]), strict=True))
    return SolvedRound(found.plan, found.status, found.method, estimates, pid)


def _running(job: Job) -> bool:
    """A running job the round replanned: it goes on or is paused, never assigned anew."""
    return job.state is not None and job.state.computing


def worker_init(niceness: int) -> None:
    """A planning worker's initializer: yield the CPU to the API (requests before rounds), and
    exit when the broker does, even if it was killed (nothing else would end the worker: it
    holds both ends of its task queue, so it never sees the broker's end close)."""
    os.nice(niceness)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), daemon=True,
                         name="carbonfed-planner-watch").start()


def _exit_with(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(1)
