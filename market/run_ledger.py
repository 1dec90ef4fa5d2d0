"""The settlement ledger of a simulated run (``carbonfed run --ledger SCHEME``).

A run has no coalition values, so only the schemes that price each hosted job can settle it:
``cost-plus`` (metered energy and carbon times 1 + markup) and ``market`` (energy and carbon
plus the clearing prices of the period plan's LP, ``market.valuation``). The game rules need
every coalition's value: ``carbonfed market --value simulate`` settles with them.
"""

from __future__ import annotations

from broker.planner import PlannerConfig
from broker.simulation import SimulationResult, SimulationSetup
from market.ledger import LedgerRow, job_rows
from market.outcome import from_simulation
from market.schemes import DEFAULT_MARKUP, SchemeInputs
from market.valuation import PlanValuation


def run_ledger(setup: SimulationSetup, result: SimulationResult, config: PlannerConfig,
               scheme: str, markup: float = DEFAULT_MARKUP) -> list[LedgerRow]:
    outcome = from_simulation(setup, result, config.carbon_price_usd_per_t,
                              config.delay_cost_usd_per_gpu_h)
    valuation = PlanValuation(setup, config)
    prices = valuation.clearing_prices() if scheme == "market" else None
    inputs = SchemeInputs(None, outcome, tuple(s.total_gpus for s in setup.federation.sites),
                          markup, prices, valuation.plan_settings.slot_h)
    return job_rows(scheme, inputs)
