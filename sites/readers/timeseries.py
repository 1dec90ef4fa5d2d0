"""Time handling shared by the grid-signal readers: UTC parsing, checks, gaps, resampling.

Conventions: every timestamp is UTC (naive timestamps in a file are read as UTC); a sample
stamped ``t`` holds for the interval ``[t, t + resolution)`` (Electricity Maps and the price
files stamp the start of the hour they average). Resampling is the time-weighted mean of that
step function over each slot. Gaps are found and reported, and filled only on request:
``TimeTable.forward_filled(max_gap_h)`` (a signal's ``fill: ffill`` with ``max_gap_h``) fills
each gap of at most ``max_gap_h`` with the last sample before it; a longer one is still
refused when a run needs it, naming its start and length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sites.errors import InputError
from sites.timegrid import step_means
from sites.units import hours_to_seconds, seconds_to_hours

NS_PER_S = 1_000_000_000
HEADER_LINES = 1  # CSV row numbers in messages count the header as line 1, like an editor


def read_csv_checked(path: Path | str, required: Sequence[str], **kwargs) -> pd.DataFrame:
    """Read a CSV and check it exists, is not empty and has the ``required`` columns."""
    source = str(path)
    try:
        frame = pd.read_csv(path, **kwargs)
    except FileNotFoundError:
        raise InputError(source, "", "no such file") from None
    except pd.errors.EmptyDataError:
        raise InputError(source, "", "the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise InputError(source, "", f"not a readable CSV file ({error})") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise InputError(source, f"column '{missing[0]}'",
                         f"missing column (columns found: {', '.join(map(str, frame.columns))})")
    if frame.empty:
        raise InputError(source, "", "the file has a header but no rows")
    return frame


def line_of(row: int) -> str:
    """The field name of data row ``row`` (0-based) as an editor shows it (header = line 1)."""
    return f"line {row + 1 + HEADER_LINES}"


def parse_utc(values: pd.Series, source: str, column: str) -> pd.DatetimeIndex:
    """Parse timestamps to UTC; a naive timestamp is UTC. Unparsable ones name their line."""
    times = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
    bad = np.flatnonzero(times.isna().to_numpy())
    if len(bad):
        row = int(bad[0])
        raise InputError(source, f"{line_of(row)}, column '{column}'",
                         f"unparsable timestamp {values.iloc[row]!r}")
    return pd.DatetimeIndex(times).as_unit("ns")  # asi8 below is then nanoseconds


def check_increasing(times: pd.DatetimeIndex, source: str, column: str) -> None:
    """Time must strictly increase: name the first line where it repeats or goes back."""
    steps = np.diff(times.asi8)
    if (steps > 0).all():
        return
    row = int(np.flatnonzero(steps <= 0)[0]) + 1
    what = "duplicate timestamp" if steps[row - 1] == 0 else "time goes backwards"
    raise InputError(source, f"{line_of(row)}, column '{column}'",
                     f"{what}: {times[row]} after {times[row - 1]}")


def check_values(values: pd.Series, source: str, column: str, *,
                 allow_negative: bool) -> np.ndarray:
    """Numeric, no NaN, and >= 0 unless the quantity may be negative (prices may)."""
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(float)
    bad = np.flatnonzero(~np.isfinite(numbers))
    if len(bad):
        row = int(bad[0])
        raise InputError(source, f"{line_of(row)}, column '{column}'",
                         f"missing or non-numeric value {values.iloc[row]!r}")
    if not allow_negative and (numbers < 0).any():
        row = int(np.flatnonzero(numbers < 0)[0])
        raise InputError(source, f"{line_of(row)}, column '{column}'",
                         f"negative value {numbers[row]} (must be >= 0)")
    return numbers


def infer_resolution(times: pd.DatetimeIndex) -> pd.Timedelta:
    """The most common step between samples (one sample: one hour, the usual grid step)."""
    if len(times) < 2:
        return pd.Timedelta(hours=1)
    stamps = pd.DatetimeIndex(times).as_unit("ns").asi8
    steps, counts = np.unique(np.diff(stamps), return_counts=True)
    return pd.Timedelta(int(steps[np.argmax(counts)]), unit="ns")


@dataclass(frozen=True)
class Gap:
    """Samples missing from ``first_missing`` up to (not including) ``resumes``."""

    first_missing: pd.Timestamp
    resumes: pd.Timestamp

    @property
    def length(self) -> pd.Timedelta:
        return self.resumes - self.first_missing


def find_gaps(times: pd.DatetimeIndex, resolution: pd.Timedelta) -> tuple[Gap, ...]:
    """Every place where the next sample comes later than one resolution step."""
    times = pd.DatetimeIndex(times).as_unit("ns")
    stamps = times.asi8
    late = np.flatnonzero(np.diff(stamps) > resolution.value)
    return tuple(Gap(times[i] + resolution, times[i + 1]) for i in late)


@dataclass(frozen=True)
class TimeTable:
    """Numeric columns over a strictly increasing UTC index, as read from ``source``."""

    source: str
    frame: pd.DataFrame  # UTC DatetimeIndex, one float column per quantity
    resolution: pd.Timedelta
    max_fill_h: float | None = None  # set by ``forward_filled``: gaps up to this were filled

    @property
    def gaps(self) -> tuple[Gap, ...]:
        return find_gaps(pd.DatetimeIndex(self.frame.index), self.resolution)

    def forward_filled(self, max_gap_h: float) -> TimeTable:
        """Every gap of at most ``max_gap_h`` filled with the last sample before it.

        The missing samples are added on the file's own grid (one per ``resolution`` from the
        gap's first missing time), each with the value of the sample before the gap: the step
        function then holds that value until the data resume. Longer gaps stay gaps.
        """
        limit = pd.Timedelta(hours=max_gap_h)
        short = [g for g in self.gaps if g.length <= limit]
        if not short:
            return TimeTable(self.source, self.frame, self.resolution, max_gap_h)
        added = pd.DatetimeIndex(np.concatenate([
            pd.date_range(g.first_missing, g.resumes, freq=self.resolution,
                          inclusive="left").as_unit("ns").asi8 for g in short]), tz="UTC")
        index = self.frame.index.union(added).rename(self.frame.index.name)
        frame = self.frame.reindex(index).ffill()
        return TimeTable(self.source, frame, self.resolution, max_gap_h)

    def column(self, name: str) -> pd.Series:
        if name not in self.frame.columns:
            raise InputError(self.source, f"column '{name}'",
                             f"no such column (has: {', '.join(self.frame.columns)})")
        return self.frame[name]

    def slots(self, column: str, start: pd.Timestamp, slot_h: float, n_slots: int) -> np.ndarray:
        """Time-weighted means of ``column`` over ``n_slots`` slots of ``slot_h`` from ``start``."""
        return resample_time_weighted(self.column(column), self.resolution, start, slot_h,
                                      n_slots, self.source, self.max_fill_h)


def build_table(source: str, times: pd.DatetimeIndex, columns: dict[str, np.ndarray],
                time_column: str) -> TimeTable:
    """Check the index and wrap it; the readers call this after checking their values."""
    times = pd.DatetimeIndex(times).as_unit("ns")
    check_increasing(times, source, time_column)
    frame = pd.DataFrame(columns, index=times)
    return TimeTable(source, frame, infer_resolution(times))


def read_column_table(path: Path | str, time_column: str, value_column: str, *,
                      allow_negative: bool) -> TimeTable:
    """Any CSV with a UTC time column and a numeric value column, checked like the readers'."""
    source = str(path)
    frame = read_csv_checked(path, [time_column, value_column])
    times = parse_utc(frame[time_column], source, time_column)
    values = check_values(frame[value_column], source, value_column,
                          allow_negative=allow_negative)
    return build_table(source, times, {value_column: values}, time_column)


def resample_time_weighted(series: pd.Series, resolution: pd.Timedelta, start: pd.Timestamp,
                           slot_h: float, n_slots: int, source: str,
                           max_fill_h: float | None = None) -> np.ndarray:
    """Mean of the step function ``series`` over each slot ``[start + k slot, start + (k+1) slot)``.

    Each sample holds for one ``resolution`` from its timestamp. The cumulative integral of a
    step function is piecewise linear in time, so ``np.interp`` of it at the slot edges gives
    exact integrals, whatever the two resolutions are (hourly data to 15-minute slots repeats
    each hour; 15-minute data to hourly slots averages four samples).

    Raises ``InputError`` naming ``source`` and the first missing timestamp when any slot
    reaches outside the data or into a gap (with the gap's start and length, and, when short
    gaps were filled, ``max_fill_h``, the longest filled).
    """
    start = _as_utc(start)
    index = pd.DatetimeIndex(series.index).as_unit("ns")
    times = index.asi8
    values = series.to_numpy(float)
    slot_ns = round(hours_to_seconds(slot_h) * NS_PER_S)
    edges = start.value + slot_ns * np.arange(n_slots + 1, dtype=np.int64)
    covered_from, covered_to = times[0], times[-1] + resolution.value
    if edges[0] < covered_from:
        raise InputError(source, "", f"no data for {start} (the data start at "
                         f"{pd.Timestamp(covered_from, tz='UTC')})")
    if edges[-1] > covered_to:
        first = pd.Timestamp(max(covered_to, edges[0]), tz="UTC")
        raise InputError(source, "", f"no data for {first} (the data end at "
                         f"{pd.Timestamp(covered_to, tz='UTC')})")
    for gap in find_gaps(index, resolution):
        if gap.first_missing.value < edges[-1] and gap.resumes.value > edges[0]:
            first = max(gap.first_missing, start)
            length_h = seconds_to_hours(gap.length.total_seconds())
            hint = ("; fill: ffill with max_gap_h fills short gaps" if max_fill_h is None
                    else f", longer than max_gap_h ({max_fill_h:g} h): not filled")
            raise InputError(source, "", f"gap in the data: no value for {first} (the gap "
                             f"starts at {gap.first_missing} and lasts {length_h:g} h{hint})")
    # knots: every sample start plus the end of the last sample, in hours from the first
    # (float64 cannot hold epoch nanoseconds exactly; offsets in hours it can)
    origin = times[0]
    knots_h = seconds_to_hours((np.append(times, covered_to) - origin) / NS_PER_S)
    return step_means(knots_h, values, seconds_to_hours((edges - origin) / NS_PER_S))


def _as_utc(stamp: pd.Timestamp) -> pd.Timestamp:
    stamp = pd.Timestamp(stamp)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
