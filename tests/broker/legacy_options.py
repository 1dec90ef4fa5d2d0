"""The option pipelines as they were before ``broker.options`` (commit 69eed25), frozen.

Kept only as the reference of ``test_options.py``: the one option module must build the very
same options, costs, slot counts and run times that these five copies built. Nothing else may
import this module. (Linear multi-GPU scaling, as the code then assumed.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from broker.costs import delay_cost_usd, emissions_kg, energy_cost_usd, transfer_cost_usd
from broker.federation import Federation
from broker.jobs import Job
from broker.offers import RoundOffers
from sites.power import job_energy_kwh
from sites.timegrid import window_mean
from sites.units import gb_to_gbit, seconds_to_hours


def _runtime_h(work: np.ndarray, gpus: np.ndarray, rate: np.ndarray) -> np.ndarray:
    return seconds_to_hours(work / (gpus * rate))


def round_options(federation: Federation, offers: RoundOffers, reps: Sequence[Job],
                  start_offsets: Sequence[int] | None,
                  delay_cost_usd_per_gpu_h: float) -> dict[str, np.ndarray]:
    """``broker.planner.build_round_problem``'s options, one representative per demand."""
    n_res = len(federation.resources)
    horizon = offers.horizon_slots
    slot_h = offers.slot_h
    offsets = np.array(start_offsets if start_offsets is not None else range(horizon), dtype=int)
    offsets = offsets[offsets < horizon]
    gpus = np.array([j.gpus for j in reps], dtype=int)
    rate = federation.steps_per_s(list(reps))
    fits = (rate > 0) & (federation.resource_total_gpus[None, :] >= gpus[:, None])
    pair_d, pair_r = np.nonzero(fits) if len(reps) else (np.zeros(0, int), np.zeros(0, int))
    work = np.array([j.work_steps for j in reps])[pair_d]
    runtime_h = _runtime_h(work, gpus[pair_d], rate[pair_d, pair_r])
    home = np.array([federation.site_index[j.home_site] for j in reps], dtype=int)[pair_d]
    site = federation.resource_site[pair_r]
    remote = site != home
    dataset_gb = np.array([j.dataset_gb for j in reps])[pair_d]
    transfer_h = np.where(remote, federation.transfer_h(1.0) * dataset_gb, 0.0)
    egress = np.array([s.egress_usd_per_gb for s in federation.sites])[home]
    transfer_usd = np.where(remote, transfer_cost_usd(dataset_gb, egress), 0.0)
    energy_kwh = federation.run_energy_kwh(gpus[pair_d], pair_r, runtime_h)
    n_pairs, n_off = len(pair_d), len(offsets)
    pair = np.repeat(np.arange(n_pairs), n_off)
    start = np.tile(offsets, n_pairs)
    start_rel_h = start * slot_h
    occupy_h = transfer_h[pair] + runtime_h[pair]
    completion_rel_h = start_rel_h + occupy_h
    deadline = np.array([np.inf if j.deadline_h is None else j.deadline_h for j in reps])
    meets = offers.now_h + completion_rel_h <= deadline[pair_d[pair]] + 1e-9
    any_meets = np.zeros(len(reps), bool)
    np.logical_or.at(any_meets, pair_d[pair], meets)
    keep = meets | ~any_meets[pair_d[pair]]
    pair, start, start_rel_h, occupy_h, completion_rel_h = (
        a[keep] for a in (pair, start, start_rel_h, occupy_h, completion_rel_h))
    run_from = start_rel_h + transfer_h[pair]
    run_to = start_rel_h + occupy_h
    price = window_mean(offers.price_usd_per_mwh, site[pair], run_from, run_to, slot_h)
    carbon = window_mean(offers.carbon_g_per_kwh, site[pair], run_from, run_to, slot_h)
    option_kwh = energy_kwh[pair]
    option_gpus = gpus[pair_d[pair]]
    slots = np.minimum(np.ceil(occupy_h / slot_h - 1e-9).astype(int), horizon - start)
    assert n_res == offers.free_gpus.shape[0]
    return {
        "option_demand": pair_d[pair],
        "option_resource": pair_r[pair],
        "option_start": start,
        "option_slots": np.maximum(slots, 1),
        "option_gpus": option_gpus,
        "option_energy_kwh": option_kwh,
        "option_energy_cost_usd": energy_cost_usd(option_kwh, price),
        "option_carbon_kg": emissions_kg(option_kwh, carbon),
        "option_transfer_cost_usd": transfer_usd[pair],
        "option_delay_cost_usd": delay_cost_usd(option_gpus, completion_rel_h,
                                                delay_cost_usd_per_gpu_h),
    }


def period_options(federation: Federation, jobs: Sequence[Job], price_usd_per_mwh: np.ndarray,
                   carbon_g_per_kwh: np.ndarray, signal_slot_h: float, slot_h: float,
                   max_wait_h: float, delay_cost_usd_per_gpu_h: float) -> dict[str, np.ndarray]:
    """``broker.period_plan.build_period_problem``'s federation options (the cloud's aside)."""
    fed = federation
    waits = max(1, math.floor(max_wait_h / slot_h) + 1)
    gpus = np.array([j.gpus for j in jobs], dtype=int)
    rate = fed.steps_per_s(list(jobs))
    fits = (rate > 0) & (fed.resource_total_gpus[None, :] >= gpus[:, None])
    pair_j, pair_r = np.nonzero(fits) if len(jobs) else (np.zeros(0, int), np.zeros(0, int))
    work = np.array([j.work_steps for j in jobs], dtype=float)
    runtime_h = _runtime_h(work[pair_j], gpus[pair_j], rate[pair_j, pair_r])
    home = np.array([fed.site_index[j.home_site] for j in jobs], dtype=int)
    site = fed.resource_site[pair_r]
    remote = site != home[pair_j]
    dataset_gb = np.array([j.dataset_gb for j in jobs], dtype=float)[pair_j]
    transfer_h = np.where(remote, fed.transfer_h(1.0) * dataset_gb, 0.0)
    egress = np.array([s.egress_usd_per_gb for s in fed.sites])[home[pair_j]]
    occupy_h = transfer_h + runtime_h
    submit = np.array([j.submit_h for j in jobs], dtype=float)
    first_slot = np.ceil(submit / slot_h - 1e-9).astype(int)
    pair = np.repeat(np.arange(len(pair_j)), waits)
    start = first_slot[pair_j][pair] + np.tile(np.arange(waits), len(pair_j))
    start_h = start * slot_h
    n_slots_o = np.maximum(np.ceil(occupy_h[pair] / slot_h - 1e-9).astype(int), 1)
    run_from, run_to = start_h + transfer_h[pair], start_h + occupy_h[pair]
    price = window_mean(price_usd_per_mwh, site[pair], run_from, run_to, signal_slot_h)
    carbon = window_mean(carbon_g_per_kwh, site[pair], run_from, run_to, signal_slot_h)
    kwh = fed.run_energy_kwh(gpus[pair_j][pair], pair_r[pair], runtime_h[pair])
    return {
        "option_demand": pair_j[pair],
        "option_resource": pair_r[pair],
        "option_start": start,
        "option_slots": n_slots_o,
        "option_gpus": gpus[pair_j][pair] * occupy_h[pair] / (n_slots_o * slot_h),
        "option_energy_kwh": kwh,
        "option_energy_cost_usd": energy_cost_usd(kwh, price),
        "option_carbon_kg": emissions_kg(kwh, carbon),
        "option_transfer_cost_usd": np.where(remote, transfer_cost_usd(dataset_gb, egress),
                                             0.0)[pair],
        "option_delay_cost_usd": delay_cost_usd(gpus[pair_j][pair],
                                                start_h + occupy_h[pair] - submit[pair_j][pair],
                                                delay_cost_usd_per_gpu_h),
    }


def baseline_slots(federation: Federation, offers: RoundOffers,
                   queue: Sequence[Job]) -> np.ndarray:
    """``broker.baselines._Placer._occupied_slots``: slots each job would hold each pool."""
    fed, horizon = federation, offers.free_gpus.shape[1]
    rates = fed.steps_per_s(list(queue))
    gpus = np.array([j.gpus for j in queue], dtype=int)
    home = np.array([fed.site_index[j.home_site] for j in queue], dtype=int)
    work = np.array([j.work_steps for j in queue], dtype=float)
    dataset_gb = np.array([j.dataset_gb for j in queue], dtype=float)
    runs = rates > 0
    with np.errstate(divide="ignore"):
        hours = seconds_to_hours(work[:, None] / (gpus[:, None] * rates))
    transfer_h = seconds_to_hours(gb_to_gbit(dataset_gb) / fed.transfer_gbps)
    remote = fed.resource_site[None, :] != home[:, None]
    hours = np.where(remote, hours + transfer_h[:, None], hours)
    slots = np.ceil(np.where(runs, hours, 0.0) / offers.slot_h - 1e-9)
    return np.clip(slots, 1, horizon).astype(int)


def estimate(federation: Federation, round_: RoundOffers, job: Job, site_id: str,
             gpu_type: str, start_offset: int) -> dict[str, float]:
    """``broker.live.estimate_run``."""
    r = federation.resource_of(site_id, gpu_type)
    site_i = federation.site_index[site_id]
    site = federation.sites[site_i]
    rate = float(federation.steps_per_s([job])[0, r])
    runtime_h = job.work_steps / (job.gpus * rate) / 3600.0
    remote = site_id != job.home_site
    transfer_h = federation.transfer_h(job.dataset_gb) if remote else 0.0
    home = federation.sites[federation.site_index[job.home_site]]
    kwh = job_energy_kwh(job.gpus, federation.gpu_catalog[gpu_type], site.pue, runtime_h)
    run_from = np.array([start_offset * round_.slot_h + transfer_h])
    run_to = run_from + runtime_h
    row = np.array([site_i])
    price = float(window_mean(round_.price_usd_per_mwh, row, run_from, run_to, round_.slot_h)[0])
    carbon = float(window_mean(round_.carbon_g_per_kwh, row, run_from, run_to, round_.slot_h)[0])
    return {
        "transfer_h": transfer_h, "runtime_h": runtime_h, "energy_kwh": kwh,
        "carbon_kg": float(emissions_kg(kwh, carbon)),
        "energy_cost_usd": float(energy_cost_usd(kwh, price)),
        "transfer_cost_usd": float(transfer_cost_usd(job.dataset_gb, home.egress_usd_per_gb))
        if remote else 0.0,
    }


def metered_times(federation: Federation, job: Job, resource: int,
                  start_h: float) -> tuple[float, float]:
    """``broker.metering.Meter.record_run``'s (run start, finish)."""
    site_i, _ = federation.resources[resource]
    rate = federation.job_steps_per_s(job, resource)
    remote = federation.sites[site_i].id != job.home_site
    run_start_h = start_h + (federation.transfer_h(job.dataset_gb) if remote else 0.0)
    return run_start_h, run_start_h + job.work_steps / (job.gpus * rate) / 3600.0
