"""What every executor shares: its config (the agent file's ``executor:`` section), the
site's acceptance policy, the job as the agent holds it, and the small abstract base.

An executor runs the jobs a site agent took: ``simulate`` sleeps (the demo), ``process`` runs
the command as a local child process, ``slurm`` submits it to the site's Slurm cluster. The
agent asks each executor the same few things (``Executor``): launch a job, poll it, stop it
(revoke now, pause later), re-adopt it after a restart, and how many GPUs per type the broker
may use now (the cluster's word, where the executor knows it).
"""

from __future__ import annotations

import math
import shlex
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from sites.model_base import Strict
from sites.units import SECONDS_PER_HOUR

LOG_TAIL_LINES = 20  # last log lines a failure report carries
MESSAGE_CHARS = 2000  # the broker's bound on a report's message
ENV_PREFIX_HIDDEN = "CARBONFED_"  # the agent's own variables (its enrolment token) stay out


class AcceptPolicy(Strict):
    """What a site will run; a job outside it is rejected (the broker never offers it here
    again). Every bound is optional: None accepts anything."""

    images: list[str] = Field(default_factory=list, description="container images allowed "
                              "(empty: no job that names an image)")
    command_prefixes: list[str] | None = Field(
        None, description="a command must start with one of these (each split like a shell "
        "line: 'python train.py' allows ['python', 'train.py', ...]); None: any command")
    scripts: bool = Field(True, description="accept batch-script jobs")
    max_runtime_h: float | None = Field(None, gt=0, description="a job's max_runtime_h (or "
                                        "the broker's expected run time) at most this")
    max_gpus_per_job: int | None = Field(None, ge=1)

    def refusal(self, job: LocalJob) -> str | None:
        """Why the site will not run ``job``, or None when it will."""
        run = job.run or {}
        image = run.get("image")
        if image is not None and image not in self.images:
            return f"image '{image}' is not allowed here"
        command = run.get("command")
        if command is not None and self.command_prefixes is not None and not any(
                command[:len(p)] == p for p in (shlex.split(x) for x in self.command_prefixes)):
            return f"command '{command[0]}' does not start with an allowed prefix"
        if run.get("script") is not None and not self.scripts:
            return "this site runs no batch scripts"
        if self.max_gpus_per_job is not None and job.gpus > self.max_gpus_per_job:
            return f"{job.gpus} GPUs is above this site's {self.max_gpus_per_job} per job"
        runtime_h = job.max_runtime_h if job.max_runtime_h is not None else job.runtime_h
        if self.max_runtime_h is not None and runtime_h > self.max_runtime_h:
            return f"run time {runtime_h:g} h is above this site's {self.max_runtime_h:g} h"
        return None


class SlurmSpec(Strict):
    partition: str | None = None
    account: str | None = None
    time_factor: float = Field(1.5, ge=1, description="--time is the expected run time x this "
                               "(or the job's max_runtime_h, when it gives one)")
    checkpoint_signal: str = Field("TERM@60", pattern=r"^[A-Z0-9]+@\d+$", description="--signal "
                                   "for jobs with a checkpoint_dir: the signal, and how many "
                                   "seconds before the time limit or a preemption")
    gres_types: dict[str, str] = Field(default_factory=dict, description="the broker's GPU type "
                                       "-> Slurm's GRES type (default: lower case, V100 -> v100)")
    bin_dir: Path | None = Field(None, description="where sbatch, squeue ... are (default: PATH)")
    command_timeout_s: float = Field(30.0, gt=0)


class ExecutorSpec(Strict):
    """The agent file's ``executor:`` section."""

    kind: str = Field("simulate", description="simulate | process | slurm "
                      "(sites.executors.EXECUTORS)")
    work_dir: Path | None = Field(None, description="per-job folders (logs, scripts); default: "
                                  "<config>.jobs beside the agent's config")
    grace_s: float = Field(10.0, ge=0, description="stop: SIGTERM, this long, then SIGKILL")
    gpu_indices: dict[str, list[int]] = Field(
        default_factory=dict, description="process: the device indices of each GPU type "
        "(CUDA_VISIBLE_DEVICES); default: numbered in the site's order from 0")
    container_prefix: list[str] = Field(
        default_factory=list, description="argv put before a job's command when it names an "
        "image, '{image}' replaced, e.g. [apptainer, exec, '{image}']")
    accept: AcceptPolicy = AcceptPolicy()
    slurm: SlurmSpec = SlurmSpec()

    @model_validator(mode="after")
    def _containers_need_a_runtime(self) -> ExecutorSpec:
        if self.accept.images and not self.container_prefix and self.kind != "simulate":
            raise ValueError("accept.images needs container_prefix (how to run an image)")
        return self


@dataclass
class LocalJob:
    """An assignment the site has taken: it waits for GPUs, then its executor runs it."""

    assignment_id: int
    job_id: str
    gpu_type: str
    gpus: int
    occupy_h: float  # data transfer + run time, simulated hours
    run: dict[str, Any] | None = None  # the broker's run spec (api.schemas.RunSpec)
    runtime_h: float = 0.0  # the broker's expected run time, simulated hours
    started_s: float | None = None  # real (monotonic) seconds it was launched
    ends_s: float | None = None  # when it is expected to end (simulate: when it ends)
    start_reported: bool = False
    gpu_indices: tuple[int, ...] = ()  # devices the agent allotted (process executor)
    ref: str | None = None  # the executor's id for the run: a pid, a Slurm job id
    stopping: bool = False

    @property
    def max_runtime_h(self) -> float | None:
        return None if self.run is None else self.run.get("max_runtime_h")


RunState = Literal["pending", "running", "completed", "failed"]


@dataclass(frozen=True)
class RunStatus:
    state: RunState
    exit_code: int | None = None
    exit_state: str | None = None  # the executor's word: COMPLETED, FAILED, TIMEOUT, signal 9
    message: str | None = None  # a failure's last log lines
    energy_kwh: float | None = None  # measured (sites.executors.energy), GPUs only
    started_at_s: float | None = None  # UNIX times by the executor's clock (Slurm's)
    ended_at_s: float | None = None

    def report(self, ref: str | None) -> dict[str, Any]:
        """The body of the broker's start / complete / fail report."""
        body = {"ref": ref, "exit_code": self.exit_code, "exit_state": self.exit_state,
                "message": None if self.message is None else self.message[-MESSAGE_CHARS:],
                "energy_kwh": self.energy_kwh, "started_at_s": self.started_at_s,
                "ended_at_s": self.ended_at_s}
        return {k: v for k, v in body.items() if v is not None}


@dataclass
class ExecutorContext:
    """What an executor is given: the site, its folders and the agent's clock and scale."""

    site_id: str
    gpus: dict[str, int]
    work_dir: Path
    time_scale: float
    monotonic: Any = None  # the agent's clock (simulate reads it)
    extra: dict[str, Any] = field(default_factory=dict)


class Executor(ABC):
    kind: ClassVar[str]
    needs_run: ClassVar[bool] = True  # a job without a run spec is refused

    def __init__(self, spec: ExecutorSpec, ctx: ExecutorContext) -> None:
        self.spec = spec
        self.ctx = ctx

    energy_note: str = ""  # how run energy is known (measured, or why not), said once

    def refresh(self) -> None:  # noqa: B027 (optional hook)
        """Read the cluster's state once per poll (the slurm executor's squeue)."""

    @abstractmethod
    def launch(self, job: LocalJob) -> None:
        """Start ``job`` (sets ``job.ref``); raises ``ExecutorError`` if it cannot."""

    @abstractmethod
    def poll(self, job: LocalJob) -> RunStatus:
        """How the launched ``job`` stands."""

    @abstractmethod
    def stop(self, job: LocalJob, grace_s: float | None = None) -> None:
        """Stop ``job`` (a revoke now, a pause later): the job gets SIGTERM first, so a
        preemptible one can write its checkpoint, and is killed ``grace_s`` later (default:
        the config's ``grace_s``). Returns at once."""

    def adopt(self, job: LocalJob) -> bool:
        """Find the run of ``job`` from before an agent restart; True if found (its state is
        then polled as usual). False: the job starts over."""
        return False

    def capacity(self) -> dict[str, int] | None:
        """GPUs per type the broker's jobs may use now (the cluster's total less what others
        hold), or None: the site's configured fleet."""
        return None

    def expected_s(self, job: LocalJob) -> float:
        """Real seconds the job is expected to hold its GPUs."""
        return job.occupy_h * SECONDS_PER_HOUR / self.ctx.time_scale

    def limit_s(self, job: LocalJob) -> float | None:
        """Real seconds after which the job is stopped (its max_runtime_h), or None."""
        limit_h = job.max_runtime_h
        return None if limit_h is None else limit_h * SECONDS_PER_HOUR


class ExecutorError(RuntimeError):
    """An executor could not launch or follow a job (one line, for the operator)."""


def job_env(job: LocalJob, base: dict[str, str]) -> dict[str, str]:
    """A job's environment: the agent's less its own CARBONFED_* variables, the run spec's, and
    the job's ids and checkpoint folder."""
    env = {k: v for k, v in base.items() if not k.startswith(ENV_PREFIX_HIDDEN)}
    run = job.run or {}
    env.update(run.get("env", {}))
    env["CARBONFED_JOB_ID"] = job.job_id
    env["CARBONFED_ASSIGNMENT_ID"] = str(job.assignment_id)
    if run.get("checkpoint_dir"):
        env["CARBONFED_CHECKPOINT_DIR"] = run["checkpoint_dir"]
    return env


def job_argv(job: LocalJob, spec: ExecutorSpec, script_path: Path) -> list[str]:
    """The argv to run: the command, or the script written to ``script_path``; behind the
    container prefix when the job names an image."""
    run = job.run or {}
    if run.get("script") is not None:
        text = run["script"]
        if not text.startswith("#!"):
            text = "#!/bin/sh\n" + text
        script_path.write_text(text)
        script_path.chmod(0o700)
        argv = [str(script_path)]
    else:
        argv = list(run["command"])
    image = run.get("image")
    if image is not None:
        argv = [p.replace("{image}", image) for p in spec.container_prefix] + argv
    return argv


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file ('' if it is missing)."""
    try:
        with path.open("rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def ceil_minutes(seconds: float) -> int:
    return max(1, math.ceil(seconds / 60.0))
