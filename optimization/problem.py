"""The allocation problem as plain arrays: what the broker hands to the optimizer.

The optimizer knows nothing of sites or jobs. A *demand* is a group of identical jobs (count 1
for a single job); a *resource* is one pool of identical GPUs (a GPU type at a site); an
*option* is "run one unit of demand d on resource r starting at slot t", with its resource use
and its cost parts already priced by the broker.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AllocationProblem:
    """Arrays of one planning round. Option arrays all have length ``n_options``.

    capacity_gpus[r, t]      free GPUs of resource r in horizon slot t
    demand_count[d]          identical jobs in demand d
    deferral_penalty_usd[d]  cost of deferring one job of demand d to a later round
    option_demand[o], option_resource[o], option_start[o]   what option o is
    option_slots[o]          horizon slots it occupies from its start (clipped to the horizon)
    option_gpus[o]           GPUs it holds while it runs
    option_energy_kwh[o], option_energy_cost_usd[o], option_carbon_kg[o],
    option_transfer_cost_usd[o], option_delay_cost_usd[o]   its cost parts for one job
    carbon_price_usd_per_kg  weight of emissions in the objective
    carbon_cap_kg            optional limit on the round's emissions
    """

    capacity_gpus: np.ndarray
    demand_count: np.ndarray
    deferral_penalty_usd: np.ndarray
    option_demand: np.ndarray
    option_resource: np.ndarray
    option_start: np.ndarray
    option_slots: np.ndarray
    option_gpus: np.ndarray
    option_energy_kwh: np.ndarray
    option_energy_cost_usd: np.ndarray
    option_carbon_kg: np.ndarray
    option_transfer_cost_usd: np.ndarray
    option_delay_cost_usd: np.ndarray
    carbon_price_usd_per_kg: float = 0.0
    carbon_cap_kg: float | None = None

    def __post_init__(self) -> None:
        n = len(self.option_demand)
        for name in (
            "option_resource", "option_start", "option_slots", "option_gpus",
            "option_energy_kwh", "option_energy_cost_usd", "option_carbon_kg",
            "option_transfer_cost_usd", "option_delay_cost_usd",
        ):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has length {len(getattr(self, name))}, expected {n}")
        if len(self.deferral_penalty_usd) != self.n_demands:
            raise ValueError("deferral_penalty_usd must have one entry per demand")
        if (self.option_slots < 1).any():
            raise ValueError("every option occupies at least one slot")
        if (self.option_start + self.option_slots > self.n_slots).any():
            raise ValueError("option_slots must be clipped to the horizon")

    @property
    def n_demands(self) -> int:
        return len(self.demand_count)

    @property
    def n_resources(self) -> int:
        return self.capacity_gpus.shape[0]

    @property
    def n_slots(self) -> int:
        return self.capacity_gpus.shape[1]

    @property
    def n_options(self) -> int:
        return len(self.option_demand)

    @property
    def option_cost_usd(self) -> np.ndarray:
        """Objective coefficient of each option: energy + carbon + transfer + delay cost."""
        return (
            self.option_energy_cost_usd
            + self.carbon_price_usd_per_kg * self.option_carbon_kg
            + self.option_transfer_cost_usd
            + self.option_delay_cost_usd
        )

    def occupancy(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Nonzeros of the capacity rows: (option, resource, slot) for every occupied cell."""
        options = np.repeat(np.arange(self.n_options), self.option_slots)
        offsets = np.arange(len(options)) - np.repeat(
            np.cumsum(self.option_slots) - self.option_slots, self.option_slots
        )
        slots = self.option_start[options] + offsets
        return options, self.option_resource[options], slots


@dataclass(frozen=True)
class AllocationSolution:
    """How many jobs of each demand take each option, how many are deferred, and the cost."""

    status: str
    option_count: np.ndarray  # per option, integer
    deferred_count: np.ndarray  # per demand, integer
    objective_usd: float
    bound_usd: float
    cost_breakdown_usd: dict[str, float]
    build_time_s: float
    solve_time_s: float

    @property
    def gap(self) -> float:
        if self.objective_usd == self.bound_usd:
            return 0.0
        return abs(self.objective_usd - self.bound_usd) / max(abs(self.objective_usd), 1e-12)
