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
from broker.planner import Assignment
from broker.policies import Policy
from sites.timegrid import window_mean


class _Placer:
    """Tracks free GPUs over the horizon while a baseline places jobs one by one."""

    def __init__(self, federation: Federation, offers: RoundOffers) -> None:
        self.federation = federation
        self.offers = offers
        self.free = offers.free_gpus.astype(float).copy()

    def occupied_slots(self, job: Job, resource: int, rate: float) -> int:
        site = self.federation.resource_site[resource]
        home = self.federation.site_index[job.home_site]
        hours = job.runtime_h(rate)
        if site != home:
            hours += self.federation.transfer_h(job.dataset_gb)
        return max(1, min(int(np.ceil(hours / self.offers.slot_h - 1e-9)), self.free.shape[1]))

    def fastest_with_room(self, job: Job, site: int, rates: np.ndarray) -> int | None:
        """Resource at ``site`` where the job runs fastest and fits now; None if none."""
        best, best_rate = None, 0.0
        for r in map(int, np.flatnonzero(self.federation.resource_site == site)):
            rate = rates[r]
            if rate <= best_rate:
                continue
            slots = self.occupied_slots(job, r, rate)
            if (self.free[r, :slots] >= job.gpus).all():
                best, best_rate = int(r), rate
        return best

    def place(self, job: Job, resource: int, rate: float) -> Assignment:
        self.free[resource, : self.occupied_slots(job, resource, rate)] -= job.gpus
        site_i, gpu = self.federation.resources[resource]
        return Assignment(job.id, self.federation.sites[site_i].id, gpu, 0, self.offers.now_h)


class IsolatedPolicy(Policy):
    """No federation: every site runs its own jobs as they come (first come, first served,
    later jobs may start when an earlier one does not fit)."""

    home_only = True

    def decide(self, offers: RoundOffers, queue: Sequence[Job]) -> Sequence[Assignment]:
        placer = _Placer(self.federation, offers)
        rates = self.federation.steps_per_s(list(queue))
        out = []
        for i, job in enumerate(queue):
            r = placer.fastest_with_room(job, self.federation.site_index[job.home_site], rates[i])
            if r is not None:
                out.append(placer.place(job, r, rates[i, r]))
        return out


class _GreedyNowPolicy(Policy):
    """Each job goes to the site with the lowest signal *now* that has room for it."""

    def signal_now(self, offers: RoundOffers) -> np.ndarray:
        raise NotImplementedError

    def decide(self, offers: RoundOffers, queue: Sequence[Job]) -> Sequence[Assignment]:
        placer = _Placer(self.federation, offers)
        rates = self.federation.steps_per_s(list(queue))
        site_order = np.argsort(self.signal_now(offers), kind="stable")
        out = []
        for i, job in enumerate(queue):
            for site in site_order:
                r = placer.fastest_with_room(job, int(site), rates[i])
                if r is not None:
                    out.append(placer.place(job, r, rates[i, r]))
                    break
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
        placer = _Placer(self.federation, offers)
        rates = self.federation.steps_per_s(list(queue))
        slot_h, horizon = offers.slot_h, offers.horizon_slots
        out = []
        for i, job in enumerate(queue):
            home = self.federation.site_index[job.home_site]
            home_res = np.flatnonzero(self.federation.resource_site == home)
            best_rate = rates[i, home_res].max() if len(home_res) else 0.0
            if best_rate <= 0:
                continue
            runtime_h = job.runtime_h(best_rate)
            latest_h = (job.deadline_h - runtime_h if job.deadline_h is not None
                        else job.submit_h + self.config.max_wait_h)
            n_starts = int(np.clip(np.floor((latest_h - offers.now_h) / slot_h) + 1, 1, horizon))
            starts_h = np.arange(n_starts) * slot_h
            rows = np.full(n_starts, home)
            carbon = window_mean(offers.carbon_g_per_kwh, rows, starts_h, starts_h + runtime_h,
                                 slot_h)
            if int(np.argmin(carbon)) != 0:
                continue  # a cleaner window is still ahead
            r = placer.fastest_with_room(job, home, rates[i])
            if r is not None:
                out.append(placer.place(job, r, rates[i, r]))
        return out


BASELINES: dict[str, type[Policy]] = {
    "isolated": IsolatedPolicy,
    "greedy-carbon": GreedyCarbonPolicy,
    "greedy-price": GreedyPricePolicy,
    "temporal": TemporalPolicy,
}
