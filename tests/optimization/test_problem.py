"""Per-demand reductions of optimization.problem.DemandGroups against the unbuffered ufuncs."""

from __future__ import annotations

import numpy as np
import pytest

from optimization.problem import DemandGroups


@pytest.mark.parametrize("grouped", [True, False])
def test_minimum_and_maximum_equal_the_unbuffered_ufuncs(grouped):
    """min and max over each demand's options, with and without ``initial``, equal
    ``np.minimum.at`` / ``np.maximum.at``; demands 0, 4 and 7 have no options (they keep
    +-inf, or their initial value). Options come demand by demand or shuffled."""
    rng = np.random.default_rng(7)
    n_demands = 8
    demand = rng.choice([1, 2, 3, 5, 6], size=60)
    if grouped:
        demand = np.sort(demand)
    values = rng.normal(size=len(demand))
    groups = DemandGroups.of(demand, n_demands)
    assert (groups.order is None) == grouped
    initial = rng.normal(size=n_demands)
    for reduce, ufunc, empty in ((groups.minimum, np.minimum, np.inf),
                                 (groups.maximum, np.maximum, -np.inf)):
        expected = np.full(n_demands, empty)
        ufunc.at(expected, demand, values)
        np.testing.assert_array_equal(reduce(values), expected)
        with_initial = initial.copy()
        ufunc.at(with_initial, demand, values)
        np.testing.assert_array_equal(reduce(values, initial=initial), with_initial)
        assert reduce(values)[[0, 4, 7]].tolist() == [empty] * 3
