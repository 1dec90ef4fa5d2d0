"""LPs over coalition excesses: the sequential nucleolus stages and the least-core point.

Everything here is arrays: a 0/1 membership matrix ``A`` (one row per coalition, one column
per player), the coalition values ``v`` (profit form: a coalition wants *at least* v(S)),
the grand-coalition value and optional lower bounds on the shares. No player names, no files.

Excess of coalition S at allocation x: e(S, x) = v(S) - x(S), with x(S) = (A x)_S.

Two interchangeable backends (same models, same answers; a test checks they agree):

* ``pyomo``  -- readable Pyomo models solved with :func:`optimization.solver.solve_model`;
* ``matrix`` -- the same LPs as arrays in :class:`optimization.solver.MatrixLP`, for the
  thousands of coalition rows of a 12-16 player game, where building Pyomo expressions
  dominates the run time.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from optimization.solver import MatrixLP, SolveResult, SolverOptions, solve_model


@dataclass(frozen=True, eq=False)
class ExcessProblem:
    """The coalition data shared by every stage.

    membership: (m, n) 0/1 array, row r is coalition r's characteristic vector.
    values: (m,) v(S) per row.  grand_value: v(N).
    lower_bounds: (n,) x_i >= lower_i (the imputation set), or None (pre-imputations).
    """

    membership: np.ndarray
    values: np.ndarray
    grand_value: float
    lower_bounds: np.ndarray | None = None

    @property
    def n_players(self) -> int:
        return self.membership.shape[1]

    @property
    def n_coalitions(self) -> int:
        return self.membership.shape[0]


@dataclass(frozen=True, eq=False)
class StageSolution:
    """Optimum of one min-max-excess stage.

    ``excess_duals[r]`` >= 0 is the dual of row r's excess limit (0 for rows not free).
    Complementary slackness: a row with a positive dual has e(S, x) = t at *every* optimum.
    """

    result: SolveResult
    max_excess: float
    shares: np.ndarray
    excess_duals: np.ndarray


@dataclass(frozen=True, eq=False)
class PointSolution:
    result: SolveResult
    shares: np.ndarray


class ExcessLPBackend(ABC):
    """One way of building and solving the two excess LPs."""

    @abstractmethod
    def min_max_excess(
        self,
        problem: ExcessProblem,
        free: np.ndarray,
        fixed: np.ndarray,
        fixed_excess: np.ndarray,
        options: SolverOptions,
    ) -> StageSolution:
        r"""One sequential-LP stage of the (pre)nucleolus.

        .. math::
            \min_{x, t}\; t \quad\text{s.t.}\quad
            v(S) - x(S) \le t \;\; (S \in \text{free}),\qquad
            v(S) - x(S) = e_S \;\; (S \in \text{fixed}),\qquad
            x(N) = v(N),\qquad x \ge \ell \text{ (if bounds)}.

        Rows in neither mask are left out (their excess is already determined).
        With no fixed rows this is the least-core LP: t* is the least-core epsilon.
        """

    @abstractmethod
    def nearest_point(
        self,
        problem: ExcessProblem,
        epsilon: float,
        target: np.ndarray,
        options: SolverOptions,
    ) -> PointSolution:
        r"""The point of the epsilon-core nearest to ``target`` in the L1 norm.

        .. math::
            \min_{x, d}\; \textstyle\sum_i d_i \quad\text{s.t.}\quad
            v(S) - x(S) \le \varepsilon \;\; (\text{all rows}),\quad
            x(N) = v(N),\quad -d_i \le x_i - \hat{x}_i \le d_i,\quad x \ge \ell \text{ (if bounds)}.
        """


def _share_bounds(problem: ExcessProblem) -> tuple[np.ndarray, np.ndarray]:
    n = problem.n_players
    lower = (
        np.full(n, -np.inf)
        if problem.lower_bounds is None
        else np.asarray(problem.lower_bounds, float)
    )
    return lower, np.full(n, np.inf)


def _members(problem: ExcessProblem, row: int) -> list[int]:
    return np.flatnonzero(problem.membership[row]).tolist()


class PyomoExcessLP(ExcessLPBackend):
    """Readable models; fine up to ~10 players (about a thousand coalition rows). Pyomo is
    imported in the methods (``optimization.solver.solve_model`` says why)."""

    def min_max_excess(self, problem, free, fixed, fixed_excess, options):
        import pyomo.environ as pyo

        lower, _ = _share_bounds(problem)
        model = pyo.ConcreteModel(name="min_max_excess")
        model.PLAYERS = pyo.Set(initialize=range(problem.n_players))
        model.FREE_COALITIONS = pyo.Set(initialize=np.flatnonzero(free).tolist())
        model.FIXED_COALITIONS = pyo.Set(initialize=np.flatnonzero(fixed).tolist())
        model.share = pyo.Var(
            model.PLAYERS, bounds=lambda _, i: (None if math.isinf(lower[i]) else lower[i], None)
        )
        model.max_excess = pyo.Var()

        def coalition_share(m, row):
            return pyo.quicksum(m.share[i] for i in _members(problem, row))

        model.excess_limit = pyo.Constraint(
            model.FREE_COALITIONS,
            rule=lambda m, r: problem.values[r] - coalition_share(m, r) <= m.max_excess,
        )
        model.excess_fixing = pyo.Constraint(
            model.FIXED_COALITIONS,
            rule=lambda m, r: problem.values[r] - coalition_share(m, r) == fixed_excess[r],
        )
        model.efficiency_equality = pyo.Constraint(
            expr=pyo.quicksum(model.share[i] for i in model.PLAYERS) == problem.grand_value
        )
        model.objective = pyo.Objective(expr=model.max_excess, sense=pyo.minimize)

        result = solve_model(model, options, duals=True)
        duals = np.zeros(problem.n_coalitions)
        if not result.has_solution:
            return StageSolution(result, math.nan, np.full(problem.n_players, math.nan), duals)
        for row in model.FREE_COALITIONS:
            duals[row] = abs(result.duals.get(model.excess_limit[row], 0.0))
        shares = np.array([pyo.value(model.share[i]) for i in model.PLAYERS])
        return StageSolution(result, float(pyo.value(model.max_excess)), shares, duals)

    def nearest_point(self, problem, epsilon, target, options):
        import pyomo.environ as pyo

        lower, _ = _share_bounds(problem)
        model = pyo.ConcreteModel(name="nearest_epsilon_core_point")
        model.PLAYERS = pyo.Set(initialize=range(problem.n_players))
        model.COALITIONS = pyo.Set(initialize=range(problem.n_coalitions))
        model.share = pyo.Var(
            model.PLAYERS, bounds=lambda _, i: (None if math.isinf(lower[i]) else lower[i], None)
        )
        model.deviation = pyo.Var(model.PLAYERS, domain=pyo.NonNegativeReals)
        model.excess_limit = pyo.Constraint(
            model.COALITIONS,
            rule=lambda m, r: (
                problem.values[r] - pyo.quicksum(m.share[i] for i in _members(problem, r))
                <= epsilon
            ),
        )
        model.efficiency_equality = pyo.Constraint(
            expr=pyo.quicksum(model.share[i] for i in model.PLAYERS) == problem.grand_value
        )
        model.deviation_above = pyo.Constraint(
            model.PLAYERS, rule=lambda m, i: m.share[i] - target[i] <= m.deviation[i]
        )
        model.deviation_below = pyo.Constraint(
            model.PLAYERS, rule=lambda m, i: target[i] - m.share[i] <= m.deviation[i]
        )
        model.objective = pyo.Objective(
            expr=pyo.quicksum(model.deviation[i] for i in model.PLAYERS), sense=pyo.minimize
        )
        result = solve_model(model, options)
        if not result.has_solution:
            return PointSolution(result, np.full(problem.n_players, math.nan))
        return PointSolution(result, np.array([pyo.value(model.share[i]) for i in model.PLAYERS]))


class MatrixExcessLP(ExcessLPBackend):
    """The same LPs as arrays in one HiGHS object: for thousands of coalition rows."""

    def min_max_excess(self, problem, free, fixed, fixed_excess, options):
        n = problem.n_players
        free_rows = np.flatnonzero(free)
        fixed_rows = np.flatnonzero(fixed)
        a = sp.csr_array(problem.membership)
        # columns: x_0..x_{n-1}, t.  free rows: x(S) + t >= v(S); fixed rows: x(S) = v(S) - e_S
        matrix = sp.block_array([
            [a[free_rows], np.ones((len(free_rows), 1))],
            [a[fixed_rows], None],
            [np.ones((1, n)), None],
        ], format="csc")
        fixed_rhs = problem.values[fixed_rows] - fixed_excess[fixed_rows]
        row_lower = np.concatenate([problem.values[free_rows], fixed_rhs, [problem.grand_value]])
        row_upper = np.concatenate(
            [np.full(len(free_rows), np.inf), fixed_rhs, [problem.grand_value]]
        )
        lower, upper = _share_bounds(problem)
        cost = np.zeros(n + 1)
        cost[n] = 1.0
        solution = _solve_matrix(
            matrix,
            row_lower,
            row_upper,
            cost,
            np.append(lower, -np.inf),
            np.append(upper, np.inf),
            options,
        )
        duals = np.zeros(problem.n_coalitions)
        if not solution.result.has_solution:
            return StageSolution(solution.result, math.nan, np.full(n, math.nan), duals)
        if len(solution.row_duals):
            duals[free_rows] = np.abs(solution.row_duals[: len(free_rows)])
        return StageSolution(solution.result, float(solution.x[n]), solution.x[:n].copy(), duals)

    def nearest_point(self, problem, epsilon, target, options):
        n = problem.n_players
        m = problem.n_coalitions
        # columns: x (n), d (n).  rows: coalitions, efficiency, d_i - x_i >= -t_i, d_i + x_i >= t_i
        eye = sp.eye_array(n)
        matrix = sp.block_array([
            [sp.csr_array(problem.membership), None],
            [np.ones((1, n)), None],
            [-eye, eye],
            [eye, eye],
        ], format="csc")
        target = np.asarray(target, float)
        row_lower = np.concatenate(
            [problem.values - epsilon, [problem.grand_value], -target, target]
        )
        row_upper = np.concatenate(
            [np.full(m, np.inf), [problem.grand_value], np.full(2 * n, np.inf)]
        )
        lower, upper = _share_bounds(problem)
        cost = np.concatenate([np.zeros(n), np.ones(n)])
        solution = _solve_matrix(
            matrix,
            row_lower,
            row_upper,
            cost,
            np.concatenate([lower, np.zeros(n)]),
            np.concatenate([upper, np.full(n, np.inf)]),
            options,
        )
        if not solution.result.has_solution:
            return PointSolution(solution.result, np.full(n, math.nan))
        return PointSolution(solution.result, solution.x[:n].copy())


def _solve_matrix(matrix: sp.csc_array, row_lower, row_upper, cost, col_lower, col_upper,
                  options):
    """One LP from a scipy CSC matrix (its indptr/indices/data are HiGHS's column-wise form)."""
    lp = MatrixLP(options)
    lp.add_rows(row_lower, row_upper)
    lp.add_columns(cost, col_lower, col_upper, matrix.indptr, matrix.indices, matrix.data)
    return lp.solve()


EXCESS_LP_BACKENDS: dict[str, type[ExcessLPBackend]] = {
    "pyomo": PyomoExcessLP,
    "matrix": MatrixExcessLP,
}
