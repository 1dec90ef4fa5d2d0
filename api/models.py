"""The live broker's tables (SQLAlchemy 2.0 typed ORM).

Times are stored two ways: ``*_at_s`` is wall-clock UNIX seconds (staleness, audit), ``*_h``
is the broker's clock in hours (what the planner sees). Arrays (offers, plans) are JSON.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ID_LENGTH = 64
# a job's key: its home site and the id that site gave it, "home/id" (job_key); a site id or a
# job id never holds "/" (api.schemas.ID_PATTERN), so keys of different homes never collide
JOB_KEY_LENGTH = 2 * ID_LENGTH + 1
JOB_KEY_SEPARATOR = "/"
TOKEN_HASH_LENGTH = 64  # sha256 hex
REF_LENGTH = 64  # an executor's id for a run
STATE_LENGTH = 32  # an executor's name for how a run ended
MESSAGE_LENGTH = 2000  # a reject's reason, a failure's last log lines


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict] = {dict[str, Any]: JSON, list[Any]: JSON}


class Meta(Base):
    """Key-value facts of the broker itself: schema version, clock origin, admin token hash."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))


class SiteRow(Base):
    __tablename__ = "sites"
    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, unique=True)  # registration order
    zone: Mapped[str] = mapped_column(String(ID_LENGTH))
    gpus: Mapped[dict[str, Any]]
    pue: Mapped[float] = mapped_column(Float)
    egress_usd_per_gb: Mapped[float] = mapped_column(Float)
    token_sha256: Mapped[str | None] = mapped_column(String(TOKEN_HASH_LENGTH), unique=True)
    # api.states.SiteState; only an active site's token works and only it gets jobs
    state: Mapped[str] = mapped_column(String(16), default="active")
    # the one-time enrolment token's hash, until the site registers with it
    enrol_token_sha256: Mapped[str | None] = mapped_column(
        String(TOKEN_HASH_LENGTH), unique=True, default=None)
    # per-site bounds an admin set at enrolment (None: the broker's settings)
    min_price_usd_per_mwh: Mapped[float | None] = mapped_column(Float, default=None)
    max_price_usd_per_mwh: Mapped[float | None] = mapped_column(Float, default=None)
    min_carbon_g_per_kwh: Mapped[float | None] = mapped_column(Float, default=None)
    max_carbon_g_per_kwh: Mapped[float | None] = mapped_column(Float, default=None)
    registered_at_s: Mapped[float] = mapped_column(Float)  # enrolment or open registration
    deregistered_at_s: Mapped[float | None] = mapped_column(Float, default=None)


class OfferRow(Base):
    """A site's current offer; a newer ``sequence`` replaces it, an older one is refused."""

    __tablename__ = "offers"
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), primary_key=True)
    sequence: Mapped[int] = mapped_column(BigInteger)  # up to 2^62: not INTEGER on PostgreSQL
    start_h: Mapped[float] = mapped_column(Float)
    slot_h: Mapped[float] = mapped_column(Float)
    free_gpus: Mapped[dict[str, Any]]
    price_usd_per_mwh: Mapped[list[Any]]
    carbon_g_per_kwh: Mapped[list[Any]]
    received_at_s: Mapped[float] = mapped_column(Float)
    # assignment ids the site says it holds: their GPUs are already out of free_gpus
    holding: Mapped[list[Any]] = mapped_column(default=list)
    # the site's last heartbeat (liveness: the newer of this and received_at_s)
    heartbeat_at_s: Mapped[float | None] = mapped_column(Float, default=None)


def job_key(home_site: str, client_id: str) -> str:
    """The key of the job its home site calls ``client_id``: unique across the federation."""
    return f"{home_site}{JOB_KEY_SEPARATOR}{client_id}"


class JobRow(Base):
    """A job. Job ids are per home site: ``client_id`` is the id its home site gave it (unique
    within that home only), ``id`` the broker's key for it (``job_key``; a job stored before
    schema 0007 keeps its old, then global, id as its key), which assignments, run specs and
    plans refer to."""

    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(JOB_KEY_LENGTH), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    home_site: Mapped[str] = mapped_column(ForeignKey("sites.id"))
    job_type: Mapped[str] = mapped_column(String(ID_LENGTH))
    gpus: Mapped[int] = mapped_column(Integer)  # asked for
    # a moldable job's range (both or neither): the planner chooses the count
    min_gpus: Mapped[int | None] = mapped_column(Integer, default=None)
    max_gpus: Mapped[int | None] = mapped_column(Integer, default=None)
    work_steps: Mapped[float] = mapped_column(Float)
    submit_h: Mapped[float] = mapped_column(Float)
    deadline_h: Mapped[float | None] = mapped_column(Float)
    dataset_gb: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), index=True)  # api.states.JobStatus
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # assignments made so far
    submitted_at_s: Mapped[float] = mapped_column(Float)
    # GPU-hours on the reference GPU (V100), what the per-site queue quota counts (None:
    # submitted before it was recorded, counted as 0)
    reference_gpu_h: Mapped[float | None] = mapped_column(Float, default=None)
    # a preemptible job may be paused while it runs (``api.services.directives``): the work
    # it did before (its checkpoint) and where that checkpoint is (all three, or none)
    preemptible: Mapped[bool] = mapped_column(Boolean, default=False)
    checkpoint_overhead_h: Mapped[float] = mapped_column(Float, default=0.0)
    checkpoint_gb: Mapped[float] = mapped_column(Float, default=0.0)
    done_steps: Mapped[float] = mapped_column(Float, default=0.0)
    paused_site: Mapped[str | None] = mapped_column(String(ID_LENGTH), default=None)
    paused_gpu_type: Mapped[str | None] = mapped_column(String(ID_LENGTH), default=None)
    paused_gpus: Mapped[int | None] = mapped_column(Integer, default=None)
    # an elastic job (with a GPU range) may change its count while it runs
    elastic: Mapped[bool] = mapped_column(Boolean, default=False)
    resize_overhead_h: Mapped[float] = mapped_column(Float, default=0.0)

    __table_args__ = (UniqueConstraint("home_site", "client_id", name="uq_jobs_home_client"),)


class JobRunRow(Base):
    """What a job runs (``api.schemas.RunSpec``), apart from the job: no job listing, planning
    read or log ever loads it; only the site holding the job's assignment reads it."""

    __tablename__ = "job_runs"
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), primary_key=True)
    spec: Mapped[dict[str, Any]]


class AssignmentRow(Base):
    """One hand-over of a job to a site; a job has at most one that is not requeued."""

    __tablename__ = "assignments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"))
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"))
    gpu_type: Mapped[str] = mapped_column(String(ID_LENGTH))
    gpus: Mapped[int] = mapped_column(Integer)  # the planner's count (a moldable job's choice)
    round_id: Mapped[int] = mapped_column(ForeignKey("plan_rounds.id"))
    status: Mapped[str] = mapped_column(String(16))  # api.states.AssignmentStatus
    start_h: Mapped[float] = mapped_column(Float)
    transfer_h: Mapped[float] = mapped_column(Float)
    runtime_h: Mapped[float] = mapped_column(Float)
    energy_kwh: Mapped[float] = mapped_column(Float)
    carbon_kg: Mapped[float] = mapped_column(Float)
    energy_cost_usd: Mapped[float] = mapped_column(Float)
    transfer_cost_usd: Mapped[float] = mapped_column(Float)
    created_at_s: Mapped[float] = mapped_column(Float)
    acknowledged_at_s: Mapped[float | None] = mapped_column(Float, default=None)
    started_at_s: Mapped[float | None] = mapped_column(Float, default=None)
    completed_at_s: Mapped[float | None] = mapped_column(Float, default=None)
    # the site's last renewal of the lease (ack, start, an offer or heartbeat listing it)
    renewed_at_s: Mapped[float | None] = mapped_column(Float, default=None)
    requeued_at_s: Mapped[float | None] = mapped_column(Float, default=None)
    requeue_reason: Mapped[str | None] = mapped_column(String(32), default=None)
    # a completion reported after the assignment was withdrawn (answered 409), for the audit
    late_completion_at_s: Mapped[float | None] = mapped_column(Float, default=None)
    # what the site's executor reported: its id for the run (a Slurm job id, a pid), how the
    # run ended (exit code, the executor's state name) and a short message (a reject's reason,
    # a failure's last log lines)
    run_ref: Mapped[str | None] = mapped_column(String(REF_LENGTH), default=None)
    exit_code: Mapped[int | None] = mapped_column(Integer, default=None)
    exit_state: Mapped[str | None] = mapped_column(String(STATE_LENGTH), default=None)
    run_message: Mapped[str | None] = mapped_column(String(MESSAGE_LENGTH), default=None)
    # the run's energy as the site measured it (NVML, Slurm); energy_kwh is the model's
    measured_energy_kwh: Mapped[float | None] = mapped_column(Float, default=None)
    # broker-clock hours between the site's start and completion reports (beside runtime_h)
    reported_runtime_h: Mapped[float | None] = mapped_column(Float, default=None)
    # the broker's word on a running assignment (``api.states.Directive``) and when it was
    # given: acknowledged within ack_timeout_s, or the assignment is requeued
    directive: Mapped[str | None] = mapped_column(String(16), default=None)
    directive_gpus: Mapped[int | None] = mapped_column(Integer, default=None)  # a resize's
    directive_at_s: Mapped[float | None] = mapped_column(Float, default=None)

    __table_args__ = (
        Index("ix_assignments_site_status", "site_id", "status"),
        Index("ix_assignments_job", "job_id"),
    )


class PlanRoundRow(Base):
    __tablename__ = "plan_rounds"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    now_h: Mapped[float] = mapped_column(Float)
    created_at_s: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(32))
    objective_usd: Mapped[float | None] = mapped_column(Float)
    bound_usd: Mapped[float | None] = mapped_column(Float)
    n_options: Mapped[int] = mapped_column(Integer)
    queued: Mapped[int] = mapped_column(Integer)
    solve_time_s: Mapped[float] = mapped_column(Float)
    plan: Mapped[dict[str, Any]]  # every planned assignment (also later starts), deferred jobs
