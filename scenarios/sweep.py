"""Grids of runs: scenario overrides x carbon price x policy x seed, one small task each.

A task carries the scenario's text (workers re-parse it and read data files themselves), the
grid point and a seed; it returns one record (the grid's keys and the policy's summary
metrics). Seeds are spawned from the scenario's seed by index (``scaleout.task_seed``), so a
run's numbers do not depend on which worker ran it or in what order. ``summarise`` gives the
mean and the 95% confidence interval across seeds (Student's t).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from broker.policy_registry import POLICIES
from broker.simulation import SimulationResult, run_simulation
from broker.summary import summarize
from scenarios.build import build_run
from scenarios.market_tasks import ScenarioRef
from scenarios.runner import run_policy
from scenarios.scaleout import task_seed

METRICS = ("jobs_finished", "jobs_outside", "energy_kwh", "carbon_kg", "total_cost_usd",
           "mean_completion_h", "deadline_misses", "mean_gpu_utilization")
KEYS = ("overrides", "carbon_price_usd_per_t", "policy", "seed_index")


def seed_of(scenario_seed: int, index: int) -> int:
    """The scenario seed of replicate ``index``: 0 keeps the scenario's own seed."""
    if index == 0:
        return scenario_seed
    return int(task_seed(scenario_seed, index).generate_state(1, np.uint32)[0])


@dataclass(frozen=True)
class RunTask:
    scenario: ScenarioRef
    policy: str
    carbon_price_usd_per_t: float | None  # None: the scenario's
    seed_index: int
    overrides: tuple[tuple[str, Any], ...] = field(default=())

    @property
    def key(self) -> tuple[Any, ...]:
        return (overrides_label(self.overrides), self.carbon_price_usd_per_t, self.policy,
                self.seed_index)


def overrides_label(overrides: Sequence[tuple[str, Any]]) -> str:
    return ",".join(f"{k}={v}" for k, v in overrides) or "-"


def run_task(task: RunTask) -> dict[str, Any]:
    """One policy's run of one grid point and seed, as one record (runs on a worker)."""
    loaded = task.scenario.load()
    s = loaded.scenario
    update: dict[str, Any] = dict(task.overrides)
    update["seed"] = seed_of(s.seed, task.seed_index)
    update["policies"] = [task.policy]
    if task.carbon_price_usd_per_t is not None:
        update["carbon_price_usd_per_t"] = task.carbon_price_usd_per_t
    scenario = type(s).model_validate({**s.model_dump(), **update})
    run = build_run(type(loaded)(scenario, loaded.source, loaded.base_dir, loaded.data_dir))
    result = run_simulation(run.setup, POLICIES[task.policy](run.setup.federation, run.config),
                            task.policy)
    summary = summarize(result, run.config.carbon_price_usd_per_t)
    return {"overrides": overrides_label(task.overrides),
            "carbon_price_usd_per_t": run.config.carbon_price_usd_per_t,
            "policy": task.policy, "seed_index": task.seed_index, "seed": update["seed"],
            **{m: getattr(summary, m) for m in METRICS}}


@dataclass(frozen=True)
class PolicyTask:
    """One policy of a scenario as it is (``carbonfed run --workers``)."""

    scenario: ScenarioRef
    policy: str


def policy_task(task: PolicyTask) -> SimulationResult:
    """The policy's whole simulation result (runs on a worker; a few MB at most)."""
    return run_policy(build_run(task.scenario.load()), task.policy)


def grid(scenario: ScenarioRef, policies: Sequence[str], prices: Sequence[float | None],
         seeds: int, overrides: Mapping[str, Sequence[Any]] | None = None) -> list[RunTask]:
    names = list(overrides or {})
    combos = list(itertools.product(*(overrides or {}).values())) if names else [()]
    return [RunTask(scenario, policy, price, k, tuple(zip(names, combo, strict=True)))
            for combo in combos for price in prices for policy in policies
            for k in range(seeds)]


def half_width(values: Sequence[float], confidence: float = 0.95) -> float:
    """Half-width of the confidence interval of the mean: t_{(1+c)/2, n-1} x sd / sqrt(n)."""
    n = len(values)
    if n < 2:
        return math.nan
    # Imported here: scipy.stats takes most of a second to import, and only --seeds needs it.
    from scipy import stats

    sd = float(np.std(values, ddof=1))
    return float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)


def summarise(records: pd.DataFrame) -> pd.DataFrame:
    """Mean, 95% CI half-width, minimum and maximum of every metric across seeds, per grid
    point."""
    keys = [k for k in KEYS if k != "seed_index"]
    rows = []
    for point, frame in records.groupby(keys, sort=False, dropna=False):
        row = dict(zip(keys, point, strict=True))
        row["seeds"] = len(frame)
        for metric in METRICS:
            values = frame[metric].to_numpy(float)
            row[metric] = float(np.mean(values))
            row[f"{metric}_ci"] = half_width(values)
            row[f"{metric}_min"] = float(np.min(values))  # the seeds' range: what a report
            row[f"{metric}_max"] = float(np.max(values))  # draws for 2 seeds (bands.py)
        rows.append(row)
    return pd.DataFrame(rows)
