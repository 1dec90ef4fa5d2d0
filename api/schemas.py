"""Request and response bodies of the REST API (pydantic v2, ``extra="forbid"``, units in names).

Numbers are bounded so no request can overflow the database or the planner (and NaN and
infinity are refused); ids are short, plain strings so they are safe in paths and logs.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, model_validator

from api.states import AssignmentStatus, Directive, JobStatus
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

MAX_ARGV = 256  # arguments of a command
MAX_ARG_CHARS = 4096
MAX_SCRIPT_CHARS = 64 * 1024
MAX_ENV = 64  # environment variables
MAX_ENV_VALUE_CHARS = 4096
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
IMAGE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:/@\-]{0,255}$"
MAX_PATH_CHARS = 1024
MAX_MESSAGE_CHARS = 2000  # api.models.MESSAGE_LENGTH
EnvName = Annotated[str, Field(pattern=ENV_NAME_PATTERN)]
EnvValue = Annotated[str, Field(max_length=MAX_ENV_VALUE_CHARS)]
Arg = Annotated[str, Field(max_length=MAX_ARG_CHARS)]


class RunSpec(Strict):
    """What a job runs, for the site that takes it: a command (argv) or a batch script.

    The broker stores it as given and never runs, logs or shows it to any site but the one
    holding the job's assignment (in that site's assignment list). Whether the site runs it,
    and how (a local process, a Slurm batch job, a container), is the site's
    (``sites.executors``); a site that will not answers with a reject and never gets it again.
    """

    command: list[Arg] | None = Field(None, min_length=1, max_length=MAX_ARGV,
                                      description="argv, e.g. [\"python\", \"train.py\"]")
    script: str | None = Field(None, min_length=1, max_length=MAX_SCRIPT_CHARS,
                               description="a batch script's text (starts with #!)")
    env: dict[EnvName, EnvValue] = Field(default_factory=dict, max_length=MAX_ENV)
    image: str | None = Field(None, pattern=IMAGE_PATTERN,
                              description="container image; the site decides if it runs them")
    checkpoint_dir: str | None = Field(None, min_length=1, max_length=MAX_PATH_CHARS,
                                       description="where a preemptible job keeps its state")
    max_runtime_h: float | None = Field(None, gt=0, le=MAX_HOURS,
                                        description="the run is stopped after this")

    @model_validator(mode="after")
    def _one_payload(self) -> RunSpec:
        if (self.command is None) == (self.script is None):
            raise ValueError("give a command or a script (one of them)")
        if self.command is not None and not self.command[0]:
            raise ValueError("command[0] is empty")
        return self



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
    run: RunSpec | None = Field(None, description="what to run (shown only to the site that "
                                "holds the job's assignment); none: the site simulates it")
    preemptible: bool = Field(False, description="the broker may pause it while it runs and "
                              "resume it later, here or elsewhere")
    checkpoint_overhead_h: float = Field(0.0, ge=0, le=24, description="busy hours lost at "
                                         "each pause and each resume (needs preemptible)")
    checkpoint_gb: float = Field(0.0, ge=0, le=1e6, description="shipped when it resumes on "
                                 "another site (needs preemptible)")
    elastic: bool = Field(False, description="its GPU count may change while it runs, within "
                          "min_gpus..max_gpus")
    resize_overhead_h: float = Field(0.0, ge=0, le=24, description="busy hours lost at each "
                                     "resize (needs elastic)")

    @model_validator(mode="after")
    def _checkpoint(self) -> JobIn:
        if not self.preemptible and (self.checkpoint_overhead_h or self.checkpoint_gb):
            raise ValueError("checkpoint_overhead_h and checkpoint_gb need preemptible: true")
        if self.elastic and (self.min_gpus is None or self.min_gpus == self.max_gpus):
            raise ValueError("elastic needs a GPU range (min_gpus < max_gpus)")
        if self.resize_overhead_h and not self.elastic:
            raise ValueError("resize_overhead_h needs elastic: true")
        return self

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


class AttemptOut(Strict):
    """One hand-over of a job to a site and how it ended (for the job's home and the admin)."""

    assignment_id: int
    site_id: str
    status: AssignmentStatus
    requeue_reason: str | None = None
    run_ref: str | None = None
    exit_code: int | None = None
    exit_state: str | None = None
    message: str | None = None
    started_at_s: float | None = None
    ended_at_s: float | None = Field(None, description="when it completed, failed or was "
                                     "withdrawn (a pause, a timeout)")


class JobOut(Strict):
    id: str = Field(description="the id its home site gave it (unique within that home)")
    key: str = Field(description="the broker's key for it, unique across the federation, "
                     "as plans name it: home_site/id (a job stored before schema 0007 keeps "
                     "its id)")
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
    has_run: bool = Field(False, description="it carries a run spec (shown only to its site)")
    failures: int = Field(0, description="runs that failed (it fails after max_attempts)")
    history: list[AttemptOut] | None = Field(
        None, description="every attempt (reading one job, as its home site or the admin)")
    preemptible: bool = False
    elastic: bool = False
    done_steps: float = Field(0.0, description="work done before its pauses (its checkpoint)")
    paused_site: str | None = Field(None, description="where its checkpoint is, while paused")


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
    run: RunSpec | None = Field(None, description="what to run: only in the holding site's "
                                "own assignment list")
    run_ref: str | None = None
    exit_code: int | None = None
    exit_state: str | None = None
    run_message: str | None = None
    measured_energy_kwh: float | None = Field(
        None, description="what the site measured (energy_kwh is the broker's model)")
    directive: Directive | None = Field(None, description="the broker's word on a running "
                                        "job: 'pause' or 'resize' (stop it and report its "
                                        "progress at /pause or /resize within ack_timeout_s, "
                                        "else it is requeued)")
    directive_gpus: int | None = Field(None, description="a resize's new GPU count")
    reported_runtime_h: float | None = Field(
        None, description="hours (broker clock) between the site's start and completion "
        "reports, beside the expected runtime_h")


REF_PATTERN = r"^[A-Za-z0-9_.:\-]{1,64}$"


class RunReport(Strict):
    """What a site's executor says with a start, completion or failure (all optional)."""

    ref: str | None = Field(None, pattern=REF_PATTERN, description="its id for the run (a "
                            "Slurm job id, a pid)")
    exit_code: int | None = Field(None, ge=-(2**31), le=2**31 - 1)
    exit_state: str | None = Field(None, min_length=1, max_length=32,
                                   description="e.g. COMPLETED, FAILED, TIMEOUT, signal 9")
    message: str | None = Field(None, max_length=MAX_MESSAGE_CHARS,
                                description="a failure's last log lines")
    energy_kwh: float | None = Field(None, ge=0, le=1e9, description="the run's measured "
                                     "energy (NVML counters, Slurm ConsumedEnergy), GPUs only")
    started_at_s: float | None = Field(None, ge=0, le=1e11, description="UNIX time the run "
                                       "started, by the executor's clock (Slurm's StartTime)")
    ended_at_s: float | None = Field(None, ge=0, le=1e11, description="UNIX time it ended")


class PauseIn(Strict):
    """A site paused a job on the broker's word: how far the run got (its share of the work
    this assignment was given: the executor's own count, or its elapsed over expected time)."""

    progress: float = Field(ge=0, le=1, description="the share of this assignment's work done")


class RejectIn(Strict):
    """A site refuses a job (its acceptance policy): the job goes back to the queue and is
    never offered to this site again."""

    reason: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS,
                        examples=["image 'x' is not allowed here"])


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
    paused: list[int] = Field(default_factory=list, description="running assignments the "
                              "round asked their sites to pause (preemptible jobs)")
    resized: list[int] = Field(default_factory=list, description="running assignments the "
                               "round asked their sites to resize (elastic jobs)")
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
    jobs_failed: int = Field(0, description="runs that failed at this site")
    measured_runs: int = Field(0, description="completed runs whose energy the site measured "
                               "(their measured figure is used, carbon and cost scaled to it)")
    flagged: bool = Field(False, description="its last flag_after_failures runs all failed")
    energy_kwh: float
    carbon_kg: float
    energy_cost_usd: float
    transfer_cost_usd: float
    total_cost_usd: float


EnergySource = Literal["modelled", "measured", "mixed"]


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
    energy_source: EnergySource = Field(
        "modelled", description="whose energy figures the totals use: the broker's model, the "
        "sites' measurements, or both (measured where a site measured the run)")


class LedgerOut(Strict):
    scheme: str
    markup: float
    carbon_price_usd_per_t: float
    rows: list[LedgerRow] = Field(description="one per job run away from home: its home "
                                  "pays its host (market.ledger.LedgerRow)")
    balances_usd: dict[str, float] = Field(description="received minus paid, per site shown")
    energy_source: EnergySource = Field("modelled", description="as in the summary")


class HealthOut(Strict):
    status: Literal["ok"]
    now_h: float
    time_scale: float
    slot_h: float
    horizon_slots: int
    sites: int
    rounds: int
