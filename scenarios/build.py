"""From a validated scenario to the simulation's inputs: catalog, fleets, jobs, signals.

Every random draw comes from a stream named after its consumer (``sites.streams``): the
workload, each zone's signals, the forecast error.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from broker.federation import Federation
from broker.jobs import Job
from broker.options import runs_on
from broker.planner import PlannerConfig
from broker.simulation import SimulationSetup
from broker.traces import (
    alibaba_pod_jobs,
    gavel_trace_jobs,
    read_alibaba_pods,
    read_gavel_trace,
)
from broker.workload import WorkloadError
from scenarios.data_paths import DataPaths
from scenarios.loader import LoadedScenario
from scenarios.resolve import resolve_data
from scenarios.schema import JobListWorkload, Scenario, TraceWorkloadSpec
from sites import AffinityMatrix, InputError, SiteSpec
from sites.streams import child_int, stream
from sites.timegrid import slot_index


@dataclass(frozen=True)
class ScenarioRun:
    """A scenario made concrete: the simulation set-up and the planner's configuration."""

    scenario: Scenario
    setup: SimulationSetup
    config: PlannerConfig
    start: pd.Timestamp


def build_run(loaded: LoadedScenario) -> ScenarioRun:
    s = loaded.scenario
    resolved = loaded.resolved or resolve_data(s, loaded.paths)
    catalog = resolved.catalog
    affinity = resolved.affinity
    sites = tuple(x.to_domain(gpus) for x, gpus in zip(s.sites, resolved.site_gpus, strict=True))
    federation = Federation(sites, catalog, affinity, s.transfer_gbps)
    try:
        jobs = tuple(_jobs(s, sites, affinity, stream(s.seed, "workload"), loaded.paths))
        if s.moldable is not None:
            jobs = moldable_jobs(jobs, s.moldable.min_gpus, s.moldable.max_gpus)
        if s.preemptible is not None:
            jobs = preemptible_jobs(jobs, s.preemptible.checkpoint_overhead_h,
                                    s.preemptible.checkpoint_gb)
        if s.elastic is not None:
            jobs = elastic_jobs(jobs, s.elastic.resize_overhead_h)
    except WorkloadError as error:  # a workload the federation cannot host, found while drawing
        raise InputError(loaded.source, "workload", str(error)) from None
    _check_jobs_fit(jobs, federation, loaded.source, isinstance(s.workload, JobListWorkload))

    slot_h = s.slot_h
    period_slots = round(s.period_h / slot_h)
    drain_slots = round(s.drain_h / slot_h)
    horizon_slots = max(1, round(s.horizon_h / slot_h))
    longest_h = _longest_run_h(jobs, federation)
    total_h = math.ceil(s.period_h + s.drain_h + s.horizon_h + longest_h + 2 * slot_h + 1)
    n_slots = slot_index(total_h, slot_h)  # whole slots only
    start = pd.Timestamp(s.start).tz_convert("UTC") if pd.Timestamp(s.start).tzinfo else (
        pd.Timestamp(s.start).tz_localize("UTC"))
    zone_slots = {}
    for name, zone in s.zones.items():
        pair = []
        for kind in ("carbon_g_per_kwh", "price_usd_per_mwh"):
            field_name = f"zones.{name}.{kind}"
            try:
                signal = zone.build_one(kind, loaded.paths, field_name)
                pair.append(signal.slots(start, n_slots, slot_h, stream(s.seed, field_name)))
            except InputError as error:  # a data file that is not there or does not cover it
                if error.source == loaded.source:
                    raise  # already names the scenario and the field
                raise InputError(loaded.source, field_name, str(error)) from None
        zone_slots[name] = pair
    carbon = np.vstack([zone_slots[x.zone][0] for x in sites])
    price = np.vstack([zone_slots[x.zone][1] for x in sites])
    setup = SimulationSetup(
        federation=federation, jobs=jobs, carbon_g_per_kwh=carbon, price_usd_per_mwh=price,
        slot_h=slot_h, period_slots=period_slots, drain_slots=drain_slots,
        horizon_slots=horizon_slots, forecast=s.forecast.to_domain(child_int(s.seed, "forecast")),
        outside=s.outside_option.to_domain(s.workload.reference_gpu),
    )
    return ScenarioRun(s, setup, s.planner_config(), start)


def _trace_jobs(w: TraceWorkloadSpec, s: Scenario, affinity: AffinityMatrix,
                rng: np.random.Generator, paths: DataPaths) -> list[Job]:
    window = w.window()
    job_types = tuple(w.job_types or affinity.job_types)
    jobs: list[Job] = []
    for site_id, path in w.files.items():
        file = paths.data_file(path, f"workload.files.{site_id}")
        prefix = f"{site_id}-"
        if w.format == "gavel":
            frame = read_gavel_trace(file)
            n = len(frame)
            sizes = (rng.lognormal(math.log(w.median_dataset_gb), w.dataset_sigma, n)
                     if w.median_dataset_gb > 0 else np.zeros(n))
            taken = gavel_trace_jobs(frame, site_id, affinity, window, s.period_h,
                                     np.round(sizes, 3), prefix, str(file), w.reference_gpu)
        else:
            taken = alibaba_pod_jobs(read_alibaba_pods(file), site_id, affinity, job_types,
                                     w.reference_gpu, window, s.period_h, rng, prefix,
                                     w.gpu_models)
        jobs.extend(taken.jobs)
    return sorted(jobs, key=lambda j: (j.submit_h, j.id))


def _jobs(s: Scenario, sites: tuple[SiteSpec, ...], affinity: AffinityMatrix,
          rng: np.random.Generator, paths: DataPaths) -> list[Job]:
    w = s.workload
    if isinstance(w, TraceWorkloadSpec):
        return _trace_jobs(w, s, affinity, rng, paths)
    if isinstance(w, JobListWorkload):
        out = []
        for spec in w.jobs:
            work = spec.work_steps
            if spec.reference_runtime_h is not None:  # exactly one of the two (JobSpec)
                work = affinity.work_steps_for_h(spec.job_type, w.reference_gpu,
                                                 spec.asked_gpus, spec.reference_runtime_h)
            assert work is not None
            low, high = spec.gpu_range
            out.append(Job(spec.id, spec.home_site, spec.job_type, spec.asked_gpus, work,
                           spec.submit_h, spec.deadline_h, spec.dataset_gb,
                           min_gpus=low, max_gpus=high, preemptible=spec.preemptible,
                           checkpoint_overhead_h=spec.checkpoint_overhead_h,
                           checkpoint_gb=spec.checkpoint_gb, elastic=spec.elastic,
                           resize_overhead_h=spec.resize_overhead_h))
        return out
    generator = w.to_domain(affinity.job_types)
    return generator.generate(list(sites), affinity, s.period_h, rng)


def moldable_jobs(jobs: tuple[Job, ...], min_gpus: int, max_gpus: int) -> tuple[Job, ...]:
    """Every job not already given a range may run on ``min_gpus`` to ``max_gpus`` GPUs (the
    range widened to hold its own count)."""
    return tuple(job if job.min_gpus is not None else dataclasses.replace(
        job, min_gpus=min(min_gpus, job.gpus), max_gpus=max(max_gpus, job.gpus)) for job in jobs)


def preemptible_jobs(jobs: tuple[Job, ...], checkpoint_overhead_h: float,
                     checkpoint_gb: float) -> tuple[Job, ...]:
    """Every job not already preemptible becomes so, with ``checkpoint_overhead_h`` and
    ``checkpoint_gb``."""
    return tuple(job if job.preemptible else dataclasses.replace(
        job, preemptible=True, checkpoint_overhead_h=checkpoint_overhead_h,
        checkpoint_gb=checkpoint_gb) for job in jobs)


def elastic_jobs(jobs: tuple[Job, ...], resize_overhead_h: float) -> tuple[Job, ...]:
    """Every job with a GPU range, not already elastic, becomes so with
    ``resize_overhead_h``."""
    return tuple(job if job.elastic or not job.moldable_range else dataclasses.replace(
        job, elastic=True, resize_overhead_h=resize_overhead_h) for job in jobs)


def _check_jobs_fit(jobs: tuple[Job, ...], federation: Federation, source: str,
                    listed: bool) -> None:
    """Every job fits some pool of the federation (else no policy could ever run it).

    ``listed``: the jobs are the file's ``workload.jobs`` (in order), so name the entry;
    drawn or traced jobs are named by their id under ``workload``.
    """
    if not jobs:
        return
    rates = federation.steps_per_s(list(jobs))
    gpus = np.array([j.gpus for j in jobs])
    fits = ((rates > 0) & (federation.resource_total_gpus[None, :] >= gpus[:, None])).any(axis=1)
    for i in np.flatnonzero(~fits):
        where = f"workload.jobs[{i}]" if listed else "workload"
        raise InputError(source, where,
                         f"job '{jobs[i].id}' ({jobs[i].job_type} on {jobs[i].gpus} GPUs) "
                         "fits no GPU pool of the federation")


def _longest_run_h(jobs: tuple[Job, ...], federation: Federation) -> float:
    """The longest a job could take on a GPU type it runs on, at any GPU count it may run on
    (transfer included)."""
    if not jobs:
        return 0.0
    job, resource = np.nonzero(federation.steps_per_s(list(jobs)) > 0)
    runtime = 0.0
    for count in sorted({k for j in jobs for k in j.gpu_counts}):
        asks = np.array([count in jobs[i].gpu_counts for i in job], dtype=bool)
        runs = runs_on(federation, jobs, job[asks], resource[asks],
                       np.full(int(asks.sum()), count))
        runtime = max(runtime, float(runs.runtime_h.max()) if len(runs) else 0.0)
    transfer = max(federation.transfer_h(j.dataset_gb) for j in jobs)
    return runtime + transfer
