"""Means of slot-valued signals over arbitrary windows (sites.timegrid.window_mean)."""

from __future__ import annotations

import numpy as np
import pytest

from sites.timegrid import running_integral, start_grid_means, window_mean, window_means

VALUES = np.array([[10.0, 20.0, 30.0],
                   [100.0, 0.0, 50.0]])


def mean(row, start, end, slot_h=1.0, values=VALUES):
    return float(window_mean(values, np.array([row]), np.array([start]), np.array([end]),
                             slot_h)[0])


def test_running_integral():
    """F at 0, 1, 2, 3 h of [10, 20, 30] in 1 h slots: 0, 10, 30, 60."""
    np.testing.assert_allclose(running_integral(VALUES, 1.0)[0], [0, 10, 30, 60])


def test_whole_slot_windows():
    assert mean(0, 0, 1) == pytest.approx(10.0)
    assert mean(0, 1, 3) == pytest.approx(25.0)  # (20 + 30) / 2
    assert mean(1, 0, 3) == pytest.approx(50.0)  # (100 + 0 + 50) / 3


def test_fractional_window():
    """[0.5, 2): 0.5 h at 10 plus 1 h at 20 = 25 over 1.5 h = 16.667."""
    assert mean(0, 0.5, 2.0) == pytest.approx(25 / 1.5)


def test_window_inside_one_slot():
    assert mean(0, 1.25, 1.75) == pytest.approx(20.0)


def test_beyond_the_horizon_the_series_extends_with_its_mean():
    """Row 0 mean is 20. [2.5, 4.5): 0.5 h at 30 plus 1.5 h at 20 = 45 over 2 h = 22.5.
    Entirely beyond ([5, 7)): the mean, 20. Row 1 (mean 50) over [2, 4): (50 + 50) / 2 = 50."""
    assert mean(0, 2.5, 4.5) == pytest.approx(22.5)
    assert mean(0, 5.0, 7.0) == pytest.approx(20.0)
    assert mean(1, 2.0, 4.0) == pytest.approx(50.0)
    assert mean(1, 1.0, 4.0) == pytest.approx(100 / 3)  # (0 + 50 + 50) / 3


def test_two_hour_slots():
    """Slots of 2 h valued [10, 30]: [1, 3) is 1 h at 10 and 1 h at 30 -> 20;
    [0, 5): 20 + 60 + 1 h beyond at the mean 20 = 100 over 5 h -> 20; [0, 1) -> 10."""
    values = np.array([[10.0, 30.0]])
    assert mean(0, 1, 3, 2.0, values) == pytest.approx(20.0)
    assert mean(0, 0, 5, 2.0, values) == pytest.approx(20.0)
    assert mean(0, 0, 1, 2.0, values) == pytest.approx(10.0)


def test_vectorised_over_rows_and_windows_and_zero_width():
    """Mixed rows in one call; a zero-width window gives 0 rather than a division by zero."""
    out = window_mean(VALUES, np.array([1, 0, 1, 0]), np.array([0.0, 0.5, 1.5, 1.0]),
                      np.array([1.0, 2.0, 2.5, 1.0]), 1.0)
    # row 1 [0,1): 100; row 0 [0.5,2): 16.667; row 1 [1.5,2.5): 0.5 x 0 + 0.5 x 50 = 25; width 0
    np.testing.assert_allclose(out, [100.0, 25 / 1.5, 25.0, 0.0])


@pytest.mark.parametrize("slot_h", [1.0, 0.25])
def test_start_grid_means_are_window_means_at_every_start(slot_h):
    """Each run's windows at every start of a grid, as ``window_means`` prices them one by
    one: runs with and without a lead-in, windows ending past the horizon or starting past it
    (the row's mean there), zero-width windows (mean 0), starts not evenly spaced."""
    rng = np.random.default_rng(3)
    signals = [rng.normal(50, 20, (4, 16)), rng.uniform(0, 500, (4, 16))]
    n = 400
    row = rng.integers(0, 4, n)
    from_h = np.where(rng.random(n) < 0.3, 0.0, rng.uniform(0, 3, n)) * slot_h * 4
    to_h = from_h + rng.uniform(0.1, 30, n) * slot_h
    to_h[:5] = from_h[:5]
    from_h[5:10] = 20 * slot_h  # the whole window past the horizon
    to_h[5:10] = from_h[5:10] + 2.5 * slot_h
    starts = np.array([0, 1, 2, 5, 9, 15])
    got = start_grid_means(signals, row, from_h, to_h, starts, slot_h)
    at = np.repeat(np.arange(n), len(starts))
    begin = np.tile(starts, n) * slot_h
    want = window_means(signals, row[at], begin + from_h[at], begin + to_h[at], slot_h)
    for g, w in zip(got, want, strict=True):
        assert g.shape == (n, len(starts))
        np.testing.assert_allclose(g.reshape(-1), w, rtol=1e-12, atol=1e-10)
    assert (got[0][:5] == 0).all()
