"""Loading a scenario: YAML -> validated ``Scenario`` -> the simulation's inputs.

Every problem with the file becomes one ``InputError`` naming the file, the field path and what
is wrong (pydantic's checks first, then the cross-references pydantic cannot see).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ValidationError

from broker.calibration import PUBLISHED
from broker.federation import Federation
from broker.forecast import ForecastError
from broker.jobs import SECONDS_PER_HOUR, Job
from broker.planner import PlannerConfig
from broker.simulation import SimulationSetup
from broker.traces import (
    TraceWindow,
    alibaba_pod_jobs,
    gavel_trace_jobs,
    read_alibaba_pods,
    read_gavel_trace,
)
from broker.workload import SyntheticWorkload
from optimization import SolverOptions
from scenarios.data_paths import DataPaths
from scenarios.schema import (
    FLEET_FILES,
    JobListWorkload,
    Scenario,
    SyntheticWorkloadSpec,
    TraceWorkloadSpec,
)
from sites import DEFAULT_GPUS, AffinityMatrix, GpuType, InputError, SiteSpec, default_affinity
from sites.readers.fleets import read_alibaba_nodes, read_pai_machines
from sites.readers.gavel_affinity import read_gavel_throughputs
from sites.readers.gpu_power import read_gpu_tdp

FLEET_READERS = {"alibaba-nodes": read_alibaba_nodes, "pai-machines": read_pai_machines}

LIBRARY = "scenarios.library"
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class ResolvedData:
    """What the scenario's data files say: GPU catalog, affinity and each site's GPUs."""

    catalog: dict[str, GpuType]
    affinity: AffinityMatrix
    site_gpus: tuple[dict[str, int], ...]


@dataclass(frozen=True)
class LoadedScenario:
    scenario: Scenario
    source: str  # what error messages call the file
    base_dir: Path  # relative paths in the file resolve against this
    data_dir: Path | None = None  # the real-data folder, when given
    resolved: ResolvedData | None = field(default=None, compare=False)

    @property
    def paths(self) -> DataPaths:
        return DataPaths(self.source, self.base_dir, self.data_dir)


def builtin_scenarios() -> dict[str, str]:
    """Name -> one-line description of each built-in scenario."""
    out = {}
    for entry in sorted(resources.files(LIBRARY).iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".yaml"):
            data = yaml.safe_load(entry.read_text())
            out[entry.name.removesuffix(".yaml")] = str(data.get("description", "")).strip()
    return out


def load_scenario(name_or_path: str, data_dir: Path | None = None) -> LoadedScenario:
    """A built-in scenario by name, or a YAML file by path; ``data_dir``: the data folder."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise InputError(str(path), "", "no such scenario file")
        return parse_scenario(path.read_text(), str(path), path.parent, data_dir)
    builtin = resources.files(LIBRARY) / f"{name_or_path}.yaml"
    if not builtin.is_file():
        known = ", ".join(builtin_scenarios())
        raise InputError(name_or_path, "", f"no such file or built-in scenario (built-in: {known})")
    return parse_scenario(builtin.read_text(), f"built-in:{name_or_path}", Path.cwd(), data_dir)


def validate_yaml(text: str, source: str, model: type[M], what: str) -> M:
    """Parse YAML and validate it as ``model``; any problem is one ``InputError`` line.

    ``what`` names the document in the "must be a mapping" message ("a scenario").
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "not valid YAML"
        raise InputError(source, where, f"YAML does not parse: {problem}") from None
    if not isinstance(data, dict):
        raise InputError(source, "", f"{what} must be a YAML mapping of fields")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        raise InputError(source, field_path(first["loc"], data), _problem(first)) from None


def parse_scenario(text: str, source: str, base_dir: Path,
                   data_dir: Path | None = None) -> LoadedScenario:
    scenario = validate_yaml(text, source, Scenario, "a scenario")
    paths = DataPaths(source, base_dir, data_dir)
    check_names(scenario, source)
    resolved = resolve_data(scenario, paths)
    check_references(scenario, source, resolved)
    return LoadedScenario(scenario, source, base_dir, data_dir, resolved)


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


def gpu_catalog(scenario: Scenario, paths: DataPaths | None = None) -> dict[str, GpuType]:
    """The built-in catalog, then the TDP file's entries, then the scenario's own ``gpus``."""
    catalog = dict(DEFAULT_GPUS)
    spec_file = scenario.gpu_power_file
    if spec_file is not None and paths is not None:
        table = read_gpu_tdp(paths.data_file(spec_file.path, "gpu_power_file.path"))
        for name, file_name in spec_file.gpus.items():
            if file_name not in table:
                raise InputError(paths.source, f"gpu_power_file.gpus.{name}",
                                 f"'{file_name}' is not a GPU of {spec_file.path}")
            catalog[name] = GpuType(name, table[file_name].board_power_w)
    for name, spec in scenario.gpus.items():
        catalog[name] = GpuType(name, spec.board_power_w, spec.idle_power_w)
    return catalog


def affinity_matrix(scenario: Scenario, paths: DataPaths | None = None) -> AffinityMatrix:
    """The built-in catalog, then the affinity file's job types, then the scenario's overrides."""
    base = default_affinity()
    table = {j: {g: float(base.throughput[i, k]) for k, g in enumerate(base.gpu_types)}
             for i, j in enumerate(base.job_types)}
    spec_file = scenario.affinity_file
    if spec_file is not None and paths is not None:
        measured = read_gavel_throughputs(paths.data_file(spec_file.path, "affinity_file.path"),
                                          spec_file.unconsolidated)
        extra = measured.affinity(spec_file.scale_factor)
        for i, job in enumerate(extra.job_types):
            table[job] = {g: float(extra.throughput[i, k]) for k, g in enumerate(extra.gpu_types)}
    for job_type, row in scenario.affinity.items():
        table.setdefault(job_type, {}).update(row)
    return AffinityMatrix.from_nested(table)


def site_gpus(scenario: Scenario, paths: DataPaths) -> tuple[dict[str, int], ...]:
    """Each site's GPUs per type: as written, or its slice of a real fleet."""
    out = []
    for i, site in enumerate(scenario.sites):
        fleet_spec = site.fleet
        if fleet_spec is None:
            out.append(dict(site.gpus))
            continue
        file = paths.data_file(fleet_spec.path or FLEET_FILES[fleet_spec.kind],
                               f"sites[{i}].fleet.path")
        fleet = FLEET_READERS[fleet_spec.kind](file)
        try:
            out.append(fleet.slice(fleet_spec.models, fleet_spec.sample_gpus))
        except InputError as error:
            raise InputError(paths.source, f"sites[{i}].fleet.{error.field}", error.problem) \
                from None
    return tuple(out)


def resolve_data(scenario: Scenario, paths: DataPaths) -> ResolvedData:
    return ResolvedData(gpu_catalog(scenario, paths), affinity_matrix(scenario, paths),
                        site_gpus(scenario, paths))


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


def check_references(s: Scenario, source: str, resolved: ResolvedData | None = None) -> None:
    """The cross-field checks: names that must refer to something defined elsewhere."""

    def fail(field: str, problem: str) -> None:
        raise InputError(source, field, problem)

    if resolved is None:
        resolved = ResolvedData(gpu_catalog(s), affinity_matrix(s),
                                tuple(dict(x.gpus) for x in s.sites))

    if s.horizon_h < s.slot_h:
        fail("horizon_h", f"horizon ({s.horizon_h} h) is shorter than a slot ({s.slot_h} h)")
    if s.period_h < s.slot_h:
        fail("period_h", f"period ({s.period_h} h) is shorter than a slot ({s.slot_h} h)")
    whole = math.isclose(s.slot_h, round(s.slot_h)) and s.slot_h >= 1
    divides = s.slot_h < 1 and math.isclose(1 / s.slot_h, round(1 / s.slot_h))
    if not (whole or divides):
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
        if site.zone not in s.zones:
            fail(f"sites[{i}].zone",
                 f"zone '{site.zone}' has no signals under 'zones' (defined: {', '.join(s.zones)})")
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
    resolved = loaded.resolved or resolve_data(s, loaded.paths)
    catalog = resolved.catalog
    affinity = resolved.affinity
    sites = tuple(
        SiteSpec(x.id, x.zone, dict(gpus), x.pue, x.egress_usd_per_gb)
        for x, gpus in zip(s.sites, resolved.site_gpus, strict=True)
    )
    federation = Federation(sites, catalog, affinity, s.transfer_gbps)
    try:
        jobs = tuple(_jobs(s, sites, affinity, rng, loaded.paths))
    except ValueError as error:  # a workload the federation cannot host, found while drawing
        raise InputError(loaded.source, "workload", str(error)) from None
    _check_jobs_fit(jobs, federation, loaded.source)

    slot_h = s.slot_h
    period_slots = round(s.period_h / slot_h)
    drain_slots = round(s.drain_h / slot_h)
    horizon_slots = max(1, round(s.horizon_h / slot_h))
    longest_h = _longest_run_h(jobs, federation)
    total_h = math.ceil(s.period_h + s.drain_h + s.horizon_h + longest_h + 2 * slot_h + 1)
    n_slots = math.floor(total_h / slot_h + 1e-9)
    start = pd.Timestamp(s.start).tz_convert("UTC") if pd.Timestamp(s.start).tzinfo else (
        pd.Timestamp(s.start).tz_localize("UTC"))
    zone_slots = {}
    for name, zone in s.zones.items():
        pair = []
        for kind in ("carbon_g_per_kwh", "price_usd_per_mwh"):
            field_name = f"zones.{name}.{kind}"
            signal = getattr(zone, kind).build(loaded.paths, field_name)
            try:
                pair.append(signal.slots(start, n_slots, slot_h, rng))
            except (OSError, ValueError, KeyError) as error:
                raise InputError(loaded.source, field_name, str(error)) from None
        zone_slots[name] = pair
    carbon = np.vstack([zone_slots[x.zone][0] for x in sites])
    price = np.vstack([zone_slots[x.zone][1] for x in sites])
    setup = SimulationSetup(
        federation=federation, jobs=jobs, carbon_g_per_kwh=carbon, price_usd_per_mwh=price,
        slot_h=slot_h, period_slots=period_slots, drain_slots=drain_slots,
        horizon_slots=horizon_slots, forecast=_forecast(s, rng),
    )
    config = PlannerConfig(
        carbon_price_usd_per_t=s.carbon_price_usd_per_t,
        delay_cost_usd_per_gpu_h=s.delay_cost_usd_per_gpu_h,
        max_wait_h=s.temporal_max_wait_h,
        solver=SolverOptions(s.solver.time_limit_s, s.solver.mip_gap, s.solver.threads),
        method=s.solver.method,
    )
    return ScenarioRun(s, setup, config, start)


def _forecast(s: Scenario, rng: np.random.Generator) -> ForecastError:
    """Exact unless the scenario asks for error; only then is a seed drawn (so scenarios
    without forecast error draw exactly what they drew before)."""
    spec = s.forecast
    if spec.carbon_error_sd == 0 and spec.price_error_sd == 0:
        return ForecastError()
    return ForecastError(spec.carbon_error_sd, spec.price_error_sd, int(rng.integers(2**62)))


def _trace_jobs(w: TraceWorkloadSpec, s: Scenario, affinity: AffinityMatrix,
                rng: np.random.Generator, paths: DataPaths) -> list[Job]:
    window = TraceWindow(w.window_h[0], w.window_h[1], w.rate_scale, w.max_gpus,
                         w.max_runtime_h)
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
        calibration=PUBLISHED[w.calibrate] if w.calibrate else None,
        max_gpus=w.max_gpus,
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
