"""The scenario file format (YAML), as pydantic models with ``extra="forbid"``.

Units are in the field names. Signals and workloads are tagged unions on ``kind``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from broker.calibration import PUBLISHED
from broker.forecast import ForecastError
from broker.outside import (
    DEFAULT_CARBON_G_PER_KWH,
    DEFAULT_PUE,
    DEFAULT_REGION,
    DEFAULT_USD_PER_GPU_H,
    OutsideOption,
)
from broker.planner import PlannerConfig
from broker.policy_registry import POLICIES
from broker.traces import TraceWindow
from broker.workload import SyntheticWorkload
from optimization import SOLVE_METHODS
from scenarios.data_paths import DataPaths
from sites import (
    ConstantSignal,
    GpuType,
    ListSignal,
    Signal,
    SiteSpec,
    SyntheticDiurnal,
    TableSignal,
)
from sites.readers.electricitymaps import read_electricitymaps
from sites.readers.lwa import CARBON, read_lwa
from sites.readers.prices import PRICE, read_prices
from sites.readers.timeseries import read_column_table


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Default file of each data kind inside the data folder (``{zone}`` / ``{region}`` filled in).
CARBON_FILE = "grid/carbon/{zone}_2023_hourly.csv"
PRICE_FILE = "grid/prices/{zone}_2023_hourly.csv"
LWA_FILE = "grid/lwa/{region}_ci.csv"
GAVEL_FILE = "gpu/gavel_throughputs.json"
TDP_FILE = "gpu/gpus_tdp.csv"
FLEET_FILES = {"alibaba-nodes": "jobs/alibaba_v2023/openb_node_list_gpu_node.csv",
               "pai-machines": "jobs/pai_v2020_machine_spec.csv"}


# --- signals -----------------------------------------------------------------------------


class ConstantSignalSpec(Strict):
    kind: Literal["constant"]
    value: float

    def lowest(self) -> tuple[str, float]:
        return "value", self.value

    def build(self, paths: DataPaths, field: str, allow_negative: bool) -> Signal:
        return ConstantSignal(self.value)


class HourlySignalSpec(Strict):
    kind: Literal["hourly"]
    values: list[float] = Field(min_length=1)

    def lowest(self) -> tuple[str, float]:
        i = min(range(len(self.values)), key=self.values.__getitem__)
        return f"values[{i}]", self.values[i]

    def build(self, paths: DataPaths, field: str, allow_negative: bool) -> Signal:
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

    def lowest(self) -> tuple[str, float]:
        # values are clipped at ``floor``; a negative mean is a typo even when clipped
        return min((("mean", self.mean), ("floor", self.floor)), key=lambda x: x[1])

    def build(self, paths: DataPaths, field: str, allow_negative: bool) -> Signal:
        return SyntheticDiurnal(**self.model_dump(exclude={"kind"}))


class CsvSignalSpec(Strict):
    kind: Literal["csv"]
    path: Path
    column: str
    time_column: str = "Datetime (UTC)"

    def build(self, paths: DataPaths, field: str, allow_negative: bool) -> Signal:
        path = self.path if self.path.is_absolute() else paths.base_dir / self.path
        table = read_column_table(paths.existing_file(path, f"{field}.path"), self.time_column,
                                  self.column, allow_negative=allow_negative)
        return TableSignal(table, self.column)


class ElectricityMapsSignalSpec(Strict):
    """An Electricity Maps hourly CSV: ``direct`` (operational) or ``lca`` (life-cycle)."""

    kind: Literal["electricitymaps"]
    zone: str = Field(min_length=1)
    column: Literal["direct", "lca"] = "direct"
    path: Path | None = None  # default: grid/carbon/<zone>_2023_hourly.csv in the data folder

    def build(self, paths: DataPaths, field: str, allow_negative: bool) -> Signal:
        file = paths.data_file(self.path or CARBON_FILE.format(zone=self.zone), f"{field}.path")
        return TableSignal(read_electricitymaps(file), self.column)


class PriceFileSignalSpec(Strict):
    kind: Literal["price-file"]
    zone: str = Field(min_length=1)
    path: Path | None = None  # default: grid/prices/<zone>_2023_hourly.csv in the data folder

    def build(self, paths: DataPaths, field: str, allow_negative: bool) -> Signal:
        file = paths.data_file(self.path or PRICE_FILE.format(zone=self.zone), f"{field}.path")
        return TableSignal(read_prices(file), PRICE)


class LwaSignalSpec(Strict):
    """Let's Wait Awhile carbon intensity (Germany 15 min, GB and France 30 min, 2020)."""

    kind: Literal["lwa"]
    region: Literal["ger", "gb", "fr"]
    path: Path | None = None

    def build(self, paths: DataPaths, field: str, allow_negative: bool) -> Signal:
        file = paths.data_file(self.path or LWA_FILE.format(region=self.region), f"{field}.path")
        return TableSignal(read_lwa(file), CARBON)


SignalSpec = Annotated[
    ConstantSignalSpec | HourlySignalSpec | SyntheticSignalSpec | CsvSignalSpec
    | ElectricityMapsSignalSpec | PriceFileSignalSpec | LwaSignalSpec,
    Field(discriminator="kind"),
]


class ZoneSpec(Strict):
    """A grid zone's signals: carbon intensity (gCO2/kWh) and energy price (USD/MWh).

    Prices may be negative (real markets go there); carbon intensity may not, on any path:
    written values are checked here, files by their reader.
    """

    carbon_g_per_kwh: SignalSpec
    price_usd_per_mwh: SignalSpec

    def build_one(self, kind: str, paths: DataPaths, field: str) -> Signal:
        """The ``kind`` signal (a field name); ``field`` names it in error messages."""
        spec = getattr(self, kind)
        return spec.build(paths, field, allow_negative=kind == "price_usd_per_mwh")

    def build(self, paths: DataPaths, field: str) -> tuple[Signal, Signal]:
        """(carbon, price) signals; ``field`` names this zone in error messages."""
        return (self.build_one("carbon_g_per_kwh", paths, f"{field}.carbon_g_per_kwh"),
                self.build_one("price_usd_per_mwh", paths, f"{field}.price_usd_per_mwh"))

    @model_validator(mode="after")
    def _carbon_not_negative(self) -> ZoneSpec:
        lowest = getattr(self.carbon_g_per_kwh, "lowest", None)
        if lowest is not None:
            name, value = lowest()
            if value < 0:
                raise ValueError(f"carbon_g_per_kwh.{name}: carbon intensity cannot be "
                                 f"negative (got {value:g})")
        return self


# --- sites, GPUs, affinity ------------------------------------------------------------------


class GpuSpec(Strict):
    board_power_w: float = Field(gt=0)
    idle_power_w: float | None = Field(None, ge=0)

    def to_domain(self, name: str) -> GpuType:
        return GpuType(name, self.board_power_w, self.idle_power_w)


class FleetSpec(Strict):
    """A slice of a real fleet: its GPU ``models`` mapped to catalog GPU types, optionally
    scaled to ``sample_gpus`` GPUs keeping the mix (see ``sites.readers.fleets``)."""

    kind: Literal["alibaba-nodes", "pai-machines"]
    path: Path | None = None  # default: the data folder's file of that kind
    models: dict[str, str] = Field(min_length=1)
    sample_gpus: int | None = Field(None, ge=1)


class SiteSpecModel(Strict):
    id: str = Field(min_length=1)
    zone: str
    gpus: dict[str, Annotated[int, Field(ge=0)]] = {}
    fleet: FleetSpec | None = None
    pue: float = Field(1.2, ge=1.0, le=3.0)
    egress_usd_per_gb: float = Field(0.02, ge=0)

    @model_validator(mode="after")
    def _one_source_of_gpus(self) -> SiteSpecModel:
        if self.fleet is not None and self.gpus:
            raise ValueError("give either gpus or fleet, not both")
        if self.fleet is None and not self.gpus:
            raise ValueError("give gpus or a fleet")
        return self

    def to_domain(self, gpus: dict[str, int]) -> SiteSpec:
        """The site with its GPUs as resolved (written here, or sliced from a fleet file)."""
        return SiteSpec(self.id, self.zone, dict(gpus), self.pue, self.egress_usd_per_gb)


class AffinityFileSpec(Strict):
    """Gavel's throughput JSON; its job types join (and override) the built-in catalog's."""

    path: Path = Path(GAVEL_FILE)
    scale_factor: int = Field(1, ge=1)
    unconsolidated: bool = False


class GpuPowerFileSpec(Strict):
    """Board power from the TDP table: catalog GPU type -> the table's ``name``."""

    path: Path = Path(TDP_FILE)
    gpus: dict[str, str] = Field(min_length=1)


class ForecastSpec(Strict):
    """Relative day-ahead forecast error the planner sees (the meter uses the actual)."""

    carbon_error_sd: float = Field(0.0, ge=0, le=1)
    price_error_sd: float = Field(0.0, ge=0, le=1)

    def to_domain(self, seed: int) -> ForecastError:
        return ForecastError(self.carbon_error_sd, self.price_error_sd, seed)


class OutsideOptionSpec(Strict):
    """The public cloud that serves jobs a policy leaves unserved (``broker.outside``).

    ``usd_per_gpu_h`` adds to or overrides the built-in on-demand prices per GPU type.
    """

    usd_per_gpu_h: dict[str, Annotated[float, Field(ge=0)]] = {}
    carbon_g_per_kwh: float = Field(DEFAULT_CARBON_G_PER_KWH, ge=0)
    pue: float = Field(DEFAULT_PUE, ge=1.0, le=3.0)
    region: str = DEFAULT_REGION

    def to_domain(self, reference_gpu: str) -> OutsideOption:
        return OutsideOption({**DEFAULT_USD_PER_GPU_H, **self.usd_per_gpu_h},
                             self.carbon_g_per_kwh, self.pue, self.region, reference_gpu)


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
    calibrate: Literal["philly", "helios", "pai"] | None = None  # published trace statistics
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


# --- the scenario ---------------------------------------------------------------------------


class SolverSpec(Strict):
    method: str = "auto"  # one of optimization.SOLVE_METHODS
    time_limit_s: float = Field(10.0, gt=0)
    mip_gap: float = Field(0.01, ge=0, lt=1)
    threads: int = Field(1, ge=1)

    @field_validator("method")
    @classmethod
    def _known_method(cls, method: str) -> str:
        return one_of(method, SOLVE_METHODS, "solver method")


MAX_PERIOD_H = 87_600.0
MAX_HORIZON_H = 24.0 * 14  # the MILP looks two weeks ahead at most


def one_of(name: str, known: Iterable[str], what: str) -> str:
    """``name`` if it is in ``known`` (a registry), else a ValueError listing the known ones."""
    if name not in known:  # the CLI adds "(got 'name')"
        raise ValueError(f"unknown {what}; known: {', '.join(map(repr, known))}")
    return name


PolicyName = Annotated[str, AfterValidator(lambda name: one_of(name, POLICIES, "policy"))]


class Scenario(Strict):
    name: str
    description: str = ""
    start: datetime = datetime.fromisoformat("2023-06-05T00:00:00+00:00")
    # Ten years at most: beyond that a run is surely a typo, and it would not end in a day.
    period_h: float = Field(gt=0, le=MAX_PERIOD_H)
    slot_h: float = Field(1.0, gt=0)
    horizon_h: float = Field(24.0, gt=0, le=MAX_HORIZON_H)
    drain_h: float = Field(48.0, ge=0, le=MAX_PERIOD_H)
    seed: int = Field(0, ge=0)  # numpy seeds are non-negative
    carbon_price_usd_per_t: float = Field(0.0, ge=0)
    delay_cost_usd_per_gpu_h: float = Field(0.005, ge=0)
    transfer_gbps: float = Field(10.0, gt=0)
    temporal_max_wait_h: float = Field(24.0, ge=0)
    policies: list[PolicyName] = Field(default_factory=lambda: list(POLICIES), min_length=1)
    solver: SolverSpec = SolverSpec()
    gpus: dict[str, GpuSpec] = {}
    affinity: dict[str, dict[str, Annotated[float, Field(ge=0)]]] = {}
    affinity_file: AffinityFileSpec | None = None
    gpu_power_file: GpuPowerFileSpec | None = None
    forecast: ForecastSpec = ForecastSpec()
    outside_option: OutsideOptionSpec = OutsideOptionSpec()
    zones: dict[str, ZoneSpec] = Field(min_length=1)
    sites: list[SiteSpecModel] = Field(min_length=1)
    workload: WorkloadSpec

    def planner_config(self) -> PlannerConfig:
        return PlannerConfig.build(
            carbon_price_usd_per_t=self.carbon_price_usd_per_t,
            delay_cost_usd_per_gpu_h=self.delay_cost_usd_per_gpu_h,
            max_wait_h=self.temporal_max_wait_h,
            method=self.solver.method,
            time_limit_s=self.solver.time_limit_s,
            mip_gap=self.solver.mip_gap,
            threads=self.solver.threads,
        )
