"""Map a pure function over small tasks: in-process, on a local Dask cluster or a running one.

DESIGN.md, "Scale-out". Callers build small picklable tasks (scenario file or text, overrides,
seed, coalition) and call ``executor.map(fn, tasks, label=...)``; ``open_executor`` picks the
executor from ``--workers N`` / ``--scheduler ADDR``. Tasks and results go through the scheduler,
so both stay small: a worker reads data files itself (put the data folder's path in the task).

Results are the same floats in every mode: seeds come from ``task_seed`` (run seed and task index,
not the worker), and every task runs with one BLAS/OpenMP thread, as Dask's nanny starts workers
(OMP_NUM_THREADS=1); with OpenBLAS on all cores here, ``eigvalsh`` and ``solve`` differed from the
workers' in the last bits. Across machines it also needs equal package versions and CPU family.
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Generic, TextIO, TypeVar

import numpy as np
from threadpoolctl import threadpool_limits

from sites.errors import InputError

T = TypeVar("T")
R = TypeVar("R")

# (label, tasks done, tasks in all): what scenarios.progress.progress_reporter("tasks") yields,
# a bar with an ETA on a terminal and a line per 10 % when piped.
ProgressCallback = Callable[[str, int, int], None]

CONNECT_TIMEOUT_S = 5.0


def task_seed(seed: int, index: int) -> np.random.SeedSequence:
    """The seed of task ``index`` of a run seeded ``seed``: ``SeedSequence(seed).spawn(n)[index]``.

    Built from the index alone, so a task's random numbers do not depend on how many tasks there
    are, in which order they run or on which worker; ``np.random.default_rng(task_seed(...))``.
    """
    return np.random.SeedSequence(seed, spawn_key=(index,))


def task_seeds(seed: int, n_tasks: int) -> list[np.random.SeedSequence]:
    """``task_seed(seed, i)`` for i in 0..n_tasks-1 (equal to ``SeedSequence(seed).spawn``)."""
    return [task_seed(seed, index) for index in range(n_tasks)]


class OneThread(Generic[T, R]):
    """``fn`` run with one BLAS/OpenMP thread (see the module docstring); picklable by Dask."""

    def __init__(self, fn: Callable[[T], R]) -> None:
        self.fn = fn

    def __call__(self, task: T) -> R:
        with threadpool_limits(limits=1):
            return self.fn(task)


class Executor(ABC):
    """Maps a pure function over tasks; results come back in task order."""

    def __init__(self, progress: ProgressCallback | None = None) -> None:
        self.progress = progress

    @abstractmethod
    def map(self, fn: Callable[[T], R], tasks: Sequence[T], *, label: str = "tasks") -> list[R]:
        """``[fn(task) for task in tasks]``; ``fn`` must be importable (module level) and pure."""

    @property
    @abstractmethod
    def slots(self) -> int:
        """How many tasks run at once (a cluster's worker threads, as it stands now)."""

    def _report(self, label: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(label, done, total)


class InProcessExecutor(Executor):
    """Runs the tasks one after the other in this process (the default; no Dask involved)."""

    @property
    def slots(self) -> int:
        return 1

    def map(self, fn: Callable[[T], R], tasks: Sequence[T], *, label: str = "tasks") -> list[R]:
        pinned = OneThread(fn)
        results: list[R] = []
        self._report(label, 0, len(tasks))
        for task in tasks:
            results.append(pinned(task))
            self._report(label, len(results), len(tasks))
        return results


@contextmanager
def open_executor(workers: int | None = None, scheduler: str | None = None, *,
                  progress: ProgressCallback | None = None,
                  connect_timeout_s: float = CONNECT_TIMEOUT_S,
                  stream: TextIO | None = None) -> Iterator[Executor]:
    """The executor for ``--workers N`` / ``--scheduler ADDR`` (neither: in-process).

    A local cluster is shut down on exit; a remote one is left running. The dashboard address
    goes to ``stream`` (stderr), so piped standard output holds only the report. An address with
    no Dask scheduler behind it raises a one-line ``InputError`` within ``connect_timeout_s``.
    """
    if workers is not None and scheduler is not None:
        raise InputError("--workers", "", "give --workers or --scheduler, not both")
    if workers is None and scheduler is None:
        yield InProcessExecutor(progress)
        return
    # Imported here: Dask costs every command that runs in-process a noticeable start-up.
    from scenarios.dask_executor import open_dask_executor

    with open_dask_executor(workers, scheduler, progress=progress,
                            connect_timeout_s=connect_timeout_s,
                            stream=sys.stderr if stream is None else stream) as executor:
        yield executor
