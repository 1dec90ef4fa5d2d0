"""``GET /v1/plans?limit=N``: the last planning rounds, newest first (admin), for the dashboard.

``/v1/plans/latest`` answers one round with every planned start; a list of rounds needs only
each round's figures, so this answers a compact summary per round and reads nothing else.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import Field
from sqlalchemy import select

from api.auth import AdminToken, AllServices
from api.models import PlanRoundRow
from api.schemas import Strict

router = APIRouter(prefix="/plans", tags=["plans"])
MAX_ROUNDS = 100


class RoundSummaryOut(Strict):
    round_id: int
    now_h: float = Field(description="the broker's clock when the round ran")
    created_at_s: float = Field(description="wall time (UNIX seconds) when the round ran")
    status: str
    method: str
    objective_usd: float | None
    bound_usd: float | None
    gap: float | None
    queued: int
    considered: int
    held: int
    assigned: int = Field(description="jobs the round started")
    deferred: int
    requeued: int
    solve_time_s: float
    elapsed_s: float | None


def _summary(row: PlanRoundRow) -> RoundSummaryOut:
    plan = row.plan
    return RoundSummaryOut(
        round_id=row.id, now_h=row.now_h, created_at_s=row.created_at_s, status=row.status,
        method=plan.get("method", "milp"), objective_usd=row.objective_usd,
        bound_usd=row.bound_usd, gap=plan.get("gap"), queued=row.queued,
        considered=plan.get("considered", row.queued), held=plan.get("held", 0),
        assigned=len(plan.get("assigned", ())),
        deferred=plan.get("deferred_count", len(plan.get("deferred", ()))),
        requeued=len(plan.get("requeued", ())), solve_time_s=row.solve_time_s,
        elapsed_s=plan.get("elapsed_s"),
    )


@router.get("")
def list_rounds(
    services: AllServices, who: AdminToken,
    limit: Annotated[int, Query(ge=1, le=MAX_ROUNDS)] = 10,
) -> list[RoundSummaryOut]:
    """The last ``limit`` planning rounds, newest first."""
    with services.ctx.db.read() as s:
        rows = s.scalars(select(PlanRoundRow).order_by(PlanRoundRow.id.desc()).limit(limit))
        return [_summary(r) for r in rows]
