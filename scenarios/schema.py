"""The scenario file format (YAML), as pydantic models with ``extra="forbid"``.

Units are in the field names. Signals (``scenarios.signal_specs``) and workloads
(``scenarios.workload_specs``) are tagged unions on ``kind``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from broker.forecast import ForecastNoise
from broker.outside import (
    DEFAULT_CARBON_G_PER_KWH,
    DEFAULT_PUE,
    DEFAULT_REGION,
    DEFAULT_USD_PER_GPU_H,
    OutsideOption,
)
from broker.planner import PLANNER_DEFAULTS, PlannerConfig
from broker.policy_registry import POLICIES
from market.carbon_policy import CARBON_POLICY_KINDS, CarbonPolicy, CarbonPolicyKind
from optimization import SOLVE_METHODS, SolverOptions
from scenarios.signal_specs import ZoneSpec
from scenarios.spec_base import Strict, name_of
from scenarios.workload_specs import (
    ElasticSpec,
    JobListWorkload,
    MoldableSpec,
    PreemptibleSpec,
    SyntheticWorkloadSpec,
    TraceWorkloadSpec,
    WorkloadSpec,
)
from sites import GpuType, SiteSpec

__all__ = ["JobListWorkload", "Scenario", "SyntheticWorkloadSpec", "TraceWorkloadSpec",
           "ZoneSpec"]

GAVEL_FILE = "gpu/gavel_throughputs.json"
TDP_FILE = "gpu/gpus_tdp.csv"
FLEET_FILES = {"alibaba-nodes": "jobs/alibaba_v2023/openb_node_list_gpu_node.csv",
               "pai-machines": "jobs/pai_v2020_machine_spec.csv"}


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
    # One-GPU rates come from scale factor 1; k GPUs from the file's scaling measurements.
    scale_factor: Literal[1] = 1
    unconsolidated: bool = False


class GpuPowerFileSpec(Strict):
    """Board power from the TDP table: catalog GPU type -> the table's ``name``."""

    path: Path = Path(TDP_FILE)
    gpus: dict[str, str] = Field(min_length=1)


class ForecastSpec(Strict):
    """Relative day-ahead forecast error the planner sees (the meter uses the actual)."""

    carbon_error_sd: float = Field(0.0, ge=0, le=1)
    price_error_sd: float = Field(0.0, ge=0, le=1)

    def to_domain(self, seed: int) -> ForecastNoise:
        return ForecastNoise(self.carbon_error_sd, self.price_error_sd, seed)


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


# --- the scenario ---------------------------------------------------------------------------


# The solver's defaults, written once in ``optimization.SolverOptions``.
SOLVER_DEFAULTS = SolverOptions()


class SolverSpec(Strict):
    """How each planning round is solved. A round's work is bounded deterministically (see
    ``optimization.SolverOptions``), so a scenario and seed give the same totals on any machine
    at any load; ``time_limit_s`` is only a wall-clock safety net per round, and a run whose
    rounds hit it says so. ``threads: 1`` keeps HiGHS's path independent of scheduling."""

    method: Annotated[str, *name_of(SOLVE_METHODS, "solver method")] = "auto"
    time_limit_s: float = Field(SOLVER_DEFAULTS.time_limit_s, gt=0)
    mip_gap: float = Field(SOLVER_DEFAULTS.mip_gap, ge=0, lt=1)
    threads: int = Field(SOLVER_DEFAULTS.threads, ge=1)
    aggregate_tolerance_usd: float = Field(
        SOLVER_DEFAULTS.aggregate_tolerance_usd, ge=0,
        description="merge queued jobs that differ by at most this many USD a job on every "
        "option (same pools, starts and GPUs) before a round is solved, and hand the plan back "
        "(optimization.aggregation: the round's bound stays proven); 0 merges none")
    max_listed_options: int = Field(
        PLANNER_DEFAULTS.max_listed_options, ge=0,
        description="above this many options (jobs x GPU counts x pools x starts, estimated "
        "before anything is built) a round holds them as a grid of runs x starts instead of "
        "listing each (broker.round_grid: the same options and prices, built in a tenth of "
        "the time and memory; preemptible jobs then run contiguously); 0: every round")



MAX_PERIOD_H = 87_600.0
MAX_HORIZON_H = 24.0 * 14  # the MILP looks two weeks ahead at most


PolicyName = Annotated[str, *name_of(POLICIES, "policy")]


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
    # How carbon is priced (``market.carbon_policy``): none, tax (the price above), or a
    # federation-wide cap in tonnes per run, with or without trading of allowances.
    carbon_policy: Annotated[str, *name_of(CARBON_POLICY_KINDS, "carbon policy")] = "tax"
    carbon_cap_t: float | None = Field(None, gt=0)
    allowance_cut: float = Field(0.1, ge=0, lt=1)
    delay_cost_usd_per_gpu_h: float = Field(PLANNER_DEFAULTS.delay_cost_usd_per_gpu_h, ge=0)
    transfer_gbps: float = Field(10.0, gt=0)
    temporal_max_wait_h: float = Field(PLANNER_DEFAULTS.max_wait_h, ge=0)
    policies: list[PolicyName] = Field(default_factory=lambda: list(POLICIES), min_length=1)
    solver: SolverSpec = SolverSpec()
    gpus: dict[str, GpuSpec] = {}
    moldable: MoldableSpec | None = None  # every job's GPU count chosen by the broker
    preemptible: PreemptibleSpec | None = None  # every job may be paused and resumed
    elastic: ElasticSpec | None = None  # every job with a GPU range may be resized running
    affinity: dict[str, dict[str, Annotated[float, Field(ge=0)]]] = {}
    # Measured whole-job steps/s on k GPUs (one server): {job type: {GPU type: {k: steps/s}}}
    scaling: dict[str, dict[str, dict[Annotated[int, Field(ge=2)],
                                      Annotated[float, Field(gt=0)]]]] = {}
    affinity_file: AffinityFileSpec | None = None
    gpu_power_file: GpuPowerFileSpec | None = None
    forecast: ForecastSpec = ForecastSpec()
    outside_option: OutsideOptionSpec = OutsideOptionSpec()
    zones: dict[str, ZoneSpec] = Field(min_length=1)
    sites: list[SiteSpecModel] = Field(min_length=1)
    workload: WorkloadSpec

    @model_validator(mode="after")
    def _cap_has_a_limit(self) -> Scenario:
        if self.carbon_policy == "cap" and self.carbon_cap_t is None:
            raise ValueError("carbon_policy 'cap' needs carbon_cap_t (tonnes per run)")
        return self

    def carbon_policy_spec(self) -> CarbonPolicy:
        return CarbonPolicy(CarbonPolicyKind(self.carbon_policy), self.carbon_price_usd_per_t,
                            self.carbon_cap_t, self.allowance_cut)

    def planner_config(self) -> PlannerConfig:
        # a run prices carbon at the scenario's price (none: free); caps are analysed by
        # `carbonfed market`, which finds the price that meets them
        return PlannerConfig.build(
            carbon_price_usd_per_t=0.0 if self.carbon_policy == "none"
            else self.carbon_price_usd_per_t,
            delay_cost_usd_per_gpu_h=self.delay_cost_usd_per_gpu_h,
            max_wait_h=self.temporal_max_wait_h,
            method=self.solver.method,
            time_limit_s=self.solver.time_limit_s,
            mip_gap=self.solver.mip_gap,
            threads=self.solver.threads,
            aggregate_tolerance_usd=self.solver.aggregate_tolerance_usd,
            max_listed_options=self.solver.max_listed_options,
        )
