"""Averaging slot-valued signals over arbitrary windows of time (vectorised).

Signals are piecewise constant per slot. The mean over [a, b) is (F(b) - F(a)) / (b - a) with
F the running integral, which is piecewise linear, so ``np.interp`` over slot boundaries is exact.
"""

from __future__ import annotations

import numpy as np


def running_integral(values: np.ndarray, slot_h: float) -> np.ndarray:
    """F at slot boundaries 0, slot_h, 2 slot_h, ... for each row of ``values``."""
    values = np.atleast_2d(values)
    zeros = np.zeros((values.shape[0], 1))
    return np.hstack([zeros, np.cumsum(values, axis=1) * slot_h])


def window_mean(
    values: np.ndarray, row: np.ndarray, start_h: np.ndarray, end_h: np.ndarray, slot_h: float
) -> np.ndarray:
    """Mean of ``values[row]`` over [start_h, end_h), hours from the first slot's start.

    Past the last slot the series is extended with its own mean (the planner's assumption for
    hours beyond the advertised horizon).
    """
    values = np.atleast_2d(values)
    integral = running_integral(values, slot_h)
    horizon_h = values.shape[1] * slot_h
    row_mean = values.mean(axis=1)
    out = np.empty(len(start_h))
    for r in np.unique(row):
        sel = row == r
        out[sel] = _integral_at(integral[r], horizon_h, row_mean[r], slot_h, end_h[sel])
        out[sel] -= _integral_at(integral[r], horizon_h, row_mean[r], slot_h, start_h[sel])
    width = end_h - start_h
    return np.divide(out, width, out=np.zeros_like(out), where=width > 0)


def _integral_at(
    integral: np.ndarray, horizon_h: float, tail_mean: float, slot_h: float, at_h: np.ndarray
) -> np.ndarray:
    grid = np.arange(len(integral)) * slot_h
    inside = np.interp(np.minimum(at_h, horizon_h), grid, integral)
    return inside + np.maximum(at_h - horizon_h, 0.0) * tail_mean
