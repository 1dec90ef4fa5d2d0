"""Progress of long work on stderr: a bar with an ETA on a terminal, plain lines when piped.

A piped run prints a line when each stage starts and at every 10% of it, so a log shows the
run is alive without a line per round.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class Reporter(Protocol):
    def __call__(self, stage: str, done: int, total: int) -> None:
        """``done`` of ``total`` steps of ``stage`` are finished."""


class LineProgress:
    """One line per stage start and per 10% of it (for logs and pipes)."""

    def __init__(self, stream: TextIO, unit: str = "rounds") -> None:
        self.stream = stream
        self.unit = unit
        self._tenths: dict[str, int] = {}
        self._started: dict[str, float] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self._tenths:
            self._tenths[stage] = 0
            self._started[stage] = time.perf_counter()
            print(f"{stage}: started, {total} {self.unit}", file=self.stream, flush=True)
        tenth = (10 * done) // max(total, 1)
        if tenth > self._tenths[stage]:
            self._tenths[stage] = tenth
            elapsed = time.perf_counter() - self._started[stage]
            print(f"{stage}: {done}/{total} {self.unit} ({10 * tenth}%, {elapsed:.1f} s)",
                  file=self.stream, flush=True)


@contextmanager
def progress_reporter(unit: str = "rounds", stream: TextIO | None = None) -> Iterator[Reporter]:
    """A bar with an ETA when ``stream`` (stderr) is a terminal, else ``LineProgress``."""
    stream = stream or sys.stderr
    if not stream.isatty():
        yield LineProgress(stream, unit)
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                  console=Console(file=stream), transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(f"{stage}: {unit}", total=total)
            bar.update(tasks[stage], completed=done)

        yield report


class RunningTotal:
    """Several maps of one stage reported as one stage: ``done`` counts across all of them.

    ``carbonfed sweep`` maps its runs in chunks (so that sweep.csv is written as it goes); each
    map reports its own chunk ("2/2") and a reader took that for the whole sweep. Pass this as
    the executor's progress and call ``next_chunk`` after each map: it reports runs done of all.
    """

    def __init__(self, report: Reporter, stage: str, total: int) -> None:
        self.report = report
        self.stage = stage
        self.total = total
        self._before = 0  # steps of the maps already finished
        self._current = 0  # steps of the running map

    def __call__(self, stage: str, done: int, total: int) -> None:
        self._current = done
        self.report(self.stage, self._before + done, self.total)

    def next_chunk(self) -> None:
        self._before += self._current
        self._current = 0
