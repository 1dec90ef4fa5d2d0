"""``simulate``: a job sleeps its expected occupancy divided by the agent's ``time_scale``."""

from __future__ import annotations

from sites.executors.base import Executor, LocalJob, RunStatus


class SimulateExecutor(Executor):
    kind = "simulate"
    needs_run = False  # it runs nothing: a run spec is ignored

    def launch(self, job: LocalJob) -> None:
        now_s = self.ctx.monotonic()
        job.ends_s = now_s + self.expected_s(job)
        job.ref = None

    def poll(self, job: LocalJob) -> RunStatus:
        if job.ends_s is not None and job.ends_s <= self.ctx.monotonic():
            return RunStatus("completed", 0, "COMPLETED")
        return RunStatus("running")

    def stop(self, job: LocalJob, grace_s: float | None = None) -> None:
        job.stopping = True  # nothing runs: the agent drops it
