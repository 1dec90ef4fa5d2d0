"""Withdrawing assignments: ack timeouts, expired leases, stale, disabled or departed sites.

A withdrawn assignment becomes ``requeued`` and its job ``queued`` in the same transaction, so a
job never has two live assignments and never none while it is unfinished.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Connection, case, or_, select, update
from sqlalchemy.orm import Session

from api.models import AssignmentRow, JobRow, OfferRow
from api.settings import Settings
from api.states import LEASED, LIVE, REJECTED_REASON, AssignmentStatus, JobStatus
from sites.units import SECONDS_PER_HOUR

ACK_TIMEOUT = "ack-timeout"
LEASE_EXPIRED = "lease-expired"
SITE_STALE = "site-stale"
SITE_DISABLED = "site-disabled"
SITE_LEFT = "site-deregistered"
REJECTED = REJECTED_REASON  # the site refused the job (its policy): never offered it again
CANCELLED = "cancelled"  # the job was cancelled
OVERRAN = "max-runtime"
DIRECTIVE_TIMEOUT = "directive-timeout"  # the site did not acknowledge the broker's word


def _withdraw(c: Session | Connection, which: ColumnElement[bool], wall_s: float,
              reason: str) -> list[str]:
    """Requeue the live assignments ``which`` selects, and their jobs: two statements,
    whatever their number (rounds run this under the write lock every offer waits for)."""
    jobs = sorted(c.scalars(
        update(AssignmentRow).where(which)
        .values(status=AssignmentStatus.REQUEUED, requeued_at_s=wall_s, requeue_reason=reason)
        .returning(AssignmentRow.job_id).execution_options(synchronize_session=False)
    ))
    if jobs:
        c.execute(update(JobRow).where(JobRow.id.in_(jobs)).values(status=JobStatus.QUEUED)
                  .execution_options(synchronize_session=False))
    return jobs


def alive(wall_s: float, timeout_s: float) -> ColumnElement[bool]:
    """An offer row whose site showed a sign of life (an offer or a heartbeat) within
    ``timeout_s``."""
    since = wall_s - timeout_s
    return or_(OfferRow.received_at_s >= since, OfferRow.heartbeat_at_s >= since)


def requeue_site(c: Session | Connection, site_id: str, wall_s: float,
                 reason: str) -> list[str]:
    return _withdraw(c, (AssignmentRow.site_id == site_id) & AssignmentRow.status.in_(LIVE),
                     wall_s, reason)


def withdraw_job(c: Session | Connection, job_id: str, wall_s: float, reason: str) -> list[str]:
    """Withdraw a job's live assignment (if any); the caller sets the job's status."""
    return _withdraw(c, (AssignmentRow.job_id == job_id) & AssignmentRow.status.in_(LIVE),
                     wall_s, reason)


def expire(c: Session | Connection, settings: Settings, wall_s: float) -> list[str]:
    """Requeue what no site holds any more; returns the requeued job ids.

    * assigned, not acknowledged within ``ack_timeout_s`` (or its site went stale, or
      missed its heartbeat timeout);
    * acknowledged or running, lease not renewed within ``lease_s``;
    * running longer than its expected transfer and run time x ``max_runtime_factor`` plus
      ``max_runtime_margin_s`` (a site renewing its leases cannot hoard a job for ever);
    * running with a directive (a pause) not acknowledged within ``ack_timeout_s``.
    """
    assigned = AssignmentRow.status == AssignmentStatus.ASSIGNED
    fresh = select(OfferRow.site_id).where(
        OfferRow.received_at_s >= wall_s - settings.stale_after_s,
        alive(wall_s, settings.heartbeat_timeout_s))
    return (
        _withdraw(c, assigned & (AssignmentRow.created_at_s < wall_s - settings.ack_timeout_s),
                  wall_s, ACK_TIMEOUT)
        + _withdraw(c, assigned & AssignmentRow.site_id.not_in(fresh), wall_s, SITE_STALE)
        + _withdraw(c, AssignmentRow.status.in_(LEASED) & or_(
            AssignmentRow.renewed_at_s.is_(None),
            AssignmentRow.renewed_at_s < wall_s - settings.lease_s), wall_s, LEASE_EXPIRED)
        + _withdraw(c, (AssignmentRow.status == AssignmentStatus.RUNNING) & (
            AssignmentRow.started_at_s + (AssignmentRow.transfer_h + AssignmentRow.runtime_h)
            * (SECONDS_PER_HOUR / settings.time_scale * settings.max_runtime_factor)
            + settings.max_runtime_margin_s < wall_s), wall_s, OVERRAN)
        + _withdraw(c, (AssignmentRow.status == AssignmentStatus.RUNNING)
                    & AssignmentRow.directive.is_not(None)
                    & (AssignmentRow.directive_at_s < wall_s - settings.ack_timeout_s),
                    wall_s, DIRECTIVE_TIMEOUT)
    )


def renew(s: Session | Connection, site_id: str, holding: list[int],
          wall_s: float) -> tuple[list[int], list[int]]:
    """Renew the leases a site lists; returns (renewed, revoked): listed ids that are live at
    the site, and listed ids that are not (withdrawn or never its own).

    One statement (an offer makes it on every round trip it saves, and it is exact whatever
    runs meanwhile): it touches the site's live listed assignments, stamps the leased ones
    (acknowledged or running; an unacknowledged one has no lease yet) and returns them all.
    """
    if not holding:
        return [], []
    listed = sorted(set(holding))
    live = set(s.scalars(
        update(AssignmentRow)
        .where(AssignmentRow.site_id == site_id, AssignmentRow.id.in_(listed),
               AssignmentRow.status.in_(LIVE))
        .values(renewed_at_s=case((AssignmentRow.status.in_(LEASED), wall_s),
                                  else_=AssignmentRow.renewed_at_s))
        .returning(AssignmentRow.id).execution_options(synchronize_session=False)
    ))
    return [i for i in listed if i in live], [i for i in listed if i not in live]
