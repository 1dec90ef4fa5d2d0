"""The simple things a federation could do instead of the MILP (DESIGN.md, "Baselines").

All start jobs now or leave them queued, in submit order, never over-filling a GPU pool. On a
chosen site each takes the fastest GPU type with room (the natural local choice).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from broker.federation import Federation
from broker.jobs import Job
from broker.offers import RoundOffers
from broker.options import (
    Schedule,
    at_starts,
    cheapest_schedule,
    job_runs,
    meets_deadline,
    run_of,
)
from broker.planner import Assignment
from broker.policies import Policy
from sites import scaling
from sites.timegrid import slot_index, slots_until, window_mean


class _Placer:
    """Tracks free GPUs over the horizon while a baseline places a round's queue one by one.

    Built once per round for the whole queue: the rates and the slots each job would hold on
    each pool are computed as (jobs, pools) arrays up front, and "fits now" reads a running
    minimum of the free GPUs over the horizon, updated only for the pool a placement uses.
    """

    def __init__(self, federation: Federation, offers: RoundOffers, queue: Sequence[Job]) -> None:
        self.federation = federation
        self.offers = offers
        self.queue = queue
        self.free = offers.free_gpus.astype(float).copy()
        # least free GPUs over the first k + 1 slots of each pool, at [pool, k]
        self.least_free = np.minimum.accumulate(self.free, axis=1)
        self.rates = federation.throughput(list(queue))  # whole jobs, on their own GPU counts
        self.gpus = np.array([j.gpus for j in queue], dtype=int)
        self.home = np.array([federation.site_index[j.home_site] for j in queue], dtype=int)
        self.slots = self._occupied_slots()
        self._slots_on: dict[tuple[int, int, int], int] = {}

    def _occupied_slots(self) -> np.ndarray:
        """Slots each job would hold each pool it fits (its run's, ``broker.options``, on its
        own GPU count: baselines do not choose one), clipped to [1, horizon]; 1 on pools it
        does not fit, where it is never placed."""
        runs = job_runs(self.federation, self.queue)
        runs = runs.take(np.flatnonzero(runs.gpus == self.gpus[runs.job]))
        held = at_starts(runs, np.zeros(1, dtype=int), self.offers.slot_h).slots
        slots = np.ones((len(self.queue), self.free.shape[0]), dtype=int)
        slots[runs.job, runs.resource] = np.minimum(held, self.free.shape[1])
        return slots

    def fitting(self, i: int) -> np.ndarray:
        """Pools where job i runs and has room now, for all the slots it would hold them."""
        pools = np.arange(self.free.shape[0])
        room = self.least_free[pools, self.slots[i] - 1] >= self.gpus[i]
        return room & (self.rates[i] > 0)

    def fastest(self, i: int, candidates: np.ndarray) -> int | None:
        """Among ``candidates`` (a pool mask), the pool where job i runs fastest; the first on
        ties (pools in federation order); None if there is none."""
        if not candidates.any():
            return None
        return int(np.argmax(np.where(candidates, self.rates[i], -np.inf)))

    def fastest_with_room(self, i: int, site: int) -> int | None:
        """Pool at ``site`` where job i runs fastest and fits now; None if none."""
        return self.fastest(i, self.fitting(i) & (self.federation.resource_site == site))

    def place_schedule(self, i: int, resource: int, schedule: Schedule) -> Assignment | None:
        """Job i on ``resource`` for an interrupted run (hours from now), if the pool has room
        in every slot the run touches; None if not."""
        horizon = self.free.shape[1]
        held = np.zeros(horizon, dtype=bool)
        for a, b in schedule.segments_h:
            held[slot_index(a, self.offers.slot_h):min(slots_until(b, self.offers.slot_h),
                                                       horizon)] = True
        if (self.free[resource, held] < self.gpus[i]).any():
            return None
        self.free[resource, held] -= self.gpus[i]
        self.least_free[resource] = np.minimum.accumulate(self.free[resource])
        site_i, gpu = self.federation.resources[resource]
        now = self.offers.now_h
        return Assignment(self.queue[i].id, self.federation.sites[site_i].id, gpu,
                          int(self.gpus[i]), 0, now,
                          tuple((now + a, now + b) for a, b in schedule.segments_h))

    def place(self, i: int, resource: int, gpus: int | None = None) -> Assignment:
        """Job i on ``resource`` from now, on its own count or ``gpus`` (its run's slots)."""
        count = int(self.gpus[i]) if gpus is None else gpus
        self.free[resource, : self.slots_on(i, resource, count)] -= count
        self.least_free[resource] = np.minimum.accumulate(self.free[resource])
        site_i, gpu = self.federation.resources[resource]
        return Assignment(self.queue[i].id, self.federation.sites[site_i].id, gpu, count, 0,
                          self.offers.now_h)

    def slots_on(self, i: int, resource: int, gpus: int) -> int:
        """Slots job i holds ``resource`` for on ``gpus`` GPUs from now (1 to the horizon)."""
        if gpus == self.gpus[i]:
            return int(self.slots[i, resource])
        key = (i, resource, gpus)  # afs-p asks again at every step of its loop
        if key not in self._slots_on:
            run = run_of(self.federation, self.queue[i], resource, gpus)
            held = at_starts(run, np.zeros(1, dtype=int), self.offers.slot_h).slots
            self._slots_on[key] = int(min(held[0], self.free.shape[1]))
        return self._slots_on[key]


class IsolatedPolicy(Policy):
    """No federation: every site runs its own jobs as they come (first come, first served,
    later jobs may start when an earlier one does not fit)."""

    home_only = True

    def decide(self, offers: RoundOffers, queue: Sequence[Job]) -> Sequence[Assignment]:
        placer = _Placer(self.federation, offers, queue)
        out = []
        for i in range(len(queue)):
            r = placer.fastest_with_room(i, int(placer.home[i]))
            if r is not None:
                out.append(placer.place(i, r))
        return out


class _GreedyNowPolicy(Policy):
    """Each job goes to the site with the lowest signal *now* that has room for it."""

    def signal_now(self, offers: RoundOffers) -> np.ndarray:
        raise NotImplementedError

    def decide(self, offers: RoundOffers, queue: Sequence[Job]) -> Sequence[Assignment]:
        placer = _Placer(self.federation, offers, queue)
        site_order = np.argsort(self.signal_now(offers), kind="stable")
        site_rank = np.empty(len(site_order), dtype=int)
        site_rank[site_order] = np.arange(len(site_order))
        pool_rank = site_rank[self.federation.resource_site]
        out = []
        for i in range(len(queue)):
            # the first site in signal order with a pool that fits, then its fastest pool
            fits = placer.fitting(i)
            if not fits.any():
                continue
            r = placer.fastest(i, fits & (pool_rank == pool_rank[fits].min()))
            if r is not None:
                out.append(placer.place(i, r))
        return out


class GreedyCarbonPolicy(_GreedyNowPolicy):
    """"Best location now" on grid carbon intensity (the rule of carbon-aware SDKs)."""

    def signal_now(self, offers: RoundOffers) -> np.ndarray:
        return offers.carbon_g_per_kwh[:, 0]


class GreedyPricePolicy(_GreedyNowPolicy):
    """"Best location now" on energy price."""

    def signal_now(self, offers: RoundOffers) -> np.ndarray:
        return offers.price_usd_per_mwh[:, 0]


class TemporalPolicy(Policy):
    """Jobs stay home but wait for the cleanest window within their slack.

    A job's latest start is its deadline minus its run time, or, with no deadline, its submit
    time plus the config's ``max_wait_h``. Each round it picks, among the horizon starts up to
    then, the one with the lowest mean carbon intensity over its run; it starts if that is now
    and it fits.
    """

    home_only = True

    def decide(self, offers: RoundOffers, queue: Sequence[Job]) -> Sequence[Assignment]:
        placer = _Placer(self.federation, offers, queue)
        return self.wait_for_cleanest(placer, np.ones(len(queue), dtype=bool))

    def wait_for_cleanest(self, placer: _Placer, which: np.ndarray) -> list[Assignment]:
        """Start the jobs of ``placer``'s queue selected by ``which`` whose cleanest start is
        now and that fit now."""
        offers, queue = placer.offers, placer.queue
        if not len(queue):
            return []
        fed = self.federation
        slot_h, horizon = offers.slot_h, offers.horizon_slots
        at_home = fed.resource_site[None, :] == placer.home[:, None]
        best_rate = np.where(at_home, fed.throughput(list(queue)), 0.0).max(axis=1, initial=0.0)
        runs = best_rate > 0
        work = np.array([j.work_steps for j in queue], dtype=float)
        runtime_h = np.where(runs, scaling.runtime_h(work, best_rate), 0.0)
        latest_h = np.array([
            j.deadline_h - runtime_h[i] if j.deadline_h is not None
            else j.submit_h + self.config.max_wait_h
            for i, j in enumerate(queue)
        ])
        n_starts = np.clip(np.floor((latest_h - offers.now_h) / slot_h) + 1, 1,
                           horizon).astype(int)
        # Every job's candidate starts in one window_mean call, one segment per job.
        first = np.concatenate([[0], np.cumsum(n_starts)[:-1]])
        job_of = np.repeat(np.arange(len(queue)), n_starts)
        starts_h = (np.arange(len(job_of)) - first[job_of]) * slot_h
        carbon = window_mean(offers.carbon_g_per_kwh, placer.home[job_of], starts_h,
                             starts_h + runtime_h[job_of], slot_h)
        # now is the cleanest start when it is the (first) minimum of its job's segment
        now_cleanest = carbon[first] == np.minimum.reduceat(carbon, first)
        out = []
        for i in np.flatnonzero(runs & now_cleanest & which):
            r = placer.fastest_with_room(int(i), int(placer.home[i]))
            if r is not None:
                out.append(placer.place(int(i), r))
        return out


class TemporalPreemptivePolicy(TemporalPolicy):
    """Jobs stay home; a preemptible job runs in the cleanest slots before its deadline and
    pauses in between: the interrupting strategy of "Let's Wait Awhile" (Wiesner et al.,
    Middleware 2021), ``broker.options.cheapest_schedule`` on the home grid's carbon intensity.

    Each round, for each queued preemptible job (in submit order) on its fastest pool at home:
    the cleanest schedule of its run over the horizon up to its deadline (or, without one, its
    submit time plus ``max_wait_h`` plus its run time); it starts when that schedule's first
    slot is now and the pool has room in every slot of it, and runs the schedule. A job whose
    deadline no schedule meets starts now, uninterrupted, when it fits. Jobs that are not
    preemptible wait for their cleanest window as under ``temporal``.
    """

    def decide(self, offers: RoundOffers, queue: Sequence[Job]) -> Sequence[Assignment]:
        placer = _Placer(self.federation, offers, queue)
        preemptible = np.array([j.preemptible for j in queue], dtype=bool)
        out = []
        for i in np.flatnonzero(preemptible):
            assignment = self._interrupted(placer, int(i))
            if assignment is not None:
                out.append(assignment)
        return out + self.wait_for_cleanest(placer, ~preemptible)

    def _interrupted(self, placer: _Placer, i: int) -> Assignment | None:
        fed, offers, job = self.federation, placer.offers, placer.queue[i]
        home = int(placer.home[i])
        r = placer.fastest(i, (fed.resource_site == home) & (placer.rates[i] > 0)
                           & (fed.resource_total_gpus >= job.gpus))
        if r is None:
            return None
        runtime_h = job.runtime_h(float(placer.rates[i, r]))
        end_h = (job.deadline_h if job.deadline_h is not None
                 else job.submit_h + self.config.max_wait_h + runtime_h)
        usable = slots_until(end_h - offers.now_h, offers.slot_h)
        schedule = cheapest_schedule(offers.carbon_g_per_kwh[home], runtime_h,
                                     job.checkpoint_overhead_h, offers.slot_h, usable)
        if schedule is None or not meets_deadline(offers.now_h + schedule.finish_h,
                                                  job.deadline_h):
            fits = placer.fastest_with_room(i, home)  # too late to wait: run now if it can
            return None if fits is None else placer.place(i, fits)
        if slot_index(schedule.segments_h[0][0], offers.slot_h) != 0:
            return None  # its cleanest slots start later: wait
        return placer.place_schedule(i, r, schedule)


class AfsPPolicy(Policy):
    """Per site, the GPUs go to the jobs that gain most throughput per unit of work left: the
    rule of AFS-P (Apathetic Future Share, Hwang et al., "Elastic Resource Sharing for
    Distributed Deep Learning", NSDI 2021), which CoDDL re-applies while jobs run.

    Each round, at each site, for the jobs queued there (jobs stay home): GPUs are handed out
    one step at a time, each step to the job with the largest marginal throughput gain per GPU
    per step of work left, ``(T(k') - T(k)) / (k' - k) / work``, where k is what the job holds
    so far this round (0 at first) and k' its next count (``Job.gpu_counts``: a fixed job's
    only step is 0 to its own count), while its pool has room for k' GPUs over the run's slots
    (its first step takes the fastest pool at home with room). Jobs that got GPUs start on
    them. The short-job priority
    (work left) and the efficiency priority (marginal gain) are the two the paper balances.
    Here running jobs keep their GPUs: elastic resizing (the re-adjustment) is not modelled.
    """

    home_only = True

    def decide(self, offers: RoundOffers, queue: Sequence[Job]) -> Sequence[Assignment]:
        placer = _Placer(self.federation, offers, queue)
        fed = self.federation
        out = []
        for site in range(len(fed.sites)):
            mine = [i for i in range(len(queue)) if placer.home[i] == site]
            at_site = fed.resource_site == site
            pool: dict[int, int] = {}  # a job's pool, from its first step on
            held = dict.fromkeys(mine, 0)
            taken = np.zeros(len(fed.resources))  # GPUs handed out this round, per pool
            while True:
                best, best_score = None, 0.0
                for i in mine:
                    job = queue[i]
                    nxt = next((k for k in job.gpu_counts if k > held[i]), None)
                    if nxt is None:
                        continue
                    r = pool.get(i)
                    if r is None:  # the fastest pool at home with room for its first step
                        room = np.array([
                            placer.least_free[q, placer.slots_on(i, q, nxt) - 1] - taken[q]
                            >= nxt if at_site[q] and placer.rates[i, q] > 0 else False
                            for q in range(len(fed.resources))])
                        r = placer.fastest(i, room)
                        if r is None:
                            continue
                    elif (placer.least_free[r, placer.slots_on(i, r, nxt) - 1] - taken[r]
                          < nxt - held[i]):
                        continue
                    gain = self._throughput(job, r, nxt) - self._throughput(job, r, held[i])
                    score = gain / (nxt - held[i]) / job.work_steps
                    if score > best_score:
                        best, best_score = (i, nxt, r), score
                if best is None:
                    break
                i, nxt, r = best
                pool[i] = r
                taken[r] += nxt - held[i]
                held[i] = nxt
            for i, k in held.items():
                if k > 0:
                    out.append(placer.place(i, pool[i], k))
        return out

    def _throughput(self, job: Job, resource: int, gpus: int) -> float:
        if gpus == 0:
            return 0.0
        return float(self.federation.throughput_row(job.job_type, job.gpu_types,
                                                    gpus)[resource])


BASELINES: dict[str, type[Policy]] = {
    "isolated": IsolatedPolicy,
    "greedy-carbon": GreedyCarbonPolicy,
    "greedy-price": GreedyPricePolicy,
    "temporal": TemporalPolicy,
    "temporal-preemptive": TemporalPreemptivePolicy,
    "afs-p": AfsPPolicy,
}
