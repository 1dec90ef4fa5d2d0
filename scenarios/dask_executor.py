"""The Dask side of ``scenarios.scaleout``: an executor on a ``distributed`` cluster, local or
remote, and the checks and settings its workers need (module docstring of ``scaleout``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TextIO, TypeVar, cast

import dask
from distributed import Client, LocalCluster, as_completed
from distributed.comm import connect
from distributed.core import send_recv

from scenarios.scaleout import Executor, OneThread, ProgressCallback
from sites.errors import InputError
from sites.processes import children_ignore_ctrl_c

T = TypeVar("T")
R = TypeVar("R")

_PRE_SPAWN = "distributed.nanny.pre-spawn-environ"  # environment a nanny gives its worker
# A worker that dies mid-task is not a task error: the scheduler re-runs its tasks elsewhere on
# its own (up to distributed.scheduler.allowed-failures = 3 deaths per task). ``retries`` re-runs
# a task that *raised*, which for a pure task only helps with a transient error on the worker
# (a data folder on a network file system); one retry bounds the time lost to a real error.
TASK_RETRIES = 1


class DaskExecutor(Executor):
    """Runs the tasks on the workers of a ``distributed.Client`` (local or remote cluster)."""

    def __init__(self, client: Client, progress: ProgressCallback | None = None,
                 retries: int = TASK_RETRIES) -> None:
        super().__init__(progress)
        self.client = client
        self.retries = retries

    @property
    def slots(self) -> int:
        return max(1, sum(self.client.nthreads().values()))

    def map(self, fn: Callable[[T], R], tasks: Sequence[T], *, label: str = "tasks") -> list[R]:
        if not tasks:
            return []
        # Keys name the label on the dashboard; the token keeps two maps of equal tasks apart
        # (pure=False: Dask must not merge them with a cached result from an earlier map).
        token = uuid.uuid4().hex[:8]
        keys = [f"{label}-{token}-{index}" for index in range(len(tasks))]
        futures = self.client.map(OneThread(fn), list(tasks), key=keys, pure=False,
                                  retries=self.retries)
        try:
            self._report(label, 0, len(tasks))
            for done, future in enumerate(as_completed(futures), start=1):
                if future.status == "error":
                    future.result()  # raises the task's own exception, first failure first
                self._report(label, done, len(tasks))
            return cast(list[R], self.client.gather(futures))
        except BaseException:
            self.client.cancel(futures)  # Ctrl-C or a failed task: stop the rest of the work
            raise


@contextmanager
def open_dask_executor(workers: int | None, scheduler: str | None, *,
                       progress: ProgressCallback | None, connect_timeout_s: float,
                       stream: TextIO) -> Iterator[DaskExecutor]:
    """A LocalCluster of ``workers`` processes (shut down on exit), or the running cluster at
    ``scheduler`` (left running); ``scenarios.scaleout.open_executor`` documents the rest."""
    out = stream
    if scheduler is not None:
        _check_scheduler(scheduler, connect_timeout_s)
        with Client(scheduler, timeout=connect_timeout_s) as client:
            print(f"Dask scheduler {scheduler}, dashboard {client.dashboard_link}", file=out)
            notice = _trim_notice(client)
            if notice is not None:
                print(notice, file=out)
            yield DaskExecutor(client, progress)
    elif workers is not None:
        if workers < 1:
            raise InputError("--workers", "", f"must be at least 1 (got {workers})")
        # One thread per process: the work is CPU-bound Python (GIL), and one thread is what the
        # identical-floats pin assumes. Dashboard on loopback, any free port (several runs at once).
        with _environ_kept(), _local_cluster(workers) as cluster, Client(cluster) as client:
            print(f"Dask dashboard: {cluster.dashboard_link}", file=out)
            try:
                yield DaskExecutor(client, progress)
            except KeyboardInterrupt:
                # Ctrl-C: the cluster now shuts down with tasks in flight, which its workers
                # and nannies log as errors with tracebacks (cancelled tasks, lost heartbeats,
                # a worker killed while busy). Nothing failed but the interruption: quiet.
                with contextlib.suppress(Exception):
                    client.run(_quiet_dask_logs)
                _quiet_dask_logs()
                raise


def _quiet_dask_logs() -> None:
    logging.getLogger("distributed").setLevel(logging.CRITICAL)


@contextmanager
def _environ_kept() -> Iterator[None]:
    """Gives this process its environment back: a nanny writes its workers' variables
    (OMP_NUM_THREADS=1, PYTHONHASHSEED, ...) into its parent's ``os.environ`` and leaves them,
    and any subprocess the caller starts later would inherit them."""
    kept = dict(os.environ)
    try:
        yield
    finally:
        for name in set(os.environ) - set(kept):
            del os.environ[name]
        os.environ.update(kept)


def _local_cluster(workers: int) -> LocalCluster:
    """``workers`` single-threaded worker processes, without Dask's MALLOC_TRIM_THRESHOLD_.

    The nanny sets that variable so workers give freed memory back to the OS; it also makes glibc
    mmap and unmap every numpy temporary above 128 KiB, and a numpy loop ran 10-15x slower on a
    worker than in-process here (bench/scale_out.py). Nannies read it once, when they start;
    ``None`` is distributed's way of leaving a variable out.
    """
    with dask.config.set({f"{_PRE_SPAWN}.MALLOC_TRIM_THRESHOLD_": None}), \
            children_ignore_ctrl_c():  # the CLI stops them; no traceback from each
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                            dashboard_address="127.0.0.1:0")


def _trim_notice(client: Client) -> str | None:
    """A note for a remote cluster whose workers run with MALLOC_TRIM_THRESHOLD_ (see above)."""
    trimmed = [value for value in client.run(_malloc_trim_threshold).values() if value is not None]
    if not trimmed:
        return None
    return (f"note: {len(trimmed)} Dask worker(s) run with MALLOC_TRIM_THRESHOLD_ set, which slows "
            f"numpy-heavy tasks several-fold; start them with a Dask config (YAML) that sets "
            f"{_PRE_SPAWN}.MALLOC_TRIM_THRESHOLD_ to null")


def _malloc_trim_threshold() -> str | None:
    # A module function, so that it runs against the worker's environment: a pickled
    # ``os.environ.get`` would carry this process's environment along.
    return os.environ.get("MALLOC_TRIM_THRESHOLD_")


def _check_scheduler(address: str, timeout_s: float) -> None:
    """Ask ``address`` who it is before handing it to ``Client``, under a hard time limit.

    ``Client`` alone honours its timeout only while connecting: a peer that accepts the connection
    but is no Dask scheduler (a web server, say) makes it wait forever, and a peer that answers
    garbage makes it allocate a length read from that garbage (a MemoryError seen here).
    """
    async def identity() -> dict[str, Any]:
        comm = await connect(address, timeout=timeout_s)
        try:
            return cast(dict[str, Any], await send_recv(comm, op="identity"))
        finally:
            comm.abort()

    try:
        reply = asyncio.run(asyncio.wait_for(identity(), timeout_s))
    except ValueError as error:  # distributed's address parser: "missing port number", ...
        raise InputError("--scheduler", address, f"not a scheduler address ({error})") from None
    except Exception as error:  # timeout, refused, or a peer that does not speak Dask
        raise InputError("--scheduler", address, f"no Dask scheduler answered within "
                         f"{timeout_s:g} s ({type(error).__name__})") from None
    if reply.get("type") != "Scheduler":
        raise InputError("--scheduler", address,
                         f"a Dask {reply.get('type', 'peer')} answered, not a scheduler")
