"""Coalition values as small picklable tasks, for any executor (in-process or Dask workers).

A task names its scenario by text (so a remote worker needs no copy of the file), the data
folder (workers read data files themselves), the value mode, the carbon price and a batch of
coalitions; the result is a small ``CoalitionValue`` each. Each worker process builds a scenario's
run and its period problem once per price and keeps them (``lru_cache``): big arrays never
travel through the scheduler.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from market.valuation import VALUATIONS, CoalitionValue, Valuation, at_carbon_price
from scenarios.build import build_run
from scenarios.loader import LoadedScenario, parse_scenario
from scenarios.scaleout import Executor

T = TypeVar("T")


@dataclass(frozen=True)
class ScenarioRef:
    """How a worker finds a scenario: its YAML text and where its relative paths point."""

    text: str
    source: str
    base_dir: str
    data_dir: str | None
    overrides: tuple[tuple[str, str], ...] = ()  # LoadedScenario.overrides

    @classmethod
    def of(cls, loaded: LoadedScenario) -> ScenarioRef:
        return cls(loaded.text, loaded.source, str(loaded.base_dir.resolve()),
                   str(loaded.data_dir.resolve()) if loaded.data_dir else None,
                   loaded.overrides)

    def load(self) -> LoadedScenario:
        """The scenario as the process that made this reference had it."""
        return parse_scenario(self.text, self.source, Path(self.base_dir),
                              Path(self.data_dir) if self.data_dir else None, self.overrides)


# A cluster gets at least this many tasks per worker thread, so that the last ones to finish
# are a small part of each worker's share; a task holds at most MAX_BATCH coalitions (20 sites'
# 10^6 coalitions on 64 workers: 4,096 tasks, about 20 s of the scheduler's time in all).
TASKS_PER_SLOT = 32
MAX_BATCH = 256


@dataclass(frozen=True)
class CoalitionTask:
    scenario: ScenarioRef
    mode: str
    carbon_price_usd_per_t: float
    coalitions: tuple[tuple[str, ...], ...]


@lru_cache(maxsize=4)
def _base_valuation(scenario: ScenarioRef, mode: str) -> Valuation:
    run = build_run(scenario.load())
    return VALUATIONS[mode](run.setup, run.config)


@lru_cache(maxsize=16)
def _valuation(scenario: ScenarioRef, mode: str, carbon_price_usd_per_t: float) -> Valuation:
    return at_carbon_price(_base_valuation(scenario, mode), carbon_price_usd_per_t)


def value_task(task: CoalitionTask) -> list[CoalitionValue]:
    """c(S) of each coalition of the task, in order (runs on a worker)."""
    valuation = _valuation(task.scenario, task.mode, task.carbon_price_usd_per_t)
    return [valuation.value(coalition) for coalition in task.coalitions]


def batch_size(n_coalitions: int, slots: int) -> int:
    """Coalitions per task: one on a single slot (progress per coalition, nothing to save),
    else as many as leave ``TASKS_PER_SLOT`` tasks to every slot, at most ``MAX_BATCH``."""
    if slots <= 1:
        return 1
    return max(1, min(MAX_BATCH, n_coalitions // (slots * TASKS_PER_SLOT)))


def strided(items: Sequence[T], n_batches: int) -> list[tuple[T, ...]]:
    """``n_batches`` batches, item i in batch i % n_batches: coalitions come enumerated by size
    or by bitmask, so contiguous batches would differ in cost by orders of magnitude (0.003
    CPU s for 2 of federation-12's sites, 0.76 for 12); strided, every batch takes a share of
    each size."""
    return [tuple(items[k::n_batches]) for k in range(n_batches)]


def unstrided(batches: Sequence[Sequence[T]]) -> list[T]:
    """The results of ``strided`` batches back in the items' order (item i is batch i % n's
    (i // n)-th)."""
    n = len(batches)
    return [batches[i % n][i // n] for i in range(sum(len(b) for b in batches))]


class ExecutorEvaluate:
    """``market.analysis.Evaluate`` through an executor: coalitions in batches (``batch``, or
    ``batch_size`` for the executor's slots), as each task costs the scheduler a few ms."""

    def __init__(self, executor: Executor, scenario: ScenarioRef, mode: str,
                 batch: int | None = None) -> None:
        self.executor = executor
        self.scenario = scenario
        self.mode = mode
        self.batch = batch

    def __call__(self, valuation: Valuation,
                 coalitions: Sequence[tuple[str, ...]]) -> list[CoalitionValue]:
        price = valuation.config.carbon_price_usd_per_t
        batch = self.batch or batch_size(len(coalitions), self.executor.slots)
        batches = strided(coalitions, math.ceil(len(coalitions) / batch))
        tasks = [CoalitionTask(self.scenario, self.mode, price, b) for b in batches]
        # progress counts tasks: one a coalition, unless the label gives the batch
        label = (f"coalition values at {price:g} USD/t"
                 + (f", {batch} coalitions a task" if batch > 1 else ""))
        return unstrided(self.executor.map(value_task, tasks, label=label))
