"""Request and response bodies of the REST API (pydantic v2, ``extra="forbid"``, units in names).

Numbers are bounded so no request can overflow the database or the planner (and NaN and
infinity are refused); ids are short, plain strings so they are safe in paths and logs.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
MAX_GPUS = 100_000
MAX_SLOTS = 24 * 60  # two months of hourly slots
MAX_SEQUENCE = 2**62
MAX_HOURS = 1e7

Id = Annotated[str, Field(pattern=ID_PATTERN, examples=["montreal"])]
GpuCount = Annotated[int, Field(ge=0, le=MAX_GPUS)]
Hours = Annotated[float, Field(ge=0, le=MAX_HOURS)]
PriceUsdPerMwh = Annotated[float, Field(ge=-10_000, le=100_000)]
CarbonGPerKwh = Annotated[float, Field(ge=0, le=10_000)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


# --- sites -----------------------------------------------------------------------------------


class SiteRegistration(Strict):
    id: Id
    zone: Id
    gpus: dict[str, GpuCount] = Field(description="GPUs per GPU type (catalog names: V100, ...)")
    pue: float = Field(1.2, ge=1.0, le=3.0)
    egress_usd_per_gb: float = Field(0.02, ge=0, le=1000)


class SiteOut(Strict):
    id: str
    zone: str
    gpus: dict[str, int]
    pue: float
    egress_usd_per_gb: float
    status: Literal["active", "stale", "no-offer", "deregistered"]
    offer_sequence: int | None
    offer_age_s: float | None


class SiteRegistered(Strict):
    site: SiteOut
    token: str = Field(description="the site's bearer token; shown only here, stored hashed")


# --- offers ----------------------------------------------------------------------------------


class OfferIn(Strict):
    """A site's offer for its horizon; slot 0 starts at ``start`` (default: the broker's now)."""

    sequence: int = Field(ge=0, le=MAX_SEQUENCE, description="must grow from offer to offer")
    start: AwareDatetime | None = Field(None, description="UTC time of slot 0")
    slot_h: float = Field(gt=0, le=24)
    free_gpus: dict[str, list[GpuCount]] = Field(description="GPU type -> free GPUs per slot")
    price_usd_per_mwh: list[PriceUsdPerMwh] = Field(min_length=1, max_length=MAX_SLOTS)
    carbon_g_per_kwh: list[CarbonGPerKwh] = Field(min_length=1, max_length=MAX_SLOTS)

    @model_validator(mode="after")
    def _same_horizon(self) -> OfferIn:
        n = len(self.price_usd_per_mwh)
        if len(self.carbon_g_per_kwh) != n:
            raise ValueError(
                f"carbon_g_per_kwh has {len(self.carbon_g_per_kwh)} slots, "
                f"price_usd_per_mwh has {n}"
            )
        for gpu, counts in self.free_gpus.items():
            if len(counts) != n:
                raise ValueError(f"free_gpus.{gpu} has {len(counts)} slots, the forecasts {n}")
        return self


class OfferOut(Strict):
    site_id: str
    sequence: int
    start_h: float
    slot_h: float
    free_gpus: dict[str, list[int]]
    price_usd_per_mwh: list[float]
    carbon_g_per_kwh: list[float]
    received_at_s: float


# --- jobs ------------------------------------------------------------------------------------


class JobIn(Strict):
    id: Id
    home_site: Id
    job_type: str = Field(min_length=1, max_length=64, examples=["resnet50"])
    gpus: int = Field(ge=1, le=1024)
    work_steps: float = Field(gt=0, le=1e15)
    submit_h: Hours | None = Field(None, description="broker clock hours; default: now")
    deadline_h: Hours | None = None
    dataset_gb: float = Field(0.0, ge=0, le=1e6)


class JobBatchIn(Strict):
    jobs: list[JobIn] = Field(min_length=1)


JobStatus = Literal["queued", "assigned", "acknowledged", "running", "completed"]


class JobOut(Strict):
    id: str
    home_site: str
    job_type: str
    gpus: int
    work_steps: float
    submit_h: float
    deadline_h: float | None
    dataset_gb: float
    status: JobStatus
    attempts: int
    site_id: str | None = None  # where its current assignment is
    assignment_id: int | None = None


class JobsAccepted(Strict):
    accepted: int
    jobs: list[JobOut]


# --- assignments -----------------------------------------------------------------------------

AssignmentStatus = Literal["assigned", "acknowledged", "running", "completed", "requeued"]


class AssignmentOut(Strict):
    id: int
    job: JobOut
    site_id: str
    gpu_type: str
    round_id: int
    status: AssignmentStatus
    start_h: float
    transfer_h: float = Field(description="hours to receive the data set before running")
    runtime_h: float = Field(description="expected run time on this GPU type")
    energy_kwh: float
    carbon_kg: float
    energy_cost_usd: float
    transfer_cost_usd: float


class AssignmentsOut(Strict):
    assignments: list[AssignmentOut]


# --- plans -----------------------------------------------------------------------------------


class PlannedStart(Strict):
    job_id: str
    site_id: str
    gpu_type: str
    start_offset: int
    start_h: float


class PlanOut(Strict):
    round_id: int
    now_h: float
    status: str
    objective_usd: float | None
    bound_usd: float | None
    n_options: int
    queued: int
    solve_time_s: float
    planned: list[PlannedStart] = Field(description="every planned start, also later slots")
    assigned: list[int] = Field(description="assignment ids created (jobs starting now)")
    deferred: list[str]
    requeued: list[str] = Field(description="jobs taken back from stale sites this round")


# --- summary and health ----------------------------------------------------------------------


class SiteTotals(Strict):
    site_id: str
    jobs_completed: int
    jobs_active: int
    energy_kwh: float
    carbon_kg: float
    energy_cost_usd: float
    transfer_cost_usd: float
    total_cost_usd: float


class SummaryOut(Strict):
    now_h: float
    carbon_price_usd_per_t: float
    jobs: dict[str, int] = Field(description="jobs per status")
    energy_kwh: float
    carbon_kg: float
    energy_cost_usd: float
    transfer_cost_usd: float
    total_cost_usd: float = Field(description="energy + transfer + carbon price x emissions")
    by_site: list[SiteTotals]


class HealthOut(Strict):
    status: Literal["ok"]
    now_h: float
    time_scale: float
    slot_h: float
    horizon_slots: int
    sites: int
    rounds: int
