"""``/v1/plans``: run a planning round (admin) and read the latest plan."""

from __future__ import annotations

from fastapi import APIRouter, status
from fastapi.concurrency import run_in_threadpool

from api.auth import AdminToken, Service
from api.schemas import PlanOut

router = APIRouter(prefix="/plans", tags=["plans"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def run_round(service: Service, who: AdminToken) -> PlanOut:
    """Plan now: requeue from stale sites, solve the MILP, hand out the jobs that start now."""
    return await run_in_threadpool(service.plan_round)


@router.get("/latest")
def latest_plan(service: Service, who: AdminToken) -> PlanOut:
    return service.latest_plan()
