"""``slurm``: a job becomes a Slurm batch job on the site's cluster.

Submit: ``sbatch --parsable`` with ``--gres=gpu:<type>:<n>`` (the broker's GPU type mapped to
the cluster's GRES type), ``--time`` (the job's ``max_runtime_h``, else the broker's expected
run time x ``time_factor``, at least a minute), ``--job-name=cf.<site>.<assignment>.<job>`` (the
broker's ids: a restarted agent finds its jobs by name), ``--signal=B:<sig>@<s>`` for jobs with
a ``checkpoint_dir`` (they get the signal before the time limit or a preemption, to write their
checkpoint), and the partition and account of the agent's config. The batch file ``exec``s the
job's command (or its script), with its output in the job's folder.

Follow: one ``squeue --json`` per poll for all jobs (Slurm keeps finished jobs there for
``MinJobAge``, and a cluster without an accounting database has no ``sacct``); exit codes are
Slurm's wait statuses (code << 8 | signal). Free GPUs: ``scontrol show node -d -o`` (each
usable node's ``Gres`` and ``GresUsed``) less what the broker's own running jobs hold, so the
offer counts what other users' jobs take. Stop: ``scancel --signal=TERM --full`` (the job can
checkpoint), then ``scancel`` after the grace (Slurm's own SIGTERM, KillWait, SIGKILL).

Why the command-line tools, not ``slurmrestd`` or a Python binding: the commands are on every
submit host and authenticate through munge as the agent's Unix user, with nothing more to run
or configure; ``slurmrestd`` is another daemon to deploy, secure (JWT keys) and keep up, and its
API versions (v0.0.36-38 in 22.05) are dropped a few releases later. ``pyslurm`` links against
libslurm and must be built for the exact Slurm release (no wheels), so an agent would break on
every cluster upgrade. The CLI's ``--json`` (squeue) and ``--parsable`` (sbatch) output is the
stable contract, and each call costs a few milliseconds per poll, not per job.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import subprocess
import threading
import time
from typing import Any

from sites.executors.base import (
    Executor,
    ExecutorError,
    LocalJob,
    RunStatus,
    ceil_minutes,
    job_argv,
    job_env,
    tail,
)
from sites.executors.process import failure_message, job_dir

NAME_PREFIX = "cf"
PENDING = frozenset({"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED",
                     "RESV_DEL_HOLD", "SUSPENDED", "STOPPED", "RESIZING", "SIGNALING"})
RUNNING = frozenset({"RUNNING", "COMPLETING", "STAGE_OUT"})
UNUSABLE_NODE = ("DOWN", "DRAIN", "FAIL", "NOT_RESPONDING", "INVAL", "FUTURE")
GRES = re.compile(r"gpu:([^:,()]+):(\d+)")
STOP_CHECK_S = 0.2


def exit_status(raw: int | None) -> tuple[int | None, int | None]:
    """(exit code, signal) of a Slurm wait status."""
    if raw is None:
        return None, None
    return (raw >> 8) & 0xFF, raw & 0x7F


def gres_counts(text: str) -> dict[str, int]:
    """``gpu:v100:4(S:0),gpu:a100:1(IDX:4)`` -> {v100: 4, a100: 1}."""
    out: dict[str, int] = {}
    for gres_type, count in GRES.findall(text):
        out[gres_type] = out.get(gres_type, 0) + int(count)
    return out


def node_gres(text: str, partition: str | None) -> tuple[dict[str, int], dict[str, int]]:
    """Total and used GPUs per GRES type over the usable nodes of ``scontrol show node -d -o``
    (in ``partition``, when given)."""
    total: dict[str, int] = {}
    used: dict[str, int] = {}
    for line in text.splitlines():
        def field(name: str, line: str = line) -> str:
            m = re.search(rf"(?:^|\s){name}=(\S*)", line)
            return m.group(1) if m else ""
        if not field("NodeName") or any(s in field("State") for s in UNUSABLE_NODE):
            continue
        if partition is not None and partition not in field("Partitions").split(","):
            continue
        for into, name in ((total, "Gres"), (used, "GresUsed")):
            for gres_type, n in gres_counts(field(name)).items():
                into[gres_type] = into.get(gres_type, 0) + n
    return total, used


def _time(value: object) -> float | None:
    """A squeue --json time (UNIX seconds; 0: not yet)."""
    return float(value) if isinstance(value, int | float) and value > 0 else None


class SlurmExecutor(Executor):
    kind = "slurm"

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.seen: dict[str, dict[str, Any]] = {}  # job name -> squeue's record, ours only
        self.generation = 0  # refreshes so far
        self.launched_in: dict[int, int] = {}  # assignment id -> generation it was launched in
        self.nodes: tuple[dict[str, int], dict[str, int]] | None = None

    # --- the commands --------------------------------------------------------------------

    def _command(self, *argv: str, env: dict[str, str] | None = None) -> str:
        tool = argv[0]
        bin_dir = self.spec.slurm.bin_dir
        path = str(bin_dir / tool) if bin_dir is not None else tool
        try:
            done = subprocess.run([path, *argv[1:]], capture_output=True, text=True, env=env,
                                  timeout=self.spec.slurm.command_timeout_s)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise ExecutorError(f"{tool}: {error}") from None
        if done.returncode != 0:
            raise ExecutorError(f"{tool}: {done.stderr.strip()[:300] or done.returncode}")
        return done.stdout

    def name(self, job: LocalJob) -> str:
        return f"{NAME_PREFIX}.{self.ctx.site_id}.{job.assignment_id}.{job.job_id}"

    def gres_type(self, gpu_type: str) -> str:
        return self.spec.slurm.gres_types.get(gpu_type, gpu_type.lower())

    def refresh(self) -> None:
        prefix = f"{NAME_PREFIX}.{self.ctx.site_id}."
        jobs = json.loads(self._command("squeue", "--json")).get("jobs", [])
        seen: dict[str, dict[str, Any]] = {}
        for j in sorted(jobs, key=lambda j: int(j.get("job_id", 0))):
            if str(j.get("name", "")).startswith(prefix):
                seen[j["name"]] = j  # a resubmitted name: the newest job
        self.seen = seen
        self.nodes = node_gres(self._command("scontrol", "show", "node", "-d", "-o"),
                               self.spec.slurm.partition)
        self.generation += 1

    # --- the executor --------------------------------------------------------------------

    def launch(self, job: LocalJob) -> None:
        folder = job_dir(self.ctx.work_dir, job)
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)  # the job's script, logs and batch file: its user's only
        argv = job_argv(job, self.spec, folder / "job.sh")
        batch = folder / "job.sbatch"
        batch.write_text(f"#!/bin/sh\nexec {shlex.join(argv)}\n")
        s = self.spec.slurm
        limit_s = self.limit_s(job)
        time_s = limit_s if limit_s is not None else self.expected_s(job) * s.time_factor
        args = ["sbatch", "--parsable", f"--job-name={self.name(job)}",
                f"--gres=gpu:{self.gres_type(job.gpu_type)}:{job.gpus}",
                f"--time={ceil_minutes(time_s)}", f"--chdir={folder}",
                f"--output={folder / 'stdout.log'}", f"--error={folder / 'stderr.log'}",
                "--export=ALL"]
        if (job.run or {}).get("checkpoint_dir"):
            args.append(f"--signal=B:{s.checkpoint_signal}")
        if s.partition:
            args.append(f"--partition={s.partition}")
        if s.account:
            args.append(f"--account={s.account}")
        out = self._command(*args, str(batch), env=job_env(job, dict(os.environ)))
        job.ref = out.strip().split(";")[0]
        self.launched_in[job.assignment_id] = self.generation

    def adopt(self, job: LocalJob) -> bool:
        if self.generation == 0:
            self.refresh()
        record = self.seen.get(self.name(job))
        if record is None:
            return False
        job.ref = str(record["job_id"])
        self.launched_in[job.assignment_id] = self.generation - 1
        return True

    def poll(self, job: LocalJob) -> RunStatus:
        record = self.seen.get(self.name(job))
        if record is None or str(record.get("job_id")) != job.ref:
            if self.launched_in.get(job.assignment_id, self.generation) < self.generation:
                self.launched_in.pop(job.assignment_id, None)
                return RunStatus("failed", None, "LOST", f"Slurm job {job.ref} is gone from "
                                 "squeue")
            return RunStatus("pending")  # submitted after the last squeue
        state = str(record.get("job_state", ""))
        started = _time(record.get("start_time"))
        if state in PENDING:
            return RunStatus("pending")
        if state in RUNNING:
            return RunStatus("running", started_at_s=started)
        self.launched_in.pop(job.assignment_id, None)
        code, sig = exit_status(record.get("exit_code"))
        ended = _time(record.get("end_time"))
        if state == "COMPLETED" and code == 0:
            return RunStatus("completed", 0, state, started_at_s=started, ended_at_s=ended)
        folder = job_dir(self.ctx.work_dir, job)
        what = f"Slurm job {job.ref} {state}" + (f", exit code {code}" if code else "") + (
            f", signal {sig}" if sig else "")
        if not tail(folder / "stderr.log") and not tail(folder / "stdout.log"):
            what += f" (reason: {record.get('state_reason', 'none')})"
        return RunStatus("failed", code if not sig else -sig, state,
                         failure_message(folder, what), started_at_s=started, ended_at_s=ended)

    def stop(self, job: LocalJob, grace_s: float | None = None) -> None:
        job.stopping = True
        ref = job.ref
        if ref is None:
            return
        grace = self.spec.grace_s if grace_s is None else grace_s
        self.launched_in.pop(job.assignment_id, None)

        def cancel() -> None:
            # pending (nothing to signal) or ended: the scancel below settles it
            with contextlib.suppress(ExecutorError):
                self._command("scancel", "--signal=TERM", "--full", ref)
            ends = time.monotonic() + grace
            while time.monotonic() < ends:
                try:
                    out = self._command("squeue", "-h", "-j", ref, "-o", "%T")
                except ExecutorError:
                    return  # gone
                if out.strip() not in RUNNING and out.strip() not in PENDING:
                    return
                time.sleep(STOP_CHECK_S)
            with contextlib.suppress(ExecutorError):
                self._command("scancel", ref)

        threading.Thread(target=cancel, daemon=True, name=f"carbonfed-scancel-{ref}").start()

    def capacity(self) -> dict[str, int] | None:
        if self.nodes is None:
            return None
        total, used = self.nodes
        ours: dict[str, int] = {}
        for record in self.seen.values():
            if record.get("job_state") in RUNNING:
                for gres_type, n in gres_counts(str(record.get("tres_per_node", ""))).items():
                    ours[gres_type] = ours.get(gres_type, 0) + n
        out = {}
        for gpu_type in self.ctx.gpus:
            g = self.gres_type(gpu_type)
            foreign = max(0, used.get(g, 0) - ours.get(g, 0))
            out[gpu_type] = max(0, total.get(g, 0) - foreign)
        return out
