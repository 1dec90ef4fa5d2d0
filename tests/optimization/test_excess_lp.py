"""The excess LPs: the Pyomo models and the MatrixLP (highspy) versions give the same optima."""

from __future__ import annotations

import numpy as np
import pytest

from optimization.excess_lp import EXCESS_LP_BACKENDS, ExcessProblem
from optimization.solver import SolverOptions, SolveStatus

OPTIONS = SolverOptions(time_limit_s=10)


def _problem(n, rng, bounded):
    masks = np.arange(1, (1 << n) - 1)
    membership = ((masks[:, None] >> np.arange(n)) & 1).astype(float)
    values = rng.integers(-10, 20, len(masks)).astype(float)
    lower = np.full(n, -5.0) if bounded else None
    return ExcessProblem(
        membership, values, grand_value=float(rng.integers(10, 30)), lower_bounds=lower
    )


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("bounded", [False, True])
def test_min_max_excess_same_optimum_in_both_backends(seed, bounded):
    rng = np.random.default_rng(seed)
    problem = _problem(4, rng, bounded)
    rows = problem.n_coalitions
    free = np.ones(rows, bool)
    fixed = np.zeros(rows, bool)
    excess = np.zeros(rows)
    solutions = {
        name: backend().min_max_excess(problem, free, fixed, excess, OPTIONS)
        for name, backend in EXCESS_LP_BACKENDS.items()
    }
    for solution in solutions.values():
        assert solution.result.status is SolveStatus.OPTIMAL
        # dual feasibility of the free variable t: the excess-limit duals sum to 1
        assert np.isclose(solution.excess_duals.sum(), 1.0)
        got = problem.values - problem.membership @ solution.shares
        assert got.max() <= solution.max_excess + 1e-7
        assert np.isclose(solution.shares.sum(), problem.grand_value)
    assert np.isclose(solutions["pyomo"].max_excess, solutions["matrix"].max_excess)


def test_fixed_rows_are_respected_by_both_backends():
    """3 players, fix e({1,2}) = -2 and leave the rest free: x1 + x2 = v(12) + 2 in both."""
    membership = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 1], [1, 0, 1], [0, 1, 1]], float)
    values = np.array([1.0, 2.0, 6.0, 0.0, 4.0, 5.0])
    problem = ExcessProblem(membership, values, grand_value=12.0)
    free = np.array([1, 1, 0, 1, 1, 1], bool)
    fixed = ~free
    excess = np.where(fixed, -2.0, 0.0)
    results = [
        backend().min_max_excess(problem, free, fixed, excess, OPTIONS)
        for backend in EXCESS_LP_BACKENDS.values()
    ]
    for result in results:
        assert np.isclose(result.shares[0] + result.shares[1], 8.0)
        assert result.excess_duals[2] == 0.0  # fixed rows carry no excess-limit dual
    assert np.isclose(results[0].max_excess, results[1].max_excess)


def test_infeasible_bounds_are_reported_not_raised():
    membership = np.array([[1, 0], [0, 1]], float)
    problem = ExcessProblem(membership, np.zeros(2), grand_value=1.0, lower_bounds=np.ones(2))
    for backend in EXCESS_LP_BACKENDS.values():
        solution = backend().min_max_excess(
            problem, np.ones(2, bool), np.zeros(2, bool), np.zeros(2), OPTIONS
        )
        assert solution.result.status is SolveStatus.INFEASIBLE


@pytest.mark.parametrize("seed", range(4))
def test_nearest_point_same_objective_in_both_backends(seed):
    rng = np.random.default_rng(100 + seed)
    problem = _problem(4, rng, bounded=False)
    rows = problem.n_coalitions
    epsilon = (
        EXCESS_LP_BACKENDS["matrix"]()
        .min_max_excess(problem, np.ones(rows, bool), np.zeros(rows, bool), np.zeros(rows), OPTIONS)
        .max_excess
    )
    target = rng.normal(size=4) * 5
    distances = []
    for backend in EXCESS_LP_BACKENDS.values():
        point = backend().nearest_point(problem, epsilon + 1e-9, target, OPTIONS)
        assert point.result.status is SolveStatus.OPTIMAL
        assert (problem.values - problem.membership @ point.shares).max() <= epsilon + 1e-6
        distances.append(np.abs(point.shares - target).sum())
    assert np.isclose(distances[0], distances[1], atol=1e-6)
