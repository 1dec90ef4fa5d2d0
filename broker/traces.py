"""Job traces: Gavel's Philly-derived ``.trace`` files and Alibaba v2023 pod lists -> ``Job``.

Readers return long-format frames and check every row; ``*_jobs`` functions turn a frame into
the broker's jobs for a scenario window:

* the window ``[from_h, to_h)`` is in trace hours (arrival time since the trace's start); a job
  arriving at ``a`` is submitted at ``(a - from_h) / rate_scale`` scenario hours, so
  ``rate_scale = 2`` doubles the arrival rate; jobs submitted after the period are left out;
* Gavel job types map to affinity names (``"ResNet-18 (batch size 64)"`` -> ``resnet18-bs64``,
  or the model's short name ``resnet18`` when the affinity matrix has no batch sizes);
* jobs wider than ``max_gpus``, or longer than ``max_runtime_h`` on the reference GPU (when
  given), are left out and counted, never silently resized.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from broker.jobs import Job
from sites.affinity import AffinityMatrix
from sites.errors import InputError
from sites.readers.gavel_affinity import base_job_type, carbonfed_job_type
from sites.readers.timeseries import check_values, line_of, read_csv_checked
from sites.units import SECONDS_PER_HOUR

GAVEL_COLUMNS = ("job_type", "command", "num_steps_arg", "needs_data_dir", "total_steps",
                 "arrival_time_s", "scale_factor")
POD_COLUMNS = ("name", "num_gpu", "gpu_milli", "creation_time", "deletion_time")
MILLI = 1000.0


@dataclass(frozen=True)
class TraceWindow:
    """Which part of a trace becomes the scenario's workload, and how fast it arrives."""

    from_h: float = 0.0
    to_h: float = math.inf
    rate_scale: float = 1.0
    max_gpus: int | None = None
    max_runtime_h: float | None = None  # on the reference GPU

    def submit_h(self, arrival_h: np.ndarray) -> np.ndarray:
        return (arrival_h - self.from_h) / self.rate_scale


@dataclass(frozen=True)
class TraceJobs:
    """Jobs taken from a trace and how many rows were left out, by reason."""

    jobs: tuple[Job, ...]
    skipped: dict[str, int] = field(default_factory=dict)


def read_gavel_trace(path: Path | str) -> pd.DataFrame:
    """Tab-separated, no header, 7 fields per line (``GAVEL_COLUMNS``); arrivals never go back.

    Returns columns ``job_type`` (Gavel's name), ``total_steps``, ``arrival_time_s``, ``gpus``.
    """
    source = str(path)
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        raise InputError(source, "", "no such file") from None
    rows = [line.split("\t") for line in lines if line.strip()]
    if not rows:
        raise InputError(source, "", "the file is empty")
    for i, row in enumerate(rows):
        if len(row) != len(GAVEL_COLUMNS):
            raise InputError(source, f"line {i + 1}", f"{len(row)} tab-separated fields, "
                             f"expected {len(GAVEL_COLUMNS)} ({', '.join(GAVEL_COLUMNS)})")
    frame = pd.DataFrame(rows, columns=list(GAVEL_COLUMNS))

    def numbers(column: str) -> np.ndarray:
        values = check_values(frame[column], source, column, allow_negative=False)
        return values

    steps = numbers("total_steps")
    arrival = numbers("arrival_time_s")
    gpus = numbers("scale_factor")
    for column, values, lowest in (("total_steps", steps, 1), ("scale_factor", gpus, 1)):
        bad = np.flatnonzero((values < lowest) | (values != np.round(values)))
        if len(bad):
            raise InputError(source, f"line {bad[0] + 1}, field '{column}'",
                             f"must be a whole number >= {lowest}, got {values[bad[0]]}")
    back = np.flatnonzero(np.diff(arrival) < 0)
    if len(back):
        i = int(back[0]) + 1
        raise InputError(source, f"line {i + 1}, field 'arrival_time_s'",
                         f"time goes backwards: {arrival[i]} after {arrival[i - 1]}")
    return pd.DataFrame({"job_type": frame["job_type"].str.strip(), "total_steps": steps,
                         "arrival_time_s": arrival, "gpus": gpus.astype(int)})



def gavel_trace_jobs(trace: pd.DataFrame, home_site: str, affinity: AffinityMatrix,
                     window: TraceWindow, period_h: float,
                     dataset_gb: Sequence[float] | np.ndarray | None,
                     id_prefix: str, source: str, reference_gpu: str = "V100") -> TraceJobs:
    """One job per trace row in the window; ``total_steps`` is the job's work.

    ``dataset_gb`` gives each row of the trace its data-set size (None: no data set).
    """
    submit = window.submit_h(trace["arrival_time_s"].to_numpy() / SECONDS_PER_HOUR)
    arrival_h = trace["arrival_time_s"].to_numpy() / SECONDS_PER_HOUR
    in_window = (arrival_h >= window.from_h) & (arrival_h < window.to_h) & (submit < period_h)
    too_wide = in_window & (trace["gpus"].to_numpy() > (window.max_gpus or np.inf))
    jobs = []
    too_long = 0
    for i in np.flatnonzero(in_window & ~too_wide):
        row = trace.iloc[i]
        job = Job(
            id=f"{id_prefix}{i:05d}", home_site=home_site,
            job_type=affinity_job_type(row["job_type"], affinity, source, int(i)),
            gpus=int(row["gpus"]), work_steps=float(row["total_steps"]),
            submit_h=float(submit[i]),
            dataset_gb=float(dataset_gb[int(i)]) if dataset_gb is not None else 0.0,
        )
        if (window.max_runtime_h is not None
                and job.runtime_on_h(affinity, reference_gpu) > window.max_runtime_h):
            too_long += 1
            continue
        jobs.append(job)
    skipped = {"wider than max_gpus": int(too_wide.sum()), "longer than max_runtime_h": too_long}
    return TraceJobs(tuple(jobs), {k: v for k, v in skipped.items() if v})


def affinity_job_type(gavel_name: str, affinity: AffinityMatrix, source: str, row: int) -> str:
    """The affinity matrix's name for a Gavel job type: exact batch size, else the model."""
    name = carbonfed_job_type(gavel_name)
    for candidate in (name, base_job_type(name)):
        if candidate in affinity.job_types:
            return candidate
    raise InputError(source, f"line {row + 1}, field 'job_type'",
                     f"job type '{gavel_name}' ({name}) is not in the affinity matrix")


def read_alibaba_pods(path: Path | str) -> pd.DataFrame:
    """Alibaba v2023 pod list: ``name``, ``num_gpu``, ``gpu_milli`` (thousandths of a GPU each
    GPU gives the pod), optional ``gpu_spec`` (allowed models, ``V100M16|V100M32``),
    ``creation_time``, ``deletion_time``, optional ``scheduled_time`` (s; empty = never ran).

    Returns those columns with ``gpu_spec`` as a tuple of models (empty: any).
    """
    source = str(path)
    frame = read_csv_checked(path, POD_COLUMNS)
    out = pd.DataFrame({"name": frame["name"].astype(str)})
    for column in ("num_gpu", "gpu_milli", "creation_time", "deletion_time"):
        out[column] = check_values(frame[column], source, column, allow_negative=False)
    over = np.flatnonzero(out["gpu_milli"].to_numpy() > MILLI)
    if len(over):
        raise InputError(source, f"{line_of(int(over[0]))}, column 'gpu_milli'",
                         f"more than one GPU's worth ({out['gpu_milli'].iloc[over[0]]} > 1000)")
    back = np.flatnonzero(np.diff(out["creation_time"].to_numpy()) < 0)
    if len(back):
        row = int(back[0]) + 1
        times = out["creation_time"]
        raise InputError(source, f"{line_of(row)}, column 'creation_time'",
                         f"time goes backwards: {times.iloc[row]} after {times.iloc[row - 1]}")
    early = np.flatnonzero(out["deletion_time"].to_numpy() < out["creation_time"].to_numpy())
    if len(early):
        raise InputError(source, f"{line_of(int(early[0]))}, column 'deletion_time'",
                         "deleted before it was created")
    scheduled = frame.get("scheduled_time")
    out["scheduled_time"] = (pd.to_numeric(scheduled, errors="coerce") if scheduled is not None
                             else out["creation_time"])
    specs = frame.get("gpu_spec")
    out["gpu_spec"] = [tuple(str(s).split("|")) if isinstance(s, str) and s.strip() else ()
                       for s in (specs if specs is not None else [None] * len(frame))]
    return out


def alibaba_pod_jobs(pods: pd.DataFrame, home_site: str, affinity: AffinityMatrix,
                     job_types: Sequence[str], reference_gpu: str, window: TraceWindow,
                     period_h: float, rng: np.random.Generator, id_prefix: str,
                     gpu_models: Mapping[str, str] | None = None) -> TraceJobs:
    """GPU pods that ran become training jobs.

    * run time = deletion - scheduled time, taken as the run time on ``reference_gpu``;
    * a pod sharing a GPU (``gpu_milli`` < 1000 on one GPU) becomes a 1-GPU job holding the GPU
      for that fraction of its run time: the same GPU-hours and energy, since carbonfed
      allocates whole GPUs;
    * pods carry no model name: job types are drawn uniformly from ``job_types`` (seeded);
    * left out and counted: pods without GPUs, pods never scheduled, pods wider than
      ``max_gpus``, and pods whose ``gpu_spec`` names no model that ``gpu_models`` maps to
      a GPU type here;
    * with ``gpu_models`` (cluster model -> catalog GPU type), a ``gpu_spec`` becomes the job's
      ``gpu_types``: it runs only on the mapped types. Without it, specs are not enforced.
    """
    mapping = gpu_models or {}
    allowed = [tuple(sorted({mapping[m] for m in spec if m in mapping})) if gpu_models else ()
               for spec in pods["gpu_spec"]]
    unmappable = np.array([bool(gpu_models) and bool(spec) and not types
                           for spec, types in zip(pods["gpu_spec"], allowed, strict=True)],
                          dtype=bool)
    arrival_h = pods["creation_time"].to_numpy() / SECONDS_PER_HOUR
    submit = window.submit_h(arrival_h)
    in_window = (arrival_h >= window.from_h) & (arrival_h < window.to_h) & (submit < period_h)
    gpus = pods["num_gpu"].to_numpy().astype(int)
    ran = pods["scheduled_time"].notna().to_numpy()
    reasons = {
        "no GPU": in_window & (gpus == 0),
        "never scheduled": in_window & (gpus > 0) & ~ran,
        "wider than max_gpus": in_window & ran & (gpus > (window.max_gpus or np.inf)),
    }
    reasons["gpu_spec names no GPU type here"] = (in_window & ran & (gpus > 0) & unmappable
                                                  & ~reasons["wider than max_gpus"])
    keep = (in_window & ran & (gpus > 0) & ~reasons["wider than max_gpus"]
            & ~reasons["gpu_spec names no GPU type here"])
    runtime_h = ((pods["deletion_time"] - pods["scheduled_time"]).to_numpy() / SECONDS_PER_HOUR)
    share = np.where((gpus == 1) & (pods["gpu_milli"].to_numpy() > 0),
                     pods["gpu_milli"].to_numpy() / MILLI, 1.0)
    chosen = rng.integers(len(job_types), size=len(pods))
    jobs = []
    for i in np.flatnonzero(keep):
        job_type = job_types[chosen[i]]
        rate = affinity.job_steps_per_s(job_type, reference_gpu, int(gpus[i]))
        hours = max(runtime_h[i] * share[i], 1.0 / SECONDS_PER_HOUR)  # at least a second
        jobs.append(Job(id=f"{id_prefix}{i:05d}", home_site=home_site, job_type=job_type,
                        gpus=int(gpus[i]), work_steps=hours * rate * SECONDS_PER_HOUR,
                        submit_h=float(submit[i]), gpu_types=allowed[i]))
    return TraceJobs(tuple(jobs), {k: int(v.sum()) for k, v in reasons.items() if v.any()})
