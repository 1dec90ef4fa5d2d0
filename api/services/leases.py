"""Withdrawing assignments: ack timeouts, expired leases, stale, disabled or departed sites.

A withdrawn assignment becomes ``requeued`` and its job ``queued`` in the same transaction, so a
job never has two live assignments and never none while it is unfinished.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, or_, select, update
from sqlalchemy.orm import Session

from api.models import AssignmentRow, JobRow, OfferRow
from api.settings import Settings
from api.states import LEASED, LIVE, AssignmentStatus, JobStatus

ACK_TIMEOUT = "ack-timeout"
LEASE_EXPIRED = "lease-expired"
SITE_STALE = "site-stale"
SITE_DISABLED = "site-disabled"
SITE_LEFT = "site-deregistered"


def requeue(s: Session, assignments: Iterable[AssignmentRow], wall_s: float,
            reason: str) -> list[str]:
    requeued = []
    for a in list(assignments):
        a.status = AssignmentStatus.REQUEUED
        a.requeued_at_s = wall_s
        a.requeue_reason = reason
        s.execute(update(JobRow).where(JobRow.id == a.job_id).values(status=JobStatus.QUEUED))
        requeued.append(a.job_id)
    return requeued


def requeue_site(s: Session, site_id: str, wall_s: float, reason: str) -> list[str]:
    return requeue(s, s.scalars(select(AssignmentRow).where(
        AssignmentRow.site_id == site_id, AssignmentRow.status.in_(LIVE))), wall_s, reason)


def expire(s: Session, settings: Settings, wall_s: float) -> list[str]:
    """Requeue what no site holds any more; returns the requeued job ids.

    * assigned, not acknowledged within ``ack_timeout_s`` (or its site went stale);
    * acknowledged or running, lease not renewed within ``lease_s``.
    """
    fresh = select(OfferRow.site_id).where(
        OfferRow.received_at_s >= wall_s - settings.stale_after_s)
    unacked = s.scalars(select(AssignmentRow).where(
        AssignmentRow.status == AssignmentStatus.ASSIGNED,
        or_(AssignmentRow.created_at_s < wall_s - settings.ack_timeout_s,
            AssignmentRow.site_id.not_in(fresh)),
    )).all()
    requeued = requeue(s, [a for a in unacked if a.created_at_s < wall_s - settings.ack_timeout_s],
                       wall_s, ACK_TIMEOUT)
    requeued += requeue(s, [a for a in unacked if a.status == AssignmentStatus.ASSIGNED],
                        wall_s, SITE_STALE)
    expired = s.scalars(select(AssignmentRow).where(
        AssignmentRow.status.in_(LEASED),
        or_(AssignmentRow.renewed_at_s.is_(None),
            AssignmentRow.renewed_at_s < wall_s - settings.lease_s),
    ))
    requeued += requeue(s, expired, wall_s, LEASE_EXPIRED)
    return requeued


def renew(s: Session | Connection, site_id: str, holding: list[int],
          wall_s: float) -> tuple[list[int], list[int]]:
    """Renew the leases a site lists; returns (renewed, revoked): listed ids that are live at
    the site, and listed ids that are not (withdrawn or never its own)."""
    if not holding:
        return [], []
    listed = sorted(set(holding))
    live = set(s.scalars(select(AssignmentRow.id).where(
        AssignmentRow.site_id == site_id, AssignmentRow.id.in_(listed),
        AssignmentRow.status.in_(LIVE))))
    leased = [i for i in listed if i in live]
    if leased:
        s.execute(update(AssignmentRow).where(
            AssignmentRow.id.in_(leased), AssignmentRow.status.in_(LEASED),
        ).values(renewed_at_s=wall_s))
    return leased, [i for i in listed if i not in live]
