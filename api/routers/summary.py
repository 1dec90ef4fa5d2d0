"""``/v1/summary``: energy, emissions and cost of the federation so far, by site."""

from __future__ import annotations

from fastapi import APIRouter

from api.auth import CurrentPrincipal, Summary
from api.schemas import SummaryOut

router = APIRouter(tags=["summary"])


@router.get("/summary")
def summary(summary: Summary, who: CurrentPrincipal) -> SummaryOut:
    """Metered on completed jobs, with the forecasts their sites advertised when planned."""
    return summary.summary()
