"""The site agent: a datacenter's side of the live broker, talking plain JSON over HTTP.

It registers the site (or resumes with the token kept in its state file), keeps the site's
offer current (free GPUs per type and slot, price and carbon forecasts read from the same
signals a scenario uses), fetches the jobs the broker assigns, acknowledges them, reports
starts and completions, and retries with exponential backoff and jitter while the broker is
unreachable.

Jobs run on the site's executor (``sites.executors``, the config's ``executor.kind``): simulated
(a job sleeps its run time divided by ``time_scale``), local processes, or Slurm batch jobs. A
job outside the executor's acceptance policy (or, for a real executor, one without a run spec)
is rejected: the broker requeues it and never offers it here again. A run that fails is
reported with its exit code, state and last log lines; the broker requeues it elsewhere. A
revoked job is stopped (SIGTERM, grace, SIGKILL; ``scancel``). The Slurm executor's cluster
says how many GPUs are free, less what other users' jobs hold.

Leases: every offer lists the assignments the agent holds (``holding``), which renews them at
the broker; assignments the broker answers as ``revoked`` (lease expired, withdrawn, cancelled)
are stopped and dropped. A restarted agent re-adopts its acknowledged and running assignments
before its first offer, so it never offers their GPUs as free; an executor that finds the run
from before (Slurm by job name, a process by its pid) follows it, else the job starts over.
Before registering it checks that its ``slot_h`` is the broker's (``GET /v1/health``).

It does not import ``api``: the broker's routes and bodies are the only contract.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from sites.executors import (
    Executor,
    ExecutorContext,
    ExecutorError,
    ExecutorSpec,
    LocalJob,
    RunStatus,
    build_executor,
)
from sites.signals import Signal, hourly_to_slots
from sites.spec import SiteSpec
from sites.timegrid import slot_index
from sites.units import SECONDS_PER_HOUR

log = logging.getLogger("carbonfed.agent")

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
# An idle connection is kept this long. httpx's default, 5 s, is the default offer interval, so
# nearly every offer opened a new connection; with 1,000 agents that churn took the broker's
# p99 from about 0.55 s to 1.5 s (bench/api_load.py). Under the broker's keep-alive (75 s),
# so that the agent, not the broker, closes an idle connection and never sends into a closed one.
KEEPALIVE_S = 60.0
STATE_FILE_MODE = 0o600  # it holds the site's token
LIVE_TAKEN = ("acknowledged", "running")  # assignments a restarted agent re-adopts


class AgentError(RuntimeError):
    """The agent cannot go on (broker unreachable for too long, site id taken, ...)."""


class IncompatibleBrokerError(AgentError):
    """The agent's configuration does not fit the broker's (slot length)."""


class AgentStopped(Exception):  # noqa: N818 (a stop, not an error)
    """The agent's run time is up (raised from inside a retry loop)."""


@dataclass(frozen=True)
class Backoff:
    """Retry delays: ``initial_s x 2^attempt``, capped at ``max_s``, times a jitter in [0.5, 1]."""

    initial_s: float = 0.2
    max_s: float = 10.0
    give_up_after_s: float = 300.0  # total time one request may keep retrying

    def delay_s(self, attempt: int, rng: np.random.Generator) -> float:
        return min(self.max_s, self.initial_s * 2.0**attempt) * rng.uniform(0.5, 1.0)


@dataclass(frozen=True)
class AgentConfig:
    site: SiteSpec
    carbon_g_per_kwh: Signal
    price_usd_per_mwh: Signal
    broker_url: str
    state_file: Path
    slot_h: float = 1.0
    horizon_slots: int = 24
    offer_interval_s: float = 5.0
    # a heartbeat when no offer went out for this long: the broker takes a site silent for
    # its heartbeat_timeout_s (40 s by default) for dead
    heartbeat_interval_s: float = 10.0
    poll_interval_s: float = 1.0
    time_scale: float = 1.0  # simulated hours per real hour (3600: one hour per second)
    signal_start: pd.Timestamp | None = None  # simulated UTC at agent start; None: this hour
    signal_hours: int = 24 * 30  # signals are read once for this long, then repeat
    seed: int = 0
    enrolment_token: str | None = None  # the one-time token an admin issued at enrolment
    request_timeout_s: float = 10.0
    backoff: Backoff = field(default_factory=Backoff)
    executor: ExecutorSpec = field(default_factory=ExecutorSpec)

    @property
    def work_dir(self) -> Path:
        """Per-job folders (logs, scripts): the executor's ``work_dir``, else beside the
        state file."""
        return self.executor.work_dir or self.state_file.with_name(f"{self.site.id}.jobs")


__all__ = ["AgentConfig", "AgentError", "Backoff", "LocalJob", "SiteAgent"]


@dataclass
class AgentState:
    """What survives an agent restart (the state file): the token and the offer sequence."""

    site_id: str
    broker_url: str
    token: str | None = None
    sequence: int = 0

    @classmethod
    def load(cls, path: Path, site_id: str, broker_url: str) -> AgentState:
        if path.is_file():
            data = json.loads(path.read_text())
            if data.get("site_id") == site_id and data.get("broker_url") == broker_url:
                return cls(**data)
        return cls(site_id, broker_url)

    def save(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        # created 0600 (it holds the token), never world-readable even for a moment
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, STATE_FILE_MODE)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(self.__dict__))
        os.chmod(tmp, STATE_FILE_MODE)  # an older tmp file may have had wider rights
        os.replace(tmp, path)  # atomic: a crash leaves the old file or the new one


class SiteAgent:
    def __init__(
        self,
        config: AgentConfig,
        client: httpx.Client | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        say: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.config = config
        self.say = say  # one line per event for the operator (registered, jobs, outages)
        self.deadline: float | None = None  # monotonic time the run must end (duration_s)
        self.offers_announced = False
        self.answered = False  # the broker has answered at least once (any HTTP status)
        self.last_problem = ""  # why the last failed request failed, for the operator
        self.client = client or httpx.Client(
            base_url=config.broker_url, timeout=config.request_timeout_s,
            limits=httpx.Limits(keepalive_expiry=KEEPALIVE_S),
        )
        self.monotonic = monotonic
        self.sleep = sleep
        self.rng = np.random.default_rng(config.seed)
        self.state = AgentState.load(config.state_file, config.site.id, config.broker_url)
        self.jobs: dict[int, LocalJob] = {}
        self.completed: list[str] = []  # job ids, in completion order
        self.failed: list[str] = []  # job ids whose run failed, in order
        self.executor: Executor = build_executor(config.executor, ExecutorContext(
            config.site.id, dict(config.site.gpus), config.work_dir, config.time_scale,
            monotonic))
        self.started_s = monotonic()
        start = config.signal_start or pd.Timestamp.now(tz="UTC").floor("h")
        signal_rng = np.random.default_rng(config.seed)
        self.carbon_slots = hourly_to_slots(
            config.carbon_g_per_kwh.hourly(start, config.signal_hours, signal_rng), config.slot_h)
        self.price_slots = hourly_to_slots(
            config.price_usd_per_mwh.hourly(start, config.signal_hours, signal_rng), config.slot_h)

    # --- HTTP with retries --------------------------------------------------------------------

    def _headers(self, token: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"} if token else {}

    def request(
        self, method: str, path: str, body: object = None, token: str | None = None
    ) -> httpx.Response:
        """One call, retried with backoff on network errors and 429/5xx answers."""
        give_up = self.monotonic() + self.config.backoff.give_up_after_s
        attempt = 0
        while True:
            if self.deadline is not None and self.monotonic() >= self.deadline:
                raise AgentStopped()
            try:
                response = self.client.request(method, path, json=body,
                                               headers=self._headers(token))
                self.answered = True
                if response.status_code not in RETRY_STATUS:
                    return response
                problem = f"HTTP {response.status_code}"
            except httpx.TransportError as error:
                problem = f"{type(error).__name__}: {error}"
            self.last_problem = problem
            if self.monotonic() >= give_up:
                raise AgentError(f"{method} {path}: broker unreachable ({problem})")
            delay = self.config.backoff.delay_s(attempt, self.rng)
            if self.deadline is not None:
                delay = max(0.0, min(delay, self.deadline - self.monotonic()))
            log.info("%s %s failed (%s); retry in %.2f s", method, path, problem, delay)
            self.say(f"broker unreachable ({problem}; retrying, next try in {delay:.1f} s)")
            self.sleep(delay)
            attempt += 1

    # --- registration and offers --------------------------------------------------------------

    def check_broker(self) -> None:
        """Refuse to register with a broker whose slot length differs from ours."""
        r = self.request("GET", "/v1/health")
        if r.status_code != 200:
            raise AgentError(f"broker health: HTTP {r.status_code}: {r.text[:200]}")
        broker_slot_h = float(r.json().get("slot_h", math.nan))
        if not math.isclose(broker_slot_h, self.config.slot_h):
            raise IncompatibleBrokerError(
                f"slot_h {self.config.slot_h:g} differs from the broker's {broker_slot_h:g}; "
                "set slot_h in the agent config to the broker's")

    def ensure_registered(self) -> None:
        site = self.config.site
        if self.state.token is not None:
            r = self.request("GET", f"/v1/sites/{site.id}", token=self.state.token)
            if r.status_code == 200:
                log.info("resumed as site %s", site.id)
                self.say(f"resumed as site {site.id}")
                return
            if r.status_code != 401:
                raise AgentError(f"resuming site {site.id}: HTTP {r.status_code}: {r.text}")
            self.state.token = None  # the broker no longer knows the token (new database)
        body = {"id": site.id, "zone": site.zone, "gpus": dict(site.gpus), "pue": site.pue,
                "egress_usd_per_gb": site.egress_usd_per_gb}
        r = self.request("POST", "/v1/sites", body, token=self.config.enrolment_token)
        if r.status_code != 201:
            message = _message(r)
            raise AgentError(f"registering site {site.id}: HTTP {r.status_code}: {message}")
        self.state.token = r.json()["token"]
        self.state.sequence = 0
        self.state.save(self.config.state_file)
        log.info("registered site %s", site.id)
        self.say(f"registered as site {site.id}")

    def sim_hours(self, now_s: float | None = None) -> float:
        """Simulated hours since the agent started."""
        now_s = self.monotonic() if now_s is None else now_s
        return (now_s - self.started_s) * self.config.time_scale / SECONDS_PER_HOUR

    def free_gpus(self, now_s: float) -> dict[str, list[int]]:
        """Free GPUs per type for each slot of the horizon from now.

        A running job holds its GPUs until its end, and now until its completion is reported
        (the offer lists it in ``holding``: the broker refuses an offer whose free GPUs now plus
        those it holds exceed the fleet); a waiting one is counted from now for its whole run
        (it may start any moment), so the offer never promises GPUs twice.
        """
        c = self.config
        slot_from_h = np.arange(c.horizon_slots) * c.slot_h
        capacity = self.capacity()
        free = {g: np.full(c.horizon_slots, capacity.get(g, 0), dtype=int)
                for g, n in c.site.gpus.items() if n}
        for job in self.jobs.values():
            if job.gpu_type not in free:
                continue
            if job.ends_s is None:
                left_h = job.occupy_h
            else:
                left_h = (job.ends_s - now_s) * c.time_scale / SECONDS_PER_HOUR
                # a run past its expected end still holds its GPUs now
                left_h = max(left_h, np.nextafter(0.0, 1.0))
            free[job.gpu_type] -= np.where(slot_from_h < left_h, job.gpus, 0)
        return {g: np.maximum(v, 0).tolist() for g, v in free.items()}

    def capacity(self) -> dict[str, int]:
        """GPUs per type the broker's jobs may use: the cluster's word (Slurm: its GRES less
        other users' jobs), never above the configured fleet; else the configured fleet."""
        fleet = self.config.site.gpus
        told = self.executor.capacity()
        if told is None:
            return dict(fleet)
        return {g: min(n, told.get(g, 0)) for g, n in fleet.items()}

    def forecast(self, now_s: float) -> tuple[list[float], list[float]]:
        """Price (USD/MWh) and carbon (g/kWh) for the horizon's slots, from the signals."""
        first = slot_index(self.sim_hours(now_s), self.config.slot_h)
        idx = (first + np.arange(self.config.horizon_slots)) % len(self.price_slots)
        return self.price_slots[idx].tolist(), self.carbon_slots[idx].tolist()

    def send_offer(self) -> bool:
        now_s = self.monotonic()
        price, carbon = self.forecast(now_s)
        self.state.sequence += 1
        body = {"sequence": self.state.sequence, "slot_h": self.config.slot_h,
                "free_gpus": self.free_gpus(now_s), "price_usd_per_mwh": price,
                "carbon_g_per_kwh": carbon, "holding": sorted(self.jobs)}
        r = self.request("PUT", f"/v1/sites/{self.config.site.id}/offer", body, self.state.token)
        if r.status_code == 409 and "current_sequence" in r.json():
            # the broker holds a newer sequence (say, a lost state file): continue above it
            self.state.sequence = int(r.json()["current_sequence"])
            self.state.save(self.config.state_file)
            return False
        if r.status_code != 200:
            raise AgentError(f"offer refused: HTTP {r.status_code}: {_message(r)}")
        self.state.save(self.config.state_file)
        self._drop_revoked(r.json().get("revoked", []))
        if not self.offers_announced:
            self.offers_announced = True
            self.say(f"offer sent; sending one every {self.config.offer_interval_s:g} s")
        return True

    def send_heartbeat(self) -> None:
        """Show the site alive and renew its leases between offers."""
        r = self.request("POST", f"/v1/sites/{self.config.site.id}/heartbeat",
                         {"holding": sorted(self.jobs)}, self.state.token)
        if r.status_code != 200:
            raise AgentError(f"heartbeat refused: HTTP {r.status_code}: {_message(r)}")
        self._drop_revoked(r.json().get("revoked", []))

    def _drop_revoked(self, revoked: list[int]) -> None:
        for assignment_id in revoked:
            lost = self.jobs.pop(assignment_id, None)
            if lost is not None:
                if lost.started_s is not None:
                    self.executor.stop(lost)  # SIGTERM, grace, SIGKILL; scancel
                self.say(f"job {lost.job_id} withdrawn by the broker (revoked): stopped")

    # --- jobs ---------------------------------------------------------------------------------

    def _assignment_path(self, assignment_id: int, action: str) -> str:
        return f"/v1/sites/{self.config.site.id}/assignments/{assignment_id}/{action}"

    def fetch_assignments(self) -> int:
        """Take every live assignment not yet held locally; returns how many were taken."""
        r = self.request("GET", f"/v1/sites/{self.config.site.id}/assignments",
                         token=self.state.token)
        if r.status_code != 200:
            raise AgentError(f"reading assignments: HTTP {r.status_code}: {r.text}")
        taken = 0
        for a in r.json()["assignments"]:
            if a["id"] in self.jobs:
                if a.get("directive") in ("pause", "resize"):
                    self._stop_on_word(self.jobs[a["id"]], a["directive"])
                continue
            # held locally before the ack, so every offer sent after the ack counts its GPUs;
            # on the assignment's own count (a moldable job's: the broker's choice; a broker
            # from before counts were planned sends only the job's)
            gpus = a.get("gpus", a["job"]["gpus"])
            job = LocalJob(a["id"], a["job"]["id"], a["gpu_type"], gpus,
                           a["transfer_h"] + a["runtime_h"], run=a.get("run"),
                           runtime_h=a["runtime_h"])
            if a.get("status") in LIVE_TAKEN:
                # ours from before a restart: already acknowledged
                self.jobs[job.assignment_id] = job
                self._readopt(job, a.get("status") == "running")
                taken += 1
                continue
            refusal = self.refusal(job)
            if refusal is not None:
                self._reject(job, refusal)
                continue
            self.jobs[job.assignment_id] = job
            ack = self.request("POST", self._assignment_path(job.assignment_id, "ack"),
                               token=self.state.token)
            if ack.status_code != 200:  # withdrawn (409) or gone: not ours to run
                log.warning("assignment %s not acknowledged: HTTP %s", a["id"], ack.status_code)
                del self.jobs[job.assignment_id]
                continue
            taken += 1
        return taken

    def _stop_on_word(self, job: LocalJob, directive: str) -> None:
        """The broker's word (``pause``, or ``resize``: it comes back as a new assignment on
        the new count): stop the job (a checkpointing job gets SIGTERM first, on the process
        and Slurm executors) and tell how far it got: its elapsed over its expected run (the
        simulated executor's own measure)."""
        now_s = self.monotonic()
        progress = 0.0
        if job.started_s is not None and job.ends_s is not None and job.ends_s > job.started_s:
            progress = min(max((now_s - job.started_s) / (job.ends_s - job.started_s), 0.0), 1.0)
            self.executor.stop(job)
        code = self._report_status(job, directive, {"progress": progress})
        del self.jobs[job.assignment_id]
        done = "paused" if directive == "pause" else "stopped to resize"
        self.say(f"job {job.job_id} {done} on the broker's word at {progress:.0%}"
                 + ("" if code == 200 else f" (the broker answered HTTP {code})"))

    def refusal(self, job: LocalJob) -> str | None:
        """Why this site will not run ``job`` (its executor's acceptance policy), or None."""
        if self.executor.needs_run and job.run is None:
            return f"this site's {self.executor.kind} executor runs only jobs with a run spec"
        return self.config.executor.accept.refusal(job)

    def _reject(self, job: LocalJob, reason: str) -> None:
        r = self.request("POST", self._assignment_path(job.assignment_id, "reject"),
                         {"reason": reason}, token=self.state.token)
        if r.status_code != 200:
            log.warning("reject of assignment %s: HTTP %s", job.assignment_id, r.status_code)
        self.say(f"job {job.job_id} refused: {reason}")

    def _readopt(self, job: LocalJob, running: bool) -> None:
        try:
            found = self.executor.adopt(job)
        except ExecutorError as error:
            self.say(f"job {job.job_id}: cannot look for its run ({error}); it starts over")
            found = False
        if found:
            now_s = self.monotonic()
            job.started_s = now_s
            job.ends_s = now_s + self.executor.expected_s(job)
            job.start_reported = running
            self.say(f"job {job.job_id} re-adopted after a restart (assignment "
                      f"{job.assignment_id}, run {job.ref})")
        else:
            self.say(f"job {job.job_id} re-adopted after a restart (assignment "
                     f"{job.assignment_id}); its run starts over here")

    def _gpus_in_use(self, gpu_type: str) -> int:
        return sum(j.gpus for j in self.jobs.values()
                   if j.gpu_type == gpu_type and j.started_s is not None)

    def _allot(self, job: LocalJob) -> tuple[int, ...]:
        """Device indices for ``job``: the type's (config ``gpu_indices``, else numbered in
        the site's order from 0) that no launched job holds."""
        fleet = self.config.site.gpus
        indices = self.config.executor.gpu_indices.get(job.gpu_type)
        if indices is None:
            first = 0
            for g, n in fleet.items():
                if g == job.gpu_type:
                    break
                first += n
            indices = list(range(first, first + fleet.get(job.gpu_type, 0)))
        held = {i for j in self.jobs.values() if j.started_s is not None
                and j.gpu_type == job.gpu_type for i in j.gpu_indices}
        return tuple([i for i in indices if i not in held][:job.gpus])

    def _launch(self, job: LocalJob, now_s: float) -> bool:
        job.gpu_indices = self._allot(job)
        try:
            self.executor.launch(job)
        except ExecutorError as error:
            # the site cannot run it (a missing program, sbatch refused it): a failed run
            self._finish(job, RunStatus("failed", None, "LAUNCH", str(error)))
            return False
        job.started_s = now_s
        if job.ends_s is None:
            job.ends_s = now_s + self.executor.expected_s(job)
        return True

    def run_jobs(self) -> None:
        """Launch waiting jobs that fit (in order), report starts, and report runs that ended
        (complete, or failed with their exit code and last log lines)."""
        now_s = self.monotonic()
        capacity = self.capacity()
        for job in sorted(self.jobs.values(), key=lambda j: j.assignment_id):
            total = capacity.get(job.gpu_type, 0)
            fits = self._gpus_in_use(job.gpu_type) + job.gpus <= total
            if job.started_s is None and not (fits and self._launch(job, now_s)):
                continue
            try:
                status = self.executor.poll(job)
            except ExecutorError as error:
                self.say(f"job {job.job_id}: cannot follow its run ({error})")
                continue
            if status.state != "pending" and not job.start_reported:
                started = RunStatus("running", started_at_s=status.started_at_s)
                self._report(job, "start", started.report(job.ref))
                job.start_reported = True
                where = f", run {job.ref}" if job.ref else ""
                self.say(f"job {job.job_id} started ({job.gpus} x {job.gpu_type}, "
                         f"assignment {job.assignment_id}{where})")
            if status.state in ("completed", "failed"):
                self._finish(job, status)

    def _finish(self, job: LocalJob, status: RunStatus) -> None:
        body = status.report(job.ref)
        if status.state == "completed":
            code = self._report_status(job, "complete", body)
            if code == 200:
                self.completed.append(job.job_id)
                self.say(f"job {job.job_id} finished")
            elif code == 409:
                self.say(f"job {job.job_id} finished, but the broker had withdrawn it")
            else:
                self.say(f"job {job.job_id} finished, but the broker refused the report "
                         f"(HTTP {code})")
        else:
            self._report(job, "fail", body)
            self.failed.append(job.job_id)
            first = (status.message or "").splitlines()[:1]
            self.say(f"job {job.job_id} failed ({status.exit_state}"
                     f"{': ' + first[0] if first else ''})")
        del self.jobs[job.assignment_id]

    def _report(self, job: LocalJob, action: str, body: dict | None = None) -> bool:
        return self._report_status(job, action, body) == 200

    def _report_status(self, job: LocalJob, action: str, body: dict | None = None) -> int:
        r = self.request("POST", self._assignment_path(job.assignment_id, action), body,
                         token=self.state.token)
        if r.status_code != 200:
            log.warning("%s of assignment %s: HTTP %s %s", action, job.assignment_id,
                        r.status_code, r.text)
        return r.status_code

    # --- the loop -----------------------------------------------------------------------------

    def run(self, duration_s: float | None = None, stop: threading.Event | None = None) -> None:
        """Check the broker, register, re-adopt held jobs, then offer, fetch and run jobs until
        ``stop`` is set or ``duration_s`` is up (also while retrying an unreachable broker)."""
        ends = None if duration_s is None else self.monotonic() + duration_s
        self.deadline = ends
        try:
            self.check_broker()
            if self.executor.energy_note:
                self.say(self.executor.energy_note)
            self.ensure_registered()
            # before the first offer: jobs acknowledged before a restart hold GPUs
            self._refresh()
            self.fetch_assignments()
            self._loop(ends, stop)
        except AgentStopped:
            pass

    def _refresh(self) -> None:
        """The executor reads its cluster's state (Slurm: one squeue, one scontrol)."""
        try:
            self.executor.refresh()
        except ExecutorError as error:
            self.say(f"cannot read the cluster's state ({error})")

    def _loop(self, ends: float | None, stop: threading.Event | None) -> None:
        c = self.config
        next_offer = next_poll = next_beat = self.monotonic()
        while not (stop is not None and stop.is_set()):
            now = self.monotonic()
            if ends is not None and now >= ends:
                break
            if now >= next_offer:
                self.send_offer()
                next_offer = now + c.offer_interval_s
                next_beat = now + c.heartbeat_interval_s
            elif now >= next_beat:
                self.send_heartbeat()
                next_beat = now + c.heartbeat_interval_s
            if now >= next_poll:
                self._refresh()
                self.fetch_assignments()
                next_poll = now + c.poll_interval_s
            self.run_jobs()
            wake = min([next_offer, next_poll, next_beat] + [j.ends_s for j in self.jobs.values()
                                                  if j.ends_s is not None])
            self.sleep(min(max(wake - self.monotonic(), 0.005), 0.25))


def _message(r: httpx.Response) -> str:
    """The broker's one-line message of an error answer (or the start of its text)."""
    try:
        body = r.json()
    except ValueError:
        return r.text[:200]
    return str(body.get("message", body)) if isinstance(body, dict) else str(body)[:200]
