"""``/v1/jobs``: submit jobs (one or a batch) and read their state."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from api.auth import AdminToken, CurrentPrincipal, Service
from api.errors import FieldError
from api.schemas import ID_PATTERN, JobBatchIn, JobIn, JobOut, JobsAccepted, JobStatus

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.post("", status_code=status.HTTP_201_CREATED)
def submit_job(body: JobIn, service: Service, who: CurrentPrincipal) -> JobOut:
    """Queue a job (admin, or a site for its own jobs)."""
    return service.submit_jobs([body], who, ("body",))[0]


@router.post("/batch", status_code=status.HTTP_201_CREATED)
def submit_jobs(body: JobBatchIn, service: Service, who: CurrentPrincipal) -> JobsAccepted:
    """Queue several jobs, all or none."""
    if len(body.jobs) > service.settings.max_batch_jobs:
        raise FieldError(("body", "jobs"), f"at most {service.settings.max_batch_jobs} jobs")
    jobs = service.submit_jobs(body.jobs, who, ("body", "jobs"))
    return JobsAccepted(accepted=len(jobs), jobs=jobs)


@router.get("")
def list_jobs(
    service: Service, who: AdminToken, status: Annotated[JobStatus | None, Query()] = None
) -> list[JobOut]:
    return service.list_jobs(status)


@router.get("/{job_id}")
def read_job(
    job_id: Annotated[str, Path(pattern=ID_PATTERN)], service: Service, who: CurrentPrincipal
) -> JobOut:
    """A job's state (admin, its home site, or the site it is assigned to)."""
    return service.get_job(job_id, who)
