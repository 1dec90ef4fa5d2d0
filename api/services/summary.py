"""The federation's totals so far (metered on completed assignments) and the broker's health."""

from __future__ import annotations

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from api import schemas
from api.models import AssignmentRow, JobRow, PlanRoundRow, SiteRow
from api.services.context import Context
from api.states import LIVE, PAUSED_REASON, RESIZED_REASON, AssignmentStatus, SiteState
from broker.costs import carbon_cost_usd, total_cost_usd
from market.ledger import balances, job_rows
from market.outcome import GrandOutcome, HostedJob
from market.schemes import SchemeInputs

LEDGER_SCHEME = "cost-plus"  # the live broker has no coalition values: a per-job price

_A = AssignmentRow
# A run the site measured counts its measured energy, and its modelled carbon and energy cost
# scaled by measured / modelled (same grid intensity and price over the same hours).
_SCALE = case((_A.measured_energy_kwh.is_not(None) & (_A.energy_kwh > 0),
               _A.measured_energy_kwh / _A.energy_kwh), else_=1.0)
METERED_KWH = func.coalesce(_A.measured_energy_kwh, _A.energy_kwh)
# Runs that drew energy: completed ones, and the part of one stopped on the broker's word (a
# pause, a resize) before it stopped
BILLED = (_A.status == AssignmentStatus.COMPLETED) | (
    (_A.status == AssignmentStatus.REQUEUED)
    & _A.requeue_reason.in_((PAUSED_REASON, RESIZED_REASON)))
COMPLETED = func.sum(case((_A.status == AssignmentStatus.COMPLETED, 1), else_=0))
METERED_KG = _A.carbon_kg * _SCALE
METERED_USD = _A.energy_cost_usd * _SCALE


def energy_source(measured: int, runs: int) -> schemas.EnergySource:
    if measured == 0:
        return "modelled"
    return "measured" if measured == runs else "mixed"


TOTALS = ("energy_kwh", "carbon_kg", "energy_cost_usd", "transfer_cost_usd", "total_cost_usd")


class SummaryService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def summary(self) -> schemas.SummaryOut:
        price = self.ctx.settings.carbon_price_usd_per_t
        with self.ctx.db.read() as s:
            jobs = dict(s.execute(
                select(JobRow.status, func.count()).group_by(JobRow.status)).all())
            sites = s.scalars(select(SiteRow.id).order_by(SiteRow.number)).all()
            done = {r[0]: r[1:] for r in s.execute(
                select(AssignmentRow.site_id, COMPLETED, func.sum(METERED_KWH),
                       func.sum(METERED_KG), func.sum(METERED_USD),
                       func.sum(AssignmentRow.transfer_cost_usd),
                       func.count(AssignmentRow.measured_energy_kwh))
                .where(BILLED)
                .group_by(AssignmentRow.site_id))}
            active = dict(s.execute(
                select(AssignmentRow.site_id, func.count()).where(AssignmentRow.status.in_(LIVE))
                .group_by(AssignmentRow.site_id)).all())
            failed = dict(s.execute(
                select(AssignmentRow.site_id, func.count())
                .where(AssignmentRow.status == AssignmentStatus.FAILED)
                .group_by(AssignmentRow.site_id)).all())
            flagged = self._flagged(s, [site for site in sites if failed.get(site, 0)])
        by_site = []
        for site in sites:
            n, kwh, kg, energy_usd, transfer_usd, measured = done.get(
                site, (0, 0.0, 0.0, 0.0, 0.0, 0))
            by_site.append(schemas.SiteTotals(
                site_id=site, jobs_completed=n, jobs_active=active.get(site, 0),
                jobs_failed=failed.get(site, 0), flagged=site in flagged, measured_runs=measured,
                energy_kwh=kwh, carbon_kg=kg, energy_cost_usd=energy_usd,
                transfer_cost_usd=transfer_usd,
                total_cost_usd=total_cost_usd(energy_usd, transfer_usd, kg, price),
            ))
        total = {k: sum(getattr(t, k) for t in by_site) for k in TOTALS}
        source = energy_source(sum(t.measured_runs for t in by_site),
                               sum(t.jobs_completed for t in by_site))
        return schemas.SummaryOut(now_h=self.ctx.clock.now_h(), carbon_price_usd_per_t=price,
                                  jobs=jobs, by_site=by_site, energy_source=source, **total)

    def _flagged(self, s: Session, sites: list[str]) -> set[str]:
        """Sites whose last ``flag_after_failures`` finished runs (completed or failed) all
        failed: one small read per site that has failed at all."""
        n = self.ctx.settings.flag_after_failures
        ended = (AssignmentStatus.COMPLETED, AssignmentStatus.FAILED)
        out = set()
        for site in sites:
            last = s.scalars(select(AssignmentRow.status).where(
                AssignmentRow.site_id == site, AssignmentRow.status.in_(ended))
                .order_by(AssignmentRow.completed_at_s.desc(), AssignmentRow.id.desc())
                .limit(n)).all()
            if len(last) == n and all(x == AssignmentStatus.FAILED for x in last):
                out.add(site)
        return out

    def ledger(self, site_id: str | None = None) -> schemas.LedgerOut:
        """Cost-plus settlement of the completed jobs that ran away from home. A row names
        its job by its home's id for it (the payer is that home: job ids are per home site).

        ``site_id``: only the rows where that site pays or is paid (and only its balance).
        """
        st = self.ctx.settings
        price = st.carbon_price_usd_per_t
        a = AssignmentRow
        with self.ctx.db.read() as s:
            done = s.execute(
                select(JobRow.client_id, JobRow.home_site, a.site_id, a.gpus, a.start_h,
                       a.transfer_h, a.runtime_h, METERED_KWH, METERED_KG,
                       METERED_USD, a.transfer_cost_usd, a.measured_energy_kwh)
                .join(JobRow, JobRow.id == a.job_id)
                .where(BILLED, a.site_id != JobRow.home_site)
                .order_by(a.id)).all()
        hosted = tuple(HostedJob(
            job_id=job, home=home, host=host, resource=-1, gpus=gpus,
            run_from_h=start + transfer_h, run_to_h=start + transfer_h + runtime_h,
            gpu_hours=gpus * runtime_h, energy_kwh=kwh, carbon_kg=kg, energy_cost_usd=usd,
            carbon_cost_usd=float(carbon_cost_usd(kg, price)), transfer_cost_usd=transfer_usd,
            delay_cost_usd=0.0)
            for job, home, host, gpus, start, transfer_h, runtime_h, kwh, kg, usd, transfer_usd, _
            in done)
        measured = sum(row[-1] is not None for row in done)
        outcome = GrandOutcome((), hosted, {}, {}, price)
        rows = job_rows(LEDGER_SCHEME, SchemeInputs(None, outcome, (), st.ledger_markup))
        if site_id is not None:
            rows = [r for r in rows if site_id in (r.payer, r.payee)]
        owed = balances(rows)
        if site_id is not None:
            owed = {site_id: owed.get(site_id, 0.0)}
        return schemas.LedgerOut(
            scheme=LEDGER_SCHEME, markup=st.ledger_markup, carbon_price_usd_per_t=price,
            rows=rows, balances_usd=owed, energy_source=energy_source(measured, len(done)))

    def health(self) -> schemas.HealthOut:
        st = self.ctx.settings
        with self.ctx.db.read() as s:
            n_sites = s.scalar(select(func.count()).select_from(SiteRow).where(
                SiteRow.state == SiteState.ACTIVE))
            n_rounds = s.scalar(select(func.count()).select_from(PlanRoundRow))
        return schemas.HealthOut(
            status="ok", now_h=self.ctx.clock.now_h(), time_scale=st.time_scale,
            slot_h=st.slot_h, horizon_slots=st.horizon_slots, sites=n_sites or 0,
            rounds=n_rounds or 0,
        )
