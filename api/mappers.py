"""Rows to planner objects and to response bodies: every mapping of a table row, written once."""

from __future__ import annotations

import dataclasses
import math

from api import schemas
from api.models import AssignmentRow, JobRow, OfferRow, PlanRoundRow, SiteRow
from api.states import AssignmentStatus, SiteState
from broker.jobs import InFlight, Job
from broker.live import SiteOffer
from sites import SiteSpec


def job(row: JobRow) -> Job:
    """The job as a round plans it: the work left after its pauses, and where its checkpoint
    is when it was paused (its restart reads the checkpoint back first)."""
    job = Job(row.id, row.home_site, row.job_type, row.gpus,
              max(row.work_steps - row.done_steps, row.work_steps * 1e-12), row.submit_h,
              row.deadline_h, row.dataset_gb, min_gpus=row.min_gpus, max_gpus=row.max_gpus,
              preemptible=row.preemptible, checkpoint_overhead_h=row.checkpoint_overhead_h,
              checkpoint_gb=row.checkpoint_gb, elastic=row.elastic,
              resize_overhead_h=row.resize_overhead_h)
    if row.paused_site is None or row.paused_gpu_type is None or not row.paused_gpus:
        return job
    # paused on the broker's word: its checkpoint was written as it stopped
    return dataclasses.replace(job, state=InFlight(
        row.paused_site, row.paused_gpu_type, row.paused_gpus, computing=False,
        restart_h=job.restart_h(checkpoint_written=True), done_steps=row.done_steps))


def site_spec(row: SiteRow) -> SiteSpec:
    return SiteSpec(row.id, row.zone, {g: int(n) for g, n in row.gpus.items()}, row.pue,
                    row.egress_usd_per_gb)


def site_offer(row: OfferRow) -> SiteOffer:
    return SiteOffer(row.site_id, row.start_h, row.slot_h,
                     {g: tuple(v) for g, v in row.free_gpus.items()},
                     tuple(row.price_usd_per_mwh), tuple(row.carbon_g_per_kwh))


def site_status(row: SiteRow, offer: OfferRow | None, wall_s: float, stale_after_s: float) -> str:
    if row.state != SiteState.ACTIVE:
        return row.state
    if offer is None:
        return "no-offer"
    return "stale" if wall_s - offer.received_at_s > stale_after_s else "active"


def site_out(row: SiteRow, offer: OfferRow | None, wall_s: float,
             stale_after_s: float) -> schemas.SiteOut:
    return schemas.SiteOut(
        id=row.id, zone=row.zone, gpus=dict(row.gpus), pue=row.pue,
        egress_usd_per_gb=row.egress_usd_per_gb,
        status=site_status(row, offer, wall_s, stale_after_s),
        offer_sequence=offer.sequence if offer else None,
        offer_age_s=max(0.0, wall_s - offer.received_at_s) if offer else None,
        bounds=schemas.ClaimBounds(
            min_price_usd_per_mwh=row.min_price_usd_per_mwh,
            max_price_usd_per_mwh=row.max_price_usd_per_mwh,
            min_carbon_g_per_kwh=row.min_carbon_g_per_kwh,
            max_carbon_g_per_kwh=row.max_carbon_g_per_kwh,
        ),
    )


def offer_out(row: OfferRow, revoked: list[int] | None = None) -> schemas.OfferOut:
    return schemas.OfferOut(
        site_id=row.site_id, sequence=row.sequence, start_h=row.start_h, slot_h=row.slot_h,
        free_gpus=row.free_gpus, price_usd_per_mwh=row.price_usd_per_mwh,
        carbon_g_per_kwh=row.carbon_g_per_kwh, received_at_s=row.received_at_s,
        holding=list(row.holding or []), revoked=revoked or [],
    )


def attempt_out(a: AssignmentRow) -> schemas.AttemptOut:
    return schemas.AttemptOut(
        assignment_id=a.id, site_id=a.site_id, status=a.status,
        requeue_reason=a.requeue_reason, run_ref=a.run_ref, exit_code=a.exit_code,
        exit_state=a.exit_state, message=a.run_message, started_at_s=a.started_at_s,
        ended_at_s=a.completed_at_s if a.completed_at_s is not None else a.requeued_at_s)


def job_out(row: JobRow, live: AssignmentRow | None, *, has_run: bool = False,
            failures: int | None = None,
            history: list[AssignmentRow] | None = None) -> schemas.JobOut:
    if failures is None:
        failures = sum(a.status == AssignmentStatus.FAILED for a in history or ())
    return schemas.JobOut(
        id=row.client_id, key=row.id, home_site=row.home_site, job_type=row.job_type, gpus=row.gpus,
        min_gpus=row.min_gpus, max_gpus=row.max_gpus, work_steps=row.work_steps,
        submit_h=row.submit_h, deadline_h=row.deadline_h,
        dataset_gb=row.dataset_gb, status=row.status,
        attempts=row.attempts,
        site_id=live.site_id if live else None, assignment_id=live.id if live else None,
        has_run=has_run, failures=failures,
        history=None if history is None else [attempt_out(a) for a in history],
        preemptible=row.preemptible, elastic=row.elastic, done_steps=row.done_steps,
        paused_site=row.paused_site,
    )


def assignment_out(a: AssignmentRow, job_row: JobRow,
                   run: dict | None = None) -> schemas.AssignmentOut:
    """``run``: the job's run spec, given only for the site holding the assignment."""
    ended = (AssignmentStatus.REQUEUED, AssignmentStatus.FAILED)
    live = a if a.status not in ended else None
    return schemas.AssignmentOut(
        id=a.id, job=job_out(job_row, live), site_id=a.site_id, gpu_type=a.gpu_type,
        gpus=a.gpus,
        round_id=a.round_id, status=a.status,
        start_h=a.start_h, transfer_h=a.transfer_h, runtime_h=a.runtime_h,
        energy_kwh=a.energy_kwh, carbon_kg=a.carbon_kg, energy_cost_usd=a.energy_cost_usd,
        transfer_cost_usd=a.transfer_cost_usd, requeue_reason=a.requeue_reason,
        late_completion_at_s=a.late_completion_at_s,
        run=None if run is None else schemas.RunSpec.model_validate(run),
        run_ref=a.run_ref, exit_code=a.exit_code, exit_state=a.exit_state,
        run_message=a.run_message, measured_energy_kwh=a.measured_energy_kwh,
        reported_runtime_h=a.reported_runtime_h,
        directive=a.directive if live is not None else None,
        directive_gpus=a.directive_gpus if live is not None else None,
    )


def plan_out(row: PlanRoundRow) -> schemas.PlanOut:
    plan = row.plan
    return schemas.PlanOut(
        round_id=row.id, now_h=row.now_h, status=row.status,
        objective_usd=row.objective_usd, bound_usd=row.bound_usd,
        gap=plan.get("gap"), method=plan.get("method", "milp"), n_options=row.n_options,
        queued=row.queued, considered=plan.get("considered", row.queued),
        held=plan.get("held", 0), solve_time_s=row.solve_time_s,
        elapsed_s=plan.get("elapsed_s"),
        planned=[schemas.PlannedStart(**p) for p in plan["planned"]],
        assigned=list(plan["assigned"]), deferred=list(plan["deferred"]),
        requeued=list(plan["requeued"]), paused=list(plan.get("paused", [])),
        resized=list(plan.get("resized", [])),
    )


def finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
