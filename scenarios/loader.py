"""Loading a scenario: YAML -> validated ``Scenario`` -> the simulation's inputs.

Every problem with the file becomes one ``InputError`` naming the file, the field path and what
is wrong (pydantic's checks first, then the cross-references pydantic cannot see).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from pydantic import ValidationError

from broker.federation import Federation
from broker.jobs import SECONDS_PER_HOUR, Job
from broker.planner import PlannerConfig
from broker.simulation import SimulationSetup
from broker.workload import SyntheticWorkload
from optimization import SolverOptions
from scenarios.schema import JobListWorkload, Scenario
from sites import DEFAULT_GPUS, AffinityMatrix, GpuType, InputError, SiteSpec, default_affinity
from sites.signals import hourly_to_slots

LIBRARY = "scenarios.library"


@dataclass(frozen=True)
class LoadedScenario:
    scenario: Scenario
    source: str  # what error messages call the file
    base_dir: Path  # relative paths in the file resolve against this


def builtin_scenarios() -> dict[str, str]:
    """Name -> one-line description of each built-in scenario."""
    out = {}
    for entry in sorted(resources.files(LIBRARY).iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".yaml"):
            data = yaml.safe_load(entry.read_text())
            out[entry.name.removesuffix(".yaml")] = str(data.get("description", "")).strip()
    return out


def load_scenario(name_or_path: str) -> LoadedScenario:
    """A built-in scenario by name, or a YAML file by path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise InputError(str(path), "", "no such scenario file")
        return parse_scenario(path.read_text(), str(path), path.parent)
    builtin = resources.files(LIBRARY) / f"{name_or_path}.yaml"
    if not builtin.is_file():
        known = ", ".join(builtin_scenarios())
        raise InputError(name_or_path, "", f"no such file or built-in scenario (built-in: {known})")
    return parse_scenario(builtin.read_text(), f"built-in:{name_or_path}", Path.cwd())


def parse_scenario(text: str, source: str, base_dir: Path) -> LoadedScenario:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "not valid YAML"
        raise InputError(source, where, f"YAML does not parse: {problem}") from None
    if not isinstance(data, dict):
        raise InputError(source, "", "a scenario must be a YAML mapping of fields")
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        raise InputError(source, field_path(first["loc"], data), _problem(first)) from None
    check_references(scenario, source)
    return LoadedScenario(scenario, source, base_dir)


def field_path(loc: tuple, data: object = None) -> str:
    """('sites', 0, 'gpus', 'V100') -> 'sites[0].gpus.V100'.

    Given the validated ``data``, the tags pydantic inserts for members of a tagged union
    (``('workload', 'list', 'jobs', 0)``, where ``list`` is the value of ``workload.kind``) are
    left out, so the path names fields as they are written in the file: ``workload.jobs[0]``.
    """
    out = ""
    node = data
    for part in loc:
        if (isinstance(part, str) and isinstance(node, dict) and part not in node
                and node.get("kind") == part):
            continue  # a tagged-union member's tag, not a field of the file
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
    return out


def _problem(error: dict) -> str:
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] in ("missing", "extra_forbidden"):
        return "missing field" if error["type"] == "missing" else "unknown field"
    value = error.get("input")
    if error["type"] != "missing" and not isinstance(value, dict | list):
        return f"{message} (got {value!r})"
    return message


def gpu_catalog(scenario: Scenario) -> dict[str, GpuType]:
    catalog = dict(DEFAULT_GPUS)
    for name, spec in scenario.gpus.items():
        catalog[name] = GpuType(name, spec.board_power_w, spec.idle_power_w)
    return catalog


def affinity_matrix(scenario: Scenario) -> AffinityMatrix:
    base = default_affinity()
    table = {j: {g: float(base.throughput[i, k]) for k, g in enumerate(base.gpu_types)}
             for i, j in enumerate(base.job_types)}
    for job_type, row in scenario.affinity.items():
        table.setdefault(job_type, {}).update(row)
    return AffinityMatrix.from_nested(table)


def check_references(s: Scenario, source: str) -> None:
    """The cross-field checks: names that must refer to something defined elsewhere."""

    def fail(field: str, problem: str) -> None:
        raise InputError(source, field, problem)

    if s.horizon_h < s.slot_h:
        fail("horizon_h", f"horizon ({s.horizon_h} h) is shorter than a slot ({s.slot_h} h)")
    if s.period_h < s.slot_h:
        fail("period_h", f"period ({s.period_h} h) is shorter than a slot ({s.slot_h} h)")
    whole = math.isclose(s.slot_h, round(s.slot_h)) and s.slot_h >= 1
    divides = s.slot_h < 1 and math.isclose(1 / s.slot_h, round(1 / s.slot_h))
    if not (whole or divides):
        fail("slot_h", f"must be a whole number of hours or divide an hour (got {s.slot_h})")
    catalog = gpu_catalog(s)
    affinity = affinity_matrix(s)
    for job_type, row in s.affinity.items():
        for gpu in row:
            if gpu not in catalog:
                fail(f"affinity.{job_type}.{gpu}", f"unknown GPU type '{gpu}'")
    seen_sites: set[str] = set()
    for i, site in enumerate(s.sites):
        if site.id in seen_sites:
            fail(f"sites[{i}].id", f"duplicate site id '{site.id}'")
        seen_sites.add(site.id)
        if site.zone not in s.zones:
            fail(f"sites[{i}].zone",
                 f"zone '{site.zone}' has no signals under 'zones' (defined: {', '.join(s.zones)})")
        for gpu in site.gpus:
            if gpu not in catalog:
                fail(f"sites[{i}].gpus.{gpu}",
                     f"unknown GPU type '{gpu}' (known: {', '.join(catalog)})")
            if gpu not in affinity.gpu_types:
                fail(f"sites[{i}].gpus.{gpu}", f"GPU type '{gpu}' has no affinity entries")
    if sum(site.gpus.get(g, 0) for site in s.sites for g in site.gpus) == 0:
        fail("sites", "the federation has no GPUs")
    w = s.workload
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


# --- from a validated scenario to the simulation's inputs ----------------------------------


@dataclass(frozen=True)
class ScenarioRun:
    """A scenario made concrete: the simulation set-up and the planner's configuration."""

    scenario: Scenario
    setup: SimulationSetup
    config: PlannerConfig
    start: pd.Timestamp


def build_run(loaded: LoadedScenario) -> ScenarioRun:
    s = loaded.scenario
    rng = np.random.default_rng(s.seed)
    catalog = gpu_catalog(s)
    affinity = affinity_matrix(s)
    sites = tuple(
        SiteSpec(x.id, x.zone, dict(x.gpus), x.pue, x.egress_usd_per_gb) for x in s.sites
    )
    federation = Federation(sites, catalog, affinity, s.transfer_gbps)
    jobs = tuple(_jobs(s, sites, affinity, rng))
    _check_jobs_fit(jobs, federation, loaded.source)

    slot_h = s.slot_h
    period_slots = round(s.period_h / slot_h)
    drain_slots = round(s.drain_h / slot_h)
    horizon_slots = max(1, round(s.horizon_h / slot_h))
    longest_h = _longest_run_h(jobs, federation)
    total_h = math.ceil(s.period_h + s.drain_h + s.horizon_h + longest_h + 2 * slot_h + 1)
    start = pd.Timestamp(s.start).tz_convert("UTC") if pd.Timestamp(s.start).tzinfo else (
        pd.Timestamp(s.start).tz_localize("UTC"))
    zone_slots = {}
    for name, zone in s.zones.items():
        pair = []
        for kind in ("carbon_g_per_kwh", "price_usd_per_mwh"):
            signal = getattr(zone, kind).build(loaded.base_dir)
            try:
                hourly = signal.hourly(start, total_h, rng)
            except (OSError, ValueError, KeyError) as error:
                raise InputError(loaded.source, f"zones.{name}.{kind}", str(error)) from None
            pair.append(hourly_to_slots(hourly, slot_h))
        zone_slots[name] = pair
    carbon = np.vstack([zone_slots[x.zone][0] for x in sites])
    price = np.vstack([zone_slots[x.zone][1] for x in sites])
    setup = SimulationSetup(
        federation=federation, jobs=jobs, carbon_g_per_kwh=carbon, price_usd_per_mwh=price,
        slot_h=slot_h, period_slots=period_slots, drain_slots=drain_slots,
        horizon_slots=horizon_slots,
    )
    config = PlannerConfig(
        carbon_price_usd_per_t=s.carbon_price_usd_per_t,
        delay_cost_usd_per_gpu_h=s.delay_cost_usd_per_gpu_h,
        max_wait_h=s.temporal_max_wait_h,
        solver=SolverOptions(s.solver.time_limit_s, s.solver.mip_gap, s.solver.threads),
        method=s.solver.method,
    )
    return ScenarioRun(s, setup, config, start)


def _jobs(s: Scenario, sites: tuple[SiteSpec, ...], affinity: AffinityMatrix,
          rng: np.random.Generator) -> list[Job]:
    w = s.workload
    if isinstance(w, JobListWorkload):
        out = []
        for spec in w.jobs:
            work = spec.work_steps
            if work is None:
                rate = affinity.steps_per_s(spec.job_type, w.reference_gpu)
                work = spec.reference_runtime_h * spec.gpus * rate * SECONDS_PER_HOUR
            out.append(Job(spec.id, spec.home_site, spec.job_type, spec.gpus, work,
                           spec.submit_h, spec.deadline_h, spec.dataset_gb))
        return out
    generator = SyntheticWorkload(
        jobs_per_hour=w.jobs_per_hour,
        job_types=tuple(w.job_types or affinity.job_types),
        reference_gpu=w.reference_gpu,
        diurnal_amplitude=w.diurnal_amplitude,
        gpu_counts=tuple(w.gpu_counts),
        gpu_count_weights=tuple(w.gpu_count_weights),
        median_runtime_h=w.median_runtime_h,
        runtime_sigma=w.runtime_sigma,
        max_runtime_h=w.max_runtime_h,
        deadline_fraction=w.deadline_fraction,
        deadline_slack=tuple(w.deadline_slack),
        median_dataset_gb=w.median_dataset_gb,
        dataset_sigma=w.dataset_sigma,
    )
    return generator.generate(list(sites), affinity, s.period_h, rng)


def _check_jobs_fit(jobs: tuple[Job, ...], federation: Federation, source: str) -> None:
    if not jobs:
        return
    rates = federation.steps_per_s(list(jobs))
    gpus = np.array([j.gpus for j in jobs])
    fits = ((rates > 0) & (federation.resource_total_gpus[None, :] >= gpus[:, None])).any(axis=1)
    for i in np.flatnonzero(~fits):
        raise InputError(source, f"workload.jobs[{i}]",
                         f"job '{jobs[i].id}' ({jobs[i].job_type} on {jobs[i].gpus} GPUs) "
                         "fits no GPU pool of the federation")


def _longest_run_h(jobs: tuple[Job, ...], federation: Federation) -> float:
    """The longest a job could take anywhere it fits (transfer included)."""
    if not jobs:
        return 0.0
    rates = federation.steps_per_s(list(jobs))
    work = np.array([j.work_steps for j in jobs])
    gpus = np.array([j.gpus for j in jobs])
    with np.errstate(divide="ignore"):
        runtime = np.where(rates > 0, work[:, None] / (gpus[:, None] * rates * 3600.0), 0.0)
    transfer = max(federation.transfer_h(j.dataset_gb) for j in jobs)
    return float(runtime.max() + transfer)
