"""Running a scenario: every policy through the same simulation loop, then the savings."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from broker.policy_registry import POLICIES
from broker.savings import Savings, compute_savings
from broker.simulation import SimulationResult, run_simulation
from broker.summary import PolicySummary, summarize
from scenarios.build import ScenarioRun

ProgressCallback = Callable[[str, int, int], None]  # (policy, round done, rounds)


@dataclass(frozen=True)
class ScenarioResult:
    run: ScenarioRun
    results: dict[str, SimulationResult]
    summaries: dict[str, PolicySummary]
    savings: tuple[Savings, ...]  # milp against isolated, when both ran
    wall_time_s: float


def run_policy(run: ScenarioRun, name: str,
               progress: ProgressCallback | None = None) -> SimulationResult:
    policy = POLICIES[name](run.setup.federation, run.config)
    callback = (lambda k, n: progress(name, k, n)) if progress else None
    return run_simulation(run.setup, policy, name, on_round=callback)


def run_scenario(run: ScenarioRun, progress: ProgressCallback | None = None) -> ScenarioResult:
    """Every policy of the scenario, one after the other in this process."""
    started = time.perf_counter()
    results = {name: run_policy(run, name, progress) for name in run.scenario.policies}
    return scenario_result(run, results, started)


def scenario_result(run: ScenarioRun, results: dict[str, SimulationResult],
                    started: float) -> ScenarioResult:
    """Summaries and savings of the policies' runs (wherever they ran)."""
    price = run.config.carbon_price_usd_per_t
    summaries = {name: summarize(r, price) for name, r in results.items()}
    savings: tuple[Savings, ...] = ()
    if "milp" in results and "isolated" in results:
        savings = tuple(compute_savings(run.setup, results["isolated"], results["milp"], price))
    return ScenarioResult(run, results, summaries, savings, time.perf_counter() - started)
