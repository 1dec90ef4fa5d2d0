"""Hourly time-series signals (grid carbon intensity in gCO2/kWh, energy price in USD/MWh).

A signal has one job: give its hourly values for a period. The simulator materialises each
signal once per run, then reads slot values by index.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sites.readers.timeseries import TimeTable
from sites.timegrid import hourly_to_slots, slots_until


class Signal(ABC):
    """An hourly series; ``start`` is a UTC timestamp on the hour."""

    @abstractmethod
    def hourly(self, start: pd.Timestamp, hours: int, rng: np.random.Generator) -> np.ndarray:
        """Values for the hours ``start, start + 1 h, ..., start + (hours - 1) h``."""

    def slots(self, start: pd.Timestamp, n_slots: int, slot_h: float,
              rng: np.random.Generator) -> np.ndarray:
        """Values for ``n_slots`` slots of ``slot_h`` hours (hourly values, then resampled)."""
        hours = slots_until(n_slots * slot_h, 1.0)  # whole hours covering the slots
        return hourly_to_slots(self.hourly(start, hours, rng), slot_h)[:n_slots]


@dataclass(frozen=True)
class ConstantSignal(Signal):
    value: float

    def hourly(self, start: pd.Timestamp, hours: int, rng: np.random.Generator) -> np.ndarray:
        return np.full(hours, float(self.value))


@dataclass(frozen=True)
class ListSignal(Signal):
    """Explicit hourly values starting at the scenario start; the last value repeats after."""

    values: tuple[float, ...]

    def hourly(self, start: pd.Timestamp, hours: int, rng: np.random.Generator) -> np.ndarray:
        values = np.asarray(self.values, dtype=float)
        if hours <= len(values):
            return values[:hours].copy()
        return np.concatenate([values, np.full(hours - len(values), values[-1])])


@dataclass(frozen=True)
class SyntheticDiurnal(Signal):
    """A daily profile with a solar dip and autocorrelated noise.

    value(h) = mean + amplitude * cos(2 pi (h_local - peak_hour) / 24)
               - solar_dip * exp(-((h_local - 13) / 3)^2 / 2)
               + noise_sd * mean * e(h),    e AR(1) with coefficient 0.8 and unit variance

    ``h_local`` is the hour of day at ``utc_offset_h``. Values are clipped at ``floor``
    (carbon intensity cannot go below 0; prices may, so their floor can be negative).
    """

    mean: float
    amplitude: float = 0.0
    peak_hour: float = 19.0
    solar_dip: float = 0.0
    noise_sd: float = 0.0
    utc_offset_h: float = 0.0
    floor: float = 0.0

    def hourly(self, start: pd.Timestamp, hours: int, rng: np.random.Generator) -> np.ndarray:
        first_hour = start.hour + start.minute / 60.0
        local = (first_hour + self.utc_offset_h + np.arange(hours)) % 24.0
        values = (
            self.mean
            + self.amplitude * np.cos(2 * math.pi * (local - self.peak_hour) / 24.0)
            - self.solar_dip * np.exp(-0.5 * ((local - 13.0) / 3.0) ** 2)
        )
        if self.noise_sd > 0:
            values = values + self.noise_sd * abs(self.mean) * _ar1(rng, hours, 0.8)
        return np.maximum(values, self.floor)


def _ar1(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    """Stationary AR(1) noise with unit variance."""
    shocks = rng.standard_normal(n) * math.sqrt(1 - phi**2)
    out = np.empty(n)
    level = rng.standard_normal()
    for i in range(n):
        level = phi * level + shocks[i]
        out[i] = level
    return out


@dataclass(frozen=True)
class TableSignal(Signal):
    """One column of a data file read by ``sites.readers`` (any resolution, UTC).

    Slots are time-weighted means of the file's step function; a window that reaches outside
    the data or into a gap raises ``InputError`` naming the file and the first missing time.
    """

    table: TimeTable
    column: str

    def hourly(self, start: pd.Timestamp, hours: int, rng: np.random.Generator) -> np.ndarray:
        return self.table.slots(self.column, start, 1.0, hours)

    def slots(self, start: pd.Timestamp, n_slots: int, slot_h: float,
              rng: np.random.Generator) -> np.ndarray:
        return self.table.slots(self.column, start, slot_h, n_slots)
