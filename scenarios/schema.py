"""The scenario file format (YAML), as pydantic models with ``extra="forbid"``.

Units are in the field names. Signals and workloads are tagged unions on ``kind``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from sites import ConstantSignal, CsvSignal, ListSignal, Signal, SyntheticDiurnal


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- signals -----------------------------------------------------------------------------


class ConstantSignalSpec(Strict):
    kind: Literal["constant"]
    value: float

    def build(self, base_dir: Path) -> Signal:
        return ConstantSignal(self.value)


class HourlySignalSpec(Strict):
    kind: Literal["hourly"]
    values: list[float] = Field(min_length=1)

    def build(self, base_dir: Path) -> Signal:
        return ListSignal(tuple(self.values))


class SyntheticSignalSpec(Strict):
    kind: Literal["synthetic"]
    mean: float
    amplitude: float = 0.0
    peak_hour: float = Field(19.0, ge=0, lt=24)
    solar_dip: float = 0.0
    noise_sd: float = Field(0.0, ge=0)
    utc_offset_h: float = Field(0.0, ge=-12, le=14)
    floor: float = 0.0

    def build(self, base_dir: Path) -> Signal:
        return SyntheticDiurnal(**self.model_dump(exclude={"kind"}))


class CsvSignalSpec(Strict):
    kind: Literal["csv"]
    path: Path
    column: str
    time_column: str = "Datetime (UTC)"

    def build(self, base_dir: Path) -> Signal:
        path = self.path if self.path.is_absolute() else base_dir / self.path
        return CsvSignal(path, self.column, self.time_column)


SignalSpec = Annotated[
    ConstantSignalSpec | HourlySignalSpec | SyntheticSignalSpec | CsvSignalSpec,
    Field(discriminator="kind"),
]


class ZoneSpec(Strict):
    """A grid zone's signals: carbon intensity (gCO2/kWh) and energy price (USD/MWh)."""

    carbon_g_per_kwh: SignalSpec
    price_usd_per_mwh: SignalSpec


# --- sites, GPUs, affinity ------------------------------------------------------------------


class GpuSpec(Strict):
    board_power_w: float = Field(gt=0)
    idle_power_w: float | None = Field(None, ge=0)


class SiteSpecModel(Strict):
    id: str = Field(min_length=1)
    zone: str
    gpus: dict[str, Annotated[int, Field(ge=0)]]
    pue: float = Field(1.2, ge=1.0, le=3.0)
    egress_usd_per_gb: float = Field(0.02, ge=0)


# --- workload -------------------------------------------------------------------------------


class JobSpec(Strict):
    id: str = Field(min_length=1)
    home_site: str
    job_type: str
    gpus: int = Field(ge=1)
    work_steps: float | None = Field(None, gt=0)
    reference_runtime_h: float | None = Field(None, gt=0)  # hours on the reference GPU
    submit_h: float = Field(ge=0)
    deadline_h: float | None = None
    dataset_gb: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _check(self) -> JobSpec:
        if (self.work_steps is None) == (self.reference_runtime_h is None):
            raise ValueError("give exactly one of work_steps and reference_runtime_h")
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

    @model_validator(mode="after")
    def _check(self) -> SyntheticWorkloadSpec:
        if len(self.gpu_counts) != len(self.gpu_count_weights):
            raise ValueError("gpu_counts and gpu_count_weights must have the same length")
        if sum(self.gpu_count_weights) <= 0:
            raise ValueError("gpu_count_weights must not all be 0")
        if not 1.0 <= self.deadline_slack[0] <= self.deadline_slack[1]:
            raise ValueError("deadline_slack must be (low, high) with 1 <= low <= high")
        return self


WorkloadSpec = Annotated[JobListWorkload | SyntheticWorkloadSpec, Field(discriminator="kind")]


# --- the scenario ---------------------------------------------------------------------------


class SolverSpec(Strict):
    method: Literal["auto", "full", "lp-guided"] = "auto"
    time_limit_s: float = Field(10.0, gt=0)
    mip_gap: float = Field(0.01, ge=0, lt=1)
    threads: int = Field(1, ge=1)


POLICY_NAMES = ("milp", "isolated", "greedy-carbon", "greedy-price", "temporal")


class Scenario(Strict):
    name: str
    description: str = ""
    start: datetime = datetime.fromisoformat("2023-06-05T00:00:00+00:00")
    period_h: float = Field(gt=0)
    slot_h: float = Field(1.0, gt=0)
    horizon_h: float = Field(24.0, gt=0)
    drain_h: float = Field(48.0, ge=0)
    seed: int = 0
    carbon_price_usd_per_t: float = Field(0.0, ge=0)
    delay_cost_usd_per_gpu_h: float = Field(0.005, ge=0)
    transfer_gbps: float = Field(10.0, gt=0)
    temporal_max_wait_h: float = Field(24.0, ge=0)
    policies: list[Literal["milp", "isolated", "greedy-carbon", "greedy-price", "temporal"]] = (
        Field(default_factory=lambda: list(POLICY_NAMES), min_length=1)
    )
    solver: SolverSpec = SolverSpec()
    gpus: dict[str, GpuSpec] = {}
    affinity: dict[str, dict[str, Annotated[float, Field(ge=0)]]] = {}
    zones: dict[str, ZoneSpec] = Field(min_length=1)
    sites: list[SiteSpecModel] = Field(min_length=1)
    workload: WorkloadSpec
