"""``process``: a job runs as a local child process of the agent.

Each job gets a folder under the executor's ``work_dir`` (``<assignment>-<job>``) holding its
``stdout.log`` and ``stderr.log``, its script (for script jobs), ``run.json`` (pid and GPU
indices, for a restarted agent) and ``exit_code``. The child runs in a session and process
group of its own (a signal to the agent never reaches it, and a stop reaches all it started),
with ``CUDA_VISIBLE_DEVICES`` set to the GPU indices the agent allotted.

The command runs under a small ``/bin/sh`` wrapper that writes its exit code to a file: an
agent restarted while the job runs re-adopts it by its pid and still learns how it ended,
though the job is no longer its child.

Stop: SIGTERM to the group, ``grace_s``, then SIGKILL (a thread waits out the grace, so the
agent's loop goes on). Exit code 0 is complete; anything else (a signal too) is failed, with
the code and the last lines of the job's logs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from sites.executors.base import (
    Executor,
    ExecutorError,
    LocalJob,
    RunStatus,
    job_argv,
    job_env,
    tail,
)
from sites.executors.energy import kwh_between, open_nvml

EXIT_FILE = "exit_code"
RUN_FILE = "run.json"
# sh runs the job, then writes its exit code (a temporary file renamed: never half written)
WRAPPER = ('"$@"; code=$?; echo "$code" > "$CARBONFED_EXIT_FILE.tmp" && '
           'mv "$CARBONFED_EXIT_FILE.tmp" "$CARBONFED_EXIT_FILE"; exit "$code"')
STOP_CHECK_S = 0.05  # how often the stop thread looks whether the group is gone


def job_dir(work_dir: Path, job: LocalJob) -> Path:
    return work_dir / f"{job.assignment_id}-{job.job_id}"


def failure_message(folder: Path, what: str) -> str:
    err, out = tail(folder / "stderr.log"), tail(folder / "stdout.log")
    parts = [what] + ([f"stderr:\n{err}"] if err else []) + ([f"stdout:\n{out}"] if out else [])
    return "\n".join(parts)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pid_alive(pid: int) -> bool:
    """A live process (a zombie, whose exit nobody has collected, is not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


def stop_group(pgid: int, grace_s: float) -> None:
    """SIGTERM to the group now, SIGKILL ``grace_s`` later if any of it is left (in a thread)."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return

    def kill_later() -> None:
        ends = time.monotonic() + grace_s
        while time.monotonic() < ends:
            if not group_alive(pgid):
                return
            time.sleep(STOP_CHECK_S)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)

    threading.Thread(target=kill_later, daemon=True, name=f"carbonfed-stop-{pgid}").start()


class ProcessExecutor(Executor):
    kind = "process"

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.children: dict[int, subprocess.Popen] = {}  # assignment id -> child
        self.pids: dict[int, int] = {}  # assignment id -> pid (also adopted ones)
        self.launched_at: dict[int, float] = {}
        self.energy_at_start: dict[int, float | None] = {}  # assignment id -> NVML mJ
        self.nvml, self.energy_note = open_nvml()

    def launch(self, job: LocalJob) -> None:
        folder = job_dir(self.ctx.work_dir, job)
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)  # the job's script, logs and batch file: its user's only
        (folder / EXIT_FILE).unlink(missing_ok=True)
        argv = job_argv(job, self.spec, folder / "job.sh")
        env = job_env(job, dict(os.environ))
        env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, job.gpu_indices))
        env["CARBONFED_EXIT_FILE"] = str(folder / EXIT_FILE)
        try:
            with (folder / "stdout.log").open("ab") as out, \
                    (folder / "stderr.log").open("ab") as err:
                child = subprocess.Popen(
                    ["/bin/sh", "-c", WRAPPER, "carbonfed-job", *argv], cwd=folder, env=env,
                    stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True)
        except OSError as error:
            raise ExecutorError(f"job {job.job_id}: cannot start: {error}") from None
        self.children[job.assignment_id] = child
        self.pids[job.assignment_id] = child.pid
        self.launched_at[job.assignment_id] = time.monotonic()
        if self.nvml is not None:
            self.energy_at_start[job.assignment_id] = self.nvml.read_mj(job.gpu_indices)
        job.ref = str(child.pid)
        (folder / RUN_FILE).write_text(json.dumps(
            {"pid": child.pid, "gpu_indices": list(job.gpu_indices)}))

    def adopt(self, job: LocalJob) -> bool:
        folder = job_dir(self.ctx.work_dir, job)
        try:
            run = json.loads((folder / RUN_FILE).read_text())
        except (OSError, ValueError):
            return False
        pid = int(run["pid"])
        if not (folder / EXIT_FILE).exists() and not pid_alive(pid):
            return False  # it died with no exit code: it starts over
        self.pids[job.assignment_id] = pid
        self.launched_at[job.assignment_id] = time.monotonic()
        job.ref = str(pid)
        job.gpu_indices = tuple(run.get("gpu_indices", ()))
        return True

    def _exit_code(self, job: LocalJob) -> int | None:
        child = self.children.get(job.assignment_id)
        if child is not None:
            return child.poll()
        folder = job_dir(self.ctx.work_dir, job)
        try:
            return int((folder / EXIT_FILE).read_text().strip())
        except (OSError, ValueError):
            pid = self.pids.get(job.assignment_id)
            if pid is not None and pid_alive(pid):
                return None
            return -signal.SIGKILL  # gone without an exit code: killed

    def poll(self, job: LocalJob) -> RunStatus:
        code = self._exit_code(job)
        folder = job_dir(self.ctx.work_dir, job)
        if code is None:
            limit = self.limit_s(job)
            began = self.launched_at.get(job.assignment_id, time.monotonic())
            if limit is not None and time.monotonic() - began > limit and not job.stopping:
                self.stop(job)
                return RunStatus("failed", None, "TIMEOUT", failure_message(
                    folder, f"stopped after its max_runtime_h ({job.max_runtime_h:g} h)"))
            return RunStatus("running")
        kwh = None
        if self.nvml is not None:
            kwh = kwh_between(self.energy_at_start.get(job.assignment_id),
                              self.nvml.read_mj(job.gpu_indices))
        self._forget(job)
        if code == 0:
            return RunStatus("completed", 0, "COMPLETED", energy_kwh=kwh)
        if code < 0:
            state, what = f"signal {-code}", f"killed by signal {-code}"
        else:
            state, what = "FAILED", f"exit code {code}"
        return RunStatus("failed", code, state, failure_message(folder, what), kwh)

    def stop(self, job: LocalJob, grace_s: float | None = None) -> None:
        pid = self.pids.get(job.assignment_id)
        job.stopping = True
        if pid is None:
            return
        stop_group(pid, self.spec.grace_s if grace_s is None else grace_s)
        child = self.children.get(job.assignment_id)
        if child is not None:  # reap it when it ends, so no zombie is left
            threading.Thread(target=child.wait, daemon=True).start()
        self._forget(job)

    def _forget(self, job: LocalJob) -> None:
        for table in (self.children, self.pids, self.launched_at, self.energy_at_start):
            table.pop(job.assignment_id, None)
