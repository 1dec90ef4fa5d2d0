"""UTC parsing, gap detection and time-weighted resampling (``sites.readers.timeseries``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sites.errors import InputError
from sites.readers.timeseries import find_gaps, resample_time_weighted

T0 = pd.Timestamp("2023-01-01T00:00:00Z")


def series(values, step_min: float, skip: tuple[int, ...] = ()) -> pd.Series:
    times = [T0 + pd.Timedelta(minutes=step_min * i) for i in range(len(values) + len(skip))]
    times = [t for i, t in enumerate(times) if i not in skip]
    return pd.Series(np.asarray(values, float), index=pd.DatetimeIndex(times))


def test_hourly_to_quarter_hours_repeats_each_hour():
    """Hourly [10, 20] in 15-minute slots: each hour's value 4 times."""
    out = resample_time_weighted(series([10, 20], 60), pd.Timedelta(hours=1), T0, 0.25, 8, "f")
    np.testing.assert_allclose(out, [10] * 4 + [20] * 4)


def test_quarter_hours_to_hourly_is_the_mean():
    """15-minute [1, 2, 3, 6 | 4, 4, 4, 8] to hours: 12/4 = 3 and 20/4 = 5."""
    out = resample_time_weighted(series([1, 2, 3, 6, 4, 4, 4, 8], 15), pd.Timedelta(minutes=15),
                                 T0, 1.0, 2, "f")
    np.testing.assert_allclose(out, [3.0, 5.0])


def test_slots_that_straddle_samples_are_time_weighted():
    """Hourly [0, 60, 120] (00:00-03:00) in 90-minute slots from 00:30: the first slot is
    (30 min x 0 + 60 min x 60) / 90 min = 40; a second slot (02:00-03:30) runs past the data's
    end at 03:00 and is refused, not padded."""
    s = series([0, 60, 120], 60)
    out = resample_time_weighted(s, pd.Timedelta(hours=1), T0 + pd.Timedelta(minutes=30),
                                 1.5, 1, "f")
    np.testing.assert_allclose(out, [40.0])
    with pytest.raises(InputError, match=r"no data for 2023-01-01 03:00"):
        resample_time_weighted(s, pd.Timedelta(hours=1), T0 + pd.Timedelta(minutes=30), 1.5, 2,
                               "f")


def test_gaps_are_found_with_their_first_missing_time_and_length():
    """Hourly samples with hours 2 and 3 missing: one gap from 02:00 to 04:00 (2 h)."""
    s = series([1, 1, 1, 1], 60, skip=(2, 3))
    gaps = find_gaps(pd.DatetimeIndex(s.index), pd.Timedelta(hours=1))
    assert len(gaps) == 1
    assert gaps[0].first_missing == T0 + pd.Timedelta(hours=2)
    assert gaps[0].length == pd.Timedelta(hours=2)


def test_a_window_into_a_gap_names_the_file_and_first_missing_time_never_fills():
    s = series([1, 1, 1, 1], 60, skip=(2, 3))
    with pytest.raises(InputError, match=r"^zone.csv: gap in the data: no value for "
                                         r"2023-01-01 02:00:00\+00:00"):
        resample_time_weighted(s, pd.Timedelta(hours=1), T0, 1.0, 4, "zone.csv")
    # the part before the gap is fine
    np.testing.assert_allclose(
        resample_time_weighted(s, pd.Timedelta(hours=1), T0, 1.0, 2, "zone.csv"), [1, 1])


def test_a_window_before_the_data_is_refused():
    with pytest.raises(InputError, match=r"no data for 2022-12-31 23:00"):
        resample_time_weighted(series([1, 2], 60), pd.Timedelta(hours=1),
                               T0 - pd.Timedelta(hours=1), 1.0, 2, "f")
