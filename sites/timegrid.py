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
from collections.abc import Sequence

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
    return window_means((values,), row, start_h, end_h, slot_h)[0]


def window_means(
    signals: Sequence[np.ndarray], row: np.ndarray, start_h: np.ndarray, end_h: np.ndarray,
    slot_h: float
) -> list[np.ndarray]:
    """``window_mean`` of several signals (same rows and slots) over the same windows: where
    each window starts and ends on the grid is found once for all of them."""
    row = np.asarray(row, dtype=np.int64)
    start_h, end_h = np.asarray(start_h, dtype=float), np.asarray(end_h, dtype=float)
    width = end_h - start_h
    ends = [_GridPoints(np.shape(np.atleast_2d(signals[0])), slot_h, row, at)
            for at in (end_h, start_h)] if len(signals) else []
    means = []
    for values in signals:
        values = np.atleast_2d(np.asarray(values, dtype=float))
        integral = running_integral(values, slot_h)
        tail_mean = values.mean(axis=1)
        out = ends[0].integral(integral, values, tail_mean)
        out -= ends[1].integral(integral, values, tail_mean)
        means.append(np.divide(out, width, out=np.zeros_like(out), where=width > 0))
    return means


def start_grid_means(
    signals: Sequence[np.ndarray], row: np.ndarray, from_h: np.ndarray, to_h: np.ndarray,
    starts: np.ndarray, slot_h: float
) -> list[np.ndarray]:
    """``window_means`` of the windows [s slot_h + from_h[i], s slot_h + to_h[i]) for every
    row i of runs and every start slot s of ``starts``: (runs, starts) tables, the same means.

    A run's windows all lie the same hours into their slots, so each end is found on the grid
    once per run: k slots on from the start slot, ``into`` hours in. F there, for every start
    at once, is one row of a small table ``at[row, k, s]`` = F at slot k + starts[s] (F
    extended past the horizon with the row's mean, ``window_means``' assumption), plus
    ``into`` times the slot's value from a table alike: a row gather per run and end, no
    search and no per-entry slot arithmetic. This is what prices millions of options without
    listing them.
    """
    row = np.asarray(row, dtype=np.int64)
    starts = np.asarray(starts, dtype=np.int64)
    from_h, to_h = np.asarray(from_h, dtype=float), np.asarray(to_h, dtype=float)
    width = to_h - from_h
    per_hour = np.divide(1.0, width, out=np.zeros_like(width), where=width > 0)[:, None]
    n_slots = np.shape(np.atleast_2d(signals[0]))[1] if len(signals) else 0
    ends = [_RunEnds(at, slot_h, n_slots) for at in (to_h, from_h)]
    means = []
    for values in signals:
        values = np.atleast_2d(np.asarray(values, dtype=float))
        tail_mean = values.mean(axis=1)
        # F and the value at slots 0 .. n_slots + the last start, then read at k + starts[s]
        past = np.arange(1, int(starts.max(initial=0)) + 1) * slot_h
        integral = running_integral(values, slot_h)
        integral = np.hstack([integral, integral[:, -1:] + past * tail_mean[:, None]])
        value = np.hstack([values, np.repeat(tail_mean[:, None], len(past) + 1, axis=1)])
        k_s = np.arange(n_slots + 1)[:, None] + starts[None, :]
        # (rows x k, starts) tables, small; a run's end reads one row of each
        at = integral[:, k_s].reshape(-1, len(starts))
        slope = value[:, k_s].reshape(-1, len(starts))
        out = ends[0].integral(at, slope, row, tail_mean)
        out -= ends[1].integral(at, slope, row, tail_mean)
        out *= per_hour
        means.append(out)
    return means


class _RunEnds:
    """One end of each run's window, ``at_h`` hours after its start slot: k slots on (at
    most the horizon's; the hours beyond it read at the row's mean) and ``into_h`` hours into
    that slot, the same for every start."""

    def __init__(self, at_h: np.ndarray, slot_h: float, n_slots: int) -> None:
        at = np.maximum(at_h, 0.0)
        k = np.floor(at / slot_h).astype(np.int64)
        self.into_h = at - k * slot_h
        self.k = np.minimum(k, n_slots)
        self.past_h = (k - self.k) * slot_h
        self.n_k = n_slots + 1

    def integral(self, at: np.ndarray, slope: np.ndarray, row: np.ndarray,
                 tail_mean: np.ndarray) -> np.ndarray:
        line = row * self.n_k + self.k
        out = np.take(at, line, axis=0)
        out += self.into_h[:, None] * np.take(slope, line, axis=0)
        out += (self.past_h * tail_mean[row])[:, None]
        return out


class _GridPoints:
    """Times ``at_h`` on rows ``row`` of a (rows, slots) grid: the slot each falls in and the
    hours into it (times past the horizon: the last slot's end, and the hours past it)."""

    def __init__(self, shape: tuple[int, ...], slot_h: float, row: np.ndarray,
                 at_h: np.ndarray) -> None:
        n_slots = shape[1]
        horizon_h = n_slots * slot_h
        inside = np.clip(at_h, 0.0, horizon_h)
        slot = np.minimum((inside / slot_h).astype(np.int64), n_slots - 1)
        self.into_h = inside - slot * slot_h
        self.at_integral = row * (n_slots + 1) + slot
        self.at_value = row * n_slots + slot
        self.past = np.flatnonzero(at_h > horizon_h)
        self.past_h = at_h[self.past] - horizon_h
        self.past_row = row[self.past]

    def integral(self, integral: np.ndarray, values: np.ndarray,
                 tail_mean: np.ndarray) -> np.ndarray:
        """F at each point: its value at the slot's start plus the slot's value times the
        hours into it (a gather per point, where a search per row took a pass over every
        point for each row), then the row's mean per hour past the horizon."""
        at = integral.reshape(-1).take(self.at_integral)
        at += self.into_h * values.reshape(-1).take(self.at_value)
        at[self.past] += self.past_h * tail_mean[self.past_row]
        return at


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
