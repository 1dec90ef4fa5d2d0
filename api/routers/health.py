"""``/v1/health``: liveness and the broker's clock (no token needed)."""

from __future__ import annotations

from fastapi import APIRouter

from api.auth import Service
from api.schemas import HealthOut

router = APIRouter(tags=["health"])


@router.get("/health")
def health(service: Service) -> HealthOut:
    return service.health()
