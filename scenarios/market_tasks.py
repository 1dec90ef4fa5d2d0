"""Coalition values as small picklable tasks, for any executor (in-process or Dask workers).

A task names its scenario by text (so a remote worker needs no copy of the file), the data
folder (workers read data files themselves), the value mode, the carbon price and the
coalition; the result is a small ``CoalitionValue``. Each worker process builds a scenario's
run and its period problem once per price and keeps them (``lru_cache``): big arrays never
travel through the scheduler.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from market.valuation import VALUATIONS, CoalitionValue, Valuation, at_carbon_price
from scenarios.build import build_run
from scenarios.loader import LoadedScenario, parse_scenario


@dataclass(frozen=True)
class ScenarioRef:
    """How a worker finds a scenario: its YAML text and where its relative paths point."""

    text: str
    source: str
    base_dir: str
    data_dir: str | None

    @classmethod
    def of(cls, loaded: LoadedScenario) -> ScenarioRef:
        return cls(loaded.text, loaded.source, str(loaded.base_dir.resolve()),
                   str(loaded.data_dir.resolve()) if loaded.data_dir else None)


@dataclass(frozen=True)
class CoalitionTask:
    scenario: ScenarioRef
    mode: str
    carbon_price_usd_per_t: float
    coalition: tuple[str, ...]


@lru_cache(maxsize=4)
def _base_valuation(scenario: ScenarioRef, mode: str) -> Valuation:
    loaded = parse_scenario(scenario.text, scenario.source, Path(scenario.base_dir),
                            Path(scenario.data_dir) if scenario.data_dir else None)
    run = build_run(loaded)
    return VALUATIONS[mode](run.setup, run.config)


@lru_cache(maxsize=16)
def _valuation(scenario: ScenarioRef, mode: str, carbon_price_usd_per_t: float) -> Valuation:
    return at_carbon_price(_base_valuation(scenario, mode), carbon_price_usd_per_t)


def value_task(task: CoalitionTask) -> CoalitionValue:
    """c(S) of one coalition (runs on a worker)."""
    valuation = _valuation(task.scenario, task.mode, task.carbon_price_usd_per_t)
    return valuation.value(task.coalition)


class ExecutorEvaluate:
    """``market.analysis.Evaluate`` through an executor: one task per coalition."""

    def __init__(self, executor: Any, scenario: ScenarioRef, mode: str) -> None:
        self.executor = executor
        self.scenario = scenario
        self.mode = mode

    def __call__(self, valuation: Valuation,
                 coalitions: Sequence[tuple[str, ...]]) -> list[CoalitionValue]:
        price = valuation.config.carbon_price_usd_per_t
        tasks = [CoalitionTask(self.scenario, self.mode, price, c) for c in coalitions]
        return self.executor.map(value_task, tasks, label=f"coalitions at {price:g} USD/t")
