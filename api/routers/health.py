"""``/v1/health``: liveness, the broker's clock and its slot length; ``/v1/version``: the
package version (no token needed for either)."""

from __future__ import annotations

from fastapi import APIRouter

from api.auth import Summary
from api.schemas import HealthOut, VersionOut
from api.version import package_version

router = APIRouter(tags=["health"])


@router.get("/health")
def health(summary: Summary) -> HealthOut:
    """Agents check ``slot_h`` here before registering."""
    return summary.health()


@router.get("/version")
def version() -> VersionOut:
    return VersionOut(version=package_version(), api="v1")
