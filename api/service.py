"""The live broker service: sites, offers, the job queue, planning rounds and assignments.

Handlers stay thin and call this class; it owns the database transactions. Every change a
request asks for is committed before the request is answered. Invariants:

* a job has at most one live assignment (status assigned, acknowledged, running or completed):
  a round claims a job with ``UPDATE ... WHERE status = 'queued'``, and an assignment leaves the
  live set only by being requeued, which puts its job back in the queue in the same transaction;
* an offer replaces the stored one only if its sequence is higher (conditional update);
* planning uses ``broker.planner.MilpPlanner`` on a federation and offers built by
  ``broker.live`` from the database, the same planner the simulator runs.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api import schemas
from api.clock import Clock
from api.db import Database, create_schema, read_meta, write_meta
from api.errors import ConflictError, FieldError, ForbiddenError, NotFoundError
from api.models import AssignmentRow, JobRow, OfferRow, PlanRoundRow, SiteRow
from api.settings import Settings
from broker.federation import Federation
from broker.jobs import Job
from broker.live import (
    Reservation,
    SiteOffer,
    estimate_run,
    live_federation,
    round_offers,
)
from broker.offers import RoundOffers
from broker.planner import MilpPlanner, Plan, PlannerConfig
from optimization import SolverOptions
from sites import DEFAULT_GPUS, AffinityMatrix, SiteSpec, default_affinity

LIVE = ("assigned", "acknowledged", "running")  # assignments that hold a job at a site
ORDER = {"assigned": 0, "acknowledged": 1, "running": 2, "completed": 3}
ADMIN_HASH_KEY = "admin_token_sha256"
CLOCK_ORIGIN_KEY = "clock_origin_s"
KG_PER_T = 1000.0

# The offer route's statements, built once (parameters by name at execution).
_OFFERS = OfferRow.__table__
_OFFER_COLUMNS = ("sequence", "start_h", "slot_h", "free_gpus", "price_usd_per_mwh",
                  "carbon_g_per_kwh", "received_at_s")
OFFER_SITE = select(SiteRow.active, SiteRow.gpus).where(
    SiteRow.id == bindparam("where_site_id"))
OFFER_SEQUENCE = select(_OFFERS.c.sequence).where(
    _OFFERS.c.site_id == bindparam("where_site_id"))
OFFER_UPDATE = (
    update(_OFFERS)
    .where(_OFFERS.c.site_id == bindparam("where_site_id"),
           _OFFERS.c.sequence < bindparam("below_sequence"))
    .values({name: bindparam(name) for name in _OFFER_COLUMNS})
)
OFFER_INSERT = insert(_OFFERS)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the admin, or one site."""

    admin: bool = False
    site_id: str | None = None


def planner_config(settings: Settings) -> PlannerConfig:
    return PlannerConfig(
        carbon_price_usd_per_t=settings.carbon_price_usd_per_t,
        delay_cost_usd_per_gpu_h=settings.delay_cost_usd_per_gpu_h,
        solver=SolverOptions(
            settings.solver_time_limit_s, settings.solver_mip_gap, settings.solver_threads
        ),
        method=settings.solver_method,
    )


def _job(row: JobRow) -> Job:
    return Job(row.id, row.home_site, row.job_type, row.gpus, row.work_steps, row.submit_h,
               row.deadline_h, row.dataset_gb)


def _site_spec(row: SiteRow) -> SiteSpec:
    return SiteSpec(row.id, row.zone, {g: int(n) for g, n in row.gpus.items()}, row.pue,
                    row.egress_usd_per_gb)


def _site_offer(row: OfferRow) -> SiteOffer:
    return SiteOffer(row.site_id, row.start_h, row.slot_h,
                     {g: tuple(v) for g, v in row.free_gpus.items()},
                     tuple(row.price_usd_per_mwh), tuple(row.carbon_g_per_kwh))


class BrokerService:
    """The broker's state and rules over one database (thread-safe; one planner at a time)."""

    def __init__(self, db: Database, settings: Settings, clock: Clock | None = None) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock or Clock(settings.time_scale)
        self.gpu_catalog = dict(DEFAULT_GPUS)
        self.affinity: AffinityMatrix = default_affinity()
        self.config = planner_config(settings)
        self._plan_lock = threading.Lock()
        self._admin_hash: str | None = None
        self._token_sites: dict[str, str] = {}  # token sha256 -> site id

    # --- start-up and auth --------------------------------------------------------------------

    def start(self) -> str | None:
        """Create or migrate the schema, restore the clock and the admin token.

        Returns a newly generated admin token (to print once), or None when the settings gave
        one or an earlier start stored its hash.
        """
        create_schema(self.db.engine)
        generated = None
        with self.db.write() as s:
            origin = read_meta(s, CLOCK_ORIGIN_KEY)
            if origin is None:
                origin = repr(self.clock.wall_s())
                write_meta(s, CLOCK_ORIGIN_KEY, origin)
            self.clock.origin_s = float(origin)
            given = self.settings.admin_token
            if given is not None:
                write_meta(s, ADMIN_HASH_KEY, token_hash(given.get_secret_value()))
            elif read_meta(s, ADMIN_HASH_KEY) is None:
                generated = new_token()
                write_meta(s, ADMIN_HASH_KEY, token_hash(generated))
            self._admin_hash = read_meta(s, ADMIN_HASH_KEY)
        return generated

    def is_admin(self, token: str) -> bool:
        return self._admin_hash is not None and hmac.compare_digest(
            token_hash(token), self._admin_hash
        )

    def may_register(self, token: str | None) -> bool:
        wanted = self.settings.registration_token
        if wanted is None:
            return True
        return token is not None and hmac.compare_digest(
            token_hash(token), token_hash(wanted.get_secret_value())
        )

    def site_for_token(self, token: str) -> str | None:
        """The active site a token belongs to (cached: one broker process owns the database,
        and deregistration, the only way a token dies, clears the cache)."""
        digest = token_hash(token)
        cached = self._token_sites.get(digest)
        if cached is not None:
            return cached
        with self.db.read() as s:
            row = s.scalars(select(SiteRow).where(SiteRow.token_sha256 == digest)).first()
            if row is None or not row.active or row.token_sha256 is None:
                return None
            # the lookup is by hash; compare again in constant time so equality is the rule
            if not hmac.compare_digest(row.token_sha256, digest):
                return None
            self._token_sites[digest] = row.id
            return row.id

    # --- sites --------------------------------------------------------------------------------

    def _site_out(self, row: SiteRow, offer: OfferRow | None, wall_s: float) -> schemas.SiteOut:
        if not row.active:
            status = "deregistered"
        elif offer is None:
            status = "no-offer"
        elif wall_s - offer.received_at_s > self.settings.stale_after_s:
            status = "stale"
        else:
            status = "active"
        return schemas.SiteOut(
            id=row.id, zone=row.zone, gpus=dict(row.gpus), pue=row.pue,
            egress_usd_per_gb=row.egress_usd_per_gb, status=status,
            offer_sequence=offer.sequence if offer else None,
            offer_age_s=max(0.0, wall_s - offer.received_at_s) if offer else None,
        )

    def register_site(self, body: schemas.SiteRegistration) -> schemas.SiteRegistered:
        for gpu in body.gpus:
            if gpu not in self.gpu_catalog or gpu not in self.affinity.gpu_types:
                raise FieldError(("body", "gpus", gpu),
                                 f"unknown GPU type '{gpu}' (known: {', '.join(self.gpu_catalog)})")
        if sum(body.gpus.values()) == 0:
            raise FieldError(("body", "gpus"), "a site needs at least one GPU")
        token = new_token()
        wall = self.clock.wall_s()
        try:
            with self.db.write() as s:
                if s.get(SiteRow, body.id) is not None:
                    raise ConflictError(f"site '{body.id}' is already registered")
                number = (s.scalar(select(func.max(SiteRow.number))) or 0) + 1
                row = SiteRow(
                    id=body.id, number=number, zone=body.zone, gpus=dict(body.gpus),
                    pue=body.pue, egress_usd_per_gb=body.egress_usd_per_gb,
                    token_sha256=token_hash(token), active=True, registered_at_s=wall,
                )
                s.add(row)
                s.flush()
                out = self._site_out(row, None, wall)
        except IntegrityError:  # a concurrent registration of the same id won the race
            raise ConflictError(f"site '{body.id}' is already registered") from None
        return schemas.SiteRegistered(site=out, token=token)

    def list_sites(self) -> list[schemas.SiteOut]:
        wall = self.clock.wall_s()
        with self.db.read() as s:
            offers = {o.site_id: o for o in s.scalars(select(OfferRow))}
            rows = s.scalars(select(SiteRow).order_by(SiteRow.number))
            return [self._site_out(r, offers.get(r.id), wall) for r in rows]

    def get_site(self, site_id: str) -> schemas.SiteOut:
        wall = self.clock.wall_s()
        with self.db.read() as s:
            row = s.get(SiteRow, site_id)
            if row is None:
                raise NotFoundError(f"no site '{site_id}'")
            return self._site_out(row, s.get(OfferRow, site_id), wall)

    def deregister_site(self, site_id: str) -> schemas.SiteOut:
        """The site leaves: its token stops working, its offer goes, its unfinished jobs requeue."""
        wall = self.clock.wall_s()
        with self.db.write() as s:
            row = s.get(SiteRow, site_id)
            if row is None:
                raise NotFoundError(f"no site '{site_id}'")
            if row.active:
                self._token_sites.clear()
                row.active = False
                row.token_sha256 = None
                row.deregistered_at_s = wall
                offer = s.get(OfferRow, site_id)
                if offer is not None:
                    s.delete(offer)
                self._requeue(s, s.scalars(select(AssignmentRow).where(
                    AssignmentRow.site_id == site_id, AssignmentRow.status.in_(LIVE))))
            return self._site_out(row, None, wall)

    # --- offers -------------------------------------------------------------------------------

    def put_offer(self, site_id: str, body: schemas.OfferIn) -> schemas.OfferOut:
        if not math.isclose(body.slot_h, self.settings.slot_h):
            raise FieldError(("body", "slot_h"),
                             f"must equal the broker's slot_h ({self.settings.slot_h})")
        wall = self.clock.wall_s()
        start_h = (self.clock.hours_at(body.start.timestamp()) if body.start is not None
                   else self.clock.hours_at(wall))
        values = dict(
            sequence=body.sequence, start_h=start_h, slot_h=body.slot_h,
            free_gpus={g: list(v) for g, v in body.free_gpus.items()},
            price_usd_per_mwh=list(body.price_usd_per_mwh),
            carbon_g_per_kwh=list(body.carbon_g_per_kwh), received_at_s=wall,
        )
        # Prebuilt Core statements on one connection (no ORM session, identity map or attribute
        # synchronisation; compiled once): sites put an offer every few seconds.
        with self.db.write_connection() as c:
            site = c.execute(OFFER_SITE, {"where_site_id": site_id}).first()
            if site is None or not site.active:
                raise NotFoundError(f"no active site '{site_id}'")
            for gpu in body.free_gpus:
                if gpu not in site.gpus:
                    raise FieldError(("body", "free_gpus", gpu),
                                     f"site '{site_id}' registered no {gpu} GPUs")
            for gpu, counts in body.free_gpus.items():
                if max(counts, default=0) > site.gpus[gpu]:
                    raise FieldError(("body", "free_gpus", gpu),
                                     f"more than the {site.gpus[gpu]} registered")
            # Only a higher sequence may replace the stored offer: one conditional statement, so
            # two concurrent offers cannot both win and a late one cannot overwrite a newer one.
            changed = c.execute(
                OFFER_UPDATE, {"where_site_id": site_id, "below_sequence": body.sequence, **values}
            ).rowcount
            if changed == 0:
                current = c.scalar(OFFER_SEQUENCE, {"where_site_id": site_id})
                if current is not None:
                    raise ConflictError(
                        f"stale offer: sequence {body.sequence} is not above the stored "
                        f"{current}", current_sequence=current,
                    )
                c.execute(OFFER_INSERT, {"site_id": site_id, **values})
        return schemas.OfferOut(site_id=site_id, **values)

    def get_offer(self, site_id: str) -> schemas.OfferOut:
        with self.db.read() as s:
            row = s.get(OfferRow, site_id)
            if row is None:
                raise NotFoundError(f"site '{site_id}' has no offer")
            return schemas.OfferOut(
                site_id=row.site_id, sequence=row.sequence, start_h=row.start_h,
                slot_h=row.slot_h, free_gpus=row.free_gpus,
                price_usd_per_mwh=row.price_usd_per_mwh, carbon_g_per_kwh=row.carbon_g_per_kwh,
                received_at_s=row.received_at_s,
            )

    # --- jobs ---------------------------------------------------------------------------------

    def submit_jobs(
        self, jobs: Sequence[schemas.JobIn], who: Principal, loc: tuple[str | int, ...]
    ) -> list[schemas.JobOut]:
        """Queue jobs, all or none; ``loc`` prefixes field names in errors (body / body.jobs)."""
        seen: set[str] = set()
        wall = self.clock.wall_s()
        now_h = self.clock.hours_at(wall)
        batch = len(loc) > 1
        rows = []
        with self.db.write() as s:
            sites = {r.id: r for r in s.scalars(select(SiteRow).where(SiteRow.active))}
            fed = Federation(tuple(_site_spec(r) for r in sites.values()), self.gpu_catalog,
                             self.affinity, self.settings.transfer_gbps)
            for i, body in enumerate(jobs):
                where = (*loc, i) if batch else loc
                if not who.admin and body.home_site != who.site_id:
                    raise ForbiddenError(f"a site may submit only its own jobs (home_site "
                                    f"'{who.site_id}'), got '{body.home_site}'")
                if body.id in seen:
                    raise FieldError((*where, "id"), f"duplicate job id '{body.id}'")
                seen.add(body.id)
                rows.append(self._job_row(body, where, sites, fed, now_h, wall))
            taken = s.scalars(select(JobRow.id).where(JobRow.id.in_(seen))).all()
            if taken:
                raise ConflictError(f"job id already submitted: {', '.join(sorted(taken))}",
                               job_ids=sorted(taken))
            s.add_all(rows)
            s.flush()
            return [self._job_out(r, None) for r in rows]

    def _job_row(self, body: schemas.JobIn, where: tuple, sites: dict[str, SiteRow],
                 fed: Federation, now_h: float, wall: float) -> JobRow:
        if body.home_site not in sites:
            raise FieldError((*where, "home_site"), f"no active site '{body.home_site}'")
        if body.job_type not in self.affinity.job_types:
            raise FieldError((*where, "job_type"), f"unknown job type '{body.job_type}' "
                             f"(known: {', '.join(self.affinity.job_types)})")
        submit_h = now_h if body.submit_h is None else body.submit_h
        if body.deadline_h is not None and body.deadline_h <= submit_h:
            raise FieldError((*where, "deadline_h"), f"must be after submit_h ({submit_h:.4f})")
        job = Job(body.id, body.home_site, body.job_type, body.gpus, body.work_steps,
                  submit_h, body.deadline_h, body.dataset_gb)
        fits = (fed.steps_per_s([job])[0] > 0) & (fed.resource_total_gpus >= job.gpus)
        if not fits.any():
            raise FieldError((*where, "gpus"), f"{body.job_type} on {body.gpus} GPUs fits no "
                             "GPU pool of the registered sites")
        return JobRow(
            id=job.id, home_site=job.home_site, job_type=job.job_type, gpus=job.gpus,
            work_steps=job.work_steps, submit_h=job.submit_h, deadline_h=job.deadline_h,
            dataset_gb=job.dataset_gb, status="queued", attempts=0, submitted_at_s=wall,
        )

    def _job_out(self, row: JobRow, live: AssignmentRow | None) -> schemas.JobOut:
        return schemas.JobOut(
            id=row.id, home_site=row.home_site, job_type=row.job_type, gpus=row.gpus,
            work_steps=row.work_steps, submit_h=row.submit_h, deadline_h=row.deadline_h,
            dataset_gb=row.dataset_gb, status=row.status, attempts=row.attempts,
            site_id=live.site_id if live else None, assignment_id=live.id if live else None,
        )

    def _live_assignment(self, s: Session, job_id: str) -> AssignmentRow | None:
        return s.scalars(select(AssignmentRow).where(
            AssignmentRow.job_id == job_id, AssignmentRow.status != "requeued")).first()

    def get_job(self, job_id: str, who: Principal) -> schemas.JobOut:
        with self.db.read() as s:
            row = s.get(JobRow, job_id)
            live = self._live_assignment(s, job_id) if row else None
            allowed = who.admin or (row is not None and who.site_id in (
                row.home_site, live.site_id if live else None))
            if not allowed:  # a site learns nothing of other sites' jobs, not even existence
                raise ForbiddenError(f"job '{job_id}' is neither from nor assigned to this site")
            if row is None:
                raise NotFoundError(f"no job '{job_id}'")
            return self._job_out(row, live)

    def list_jobs(self, status: str | None) -> list[schemas.JobOut]:
        with self.db.read() as s:
            query = select(JobRow).order_by(JobRow.submitted_at_s, JobRow.id)
            if status is not None:
                query = query.where(JobRow.status == status)
            live = {a.job_id: a for a in s.scalars(
                select(AssignmentRow).where(AssignmentRow.status != "requeued"))}
            return [self._job_out(r, live.get(r.id)) for r in s.scalars(query)]

    # --- planning -----------------------------------------------------------------------------

    def _requeue(self, s: Session, assignments) -> list[str]:
        requeued = []
        for a in list(assignments):
            a.status = "requeued"
            s.execute(update(JobRow).where(JobRow.id == a.job_id).values(status="queued"))
            requeued.append(a.job_id)
        return requeued

    def _requeue_stale(self, s: Session, wall: float) -> list[str]:
        """Unacknowledged assignments at sites whose offer is older than ``stale_after_s``."""
        fresh = select(OfferRow.site_id).where(
            OfferRow.received_at_s >= wall - self.settings.stale_after_s)
        return self._requeue(s, s.scalars(select(AssignmentRow).where(
            AssignmentRow.status == "assigned", AssignmentRow.site_id.not_in(fresh))))

    def plan_round(self) -> schemas.PlanOut:
        """A planning round: requeue from stale sites, plan the queue, hand out what starts now."""
        with self._plan_lock:
            wall = self.clock.wall_s()
            now_h = self.clock.hours_at(wall)
            with self.db.write() as s:
                requeued = self._requeue_stale(s, wall)
                site_rows = s.scalars(select(SiteRow).order_by(SiteRow.number)).all()
                offer_rows = {o.site_id: o for o in s.scalars(select(OfferRow))}
                queue = [_job(r) for r in s.scalars(select(JobRow).where(
                    JobRow.status == "queued").order_by(JobRow.submitted_at_s, JobRow.id))]
                live = s.scalars(select(AssignmentRow).where(
                    AssignmentRow.status.in_(LIVE))).all()
                homes = {j.home_site for j in queue}
                usable = {
                    r.id for r in site_rows if r.active and r.id in offer_rows
                    and offer_rows[r.id].received_at_s >= wall - self.settings.stale_after_s
                }
                sites = [_site_spec(r) for r in site_rows if r.active or r.id in homes]
                offers = {k: _site_offer(v) for k, v in offer_rows.items() if k in usable}
                job_gpus = dict(s.execute(select(JobRow.id, JobRow.gpus).where(
                    JobRow.id.in_([a.job_id for a in live]))).all())
                # GPUs handed out that an offer cannot show yet: the site acknowledges a job
                # (and counts it in its next offers) only after the offer we hold was sent.
                reservations = [
                    Reservation(a.site_id, a.gpu_type, job_gpus[a.job_id], a.start_h,
                                a.start_h + a.transfer_h + a.runtime_h)
                    for a in live if a.site_id in usable and (
                        a.acknowledged_at_s is None
                        or a.acknowledged_at_s > offer_rows[a.site_id].received_at_s)
                ]
            result = self.plan(sites, usable, offers, queue, now_h, reservations)
            return self._record_round(result, queue, requeued, now_h, wall)

    def plan(
        self, sites: Sequence[SiteSpec], usable: set[str], offers: dict[str, SiteOffer],
        queue: Sequence[Job], now_h: float, reservations: Sequence[Reservation] = (),
    ) -> PlannedRound:
        """The planner's answer for a round (pure: no database), exposed for tests."""
        fed = live_federation(sites, usable, self.gpu_catalog, self.affinity,
                              self.settings.transfer_gbps)
        round_ = round_offers(fed, offers, now_h, self.settings.slot_h,
                              self.settings.horizon_slots, reservations)
        if not queue:
            return PlannedRound(fed, round_, None, "empty-queue")
        if not fed.resources or not np.asarray(round_.free_gpus).any():
            return PlannedRound(fed, round_, None, "no-capacity")
        plan = MilpPlanner(fed, self.config).plan(round_, queue)
        return PlannedRound(fed, round_, plan, plan.status.value)

    def _record_round(self, result: PlannedRound, queue: Sequence[Job], requeued: list[str],
                      now_h: float, wall: float) -> schemas.PlanOut:
        plan = result.plan
        by_id = {j.id: j for j in queue}
        planned = [] if plan is None else [
            schemas.PlannedStart(job_id=a.job_id, site_id=a.site_id, gpu_type=a.gpu_type,
                                 start_offset=a.start_offset, start_h=a.start_h)
            for a in plan.assignments
        ]
        deferred = list(by_id) if plan is None else list(plan.deferred)
        assigned: list[int] = []
        with self.db.write() as s:
            row = PlanRoundRow(
                now_h=now_h, created_at_s=wall, status=result.status,
                objective_usd=_finite(plan.objective_usd) if plan else None,
                bound_usd=_finite(plan.bound_usd) if plan else None,
                n_options=plan.n_options if plan else 0, queued=len(queue),
                solve_time_s=plan.solve_time_s if plan else 0.0,
                plan={"planned": [p.model_dump() for p in planned], "deferred": deferred,
                      "requeued": requeued, "assigned": []},
            )
            s.add(row)
            s.flush()
            active = set(s.scalars(select(SiteRow.id).where(SiteRow.active)))
            for a in plan.starting_now if plan else ():
                if a.site_id not in active:  # deregistered while we solved: job stays queued
                    continue
                claimed = s.execute(
                    update(JobRow).where(JobRow.id == a.job_id, JobRow.status == "queued")
                    .values(status="assigned", attempts=JobRow.attempts + 1)
                ).rowcount
                if claimed != 1:
                    continue
                est = estimate_run(result.federation, result.offers, by_id[a.job_id],
                                   a.site_id, a.gpu_type, a.start_offset)
                assignment = AssignmentRow(
                    job_id=a.job_id, site_id=a.site_id, gpu_type=a.gpu_type, round_id=row.id,
                    status="assigned", start_h=a.start_h, transfer_h=est.transfer_h,
                    runtime_h=est.runtime_h, energy_kwh=est.energy_kwh, carbon_kg=est.carbon_kg,
                    energy_cost_usd=est.energy_cost_usd, transfer_cost_usd=est.transfer_cost_usd,
                    created_at_s=wall,
                )
                s.add(assignment)
                s.flush()
                assigned.append(assignment.id)
            row.plan = {**row.plan, "assigned": assigned}
            return self._plan_out(row)

    @staticmethod
    def _plan_out(row: PlanRoundRow) -> schemas.PlanOut:
        return schemas.PlanOut(
            round_id=row.id, now_h=row.now_h, status=row.status,
            objective_usd=row.objective_usd, bound_usd=row.bound_usd, n_options=row.n_options,
            queued=row.queued, solve_time_s=row.solve_time_s,
            planned=[schemas.PlannedStart(**p) for p in row.plan["planned"]],
            assigned=list(row.plan["assigned"]), deferred=list(row.plan["deferred"]),
            requeued=list(row.plan["requeued"]),
        )

    def latest_plan(self) -> schemas.PlanOut:
        with self.db.read() as s:
            row = s.scalars(select(PlanRoundRow).order_by(PlanRoundRow.id.desc())).first()
            if row is None:
                raise NotFoundError("no planning round yet")
            return self._plan_out(row)

    # --- assignments --------------------------------------------------------------------------

    def _assignment_out(self, a: AssignmentRow, job: JobRow) -> schemas.AssignmentOut:
        return schemas.AssignmentOut(
            id=a.id, job=self._job_out(job, a if a.status != "requeued" else None),
            site_id=a.site_id, gpu_type=a.gpu_type, round_id=a.round_id, status=a.status,
            start_h=a.start_h, transfer_h=a.transfer_h, runtime_h=a.runtime_h,
            energy_kwh=a.energy_kwh, carbon_kg=a.carbon_kg, energy_cost_usd=a.energy_cost_usd,
            transfer_cost_usd=a.transfer_cost_usd,
        )

    def list_assignments(
        self, site_id: str, statuses: Sequence[str]
    ) -> list[schemas.AssignmentOut]:
        with self.db.read() as s:
            rows = s.execute(
                select(AssignmentRow, JobRow).join(JobRow, JobRow.id == AssignmentRow.job_id)
                .where(AssignmentRow.site_id == site_id, AssignmentRow.status.in_(statuses))
                .order_by(AssignmentRow.id)
            ).all()
            return [self._assignment_out(a, j) for a, j in rows]

    def advance(self, site_id: str, assignment_id: int, to: str) -> schemas.AssignmentOut:
        """Move an assignment forward (acknowledged -> running -> completed); repeats are no-ops.

        A withdrawn (requeued) assignment answers 409: the job went to the queue, do not run it.
        """
        wall = self.clock.wall_s()
        stamp = {"acknowledged": "acknowledged_at_s", "running": "started_at_s",
                 "completed": "completed_at_s"}
        with self.db.write() as s:
            a = s.get(AssignmentRow, assignment_id)
            if a is None:
                raise NotFoundError(f"no assignment {assignment_id}")
            if a.site_id != site_id:
                raise ForbiddenError(f"assignment {assignment_id} is not this site's")
            if a.status == "requeued":
                raise ConflictError(
                    f"assignment {assignment_id} was withdrawn and its job requeued; do not run it"
                )
            if ORDER[a.status] < ORDER[to]:
                for status in ("acknowledged", "running", "completed"):
                    if ORDER[a.status] < ORDER[status] <= ORDER[to]:
                        setattr(a, stamp[status], wall)
                a.status = to
                s.execute(update(JobRow).where(JobRow.id == a.job_id).values(status=to))
            job = s.get(JobRow, a.job_id)
            return self._assignment_out(a, job)

    # --- summary and health -------------------------------------------------------------------

    def summary(self) -> schemas.SummaryOut:
        price = self.settings.carbon_price_usd_per_t
        with self.db.read() as s:
            jobs = dict(s.execute(
                select(JobRow.status, func.count()).group_by(JobRow.status)).all())
            sites = s.scalars(select(SiteRow.id).order_by(SiteRow.number)).all()
            done = {r[0]: r[1:] for r in s.execute(
                select(AssignmentRow.site_id, func.count(), func.sum(AssignmentRow.energy_kwh),
                       func.sum(AssignmentRow.carbon_kg), func.sum(AssignmentRow.energy_cost_usd),
                       func.sum(AssignmentRow.transfer_cost_usd))
                .where(AssignmentRow.status == "completed").group_by(AssignmentRow.site_id))}
            active = dict(s.execute(
                select(AssignmentRow.site_id, func.count()).where(AssignmentRow.status.in_(LIVE))
                .group_by(AssignmentRow.site_id)).all())
        by_site = []
        for site in sites:
            n, kwh, kg, energy_usd, transfer_usd = done.get(site, (0, 0.0, 0.0, 0.0, 0.0))
            by_site.append(schemas.SiteTotals(
                site_id=site, jobs_completed=n, jobs_active=active.get(site, 0),
                energy_kwh=kwh, carbon_kg=kg, energy_cost_usd=energy_usd,
                transfer_cost_usd=transfer_usd,
                total_cost_usd=energy_usd + transfer_usd + price * kg / KG_PER_T,
            ))
        total = {k: sum(getattr(t, k) for t in by_site) for k in (
            "energy_kwh", "carbon_kg", "energy_cost_usd", "transfer_cost_usd", "total_cost_usd")}
        return schemas.SummaryOut(now_h=self.clock.now_h(), carbon_price_usd_per_t=price,
                                  jobs=jobs, by_site=by_site, **total)

    def health(self) -> schemas.HealthOut:
        with self.db.read() as s:
            n_sites = s.scalar(select(func.count()).select_from(SiteRow).where(SiteRow.active))
            n_rounds = s.scalar(select(func.count()).select_from(PlanRoundRow))
        return schemas.HealthOut(
            status="ok", now_h=self.clock.now_h(), time_scale=self.settings.time_scale,
            slot_h=self.settings.slot_h, horizon_slots=self.settings.horizon_slots,
            sites=n_sites or 0, rounds=n_rounds or 0,
        )


@dataclass(frozen=True)
class PlannedRound:
    federation: Federation
    offers: RoundOffers
    plan: Plan | None
    status: str


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
