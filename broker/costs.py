"""Energy, emissions and money: every cost formula of the project, written once.

The planner (option costs), the meter (what ran), the summary, the savings breakdown, the live
broker's API and the market all call these functions; nothing else multiplies kWh by a price.

    energy_kwh        = GPUs x board power (kW) x PUE x hours        (``sites.power``)
    energy_cost_usd   = energy_kwh x price (USD/MWh) / 1000
    carbon_kg         = energy_kwh x carbon intensity (gCO2/kWh) / 1000
    carbon_cost_usd   = carbon_kg x carbon price (USD/t) / 1000
    transfer_cost_usd = data set (GB) x egress price at home (USD/GB), when a job moves
    total_cost_usd    = energy_cost_usd + transfer_cost_usd + carbon_cost_usd
    delay_cost_usd    = delay cost (USD per GPU-hour) x GPUs x hours from submission (or
                        from now, for a plan) to completion: the planner's price of waiting
    lateness_cost_usd = lateness rate (USD per GPU-hour) x GPUs x hours past the deadline at
                        completion, and the deferral penalty: the planner's price of deadlines
                        (``waiting_prices``)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optimization.problem import DemandGroups
from sites.units import Q, g_to_kg, kwh_to_mwh, usd_per_t_to_usd_per_kg

# The least a GPU-hour past a deadline costs a plan, whatever the delay cost (even 0): a cent.
# It only breaks ties; what makes lateness dominate is the spread term of ``waiting_prices``.
MIN_LATENESS_USD_PER_GPU_H = 0.01


def energy_cost_usd(energy_kwh: Q, price_usd_per_mwh: Q) -> Q:
    return kwh_to_mwh(energy_kwh * price_usd_per_mwh)


def emissions_kg(energy_kwh: Q, carbon_g_per_kwh: Q) -> Q:
    return g_to_kg(energy_kwh * carbon_g_per_kwh)


def carbon_cost_usd(carbon_kg: Q, carbon_price_usd_per_t: float) -> Q:
    return carbon_kg * usd_per_t_to_usd_per_kg(carbon_price_usd_per_t)


def transfer_cost_usd(dataset_gb: Q, egress_usd_per_gb: Q) -> Q:
    return dataset_gb * egress_usd_per_gb


def total_cost_usd(
    energy_cost_usd: Q, transfer_cost_usd: Q, carbon_kg: Q, carbon_price_usd_per_t: float
) -> Q:
    """What a run costs at a carbon price: energy + transfer + carbon."""
    return energy_cost_usd + transfer_cost_usd + carbon_cost_usd(carbon_kg, carbon_price_usd_per_t)


def delay_cost_usd(gpus: Q, hours: Q, delay_cost_usd_per_gpu_h: float) -> Q:
    return delay_cost_usd_per_gpu_h * gpus * hours


def lateness_cost_usd(gpus: Q, hours_late: Q, lateness_usd_per_gpu_h: Q) -> Q:
    return lateness_usd_per_gpu_h * gpus * hours_late


@dataclass(frozen=True)
class WaitingPrices:
    """What waiting costs in a round's plan: per option, the lateness cost to add to its
    cost; per demand, the penalty for deferring it to a later round."""

    option_lateness_usd: np.ndarray
    deferral_penalty_usd: np.ndarray


def waiting_prices(option_demand: np.ndarray, option_cost_usd: np.ndarray,
                   option_hours_late: np.ndarray, demand_gpus: np.ndarray,
                   demand_has_deadline: np.ndarray, slot_h: float, horizon_h: float,
                   delay_cost_usd_per_gpu_h: float) -> WaitingPrices:
    r"""Lateness and deferral prices of one round: the one place where deadlines are priced.

    For demand d (``gpus_d`` GPUs each job) with options o of cost c_o (energy, carbon,
    transfer and delay) and ``late_o`` hours past its deadline at completion (0 when on time;
    the planner keeps only on-time options when the job has any):

        spread_d   = max_o c_o - min_o c_o
        lambda_d   = max(delay, MIN_LATENESS) + spread_d / (gpus_d * slot_h)   (USD/GPU-h late)
        lateness_o = lambda_d * gpus_d * late_o
        penalty_d  = max_o (c_o + lateness_o) + delay * gpus_d * horizon_h
                     + [d has a deadline] * lambda_d * gpus_d * slot_h

    Why. (1) A deadline a plan can meet is met whatever the delay cost: deferring a job with a
    deadline costs more than its dearest option by a slot of lateness (deferring may be what
    makes it late), lambda_d gpus_d slot_h >= MIN_LATENESS gpus_d slot_h > 0, so with room for
    an on-time option it is never deferred. Before, with delay 0, deferring cost exactly its
    dearest (only) on-time option: a tie the solver could break by deferring, after which
    nothing priced lateness. (2) A job past its deadline keeps a penalty: each hour late costs
    lambda_d gpus_d > 0, and a slot later costs lambda_d gpus_d slot_h > spread_d, more than
    waiting could ever save, so a late job runs as early as capacity allows. Jobs without a
    deadline are priced as before: the dearest option plus a horizon of delay.
    """
    n = len(demand_gpus)
    groups = DemandGroups.of(option_demand, n)
    cheapest = groups.minimum(option_cost_usd)
    dearest = groups.maximum(option_cost_usd)
    spread = np.where(np.isfinite(cheapest), dearest - cheapest, 0.0)
    rate = max(delay_cost_usd_per_gpu_h, MIN_LATENESS_USD_PER_GPU_H) + spread / (
        demand_gpus * slot_h)
    lateness = lateness_cost_usd(demand_gpus[option_demand], option_hours_late,
                                 rate[option_demand])
    dearest_late = groups.maximum(option_cost_usd + lateness, initial=np.zeros(n))
    penalty = (dearest_late + delay_cost_usd(demand_gpus, horizon_h, delay_cost_usd_per_gpu_h)
               + np.where(demand_has_deadline,
                          lateness_cost_usd(demand_gpus, slot_h, rate), 0.0))
    return WaitingPrices(lateness, penalty)


def cost_per_kwh_usd(price_usd_per_mwh: Q, carbon_g_per_kwh: Q, carbon_price_usd_per_t: float) -> Q:
    """USD per kWh drawn at a price and a carbon intensity, carbon priced in."""
    return energy_cost_usd(1.0, price_usd_per_mwh) + carbon_cost_usd(
        emissions_kg(1.0, carbon_g_per_kwh), carbon_price_usd_per_t
    )
