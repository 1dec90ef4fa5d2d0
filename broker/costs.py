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
"""

from __future__ import annotations

from sites.units import Q, g_to_kg, kwh_to_mwh, usd_per_t_to_usd_per_kg


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


def cost_per_kwh_usd(price_usd_per_mwh: Q, carbon_g_per_kwh: Q, carbon_price_usd_per_t: float) -> Q:
    """USD per kWh drawn at a price and a carbon intensity, carbon priced in."""
    return energy_cost_usd(1.0, price_usd_per_mwh) + carbon_cost_usd(
        emissions_kg(1.0, carbon_g_per_kwh), carbon_price_usd_per_t
    )
