"""Jobs: intake (one or a batch, all or none, bounded by the broker's settings) and reading."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api import mappers, schemas
from api.errors import ConflictError, FieldError, ForbiddenError, NotFoundError
from api.models import AssignmentRow, JobRow, JobRunRow, SiteRow, job_key
from api.services import leases
from api.services.context import Context
from api.services.tokens import Principal
from api.states import JOB_FINAL, LIVE, AssignmentStatus, JobStatus, SiteState
from broker.federation import Federation
from broker.jobs import Job

REFERENCE_GPU = "V100"  # run-time bounds are per GPU on this type
# the job's current assignment: live or completed (requeued and failed ones are history)
CURRENT = (*LIVE, AssignmentStatus.COMPLETED)


class JobService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def submit(
        self, jobs: Sequence[schemas.JobIn], who: Principal, loc: tuple[str | int, ...]
    ) -> list[schemas.JobOut]:
        """Queue jobs, all or none; ``loc`` prefixes field names in errors (body / body.jobs).

        Every job is checked on a read snapshot before the write lock is taken (on SQLite,
        every offer waits for that lock on the event loop: a 1,000-job batch checked under it
        held them all for a second); under the lock only what may have changed meanwhile is
        read again (home sites still active, ids still free, the queue quota) before the
        insert."""
        seen: set[tuple[str, str]] = set()  # (home site, its id for the job)
        wall = self.ctx.clock.wall_s()
        now_h = self.ctx.clock.hours_at(wall)
        batch = len(loc) > 1
        checked: list[tuple[Job, float]] = []  # each job and its reference GPU-hours
        with self.ctx.db.read() as s:
            sites = {r.id: r for r in s.scalars(
                select(SiteRow).where(SiteRow.state == SiteState.ACTIVE))}
            fed = Federation(tuple(mappers.site_spec(r) for r in sites.values()),
                             self.ctx.gpu_catalog, self.ctx.affinity,
                             self.ctx.settings.transfer_gbps)
        for i, body in enumerate(jobs):
            where = (*loc, i) if batch else loc
            if not who.admin and body.home_site != who.site_id:
                raise ForbiddenError(f"a site may submit only its own jobs (home_site "
                                     f"'{who.site_id}'), got '{body.home_site}'")
            if (body.home_site, body.id) in seen:
                raise FieldError((*where, "id"), f"duplicate job id '{body.id}'")
            seen.add((body.home_site, body.id))
            checked.append(self._check(body, where, sites, fed, now_h))
        # rows only once every job passed: building 1,000 ORM rows is half the checks' cost,
        # wasted on a batch refused at its last job
        rows = [self._row(body, job, gpu_h, wall)
                for body, (job, gpu_h) in zip(jobs, checked, strict=True)]
        homes = {r.home_site for r in rows}
        with self.ctx.db.write() as s:
            active = set(s.scalars(select(SiteRow.id).where(
                SiteRow.id.in_(homes), SiteRow.state == SiteState.ACTIVE)))
            for i, row in enumerate(rows):
                if row.home_site not in active:  # disabled or gone since the checks
                    raise FieldError(((*loc, i) if batch else loc) + ("home_site",),
                                     f"no active site '{row.home_site}'")
            self._check_ids_free(s, seen)
            self._check_quota(s, rows, loc)
            s.add_all(rows)
            s.flush()  # the jobs first: a run spec refers to its job
            with_run = {job_key(b.home_site, b.id) for b in jobs if b.run is not None}
            s.add_all(JobRunRow(job_id=job_key(b.home_site, b.id),
                                spec=b.run.model_dump(exclude_none=True))
                      for b in jobs if b.run is not None)
            s.flush()
            return [mappers.job_out(r, None, has_run=r.id in with_run) for r in rows]

    @staticmethod
    def _check_ids_free(s: Session, wanted: set[tuple[str, str]]) -> None:
        """409 for the ids their home sites already used: only a home's own ids are ever
        compared (a site submits only for itself), so the answer says nothing of any other
        site's ids, and another site cannot take an id from it."""
        homes = {home for home, _ in wanted}
        taken = sorted(pair for pair in s.execute(
            select(JobRow.home_site, JobRow.client_id).where(
                JobRow.home_site.in_(homes),
                JobRow.client_id.in_({client for _, client in wanted}))).all()
            if pair in wanted)
        if not taken:
            return
        by_home: dict[str, list[str]] = {}
        for home, client in taken:
            by_home.setdefault(home, []).append(client)
        said = "; ".join(f"{', '.join(ids)} (site '{home}')" for home, ids in by_home.items())
        raise ConflictError(f"job id already submitted: {said}",
                            job_ids=[client for _, client in taken])

    def _check_quota(self, s: Session, rows: Sequence[JobRow],
                     loc: tuple[str | int, ...]) -> None:
        """At most ``max_queued_jobs_per_site`` queued jobs and ``max_queued_gpu_h_per_site``
        queued GPU-hours (on the reference GPU) per home site, new ones included: one site
        cannot fill the queue every round reads. One grouped read."""
        st = self.ctx.settings
        new_jobs = Counter(r.home_site for r in rows)
        new_gpu_h: dict[str, float] = {}
        for r in rows:
            new_gpu_h[r.home_site] = new_gpu_h.get(r.home_site, 0.0) + (r.reference_gpu_h or 0.0)
        queued = {home: (n, gpu_h or 0.0) for home, n, gpu_h in s.execute(
            select(JobRow.home_site, func.count(), func.sum(JobRow.reference_gpu_h)).where(
                JobRow.home_site.in_(new_jobs), JobRow.status == JobStatus.QUEUED)
            .group_by(JobRow.home_site)).all()}
        for home in sorted(new_jobs):
            n, gpu_h = queued.get(home, (0, 0.0))
            if n + new_jobs[home] > st.max_queued_jobs_per_site:
                raise FieldError(loc, f"site '{home}' would have {n + new_jobs[home]} queued "
                                 f"jobs; the broker's limit is {st.max_queued_jobs_per_site} "
                                 "per site")
            if gpu_h + new_gpu_h[home] > st.max_queued_gpu_h_per_site:
                raise FieldError(loc, f"site '{home}' would have {gpu_h + new_gpu_h[home]:.4g} "
                                 f"queued GPU-hours ({REFERENCE_GPU}); the broker's limit is "
                                 f"{st.max_queued_gpu_h_per_site:g} per site")

    def _check_bounds(self, body: schemas.JobIn, where: tuple) -> float:
        """Check the job against the broker's limits; returns its GPU-hours on the reference
        GPU (its run time there x its GPUs), what the queue quota counts."""
        st = self.ctx.settings
        limits = (("gpus", body.gpus, st.max_job_gpus), ("work_steps", body.work_steps,
                  st.max_job_work_steps), ("dataset_gb", body.dataset_gb, st.max_job_dataset_gb))
        for name, value, limit in limits:
            if value > limit:
                raise FieldError((*where, name), f"{value:g} is above the broker's limit "
                                 f"{limit:g}")
        runtime_h = Job(body.id, body.home_site, body.job_type, body.gpus, body.work_steps,
                        0.0).runtime_on_h(self.ctx.affinity, REFERENCE_GPU)
        if runtime_h > st.max_job_runtime_h:
            raise FieldError((*where, "work_steps"), f"{runtime_h:.3g} h on {body.gpus} "
                             f"{REFERENCE_GPU} is above the broker's limit "
                             f"{st.max_job_runtime_h:g} h")
        return runtime_h * body.gpus

    def _check(self, body: schemas.JobIn, where: tuple, sites: Mapping[str, SiteRow],
               fed: Federation, now_h: float) -> tuple[Job, float]:
        """The job ``body`` asks for, checked, and its GPU-hours on the reference GPU."""
        if body.home_site not in sites:
            raise FieldError((*where, "home_site"), f"no active site '{body.home_site}'")
        affinity = self.ctx.affinity
        if body.job_type not in affinity.job_types:
            raise FieldError((*where, "job_type"), f"unknown job type '{body.job_type}' "
                             f"(known: {', '.join(affinity.job_types)})")
        gpu_h = self._check_bounds(body, where)
        # a submit_h in the past is now: an old one would jump the queue (oldest first)
        submit_h = now_h if body.submit_h is None else max(body.submit_h, now_h)
        ahead = self.ctx.settings.max_submit_ahead_h
        if submit_h > now_h + ahead:
            raise FieldError((*where, "submit_h"), f"more than {ahead:g} h ahead of the "
                             f"broker's clock ({now_h:.4f})")
        if body.deadline_h is not None and body.deadline_h <= submit_h:
            raise FieldError((*where, "deadline_h"), f"must be after submit_h ({submit_h:.4f})")
        job = Job(body.id, body.home_site, body.job_type, body.gpus, body.work_steps,
                  submit_h, body.deadline_h, body.dataset_gb, min_gpus=body.min_gpus,
                  max_gpus=body.max_gpus, preemptible=body.preemptible,
                  checkpoint_overhead_h=body.checkpoint_overhead_h,
                  checkpoint_gb=body.checkpoint_gb, elastic=body.elastic,
                  resize_overhead_h=body.resize_overhead_h)
        fits = (fed.steps_per_s([job])[0] > 0) & (fed.resource_total_gpus >= job.gpus)
        if not fits.any():
            raise FieldError((*where, "gpus"), f"{body.job_type} on {body.gpus} GPUs fits no "
                             "GPU pool of the registered sites")
        return job, gpu_h

    @staticmethod
    def _row(body: schemas.JobIn, job: Job, gpu_h: float, wall: float) -> JobRow:
        return JobRow(
            id=job_key(body.home_site, body.id), client_id=body.id, home_site=job.home_site,
            job_type=job.job_type, gpus=job.gpus,
            min_gpus=job.min_gpus, max_gpus=job.max_gpus, work_steps=job.work_steps,
            submit_h=job.submit_h, deadline_h=job.deadline_h,
            dataset_gb=job.dataset_gb, status=JobStatus.QUEUED, attempts=0,
            submitted_at_s=wall, reference_gpu_h=gpu_h, preemptible=job.preemptible,
            checkpoint_overhead_h=job.checkpoint_overhead_h, checkpoint_gb=job.checkpoint_gb,
            done_steps=0.0, elastic=job.elastic, resize_overhead_h=job.resize_overhead_h,
        )

    @staticmethod
    def _lookup(s: Session, job_id: str, who: Principal,
                home_site: str | None) -> JobRow | None:
        """The job ``job_id`` as the caller means it (None: there is none): ``home_site``'s
        when given; else a site's own, or failing that the one assigned to it under that id
        (a host reads a job by the id its assignment shows); else (the admin) the only job of
        that id, 422 when several sites use it. Never another site's job otherwise: the
        callers answer 403 whether or not it exists."""
        home = home_site or who.site_id
        if home is not None:
            row = s.scalar(select(JobRow).where(JobRow.home_site == home,
                                                JobRow.client_id == job_id))
            if row is not None or home_site is not None or who.site_id is None:
                return row
            query = select(JobRow).join(AssignmentRow, AssignmentRow.job_id == JobRow.id).where(
                JobRow.client_id == job_id, AssignmentRow.site_id == who.site_id,
                AssignmentRow.status.in_(CURRENT))
        else:
            query = select(JobRow).where(JobRow.client_id == job_id)
        found = list({r.id: r for r in s.scalars(query)}.values())
        if len(found) > 1:
            homes = ", ".join(sorted(r.home_site for r in found))
            raise FieldError(("query", "home_site"), f"sites {homes} each have a job "
                             f"'{job_id}': say which with home_site")
        return found[0] if found else None

    def get(self, job_id: str, who: Principal,
            home_site: str | None = None) -> schemas.JobOut:
        with self.ctx.db.read() as s:
            row = self._lookup(s, job_id, who, home_site)
            tries = s.scalars(select(AssignmentRow).where(AssignmentRow.job_id == row.id)
                              .order_by(AssignmentRow.id)).all() if row else []
            live = next((a for a in tries if a.status in CURRENT), None)
            allowed = who.admin or (row is not None and who.site_id in (
                row.home_site, live.site_id if live else None))
            if not allowed:  # a site learns nothing of other sites' jobs, not even existence
                raise ForbiddenError(f"job '{job_id}' is neither from nor assigned to this site")
            if row is None:
                raise NotFoundError(f"no job '{job_id}'{_of(home_site)}")
            has_run = s.get(JobRunRow, row.id) is not None
            owner = who.admin or who.site_id == row.home_site  # the host sees no history
            return mappers.job_out(row, live, has_run=has_run,
                                   history=list(tries) if owner else None)

    def list(self, status: JobStatus | None) -> list[schemas.JobOut]:
        with self.ctx.db.read() as s:
            query = select(JobRow).order_by(JobRow.submitted_at_s, JobRow.id)
            if status is not None:
                query = query.where(JobRow.status == status)
            live = {a.job_id: a for a in s.scalars(select(AssignmentRow).where(
                AssignmentRow.status.in_(CURRENT)))}
            failures = dict(s.execute(
                select(AssignmentRow.job_id, func.count())
                .where(AssignmentRow.status == AssignmentStatus.FAILED)
                .group_by(AssignmentRow.job_id)).all())
            with_run = set(s.scalars(select(JobRunRow.job_id)))
            return [mappers.job_out(r, live.get(r.id), has_run=r.id in with_run,
                                    failures=failures.get(r.id, 0)) for r in s.scalars(query)]

    def cancel(self, job_id: str, who: Principal,
               home_site: str | None = None) -> schemas.JobOut:
        """Cancel a job (its home site or the admin): it is never planned again, and its live
        assignment is withdrawn, so the site holding it finds it in ``revoked`` at its next
        offer or heartbeat and stops it (``sites.executors``). A finished job answers 409."""
        wall = self.ctx.clock.wall_s()
        with self.ctx.db.write() as s:
            row = self._lookup(s, job_id, who, home_site)
            if not who.admin and (row is None or row.home_site != who.site_id):
                raise ForbiddenError(f"job '{job_id}' is not from this site")
            if row is None:
                raise NotFoundError(f"no job '{job_id}'{_of(home_site)}")
            if row.status in JOB_FINAL:
                raise ConflictError(f"job '{job_id}' is already {row.status}")
            leases.withdraw_job(s, row.id, wall, leases.CANCELLED)
            row.status = JobStatus.CANCELLED
            s.flush()
            return mappers.job_out(row, None, has_run=s.get(JobRunRow, row.id) is not None)


def _of(home_site: str | None) -> str:
    return "" if home_site is None else f" from site '{home_site}'"
