"""Hourly signals and their resampling to slots."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sites import (
    ConstantSignal,
    InputError,
    ListSignal,
    SyntheticDiurnal,
    TableSignal,
    hourly_to_slots,
)
from sites.readers.timeseries import read_column_table

START = pd.Timestamp("2023-06-05T00:00:00Z")


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_hourly_to_slots_two_hour_slots_are_means_and_drop_a_partial_slot():
    """[1, 3, 5, 7, 9] in 2 h slots: (1+3)/2 = 2, (5+7)/2 = 6; the lone 9 is no full slot."""
    out = hourly_to_slots(np.array([1.0, 3.0, 5.0, 7.0, 9.0]), 2.0)
    np.testing.assert_allclose(out, [2.0, 6.0])


def test_hourly_to_slots_three_hour_slots():
    """[0, 3, 6 | 10, 20, 30] in 3 h slots: 9/3 = 3 and 60/3 = 20."""
    out = hourly_to_slots(np.array([0.0, 3.0, 6.0, 10.0, 20.0, 30.0]), 3.0)
    np.testing.assert_allclose(out, [3.0, 20.0])


def test_hourly_to_slots_half_hour_slots_repeat_each_hour():
    """0.5 h slots: each hourly value covers two slots: [4, 8] -> [4, 4, 8, 8]."""
    np.testing.assert_allclose(hourly_to_slots(np.array([4.0, 8.0]), 0.5), [4, 4, 8, 8])


def test_hourly_to_slots_quarter_hour_slots():
    """0.25 h slots: four slots per hour."""
    np.testing.assert_allclose(hourly_to_slots(np.array([1.0, 2.0]), 0.25), [1] * 4 + [2] * 4)


@pytest.mark.parametrize("slot_h", [1.5, 0.4, 2.5])
def test_hourly_to_slots_rejects_slots_that_do_not_tile_hours(slot_h):
    with pytest.raises(ValueError, match="slot_h"):
        hourly_to_slots(np.arange(12.0), slot_h)


def test_constant_signal():
    np.testing.assert_array_equal(ConstantSignal(42.0).hourly(START, 3, rng()), [42.0] * 3)


def test_list_signal_truncates_and_repeats_its_last_value():
    signal = ListSignal((1.0, 2.0, 3.0))
    np.testing.assert_array_equal(signal.hourly(START, 2, rng()), [1.0, 2.0])
    np.testing.assert_array_equal(signal.hourly(START, 5, rng()), [1.0, 2.0, 3.0, 3.0, 3.0])


def test_synthetic_diurnal_without_noise_follows_its_formula():
    """mean 100, amplitude 20, peak at 19 h: 120 at 19 h, 80 at 7 h, 100 at 1 h and 13 h
    (cos(+-pi/2) = 0), no noise and no dip."""
    values = SyntheticDiurnal(mean=100, amplitude=20, peak_hour=19).hourly(START, 24, rng())
    assert values[19] == pytest.approx(120.0)
    assert values[7] == pytest.approx(80.0)
    assert values[1] == pytest.approx(100.0)
    assert values[13] == pytest.approx(100.0)


def test_synthetic_solar_dip_lowers_midday():
    """Dip of 50 centred on 13 h local: 100 - 50 = 50 at 13 h; at 1 h it is
    100 - 50 exp(-(12/3)^2 / 2) = 100 - 50 e^-8 (about 99.98); midday is the daily minimum."""
    values = SyntheticDiurnal(mean=100, solar_dip=50).hourly(START, 24, rng())
    assert values[13] == pytest.approx(50.0)
    assert values[1] == pytest.approx(100 - 50 * math.exp(-8))
    assert int(np.argmin(values)) == 13


def test_synthetic_utc_offset_moves_the_dip_to_local_midday():
    """At UTC-8 local 13 h is 21 h UTC, so the minimum of a UTC-started day sits at index 21."""
    values = SyntheticDiurnal(mean=100, solar_dip=50, utc_offset_h=-8).hourly(START, 24, rng())
    assert int(np.argmin(values)) == 21
    assert values[21] == pytest.approx(50.0)


def test_synthetic_floor_is_respected():
    """mean 10 with a dip of 50 would reach -40 at 13 h; the floor 0 (carbon) clips it, and a
    floor of -5 (prices) clips at -5 instead."""
    carbon = SyntheticDiurnal(mean=10, solar_dip=50).hourly(START, 24, rng())
    assert carbon.min() == 0.0
    assert carbon[13] == 0.0
    price = SyntheticDiurnal(mean=10, solar_dip=50, floor=-5).hourly(START, 24, rng())
    assert price[13] == -5.0
    noisy = SyntheticDiurnal(mean=10, noise_sd=3.0, floor=2.0).hourly(START, 500, rng(1))
    assert noisy.min() >= 2.0
    assert (noisy == 2.0).any()  # noise of 30 around 10 does cross the floor


def test_synthetic_noise_is_deterministic_for_a_seed_and_differs_across_seeds():
    signal = SyntheticDiurnal(mean=300, amplitude=40, solar_dip=100, noise_sd=0.1)
    first = signal.hourly(START, 168, rng(5))
    again = signal.hourly(START, 168, rng(5))
    other = signal.hourly(START, 168, rng(6))
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)
    clean = SyntheticDiurnal(mean=300, amplitude=40, solar_dip=100).hourly(START, 168, rng(5))
    assert not np.allclose(first, clean)  # the noise is really there
    # noise_sd is relative to the mean: residual sd about 0.1 x 300 = 30
    assert 15 < np.std(first - clean) < 45


def test_csv_signal_slices_by_utc_time_and_reports_missing_hours(tmp_path):
    path = tmp_path / "zone.csv"
    times = pd.date_range("2023-06-04T22:00:00Z", periods=6, freq="h")
    pd.DataFrame({"Datetime (UTC)": times.strftime("%Y-%m-%d %H:%M:%S"),
                  "ci": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]}).to_csv(path, index=False)
    signal = TableSignal(read_column_table(path, "Datetime (UTC)", "ci", allow_negative=False),
                         "ci")
    # START is 2023-06-05 00:00, the third row
    np.testing.assert_array_equal(signal.hourly(START, 3, rng()), [3.0, 4.0, 5.0])
    with pytest.raises(InputError, match=r"zone.csv: no data for 2023-06-05 04:00:00\+00:00"):
        signal.hourly(START, 10, rng())


def test_csv_signal_goes_through_the_checked_reader(tmp_path):
    """A negative carbon value in a plain CSV is refused with its line, like the data readers."""
    path = tmp_path / "zone.csv"
    pd.DataFrame({"Datetime (UTC)": ["2023-06-05 00:00:00", "2023-06-05 01:00:00"],
                  "ci": [10.0, -3.0]}).to_csv(path, index=False)
    with pytest.raises(InputError, match=r"line 3, column 'ci': negative value -3.0"):
        read_column_table(path, "Datetime (UTC)", "ci", allow_negative=False)
    table = read_column_table(path, "Datetime (UTC)", "ci", allow_negative=True)
    np.testing.assert_array_equal(TableSignal(table, "ci").hourly(START, 2, rng()), [10.0, -3.0])
