"""``/v1/jobs``: submit jobs (one or a batch) and read their state.

Job ids are per home site: two sites may each have a job "train-1", and a site's 409 for a
used id only ever concerns its own ids."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status
from starlette.concurrency import run_in_threadpool

from api.auth import AdminToken, CurrentPrincipal, Jobs
from api.errors import FieldError
from api.gate import charge_jobs
from api.schemas import ID_PATTERN, JobBatchIn, JobIn, JobOut, JobsAccepted
from api.states import JobStatus

router = APIRouter(prefix="/jobs", tags=["jobs"])


# Async routes that check and store in the thread pool: a site's job budget is charged on the
# event loop, the only thread that touches the request limits (api.throttle).
@router.post("", status_code=status.HTTP_201_CREATED)
async def submit_job(body: JobIn, jobs: Jobs, who: CurrentPrincipal,
                     request: Request) -> JobOut:
    """Queue a job (admin, or a site for its own jobs); a future ``submit_h`` holds it."""
    charge_jobs(request, who, 1)
    return (await run_in_threadpool(jobs.submit, [body], who, ("body",)))[0]


@router.post("/batch", status_code=status.HTTP_201_CREATED)
async def submit_jobs(body: JobBatchIn, jobs: Jobs, who: CurrentPrincipal,
                      request: Request) -> JobsAccepted:
    """Queue several jobs, all or none (at most ``max_batch_jobs``); a site's jobs count
    against its job submission rate, accepted or not."""
    limit = jobs.ctx.settings.max_batch_jobs
    if len(body.jobs) > limit:
        raise FieldError(("body", "jobs"), f"{len(body.jobs)} jobs; at most {limit} per batch")
    charge_jobs(request, who, len(body.jobs))
    accepted = await run_in_threadpool(jobs.submit, body.jobs, who, ("body", "jobs"))
    return JobsAccepted(accepted=len(accepted), jobs=accepted)


@router.get("")
def list_jobs(
    jobs: Jobs, who: AdminToken, status: Annotated[JobStatus | None, Query()] = None
) -> list[JobOut]:
    return jobs.list(status)


HomeSite = Annotated[str | None, Query(
    pattern=ID_PATTERN, description="the job's home site (job ids are per home site); "
    "default: the caller's own, else (a site) the job of that id assigned to it, else (the "
    "admin) the only job of that id")]


@router.get("/{job_id}")
def read_job(
    job_id: Annotated[str, Path(pattern=ID_PATTERN)], jobs: Jobs, who: CurrentPrincipal,
    home_site: HomeSite = None,
) -> JobOut:
    """A job's state (admin, its home site, or the site it is assigned to)."""
    return jobs.get(job_id, who, home_site)


@router.post("/{job_id}/cancel")
def cancel_job(
    job_id: Annotated[str, Path(pattern=ID_PATTERN)], jobs: Jobs, who: CurrentPrincipal,
    home_site: HomeSite = None,
) -> JobOut:
    """Cancel a job (admin, or its home site): never planned again; the site running it finds
    it revoked at its next offer or heartbeat and stops it. 409 if it has finished."""
    return jobs.cancel(job_id, who, home_site)
