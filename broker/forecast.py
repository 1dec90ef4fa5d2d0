"""Forecasts with error: what the planner sees of the grid while the meter uses the actual.

Relative error grows with lead time: the slot starting now is known; a slot ``l`` slots ahead
is off by ``sd x sqrt(l x slot_h / 24)`` (so ``sd`` is the day-ahead error), independently per
site and slot: forecast = actual x (1 + sd_l z), z standard normal. Carbon forecasts are
clipped at 0 (prices may be negative and keep their sign's meaning).

Each round's errors come from a generator seeded by (run seed, round), not from a stream the
policies share: every policy sees the very same forecasts, and the same seed gives the same
run.

``ForecastNoise`` was ``ForecastError``: the error of a forecast, not an exception, and a name
that read like one (issue 24); the scenario field keeps its name, ``forecast``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sites.errors import InputError

HOURS_PER_DAY = 24.0


@dataclass(frozen=True)
class ForecastNoise:
    carbon_error_sd: float = 0.0
    price_error_sd: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("carbon_error_sd", "price_error_sd"):
            value = getattr(self, name)
            if not value >= 0:  # NaN too
                raise InputError("forecast", name, f"must be >= 0 (got {value:g})")

    @property
    def exact(self) -> bool:
        return self.carbon_error_sd == 0 and self.price_error_sd == 0

    def lead_sd(self, sd: float, horizon_slots: int, slot_h: float) -> np.ndarray:
        """The relative error sd of each lead slot 0..horizon-1."""
        return sd * np.sqrt(np.arange(horizon_slots) * slot_h / HOURS_PER_DAY)

    def apply(self, round_k: int, slot_h: float, carbon_g_per_kwh: np.ndarray,
              price_usd_per_mwh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Forecasts of the round's (sites, horizon) windows of the actual signals."""
        if self.exact:
            return carbon_g_per_kwh, price_usd_per_mwh
        rng = np.random.default_rng([self.seed, round_k])
        horizon = carbon_g_per_kwh.shape[1]
        carbon_sd = self.lead_sd(self.carbon_error_sd, horizon, slot_h)
        price_sd = self.lead_sd(self.price_error_sd, horizon, slot_h)
        carbon = carbon_g_per_kwh * (1 + carbon_sd * rng.standard_normal(carbon_g_per_kwh.shape))
        price = price_usd_per_mwh * (1 + price_sd * rng.standard_normal(price_usd_per_mwh.shape))
        return np.maximum(carbon, 0.0), price
