"""What sites advertise to the broker for one planning round."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RoundOffers:
    """Offers of every site for the slots ``now_h, now_h + slot_h, ...`` of the horizon.

    free_gpus[r, t]          free GPUs of resource r (see ``Federation.resources``) in slot t
    price_usd_per_mwh[s, t]  site s's energy price forecast
    carbon_g_per_kwh[s, t]   site s's grid carbon-intensity forecast
    """

    now_h: float
    slot_h: float
    free_gpus: np.ndarray
    price_usd_per_mwh: np.ndarray
    carbon_g_per_kwh: np.ndarray

    def __post_init__(self) -> None:
        if self.free_gpus.shape[1] != self.horizon_slots:
            raise ValueError("free_gpus and signals must cover the same horizon")
        if self.carbon_g_per_kwh.shape != self.price_usd_per_mwh.shape:
            raise ValueError("price and carbon forecasts must have the same shape")
        if (self.free_gpus < 0).any():
            raise ValueError("free_gpus must be >= 0")

    @property
    def horizon_slots(self) -> int:
        return self.price_usd_per_mwh.shape[1]
