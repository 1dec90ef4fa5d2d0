"""The checks of a scenario that pydantic cannot see: names that must refer to something.

``check_names`` needs no data file and runs first; ``check_references`` runs once the data
files are read (``scenarios.build.resolve_data``). Each failure is one ``InputError``.
"""

from __future__ import annotations

from dataclasses import dataclass

from broker.calibration import PUBLISHED
from scenarios.schema import JobListWorkload, Scenario, SyntheticWorkloadSpec, TraceWorkloadSpec
from sites import AffinityMatrix, GpuType, InputError
from sites.timegrid import check_slot_h


@dataclass(frozen=True)
class ResolvedData:
    """What the scenario's data files say: GPU catalog, affinity and each site's GPUs."""

    catalog: dict[str, GpuType]
    affinity: AffinityMatrix
    site_gpus: tuple[dict[str, int], ...]


def check_names(s: Scenario, source: str) -> None:
    """Checks that need no data file: run before any file is read, so they come first."""
    for i, site in enumerate(s.sites):
        if site.zone not in s.zones:
            raise InputError(source, f"sites[{i}].zone", f"zone '{site.zone}' has no signals "
                             f"under 'zones' (defined: {', '.join(s.zones)})")
    if isinstance(s.workload, TraceWorkloadSpec):
        ids = {site.id for site in s.sites}
        for site_id in s.workload.files:
            if site_id not in ids:
                raise InputError(source, f"workload.files.{site_id}", f"unknown site '{site_id}'")


def check_references(s: Scenario, source: str, resolved: ResolvedData) -> None:
    """The cross-field checks: names that must refer to something defined elsewhere."""

    def fail(field: str, problem: str) -> None:
        raise InputError(source, field, problem)

    if s.horizon_h < s.slot_h:
        fail("horizon_h", f"horizon ({s.horizon_h} h) is shorter than a slot ({s.slot_h} h)")
    if s.period_h < s.slot_h:
        fail("period_h", f"period ({s.period_h} h) is shorter than a slot ({s.slot_h} h)")
    try:
        check_slot_h(s.slot_h)
    except ValueError:
        fail("slot_h", f"must be a whole number of hours or divide an hour (got {s.slot_h})")
    catalog = resolved.catalog
    affinity = resolved.affinity
    for job_type, row in s.affinity.items():
        for gpu in row:
            if gpu not in catalog:
                fail(f"affinity.{job_type}.{gpu}", f"unknown GPU type '{gpu}'")
    seen_sites: set[str] = set()
    for i, (site, gpus) in enumerate(zip(s.sites, resolved.site_gpus, strict=True)):
        fleet = site.fleet is not None
        if site.id in seen_sites:
            fail(f"sites[{i}].id", f"duplicate site id '{site.id}'")
        seen_sites.add(site.id)
        for gpu in gpus:
            where = f"sites[{i}].fleet.models" if fleet else f"sites[{i}].gpus.{gpu}"
            if gpu not in catalog:
                fail(where, f"unknown GPU type '{gpu}' (known: {', '.join(catalog)})")
            if gpu not in affinity.gpu_types:
                fail(where, f"GPU type '{gpu}' has no affinity entries")
    if sum(sum(g.values()) for g in resolved.site_gpus) == 0:
        fail("sites", "the federation has no GPUs")
    w = s.workload
    if isinstance(w, TraceWorkloadSpec):
        for model, gpu in w.gpu_models.items():
            if gpu not in catalog:
                fail(f"workload.gpu_models.{model}", f"unknown GPU type '{gpu}'")
    if w.reference_gpu not in affinity.gpu_types:
        fail("workload.reference_gpu", f"unknown GPU type '{w.reference_gpu}'")
    if isinstance(w, JobListWorkload):
        seen_jobs: set[str] = set()
        for i, job in enumerate(w.jobs):
            where = f"workload.jobs[{i}]"
            if job.id in seen_jobs:
                fail(f"{where}.id", f"duplicate job id '{job.id}'")
            seen_jobs.add(job.id)
            if job.home_site not in seen_sites:
                fail(f"{where}.home_site", f"unknown site '{job.home_site}'")
            if job.job_type not in affinity.job_types:
                fail(f"{where}.job_type", f"unknown job type '{job.job_type}' "
                     f"(known: {', '.join(affinity.job_types)})")
            if (job.reference_runtime_h is not None
                    and affinity.steps_per_s(job.job_type, w.reference_gpu) <= 0):
                fail(f"{where}.reference_runtime_h",
                     f"job type '{job.job_type}' does not run on {w.reference_gpu}")
            if job.submit_h >= s.period_h:
                fail(f"{where}.submit_h", f"after the end of the period ({s.period_h} h)")
    else:
        for i, job_type in enumerate(w.job_types or []):
            if job_type not in affinity.job_types:
                fail(f"workload.job_types[{i}]", f"unknown job type '{job_type}'")
    if isinstance(w, SyntheticWorkloadSpec) and w.calibrate is not None:
        target = PUBLISHED[w.calibrate]
        if target.mean_gpus > w.max_gpus:
            fail("workload.max_gpus", f"{target.name}'s mean of {target.mean_gpus} GPUs per job "
                 f"needs max_gpus above it (got {w.max_gpus})")
