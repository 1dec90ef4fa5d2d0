"""How a site runs the jobs its agent takes: a registry of executors (``kind`` in the agent
file's ``executor:`` section). ``sites.executors.base`` has the base class and the config."""

from __future__ import annotations

from sites.executors.base import (
    AcceptPolicy,
    Executor,
    ExecutorContext,
    ExecutorError,
    ExecutorSpec,
    LocalJob,
    RunStatus,
    SlurmSpec,
)
from sites.executors.process import ProcessExecutor
from sites.executors.simulate import SimulateExecutor
from sites.executors.slurm import SlurmExecutor

EXECUTORS: dict[str, type[Executor]] = {
    e.kind: e for e in (SimulateExecutor, ProcessExecutor, SlurmExecutor)
}


def build_executor(spec: ExecutorSpec, ctx: ExecutorContext) -> Executor:
    return EXECUTORS[spec.kind](spec, ctx)


__all__ = ["EXECUTORS", "AcceptPolicy", "Executor", "ExecutorContext", "ExecutorError",
           "ExecutorSpec", "LocalJob", "RunStatus", "SlurmSpec", "build_executor"]
