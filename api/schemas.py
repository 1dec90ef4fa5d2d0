"""Request and response bodies of the REST API (pydantic v2, ``extra="forbid"``, units in names).

Numbers are bounded so no request can overflow the database or the planner (and NaN and
infinity are refused); ids are short, plain strings so they are safe in paths and logs.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, model_validator

from api.states import AssignmentStatus, JobStatus
from market.ledger import LedgerRow
from sites.model_base import Strict

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
MAX_GPUS = 100_000
MAX_SLOTS = 24 * 60  # two months of hourly slots
MAX_SEQUENCE = 2**62
MAX_HOURS = 1e7
MAX_HOLDING = 10_000  # assignment ids one offer or heartbeat may list

Id = Annotated[str, Field(pattern=ID_PATTERN, examples=["montreal"])]
GpuCount = Annotated[int, Field(ge=0, le=MAX_GPUS)]
Hours = Annotated[float, Field(ge=0, le=MAX_HOURS)]
MAX_ROW_ID = 2**31 - 1  # an INTEGER key on PostgreSQL
AssignmentRef = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]
PriceUsdPerMwh = Annotated[float, Field(ge=-10_000, le=100_000)]
CarbonGPerKwh = Annotated[float, Field(ge=0, le=10_000)]


# --- sites -----------------------------------------------------------------------------------


class SiteRegistration(Strict):
    id: Id
    zone: Id
    gpus: dict[str, GpuCount] = Field(description="GPUs per GPU type (catalog names: V100, ...)")
    pue: float = Field(1.2, ge=1.0, le=3.0)
    egress_usd_per_gb: float = Field(0.02, ge=0, le=1000)


class ClaimBounds(Strict):
    """Per-site bounds on what offers may claim (None: the broker's settings)."""

    min_price_usd_per_mwh: PriceUsdPerMwh | None = None
    max_price_usd_per_mwh: PriceUsdPerMwh | None = None
    min_carbon_g_per_kwh: CarbonGPerKwh | None = None
    max_carbon_g_per_kwh: CarbonGPerKwh | None = None


SiteStatus = Literal["enrolled", "active", "stale", "no-offer", "disabled", "deregistered"]


class SiteOut(Strict):
    id: str
    zone: str
    gpus: dict[str, int]
    pue: float
    egress_usd_per_gb: float
    status: SiteStatus
    offer_sequence: int | None
    offer_age_s: float | None
    bounds: ClaimBounds = ClaimBounds()


class SiteRegistered(Strict):
    site: SiteOut
    token: str = Field(description="the site's bearer token; shown only here, stored hashed")


class EnrolmentIn(Strict):
    """An admin enrols a site: its id, zone and fleet (what its offers may claim at most)."""

    id: Id
    zone: Id
    gpus: dict[str, GpuCount] = Field(description="the enrolled fleet: GPUs per GPU type")
    pue: float = Field(1.2, ge=1.0, le=3.0, description="the site's PUE (what it registers "
                       "with is ignored: the enrolment's word holds)")
    egress_usd_per_gb: float = Field(0.02, ge=0, le=1000)
    bounds: ClaimBounds = ClaimBounds()


class Enrolled(Strict):
    site: SiteOut
    enrolment_token: str = Field(description="one-time token the site registers with; shown "
                                 "only here, stored hashed")


# --- offers ----------------------------------------------------------------------------------


class OfferIn(Strict):
    """A site's offer for its horizon; slot 0 starts at ``start`` (default: the broker's now)."""

    sequence: int = Field(ge=0, le=MAX_SEQUENCE, description="must grow from offer to offer")
    start: AwareDatetime | None = Field(None, description="UTC time of slot 0")
    slot_h: float = Field(gt=0, le=24)
    free_gpus: dict[str, list[GpuCount]] = Field(description="GPU type -> free GPUs per slot")
    price_usd_per_mwh: list[PriceUsdPerMwh] = Field(min_length=1, max_length=MAX_SLOTS)
    carbon_g_per_kwh: list[CarbonGPerKwh] = Field(min_length=1, max_length=MAX_SLOTS)
    holding: list[AssignmentRef] = Field(
        default_factory=list, max_length=MAX_HOLDING,
        description="assignment ids the site holds (taken, acknowledged or running), already "
        "subtracted from free_gpus; renews their leases")

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
    holding: list[int] = []
    revoked: list[int] = Field(
        default=[], description="listed assignment ids that are no longer the site's (lease "
        "expired, withdrawn): stop running them")


class HeartbeatIn(Strict):
    holding: list[AssignmentRef] = Field(max_length=MAX_HOLDING, description="as in an offer")


class HeartbeatOut(Strict):
    renewed: list[int]
    revoked: list[int]


# --- jobs ------------------------------------------------------------------------------------


class JobIn(Strict):
    id: Id
    home_site: Id
    job_type: str = Field(min_length=1, max_length=64, examples=["resnet50"])
    gpus: int = Field(ge=1, le=1024, description="the GPU count it asks for")
    min_gpus: int | None = Field(None, ge=1, le=1024, description="moldable: with max_gpus, "
                                 "the range the planner chooses the count from (holding gpus)")
    max_gpus: int | None = Field(None, ge=1, le=1024)
    work_steps: float = Field(gt=0, le=1e15)
    submit_h: Hours | None = Field(None, description="broker clock hours; default: now")
    deadline_h: Hours | None = None
    dataset_gb: float = Field(0.0, ge=0, le=1e6)

    @model_validator(mode="after")
    def _gpu_range(self) -> JobIn:
        if (self.min_gpus is None) != (self.max_gpus is None):
            raise ValueError("give both min_gpus and max_gpus, or neither")
        if self.min_gpus is not None and self.max_gpus is not None and not (
                self.min_gpus <= self.gpus <= self.max_gpus):
            raise ValueError(f"needs min_gpus <= gpus <= max_gpus, got {self.min_gpus} <= "
                             f"{self.gpus} <= {self.max_gpus}")
        return self


class JobBatchIn(Strict):
    jobs: list[JobIn] = Field(min_length=1)


class JobOut(Strict):
    id: str
    home_site: str
    job_type: str
    gpus: int
    min_gpus: int | None = None
    max_gpus: int | None = None
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

class AssignmentOut(Strict):
    id: int
    job: JobOut
    site_id: str
    gpu_type: str
    gpus: int = Field(description="GPUs of that type to run it on (a moldable job's: the "
                      "planner's choice)")
    round_id: int
    status: AssignmentStatus
    start_h: float
    transfer_h: float = Field(description="hours to receive the data set before running")
    runtime_h: float = Field(description="expected run time on this GPU type")
    energy_kwh: float
    carbon_kg: float
    energy_cost_usd: float
    transfer_cost_usd: float
    requeue_reason: str | None = None
    late_completion_at_s: float | None = Field(
        None, description="a completion the site reported after the job was withdrawn (409)")
    reported_runtime_h: float | None = Field(
        None, description="hours (broker clock) between the site's start and completion "
        "reports, beside the expected runtime_h")


class AssignmentsOut(Strict):
    assignments: list[AssignmentOut]


# --- plans -----------------------------------------------------------------------------------


class PlannedStart(Strict):
    job_id: str
    site_id: str
    gpu_type: str
    gpus: int = 0  # 0 in rounds recorded before counts were planned
    start_offset: int
    start_h: float


class PlanOut(Strict):
    round_id: int
    now_h: float
    status: str
    objective_usd: float | None
    bound_usd: float | None
    gap: float | None = Field(None, description="relative gap between cost and bound")
    method: str = Field("milp", description="milp, or greedy when it kept the cheaper plan")
    n_options: int
    queued: int = Field(description="queued jobs at the round's start (also held ones)")
    considered: int = Field(description="jobs the round planned (max_jobs_per_round cap)")
    held: int = Field(0, description="queued jobs whose submit_h is still in the future")
    solve_time_s: float
    elapsed_s: float | None = Field(None, description="the whole round: read, plan, record")
    planned: list[PlannedStart] = Field(description="every planned start, also later slots")
    assigned: list[int] = Field(description="assignment ids created (jobs starting now)")
    deferred: list[str]
    requeued: list[str] = Field(description="jobs taken back this round (ack timeout, lease "
                                "expired, stale site)")


# --- summary and health ----------------------------------------------------------------------


class VersionOut(Strict):
    version: str = Field(description="the carbonfed package's version")
    api: str = Field(description="the REST API's version prefix")



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


class LedgerOut(Strict):
    scheme: str
    markup: float
    carbon_price_usd_per_t: float
    rows: list[LedgerRow] = Field(description="one per job run away from home: its home "
                                  "pays its host (market.ledger.LedgerRow)")
    balances_usd: dict[str, float] = Field(description="received minus paid, per site shown")


class HealthOut(Strict):
    status: Literal["ok"]
    now_h: float
    time_scale: float
    slot_h: float
    horizon_slots: int
    sites: int
    rounds: int
