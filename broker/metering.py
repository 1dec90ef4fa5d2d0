"""Metering: every kWh, kg CO2 and dollar, per job and per site and slot.

The meter uses the *actual* signals (the planner sees forecasts). Busy GPUs draw board power;
free GPUs draw idle power (GPU types that have one) over the run window [0, period + drain),
the same window for every policy. Formulas: ``sites.power`` (energy), ``broker.costs`` (money
and carbon), ``sites.timegrid`` (which slots a run overlaps).
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from broker.costs import emissions_kg, energy_cost_usd
from broker.federation import Federation
from broker.jobs import Job
from broker.options import meets_deadline, run_of
from sites.power import energy_kwh
from sites.timegrid import slot_index, slot_overlaps
from sites.units import SECONDS_PER_HOUR


@dataclass(frozen=True)
class JobRecord:
    """What happened to one job that ran (summed over its pieces when it was paused, moved or
    resized; where it ran: its last piece)."""

    job_id: str
    home_site: str
    site: str
    gpu_type: str
    job_type: str
    gpus: int  # the count it ran on (a moldable job's: the policy's choice)
    asked_gpus: int  # the count it asked for
    work_steps: float
    steps_per_s: float  # one GPU of the type alone (the affinity matrix)
    job_steps_per_s: float  # the job on its GPUs (the scaling model): work / run time
    submit_h: float
    start_h: float  # GPUs reserved from here (data transfer first when it moved)
    run_start_h: float  # computing from here
    finish_h: float
    deadline_h: float | None
    gpu_hours: float
    energy_kwh: float
    carbon_kg: float
    energy_cost_usd: float
    transfer_cost_usd: float
    transferred_gb: float
    segments: int  # runs between pauses (1: never paused)
    checkpoint_h: float  # busy hours of checkpoints and resizes (no work done)
    moves: int = 0  # restarts on another pool than the one it left
    resizes: int = 0  # GPU-count changes while it ran (an elastic job)

    @property
    def completion_h(self) -> float:
        return self.finish_h - self.submit_h

    @property
    def deadline_missed(self) -> bool:
        return not meets_deadline(self.finish_h, self.deadline_h)


@dataclass(frozen=True, eq=False)  # pieces are compared by identity
class Piece:
    """One metered run of a job on one pool: its busy intervals ``segments_h``, of which
    ``overhead_h`` hold no work (a restart's or resize's first, then each pause's checkpoint
    written and read back), computing at ``job_steps_per_s`` the rest of the time."""

    job_id: str
    resource: int
    gpus: int
    segments_h: tuple[tuple[float, float], ...]
    overhead_h: tuple[tuple[float, float], ...]
    job_steps_per_s: float
    start_steps: float  # work done before this piece
    slots: np.ndarray  # the slots it draws power in, and its hours and kWh in each
    hours: np.ndarray
    kwh: np.ndarray

    def hours_before(self, at_h: float, intervals: tuple[tuple[float, float], ...]) -> float:
        return float(sum(max(0.0, min(b, at_h) - a) for a, b in intervals))

    def steps_before(self, at_h: float) -> float:
        """Work this piece has done by ``at_h``."""
        computing = (self.hours_before(at_h, self.segments_h)
                     - self.hours_before(at_h, self.overhead_h))
        return max(computing, 0.0) * SECONDS_PER_HOUR * self.job_steps_per_s

    def computing_at(self, at_h: float) -> bool:
        inside = any(a <= at_h < b for a, b in self.segments_h)
        return inside and not any(a <= at_h < b for a, b in self.overhead_h)

    def paused_at(self, at_h: float) -> bool:
        """Between two segments, its checkpoint written."""
        return any(b <= at_h + 1e-9 and at_h < c
                   for (_, b), (c, _) in itertools.pairwise(self.segments_h))


def _joined(before: Piece, after: Piece) -> Piece:
    """A piece and the one that goes on from where it was cut, on the same GPUs: one piece."""
    segments = list(before.segments_h)
    first = after.segments_h[0]
    if segments and abs(segments[-1][1] - first[0]) < 1e-9:
        segments[-1] = (segments[-1][0], first[1])
        segments += after.segments_h[1:]
    else:
        segments += after.segments_h
    return Piece(before.job_id, before.resource, before.gpus, tuple(segments),
                 before.overhead_h + after.overhead_h, before.job_steps_per_s,
                 before.start_steps, np.concatenate([before.slots, after.slots]),
                 np.concatenate([before.hours, after.hours]),
                 np.concatenate([before.kwh, after.kwh]))


def overhead_intervals(segments_h: tuple[tuple[float, float], ...], lead_h: float,
                       checkpoint_h: float) -> tuple[tuple[float, float], ...]:
    """The busy intervals of a run that do no work: ``lead_h`` at its start (a restart or a
    resize), and at each pause ``checkpoint_h`` writing before it and reading after."""
    out = [(segments_h[0][0], segments_h[0][0] + lead_h)] if lead_h > 0 else []
    if checkpoint_h > 0:
        for (_, end), (start, _) in itertools.pairwise(segments_h):
            out += [(end - checkpoint_h, end), (start, start + checkpoint_h)]
    return tuple(out)


PIECE_COLUMNS = ("job_id", "site", "gpu_type", "gpus", "from_h", "to_h", "busy_h",
                 "overhead_h", "steps")


def _merged(before: JobRecord, piece: JobRecord, boundary: bool, moved: bool,
            resized: bool) -> JobRecord:
    """A job's record with its next piece added: where it ran last, sums of the rest; a piece
    that goes on at the boundary continues the segment it cut."""
    return dataclasses.replace(
        piece, asked_gpus=before.asked_gpus, work_steps=before.work_steps,
        start_h=before.start_h, run_start_h=before.run_start_h,
        gpu_hours=before.gpu_hours + piece.gpu_hours,
        energy_kwh=before.energy_kwh + piece.energy_kwh,
        carbon_kg=before.carbon_kg + piece.carbon_kg,
        energy_cost_usd=before.energy_cost_usd + piece.energy_cost_usd,
        transfer_cost_usd=before.transfer_cost_usd + piece.transfer_cost_usd,
        transferred_gb=before.transferred_gb + piece.transferred_gb,
        segments=before.segments + piece.segments - (1 if boundary else 0),
        checkpoint_h=before.checkpoint_h + piece.checkpoint_h,
        moves=before.moves + int(moved), resizes=before.resizes + int(boundary and resized),
    )


class Meter:
    """Accumulates metered quantities slot by slot, using the *actual* signals."""

    def __init__(self, federation: Federation, slot_h: float, carbon_g_per_kwh: np.ndarray,
                 price_usd_per_mwh: np.ndarray) -> None:
        self.federation = federation
        self.slot_h = slot_h
        self.carbon_g_per_kwh = carbon_g_per_kwh
        self.price_usd_per_mwh = price_usd_per_mwh
        n_slots = carbon_g_per_kwh.shape[1]
        self.busy_gpu_h = np.zeros((len(federation.resources), n_slots))
        self.energy_kwh = np.zeros((len(federation.sites), n_slots))
        self.records: dict[str, JobRecord] = {}  # by job id, in the order jobs first started
        self.pieces: list[Piece] = []
        self.last_piece: dict[str, int] = {}  # each job's last piece in ``pieces``
        self.live: dict[str, Piece] = {}  # each job's last piece

    def record_run(self, job: Job, resource: int, start_h: float, gpus: int | None = None,
                   segments_h: tuple[tuple[float, float], ...] = (),
                   boundary: bool = False) -> JobRecord:
        """Meter ``job`` run on ``gpus`` GPUs (default: its own count) of pool ``resource``
        from ``start_h`` (its option's run and transfer, ``broker.options``), slot by slot on
        the actual signals; a preemptible job's interrupted run segment by segment
        (``segments_h``, its checkpoints' time at full draw). The rest of a job that ran
        (``Job.state``) adds a piece to its record; ``boundary``: it goes on where it ran."""
        fed = self.federation
        site_i, gpu = fed.resources[resource]
        run = run_of(fed, job, resource, gpus, boundary)
        gpus = int(run.gpus[0])
        lead_h = float(run.overhead_h[0])
        if segments_h:
            pauses_h = 2.0 * job.checkpoint_overhead_h * (len(segments_h) - 1)
            busy = sum(b - a for a, b in segments_h)
            if abs(busy - pauses_h - float(run.runtime_h[0])) > 1e-6:
                raise ValueError(f"job {job.id}: its segments hold {busy - pauses_h:.6f} h "
                                 f"of work, it needs {float(run.runtime_h[0]):.6f} h")
        else:
            run_start_h = start_h + float(run.transfer_h[0])
            segments_h = ((run_start_h, run_start_h + float(run.runtime_h[0])),)
        overheads = overhead_intervals(segments_h, lead_h, job.checkpoint_overhead_h)
        pieces = [slot_overlaps(a, b, self.slot_h) for a, b in segments_h]
        slots = np.concatenate([p[0] for p in pieces])
        hours = np.concatenate([p[1] for p in pieces])
        if slots.max() >= self.energy_kwh.shape[1]:
            raise ValueError(f"job {job.id} runs past the end of the signals")
        kwh = fed.run_energy_kwh(np.full(len(hours), gpus), np.full(len(hours), resource),
                                 hours)
        np.add.at(self.busy_gpu_h[resource], slots, gpus * hours)
        np.add.at(self.energy_kwh[site_i], slots, kwh)
        done = 0.0 if job.state is None else job.state.done_steps
        piece = Piece(job.id, resource, gpus, segments_h, overheads,
                      float(run.steps_per_s[0]), done, slots, hours, kwh)
        last = self.last_piece.get(job.id)
        if boundary and last is not None and (self.pieces[last].resource,
                                              self.pieces[last].gpus) == (resource, gpus):
            piece = _joined(self.pieces[last], piece)
            self.pieces[last] = piece
        else:
            self.last_piece[job.id] = len(self.pieces)
            self.pieces.append(piece)
        self.live[job.id] = piece
        record = JobRecord(
            job_id=job.id, home_site=job.home_site, site=fed.sites[site_i].id, gpu_type=gpu,
            job_type=job.job_type, gpus=gpus, asked_gpus=job.gpus,
            work_steps=job.work_steps + done, steps_per_s=float(run.gpu_steps_per_s[0]),
            job_steps_per_s=float(run.steps_per_s[0]),
            submit_h=job.submit_h, start_h=start_h, run_start_h=segments_h[0][0],
            finish_h=segments_h[-1][1], deadline_h=job.deadline_h,
            gpu_hours=float(gpus * hours.sum()), energy_kwh=float(kwh.sum()),
            carbon_kg=float(emissions_kg(kwh, self.carbon_g_per_kwh[site_i, slots]).sum()),
            energy_cost_usd=float(
                energy_cost_usd(kwh, self.price_usd_per_mwh[site_i, slots]).sum()),
            transfer_cost_usd=float(run.transfer_cost_usd[0]),
            transferred_gb=float(run.transferred_gb[0]),
            segments=len(segments_h),
            checkpoint_h=sum(b - a for a, b in overheads),
        )
        before = self.records.get(job.id)
        if (before is None) != (job.state is None):
            raise ValueError(f"job {job.id}: metered twice" if job.state is None
                             else f"job {job.id}: the rest of a job that never ran")
        if before is not None:
            state = job.state
            assert state is not None
            record = _merged(before, record, boundary,
                             moved=(record.site, record.gpu_type) != (state.site_id,
                                                                      state.gpu_type),
                             resized=gpus != state.gpus)
        self.records[job.id] = record
        return record

    def cut(self, job_id: str, at_h: float) -> tuple[float, bool, bool]:
        """Stop metering ``job_id``'s live piece at ``at_h`` (a slot boundary): what it would
        have drawn from there is taken back. Returns the work done by then (the job's, all
        pieces), whether it was computing at ``at_h``, and whether it was paused there with
        its checkpoint written."""
        piece = self.live.pop(job_id)
        fed = self.federation
        site_i = fed.resource_site[piece.resource]
        later = piece.slots >= slot_index(at_h, self.slot_h)
        slots, hours, kwh = piece.slots[later], piece.hours[later], piece.kwh[later]
        np.subtract.at(self.busy_gpu_h[piece.resource], slots, piece.gpus * hours)
        np.subtract.at(self.energy_kwh[site_i], slots, kwh)
        record = self.records[job_id]
        self.records[job_id] = dataclasses.replace(
            record, finish_h=at_h,
            gpu_hours=record.gpu_hours - float(piece.gpus * hours.sum()),
            energy_kwh=record.energy_kwh - float(kwh.sum()),
            carbon_kg=record.carbon_kg - float(
                emissions_kg(kwh, self.carbon_g_per_kwh[site_i, slots]).sum()),
            energy_cost_usd=record.energy_cost_usd - float(
                energy_cost_usd(kwh, self.price_usd_per_mwh[site_i, slots]).sum()),
            segments=record.segments - sum(a >= at_h for a, _ in piece.segments_h),
            checkpoint_h=record.checkpoint_h - sum(
                max(0.0, b - max(a, at_h)) for a, b in piece.overhead_h),
        )
        kept = Piece(piece.job_id, piece.resource, piece.gpus,
                     tuple((a, min(b, at_h)) for a, b in piece.segments_h if a < at_h),
                     tuple((a, min(b, at_h)) for a, b in piece.overhead_h if a < at_h),
                     piece.job_steps_per_s, piece.start_steps, piece.slots[~later],
                     piece.hours[~later], piece.kwh[~later])
        self.pieces[self.last_piece[job_id]] = kept
        return (piece.start_steps + piece.steps_before(at_h), piece.computing_at(at_h),
                piece.paused_at(at_h))

    def pieces_frame(self) -> pd.DataFrame:
        """Long format: one row per metered piece of a job (its work done in ``steps``)."""
        fed = self.federation
        rows = [{
            "job_id": p.job_id, "site": fed.sites[fed.resource_site[p.resource]].id,
            "gpu_type": fed.resources[p.resource][1], "gpus": p.gpus,
            "from_h": p.segments_h[0][0] if p.segments_h else np.nan,
            "to_h": p.segments_h[-1][1] if p.segments_h else np.nan,
            "busy_h": sum(b - a for a, b in p.segments_h),
            "overhead_h": sum(b - a for a, b in p.overhead_h),
            "steps": p.steps_before(np.inf),
        } for p in self.pieces]
        return pd.DataFrame(rows, columns=PIECE_COLUMNS)

    def jobs_frame(self) -> pd.DataFrame:
        names = [f.name for f in fields(JobRecord)]
        # Records hold scalars only, so plain attribute reads give what ``asdict`` gives,
        # without its recursive deep copy of every record.
        rows = [
            [getattr(r, n) for n in names] + [r.completion_h, r.deadline_missed]
            for r in self.records.values()
        ]
        columns = [*names, "completion_h", "deadline_missed"]
        return pd.DataFrame(rows, columns=columns)  # the columns even when no job ran

    def idle_gpu_h(self, window_slots: int) -> np.ndarray:
        """Free GPU-hours of each pool and slot within the run window (0 after it)."""
        total = self.federation.resource_total_gpus[:, None] * self.slot_h
        idle = np.zeros_like(self.busy_gpu_h)
        idle[:, :window_slots] = np.maximum(total - self.busy_gpu_h[:, :window_slots], 0.0)
        return idle

    def site_slots_frame(self, window_slots: int) -> pd.DataFrame:
        """Long format: one row per site and slot of the whole run.

        The run covers the window [0, period + drain) and beyond it until the last job
        finishes. ``energy_kwh`` is busy plus idle energy; its sum over the frame is the
        federation's metered energy (the summary's total less the outside option).
        """
        fed = self.federation
        n_sites = len(fed.sites)
        used = np.flatnonzero(self.busy_gpu_h.sum(axis=0) > 0)
        n_slots = max(window_slots, int(used[-1]) + 1 if len(used) else 0)
        idle_gpu_h = self.idle_gpu_h(window_slots)
        idle_kwh_res = energy_kwh(idle_gpu_h, fed.resource_idle_power_w[:, None],
                                  fed.resource_pue[:, None], 1.0)
        busy = np.zeros((n_sites, n_slots))
        np.add.at(busy, fed.resource_site, self.busy_gpu_h[:, :n_slots])
        idle_h = np.zeros((n_sites, n_slots))
        np.add.at(idle_h, fed.resource_site, idle_gpu_h[:, :n_slots])
        idle_kwh = np.zeros((n_sites, n_slots))
        np.add.at(idle_kwh, fed.resource_site, idle_kwh_res[:, :n_slots])
        kwh = self.energy_kwh[:, :n_slots] + idle_kwh
        carbon = self.carbon_g_per_kwh[:, :n_slots]
        price = self.price_usd_per_mwh[:, :n_slots]
        total = np.array([s.total_gpus for s in fed.sites], dtype=float)
        slot = np.arange(n_slots)
        frames = [pd.DataFrame({
            "site": site.id,
            "slot": slot,
            "time_h": slot * self.slot_h,
            "busy_gpu_h": busy[i],
            "idle_gpu_h": idle_h[i],
            "utilization": busy[i] / (total[i] * self.slot_h) if total[i] else 0.0,
            "energy_kwh": kwh[i],
            "idle_energy_kwh": idle_kwh[i],
            "carbon_kg": emissions_kg(kwh[i], carbon[i]),
            "energy_cost_usd": energy_cost_usd(kwh[i], price[i]),
            "carbon_g_per_kwh": carbon[i],
            "price_usd_per_mwh": price[i],
        }) for i, site in enumerate(fed.sites)]
        return pd.concat(frames, ignore_index=True)
