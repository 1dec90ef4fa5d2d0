"""Reading what a scenario names in data files: GPU power, affinity and real fleets."""

from __future__ import annotations

from scenarios.data_paths import DataPaths
from scenarios.schema import FLEET_FILES, Scenario
from scenarios.validation import ResolvedData
from sites import DEFAULT_GPUS, AffinityMatrix, GpuType, InputError, default_affinity
from sites.affinity import GAVEL_MEDIAN_SERIAL_FRACTION, default_measurements
from sites.readers.fleets import read_alibaba_nodes, read_pai_machines
from sites.readers.gavel_affinity import gavel_measurements, read_gavel_throughputs
from sites.readers.gpu_power import read_gpu_tdp
from sites.scaling import ScalingModel

FLEET_READERS = {"alibaba-nodes": read_alibaba_nodes, "pai-machines": read_pai_machines}


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
        catalog[name] = spec.to_domain(name)
    return catalog


def affinity_matrix(scenario: Scenario, paths: DataPaths | None = None) -> AffinityMatrix:
    """The built-in catalog, then the affinity file's job types, then the scenario's overrides;
    its scaling model fitted to the built-in, the file's and the scenario's measurements."""
    base = default_affinity()
    table = {j: {g: float(base.throughput[i, k]) for k, g in enumerate(base.gpu_types)}
             for i, j in enumerate(base.job_types)}
    measured = default_measurements()
    spec_file = scenario.affinity_file
    if spec_file is not None and paths is not None:
        path = paths.data_file(spec_file.path, "affinity_file.path")
        extra = read_gavel_throughputs(path, spec_file.unconsolidated).affinity()
        for i, job in enumerate(extra.job_types):
            table[job] = {g: float(extra.throughput[i, k]) for k, g in enumerate(extra.gpu_types)}
        measured.update({key: dict(points) for key, points in gavel_measurements(path).items()})
    for job_type, row in scenario.affinity.items():
        table.setdefault(job_type, {}).update(row)
    for job_type, per_gpu in scenario.scaling.items():
        for gpu, points in per_gpu.items():
            one = table.get(job_type, {}).get(gpu, 0.0)
            if one <= 0:
                source = paths.source if paths is not None else "scenario"
                raise InputError(source, f"scaling.{job_type}.{gpu}",
                                 f"no one-GPU throughput of {job_type} on {gpu} to scale "
                                 "(give it under affinity)")
            measured[(job_type, gpu, True)] = {1: one, **points}
    scaling = ScalingModel.fitted(measured, GAVEL_MEDIAN_SERIAL_FRACTION)
    return AffinityMatrix.from_nested(table, scaling)


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
