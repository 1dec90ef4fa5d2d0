"""Coalition values c(S) from the broker's own planner, in two modes (a registry).

* ``simulate``: the rolling MILP simulation restricted to S (its sites, their GPUs and grids,
  their home jobs): the realised cost of the broker's own policy, every unserved job at the
  outside option. Slow: a full simulation per coalition.
* ``plan``: one planning problem over the whole run with every job known
  (``broker.period_plan``), built once for the federation and cut down per coalition. Much
  faster; it is what the broker could do with perfect foresight, so it is a little cheaper
  than ``simulate`` and weighs capacity fluidly within a slot.

Both price carbon at the price in force and cover every job of S (the outside option serves
what S cannot), so every c(S) is finite and comparable. c(S) is energy + carbon + transfer +
outside option + the delay cost the planner charges for waiting (``broker.costs``): the
problem the broker solves, and ``carbonfed run``'s total cost plus that delay cost.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property

from broker.coalition import restrict_setup
from broker.costs import delay_cost_usd
from broker.period_plan import (
    PeriodPlanSettings,
    PeriodProblem,
    build_period_problem,
    solve_coalition,
)
from broker.planner import PlannerConfig
from broker.policies import MilpPolicy
from broker.simulation import SimulationSetup, run_simulation
from broker.summary import summarize
from market.outcome import GrandOutcome, from_plan, from_simulation, outside_delay_usd
from optimization import allocation_lp_duals


@dataclass(frozen=True)
class CoalitionValue:
    sites: tuple[str, ...]
    cost_usd: float
    carbon_kg: float  # everything its jobs emitted, the outside option's included
    energy_kwh: float
    jobs_served: float  # the fluid plan may split a job between a pool and the cloud
    jobs_unserved: float  # sent to the outside option
    status: str  # the solver's status (plan) or the rounds' worst (simulate)


class Valuation(ABC):
    """c(S) for one federation at one carbon price."""

    def __init__(self, setup: SimulationSetup, config: PlannerConfig,
                 plan: PeriodPlanSettings | None = None) -> None:
        self.setup = setup
        self.config = config
        self.plan_settings = plan or PeriodPlanSettings(
            delay_cost_usd_per_gpu_h=config.delay_cost_usd_per_gpu_h)

    @property
    def sites(self) -> tuple[str, ...]:
        return tuple(s.id for s in self.setup.federation.sites)

    @abstractmethod
    def value(self, coalition: Sequence[str]) -> CoalitionValue:
        """c(S) and what it is made of."""

    @abstractmethod
    def grand_outcome(self) -> GrandOutcome:
        """The grand coalition's jobs and per-site bills, for settlement."""

    def federation_carbon_kg(self, carbon_cap_kg: float | None = None) -> float:
        """The grand coalition's emissions (for finding the price that meets a cap)."""
        return self.value(self.sites).carbon_kg

    @cached_property
    def period_problem(self) -> PeriodProblem:
        return build_period_problem(self.setup, self.config.carbon_price_usd_per_t,
                                    self.plan_settings)

    def clearing_prices(self):  # -> np.ndarray | None
        """Capacity prices (USD per GPU-slot, [pool, slot]) of the period plan's LP."""
        duals = allocation_lp_duals(self.period_problem.problem, self.plan_settings.solver)
        if not duals.status.has_solution:
            return None
        return duals.capacity_price_usd_per_gpu_slot


class PlanValuation(Valuation):
    def value(self, coalition: Sequence[str]) -> CoalitionValue:
        out = solve_coalition(self.period_problem, set(coalition))
        return CoalitionValue(out.site_ids, out.cost_usd, out.carbon_kg, out.energy_kwh,
                              out.jobs_served, out.jobs_unserved, out.status.value)

    def grand_outcome(self) -> GrandOutcome:
        out = solve_coalition(self.period_problem, set(self.sites))
        return from_plan(self.period_problem, out, self.config.carbon_price_usd_per_t)


class SimulateValuation(Valuation):
    def _simulate(self, coalition: Sequence[str]):  # -> (setup, SimulationResult)
        setup = restrict_setup(self.setup, set(coalition))
        return setup, run_simulation(setup, MilpPolicy(setup.federation, self.config), "milp")

    def value(self, coalition: Sequence[str]) -> CoalitionValue:
        setup, result = self._simulate(coalition)
        s = summarize(result, self.config.carbon_price_usd_per_t)
        rate = self.config.delay_cost_usd_per_gpu_h
        delay = float(delay_cost_usd(result.jobs["gpus"], result.jobs["completion_h"],
                                     rate).sum() + outside_delay_usd(result.outside, rate).sum())
        worst = "optimal" if s.rounds_feasible + s.rounds_failed == 0 else (
            "feasible" if s.rounds_failed == 0 else "failed")
        return CoalitionValue(tuple(x.id for x in setup.federation.sites),
                              s.total_cost_usd + delay, s.carbon_kg, s.energy_kwh,
                              s.jobs_finished, s.jobs_outside, worst)

    def grand_outcome(self) -> GrandOutcome:
        setup, result = self._simulate(self.sites)
        return from_simulation(setup, result, self.config.carbon_price_usd_per_t,
                               self.config.delay_cost_usd_per_gpu_h)


VALUATIONS: dict[str, type[Valuation]] = {"plan": PlanValuation, "simulate": SimulateValuation}


def at_carbon_price(valuation: Valuation, carbon_price_usd_per_t: float) -> Valuation:
    """The same valuation at another carbon price (a fresh period problem when it needs one)."""
    config = replace(valuation.config, carbon_price_usd_per_t=carbon_price_usd_per_t)
    return type(valuation)(valuation.setup, config, valuation.plan_settings)
