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


# Filling short gaps (issue 24, item 10): explicit, off by default, never beyond max_gap_h.

def quarter_hours_csv(path, skip: tuple[int, ...], n: int = 16):
    """15-minute samples 0, 1, 2, ... from T0 with the samples at ``skip`` left out."""
    rows = [f"{(T0 + pd.Timedelta(minutes=15 * i)).strftime('%Y-%m-%d %H:%M:%S')},{i}"
            for i in range(n) if i not in skip]
    path.write_text("Time,ci\n" + "\n".join(rows) + "\n")
    return path


def test_forward_fill_repeats_the_sample_before_a_short_gap(tmp_path):
    """Samples 5 and 6 missing (01:15-01:45, 0.5 h): filled with sample 4's value, so the
    second hour is (4 + 4 + 4 + 7) / 4 = 4.75; the first hour is untouched: 1.5."""
    from sites.readers.timeseries import read_column_table

    table = read_column_table(quarter_hours_csv(tmp_path / "ci.csv", (5, 6)), "Time", "ci",
                              allow_negative=False)
    with pytest.raises(InputError, match=r"no value for 2023-01-01 01:15:00\+00:00 \(the gap "
                       r"starts at 2023-01-01 01:15:00\+00:00 and lasts 0.5 h; fill: ffill"):
        table.slots("ci", T0, 1.0, 4)  # off by default: still refused
    filled = table.forward_filled(0.5)
    assert filled.gaps == ()
    np.testing.assert_allclose(filled.frame["ci"].to_numpy()[4:8], [4, 4, 4, 7])
    np.testing.assert_allclose(filled.slots("ci", T0, 1.0, 4), [1.5, 4.75, 9.5, 13.5])
    assert len(table.frame) == 14 and len(filled.frame) == 16  # the table read is unchanged


def test_a_gap_longer_than_max_gap_h_is_still_refused_with_its_start_and_length(tmp_path):
    """Samples 5-7 missing (0.75 h) with max_gap_h 0.5; a 0.25 h gap at sample 12 in the same
    file is filled."""
    from sites.readers.timeseries import read_column_table

    table = read_column_table(quarter_hours_csv(tmp_path / "ci.csv", (5, 6, 7, 12)), "Time",
                              "ci", allow_negative=False).forward_filled(0.5)
    assert [(g.first_missing, g.length) for g in table.gaps] == [
        (T0 + pd.Timedelta(minutes=75), pd.Timedelta(minutes=45))]
    with pytest.raises(InputError) as raised:
        table.slots("ci", T0, 1.0, 4)
    assert str(raised.value) == (
        f"{tmp_path / 'ci.csv'}: gap in the data: no value for 2023-01-01 01:15:00+00:00 "
        "(the gap starts at 2023-01-01 01:15:00+00:00 and lasts 0.75 h, longer than max_gap_h "
        "(0.5 h): not filled)")
    # a window that stays clear of the long gap uses the filled short one: hour 3 is
    # samples 12-15 = (11 + 13 + 14 + 15) / 4
    np.testing.assert_allclose(table.slots("ci", T0 + pd.Timedelta(hours=2), 1.0, 2),
                               [(8 + 9 + 10 + 11) / 4, (11 + 13 + 14 + 15) / 4])
