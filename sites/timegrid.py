"""Time grids: piecewise-constant series, their means over windows, and resampling.

Every series here is a step function: value ``v[k]`` holds over ``[knot[k], knot[k+1])``. Its
running integral F is piecewise linear, so ``np.interp`` of F at any times is exact, and the
mean over ``[a, b)`` is ``(F(b) - F(a)) / (b - a)``. One idea serves the planner's option
prices (``window_mean``), the meter's slot overlaps (``slot_overlaps``), resampling hourly
signals to slots (``hourly_to_slots``) and data files of any resolution (``step_means``).
Times are hours from the grid's origin.

Which slot a time falls in, and how many slots an interval covers, are counted here and only
here (``slot_index``, ``slots_until``, ``slot_overlaps``), with one tolerance: ``SLOT_EPS``.
"""

from __future__ import annotations

import math

import numpy as np

from sites.units import Q

# A time within this many slots of a slot boundary is on the boundary: sums of hours carry float
# noise (0.1 + 0.2 h), and a job that ends at 2.0000000000000004 h must not hold a third slot.
SLOT_EPS = 1e-9


def slot_index(at_h: Q, slot_h: float) -> Q:
    """The slot holding time ``at_h`` (slot k covers [k slot_h, (k + 1) slot_h))."""
    index = np.floor(np.asarray(at_h, dtype=float) / slot_h + SLOT_EPS).astype(int)
    return int(index) if index.ndim == 0 else index


def slots_until(to_h: Q, slot_h: float) -> Q:
    """How many slots [0, ``to_h``) touches: the first slot at or after ``to_h``.

    Also the slots a run of ``to_h`` hours holds when it starts on a slot boundary, and the
    first slot that starts no earlier than ``to_h``.
    """
    count = np.ceil(np.asarray(to_h, dtype=float) / slot_h - SLOT_EPS).astype(int)
    return int(count) if count.ndim == 0 else count


def running_integral(values: np.ndarray, slot_h: float) -> np.ndarray:
    """F at slot boundaries 0, slot_h, 2 slot_h, ... for each row of ``values``."""
    values = np.atleast_2d(values)
    zeros = np.zeros((values.shape[0], 1))
    return np.hstack([zeros, np.cumsum(values, axis=1) * slot_h])


def step_means(knots_h: np.ndarray, values: np.ndarray, edges_h: np.ndarray) -> np.ndarray:
    """Means of the step function (``values`` between ``knots_h``) over consecutive ``edges_h``.

    ``knots_h`` has one more entry than ``values``; the edges must lie within the knots.
    """
    cumulative = np.concatenate([[0.0], np.cumsum(values * np.diff(knots_h))])
    at_edges = np.interp(edges_h, knots_h, cumulative)
    return np.diff(at_edges) / np.diff(edges_h)


def window_mean(
    values: np.ndarray, row: np.ndarray, start_h: np.ndarray, end_h: np.ndarray, slot_h: float
) -> np.ndarray:
    """Mean of ``values[row]`` (slots of ``slot_h``) over [start_h, end_h), vectorised.

    Past the last slot the series is extended with its own mean (the planner's assumption for
    hours beyond the advertised horizon).
    """
    values = np.atleast_2d(values)
    integral = running_integral(values, slot_h)
    horizon_h = values.shape[1] * slot_h
    row_mean = values.mean(axis=1)
    out = np.empty(len(start_h))
    # row by row, each row's entries found by one sort (a scan of every entry per row took a
    # second for 2M options at 200 sites)
    row = np.asarray(row)
    by_row = np.argsort(row, kind="stable")
    for sel in np.split(by_row, np.flatnonzero(np.diff(row[by_row])) + 1):
        if not len(sel):
            continue
        r = row[sel[0]]
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


def slot_overlaps(from_h: float, to_h: float, slot_h: float) -> tuple[np.ndarray, np.ndarray]:
    """Slots overlapping [from_h, to_h) and the hours of overlap in each."""
    first = slot_index(from_h, slot_h)
    last = max(first, slots_until(to_h, slot_h) - 1)
    slots = np.arange(first, last + 1)
    edges = slots * slot_h
    hours = np.minimum(to_h, edges + slot_h) - np.maximum(from_h, edges)
    return slots, np.maximum(hours, 0.0)


def check_slot_h(slot_h: float) -> None:
    """A slot is a whole number of hours or divides an hour evenly (ValueError otherwise)."""
    if slot_h >= 1:
        if not math.isclose(round(slot_h), slot_h):
            raise ValueError(f"slot_h={slot_h} is not a whole number of hours")
    elif not math.isclose(round(1 / slot_h) * slot_h, 1.0):
        raise ValueError(f"slot_h={slot_h} does not divide an hour")


def hourly_to_slots(hourly: np.ndarray, slot_h: float) -> np.ndarray:
    """Resample an hourly series to slots of ``slot_h`` hours (mean over a slot's hours).

    A trailing partial slot is dropped. ``slot_h`` must pass ``check_slot_h``.
    """
    check_slot_h(slot_h)
    hourly = np.asarray(hourly, dtype=float)
    if slot_h == 1:
        return hourly.copy()
    n_slots = slot_index(len(hourly), slot_h)  # whole slots only
    knots = np.arange(len(hourly) + 1, dtype=float)
    return step_means(knots, hourly, np.arange(n_slots + 1) * slot_h)
