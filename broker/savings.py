"""Savings of a policy against ``isolated``, broken down into where they come from.

Both runs cover every job: what the federation ran, plus the outside option for the rest. For
every job the policy ran itself, a chain of counterfactuals moves it one step at a time from
"what isolated would naturally do" to "what the policy did":

  ref   home site, the fastest GPU type at home on the count it asked for, started the moment
        it was submitted
  c     ... on the GPU count the policy chose (the same as ref unless the job is moldable)
  1     the GPU type the policy chose, still at home (home PUE, home grid, at submission)
  2     ... at the chosen site (its PUE and grid), still at submission
  3     ... started when the policy started it (the metered actual)

With P the jobs the policy ran, I those isolated ran, and "outside" a job's outside-option
cost (the same for both runs):

  gpu count       = sum_P (ref - c): a moldable job's count, chosen where scaling is poor
  affinity        = sum_P (c - 1)
  spatial shift   = sum_P (1 - 2)
  temporal shift  = sum_P (2 - 3)
  transfer        = - egress the policy paid to move jobs (cost only)
  queueing        = sum_{P and I} (isolated's actual - ref): isolated's own waiting for busy
                    home GPUs, which shifts its runs in time or onto slower GPUs
  unserved        = sum_{P, not I} (outside - ref) - sum_{I, not P} (outside - isolated's actual):
                    jobs one run served and the other sent to the outside option
  idle            = isolated's idle-GPU energy - the policy's
  other           = what is left: float rounding (the parts above are exact)

The parts sum to the total saved. Energy has no temporal part (a kWh is a kWh at any hour).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from broker.costs import carbon_cost_usd, cost_per_kwh_usd, emissions_kg
from broker.simulation import SimulationResult, SimulationSetup
from sites import scaling
from sites.power import energy_kwh
from sites.timegrid import window_mean

PARTS = ("gpu_count", "affinity", "spatial_shift", "temporal_shift", "transfer", "queueing",
         "unserved", "idle", "other")
METRICS = ("energy_kwh", "carbon_kg", "total_cost_usd")


@dataclass(frozen=True)
class Savings:
    metric: str  # energy_kwh, carbon_kg, total_cost_usd
    baseline: float
    policy: float
    parts: dict[str, float]

    @property
    def saved(self) -> float:
        return self.baseline - self.policy

    @property
    def saved_fraction(self) -> float:
        return self.saved / self.baseline if self.baseline else 0.0


def job_metric(jobs: pd.DataFrame, metric: str, carbon_price_usd_per_t: float) -> np.ndarray:
    """Each metered job's own energy, emissions or total cost (carbon priced in)."""
    if metric != "total_cost_usd":
        return jobs[metric].to_numpy(float)
    return (jobs["energy_cost_usd"] + jobs["transfer_cost_usd"]
            + carbon_cost_usd(jobs["carbon_kg"], carbon_price_usd_per_t)).to_numpy(float)


def outside_metric(outside: pd.DataFrame, metric: str, carbon_price_usd_per_t: float) -> np.ndarray:
    """Each outside-option job's energy, emissions or total cost (bill, egress and carbon)."""
    if metric != "total_cost_usd":
        return outside[metric].to_numpy(float)
    return (outside["outside_cost_usd"] + outside["transfer_cost_usd"]
            + carbon_cost_usd(outside["carbon_kg"], carbon_price_usd_per_t)).to_numpy(float)


def _idle(result: SimulationResult, metric: str, carbon_price_usd_per_t: float) -> float:
    slots = result.site_slots
    kwh = slots["idle_energy_kwh"].to_numpy(float)
    if metric == "energy_kwh":
        return float(kwh.sum())
    per_kwh = (emissions_kg(1.0, slots["carbon_g_per_kwh"]) if metric == "carbon_kg" else
               cost_per_kwh_usd(slots["price_usd_per_mwh"], slots["carbon_g_per_kwh"],
                                carbon_price_usd_per_t))
    return float((kwh * per_kwh.to_numpy(float)).sum())


def _total(result: SimulationResult, metric: str, carbon_price_usd_per_t: float) -> float:
    """A run's total of ``metric``: its jobs, its idle GPUs, its outside option."""
    return float(job_metric(result.jobs, metric, carbon_price_usd_per_t).sum()
                 + _idle(result, metric, carbon_price_usd_per_t)
                 + outside_metric(result.outside, metric, carbon_price_usd_per_t).sum())


@dataclass(frozen=True)
class _Chain:
    """Per job the policy ran: the reference and the first two steps of the chain (kWh and
    the signals' windows), aligned with the policy's jobs frame."""

    kwh_ref: np.ndarray
    kwh_count: np.ndarray
    kwh_1: np.ndarray
    runtime_ref_h: np.ndarray
    runtime_count_h: np.ndarray
    runtime_act_h: np.ndarray
    home: np.ndarray
    site: np.ndarray


def _chain(setup: SimulationSetup, jobs: pd.DataFrame) -> _Chain:
    fed = setup.federation
    by_id = {j.id: j for j in setup.jobs}
    queue = [by_id[i] for i in jobs["job_id"]]
    rates = fed.throughput(queue)  # whole jobs, each on the count it asked for
    home = np.array([fed.site_index[j.home_site] for j in queue], dtype=int)
    site = np.array([fed.site_index[s] for s in jobs["site"]], dtype=int)
    home_res = fed.resource_site[None, :] == home[:, None]
    best_home = np.where(home_res, rates, -1.0).argmax(axis=1) if len(queue) else home
    rows = np.arange(len(queue))
    # A job whose home has no pool it runs on has no "fastest type at home": its reference is
    # step 1 (the type the policy chose, at home), so it adds nothing to the affinity part.
    runs_home = home_res[rows, best_home] & (rates[rows, best_home] > 0)
    asked = np.array([j.gpus for j in queue], dtype=float)
    gpus = jobs["gpus"].to_numpy(float)  # the count it ran on
    work = jobs["work_steps"].to_numpy(float)
    runtime_act = (jobs["finish_h"] - jobs["run_start_h"]).to_numpy(float)
    ref_rate = np.where(runs_home, rates[rows, best_home], 1.0)
    count_rate = np.array([
        fed.throughput_row(j.job_type, j.gpu_types, int(k))[r] if ok else 1.0
        for j, k, r, ok in zip(queue, gpus, best_home, runs_home, strict=True)])
    runtime_ref = np.where(runs_home, scaling.runtime_h(work, ref_rate), runtime_act)
    runtime_count = np.where(runs_home, scaling.runtime_h(work, count_rate), runtime_act)
    pue = np.array([s.pue for s in fed.sites])
    board_w = np.array([fed.gpu_catalog[g].board_power_w for g in jobs["gpu_type"]])
    ref_board_w = np.where(runs_home, fed.resource_board_power_w[best_home], board_w)
    ref_gpus = np.where(runs_home, asked, gpus)
    return _Chain(
        kwh_ref=energy_kwh(ref_gpus, ref_board_w, pue[home], runtime_ref),
        kwh_count=energy_kwh(gpus, ref_board_w, pue[home], runtime_count),
        kwh_1=energy_kwh(gpus, board_w, pue[home], runtime_act),
        runtime_ref_h=runtime_ref, runtime_count_h=runtime_count, runtime_act_h=runtime_act,
        home=home, site=site,
    )


def compute_savings(
    setup: SimulationSetup,
    isolated: SimulationResult,
    policy: SimulationResult,
    carbon_price_usd_per_t: float,
) -> list[Savings]:
    jobs = policy.jobs
    chain = _chain(setup, jobs)
    submit = jobs["submit_h"].to_numpy(float)
    per_kwh = {
        "carbon_kg": emissions_kg(1.0, setup.carbon_g_per_kwh),
        "total_cost_usd": cost_per_kwh_usd(setup.price_usd_per_mwh, setup.carbon_g_per_kwh,
                                           carbon_price_usd_per_t),
    }
    iso_served = set(isolated.jobs["job_id"])
    pol_served = set(jobs["job_id"])
    both = jobs["job_id"].isin(iso_served).to_numpy()
    out = []
    for metric in METRICS:
        if metric == "energy_kwh":
            ref, count = chain.kwh_ref, chain.kwh_count
            step1, step2 = chain.kwh_1, jobs["energy_kwh"].to_numpy(float)
        else:
            signal = per_kwh[metric]
            ref = chain.kwh_ref * window_mean(signal, chain.home, submit,
                                              submit + chain.runtime_ref_h, setup.slot_h)
            count = chain.kwh_count * window_mean(signal, chain.home, submit,
                                                  submit + chain.runtime_count_h, setup.slot_h)
            step1 = chain.kwh_1 * window_mean(signal, chain.home, submit,
                                              submit + chain.runtime_act_h, setup.slot_h)
            step2 = jobs["energy_kwh"].to_numpy(float) * window_mean(
                signal, chain.site, submit, submit + chain.runtime_act_h, setup.slot_h)
        actual = job_metric(jobs, metric, carbon_price_usd_per_t)
        transfer = jobs["transfer_cost_usd"].to_numpy(float) if metric == "total_cost_usd" \
            else np.zeros(len(jobs))
        step3 = actual - transfer
        iso_actual = pd.Series(job_metric(isolated.jobs, metric, carbon_price_usd_per_t),
                               index=isolated.jobs["job_id"])
        outside_cost = _outside_cost_by_job(isolated, policy, metric, carbon_price_usd_per_t)
        iso_only = sorted(iso_served - pol_served)
        pol_ids = jobs["job_id"].to_numpy()
        unserved = (float((outside_cost[pol_ids[~both]] - ref[~both]).sum())
                    - float((outside_cost[iso_only] - iso_actual[iso_only]).sum()))
        parts = {
            "gpu_count": float((ref - count).sum()),
            "affinity": float((count - step1).sum()),
            "spatial_shift": float((step1 - step2).sum()),
            "temporal_shift": float((step2 - step3).sum()),
            "transfer": -float(transfer.sum()),
            "queueing": float((iso_actual[pol_ids[both]].to_numpy() - ref[both]).sum()),
            "unserved": unserved,
            "idle": _idle(isolated, metric, carbon_price_usd_per_t)
            - _idle(policy, metric, carbon_price_usd_per_t),
        }
        baseline = _total(isolated, metric, carbon_price_usd_per_t)
        total = _total(policy, metric, carbon_price_usd_per_t)
        parts["other"] = (baseline - total) - sum(parts.values())
        out.append(Savings(metric, baseline, total, parts))
    return out


def _outside_cost_by_job(isolated: SimulationResult, policy: SimulationResult, metric: str,
                         carbon_price_usd_per_t: float) -> pd.Series:
    """The outside option's cost of every job either run sent there (the same in both)."""
    frames = pd.concat([isolated.outside, policy.outside]).drop_duplicates("job_id")
    return pd.Series(outside_metric(frames, metric, carbon_price_usd_per_t),
                     index=frames["job_id"].to_numpy())
