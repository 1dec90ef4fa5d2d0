"""``/v1/summary``: energy, emissions and cost of the federation so far, by site."""

from __future__ import annotations

from fastapi import APIRouter

from api.auth import CurrentPrincipal, Summary
from api.errors import ForbiddenError
from api.schemas import LedgerOut, SummaryOut

router = APIRouter(tags=["summary"])


@router.get("/summary")
def summary(summary: Summary, who: CurrentPrincipal) -> SummaryOut:
    """Metered on completed jobs, with the forecasts their sites advertised when planned."""
    return summary.summary()


@router.get("/ledger")
def ledger(summary: Summary, who: CurrentPrincipal) -> LedgerOut:
    """Who pays whom for completed jobs run away from home (cost-plus at the broker's markup).
    The admin sees every row; a site sees the rows where it pays or is paid."""
    if who.admin:
        return summary.ledger()
    if who.site_id is None:
        raise ForbiddenError("the ledger is for the admin and the sites")
    return summary.ledger(who.site_id)
