"""``/v1/plans``: run a planning round (admin) and read the latest plan."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, status

from api.auth import AdminToken, Planning
from api.schemas import PlanOut

router = APIRouter(prefix="/plans", tags=["plans"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def run_round(planning: Planning, who: AdminToken) -> PlanOut:
    """Plan now (on the planning worker, off the request path): requeue what expired, plan
    the most urgent queued jobs, hand out the jobs that start now."""
    return await asyncio.wrap_future(planning.submit())


@router.get("/latest")
def latest_plan(planning: Planning, who: AdminToken) -> PlanOut:
    return planning.latest()
