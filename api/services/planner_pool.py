"""Where a planning round is read and solved: a worker process (default) or the planning thread.

Reading a round and building its options and MILP model is Python-heavy; on a thread of the API
process it holds the GIL for seconds and every request waits behind it. ``ProcessSolver`` hands
the round (``api.services.round_read.read_and_solve``: a picklable query in, the plan out) to
one worker process started with ``spawn`` (no fork of a threaded server) at a lower priority,
so requests win the CPU while a round is solved; the worker opens the database itself.
``InlineSolver`` reads and solves on the calling thread (``planner_process = false``: one
process, e.g. where processes cannot be started, or a database only this process can see).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol

from api.db import Database
from api.services.round_read import RoundOutcome, RoundQuery, read_and_solve, worker_ready
from broker.live_round import RoundRules, worker_init
from sites.processes import children_ignore_ctrl_c

PLANNER_NICENESS = 10  # CFS gives a nice-0 process ~10x the CPU share of a nice-10 one


class RoundSolver(Protocol):
    def start(self) -> object: ...

    def ready(self) -> None:
        """Wait until a round handed over now would be picked up at once."""

    def solve(self, rules: RoundRules, query: RoundQuery, budget_s: float) -> RoundOutcome: ...

    def close(self) -> None: ...


class InlineSolver:
    """Reads (from the API's own database engine) and solves on the caller's thread."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def start(self) -> None:
        pass

    def ready(self) -> None:
        pass

    def solve(self, rules: RoundRules, query: RoundQuery, budget_s: float) -> RoundOutcome:
        return read_and_solve(rules, query, budget_s, db=self.db)

    def close(self) -> None:
        pass


class ProcessSolver:
    """Solves in one worker process; a worker that died is replaced for the next round."""

    def __init__(self) -> None:
        self._pool = self._new_pool()
        self._pid: Future[int] | None = None
        self._round: Future[RoundOutcome] | None = None
        self._closed = False

    @staticmethod
    def _new_pool() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=worker_init, initargs=(PLANNER_NICENESS,))

    def start(self) -> Future[int]:
        """Start the worker now: importing the planner takes seconds, which the first round
        would otherwise spend from its budget. Returns the worker's pid (as a future)."""
        if self._pid is None:
            with children_ignore_ctrl_c():  # the server stops it (close)
                self._pid = self._pool.submit(worker_ready)
        return self._pid

    def ready(self) -> None:
        """Wait for the worker to have started (imported the planner); a worker that failed
        to start is replaced by ``solve``, which then reports it."""
        with contextlib.suppress(Exception):
            self.start().result()

    def solve(self, rules: RoundRules, query: RoundQuery, budget_s: float) -> RoundOutcome:
        # the budget covers the trip to the worker and back too: a deadline on the wall clock,
        # which both processes share
        deadline_s = time.time() + budget_s
        self.start()
        try:
            self._round = self._pool.submit(read_and_solve, rules, query, budget_s, deadline_s)
            return self._round.result()
        except BrokenProcessPool:
            if not self._closed:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool, self._pid = self._new_pool(), None
            raise

    def close(self) -> None:
        """Stop the worker at once: a round in flight is abandoned (it has claimed no job yet;
        they stay queued) rather than waited for up to its whole budget. The pool is shut down
        and waited for, so its queues' semaphores are released before this process exits
        (uvicorn ends it by re-raising SIGTERM, which runs no exit handler)."""
        self._closed = True
        in_flight = self._round is not None and not self._round.done()
        if in_flight and self._pid is not None and self._pid.done() and (
                self._pid.exception() is None):
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid.result(), signal.SIGTERM)
        self._pool.shutdown(wait=True, cancel_futures=True)
