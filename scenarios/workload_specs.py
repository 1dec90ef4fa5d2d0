"""The workload of a scenario: an explicit job list, a synthetic generator, or real traces."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from broker.calibration import PUBLISHED
from broker.traces import TraceWindow
from broker.workload import SyntheticWorkload
from scenarios.spec_base import Strict, name_of


class GpuRange(Strict):
    """A moldable job's GPU counts: the broker chooses among them (``broker.jobs.Job``)."""

    min: int = Field(ge=1)
    max: int = Field(ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> GpuRange:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self


class MoldableSpec(Strict):
    """Every job of the scenario may run on any count in [min_gpus, max_gpus] (widened to hold
    its own count), the broker choosing; trace and synthetic jobs keep their count as asked."""

    min_gpus: int = Field(1, ge=1)
    max_gpus: int = Field(8, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> MoldableSpec:
        if self.min_gpus > self.max_gpus:
            raise ValueError(f"min_gpus ({self.min_gpus}) is above max_gpus ({self.max_gpus})")
        return self


class PreemptibleSpec(Strict):
    """Every job of the scenario may be paused and resumed (``broker.jobs.Job``), each pause
    and each resume costing ``checkpoint_overhead_h`` of busy GPUs; resuming on another site
    ships its ``checkpoint_gb`` (weights and optimizer state: 1 GB holds a ResNet-50's or a
    Transformer-base's several times over)."""

    checkpoint_overhead_h: float = Field(0.05, ge=0)
    checkpoint_gb: float = Field(1.0, ge=0)


class ElasticSpec(Strict):
    """Every job with a GPU range (``gpus: {min, max}``, or all of them with ``moldable``) may
    change its count while it runs, each resize costing ``resize_overhead_h`` of busy GPUs."""

    resize_overhead_h: float = Field(0.05, ge=0)


class JobSpec(Strict):
    id: str = Field(min_length=1)
    home_site: str
    job_type: str
    gpus: Annotated[int, Field(ge=1)] | GpuRange  # a count, or {min, max}: moldable
    preemptible: bool = False
    checkpoint_overhead_h: float = Field(0.0, ge=0)  # at each pause and each resume
    checkpoint_gb: float = Field(0.0, ge=0)  # shipped when it resumes on another site
    elastic: bool = False  # its count may change while it runs (needs gpus: {min, max})
    resize_overhead_h: float = Field(0.0, ge=0)  # at each resize
    work_steps: float | None = Field(None, gt=0)
    reference_runtime_h: float | None = Field(None, gt=0)  # hours on the reference GPU
    submit_h: float = Field(ge=0)
    deadline_h: float | None = None
    dataset_gb: float = Field(0.0, ge=0)

    @property
    def asked_gpus(self) -> int:
        """The count it asks for (a range's largest: what a policy that does not choose runs)."""
        return self.gpus if isinstance(self.gpus, int) else self.gpus.max

    @property
    def gpu_range(self) -> tuple[int | None, int | None]:
        return (None, None) if isinstance(self.gpus, int) else (self.gpus.min, self.gpus.max)

    @model_validator(mode="after")
    def _check(self) -> JobSpec:
        if (self.work_steps is None) == (self.reference_runtime_h is None):
            raise ValueError("give exactly one of work_steps and reference_runtime_h")
        if self.checkpoint_overhead_h > 0 and not self.preemptible:
            raise ValueError("checkpoint_overhead_h needs preemptible: true")
        if self.checkpoint_gb > 0 and not self.preemptible:
            raise ValueError("checkpoint_gb needs preemptible: true")
        if self.elastic and isinstance(self.gpus, int):
            raise ValueError("elastic needs a GPU range: gpus: {min: ..., max: ...}")
        if self.resize_overhead_h > 0 and not self.elastic:
            raise ValueError("resize_overhead_h needs elastic: true")
        return self

    @field_validator("deadline_h")
    @classmethod
    def _deadline_after_submit(cls, deadline_h: float | None, info: ValidationInfo) -> float | None:
        submit_h = info.data.get("submit_h")  # absent when submit_h itself failed
        if deadline_h is not None and submit_h is not None and deadline_h <= submit_h:
            raise ValueError(f"must be after submit_h ({submit_h})")  # the CLI adds (got ...)
        return deadline_h


class JobListWorkload(Strict):
    kind: Literal["list"]
    reference_gpu: str = "V100"
    jobs: list[JobSpec] = Field(min_length=1)


class SyntheticWorkloadSpec(Strict):
    kind: Literal["synthetic"]
    jobs_per_hour: float = Field(gt=0)
    job_types: list[str] | None = None  # default: every job type of the affinity matrix
    reference_gpu: str = "V100"
    diurnal_amplitude: float = Field(0.3, ge=0, le=1)
    gpu_counts: list[Annotated[int, Field(ge=1)]] = [1, 2, 4, 8]
    gpu_count_weights: list[Annotated[float, Field(ge=0)]] = [0.7, 0.15, 0.1, 0.05]
    median_runtime_h: float = Field(2.0, gt=0)
    runtime_sigma: float = Field(1.0, ge=0)
    max_runtime_h: float = Field(24.0, gt=0)
    deadline_fraction: float = Field(0.2, ge=0, le=1)
    deadline_slack: tuple[float, float] = (1.5, 4.0)
    median_dataset_gb: float = Field(20.0, ge=0)
    dataset_sigma: float = Field(1.0, ge=0)
    # published trace statistics to calibrate to (broker.calibration.PUBLISHED)
    calibrate: Annotated[str, *name_of(PUBLISHED, "calibration")] | None = None
    max_gpus: int = Field(8, ge=1)  # widest calibrated job

    @model_validator(mode="after")
    def _check(self) -> SyntheticWorkloadSpec:
        if len(self.gpu_counts) != len(self.gpu_count_weights):
            raise ValueError("gpu_counts and gpu_count_weights must have the same length")
        if sum(self.gpu_count_weights) <= 0:
            raise ValueError("gpu_count_weights must not all be 0")
        if not 1.0 <= self.deadline_slack[0] <= self.deadline_slack[1]:
            raise ValueError("deadline_slack must be (low, high) with 1 <= low <= high")
        return self

    def to_domain(self, all_job_types: tuple[str, ...]) -> SyntheticWorkload:
        fields: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v
            for k, v in self.model_dump(exclude={"kind", "job_types", "calibrate"}).items()}
        return SyntheticWorkload(
            **fields,
            job_types=tuple(self.job_types or all_job_types),
            calibration=PUBLISHED[self.calibrate] if self.calibrate else None,
        )


# Alibaba v2023 GPU models -> catalog types (G2, G3 are anonymised, A10 is not in the catalog).
ALIBABA_GPU_MODELS = {"V100M16": "V100", "V100M32": "V100", "P100": "P100", "T4": "T4"}


class TraceWorkloadSpec(Strict):
    """Jobs from real traces: one file per home site (a path in the data folder or absolute).

    ``window_h`` is [from, to) in trace hours; ``rate_scale`` 2 makes jobs arrive twice as fast.
    Alibaba pods name no model: their job types are drawn from ``job_types``.
    """

    kind: Literal["trace"]
    format: Literal["gavel", "alibaba-pods"]
    files: dict[str, Path] = Field(min_length=1)  # home site id -> trace file
    window_h: tuple[float, float] = (0.0, 1e9)
    rate_scale: float = Field(1.0, gt=0)
    max_gpus: int | None = Field(None, ge=1)
    max_runtime_h: float | None = Field(None, gt=0)  # on reference_gpu; longer jobs left out
    reference_gpu: str = "V100"
    job_types: list[str] | None = None
    # Alibaba pods' gpu_spec names cluster GPU models; this maps them to catalog GPU types.
    # A pod restricted to models none of which maps here is left out (and counted).
    gpu_models: dict[str, str] = Field(default_factory=lambda: dict(ALIBABA_GPU_MODELS))
    median_dataset_gb: float = Field(0.0, ge=0)  # 0: no data set to move
    dataset_sigma: float = Field(1.0, ge=0)

    @model_validator(mode="after")
    def _check(self) -> TraceWorkloadSpec:
        if not 0 <= self.window_h[0] < self.window_h[1]:
            raise ValueError("window_h must be [from, to) with 0 <= from < to")
        return self

    def window(self) -> TraceWindow:
        return TraceWindow(self.window_h[0], self.window_h[1], self.rate_scale, self.max_gpus,
                           self.max_runtime_h)


WorkloadSpec = Annotated[JobListWorkload | SyntheticWorkloadSpec | TraceWorkloadSpec,
                         Field(discriminator="kind")]
