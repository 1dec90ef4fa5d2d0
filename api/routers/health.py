"""``/v1/health``: liveness, the broker's clock and its slot length (no token needed)."""

from __future__ import annotations

from fastapi import APIRouter

from api.auth import Summary
from api.schemas import HealthOut

router = APIRouter(tags=["health"])


@router.get("/health")
def health(summary: Summary) -> HealthOut:
    """Agents check ``slot_h`` here before registering."""
    return summary.health()
