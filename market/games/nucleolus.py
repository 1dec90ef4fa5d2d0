"""Nucleolus and prenucleolus by sequential LPs (Maschler, Peleg & Shapley 1979).

Work on the profit form v of the game (see :mod:`market.games.game`), excess
e(S, x) = v(S) - x(S) over the proper non-empty coalitions S. The nucleolus is the allocation
whose vector of excesses, sorted in decreasing order, is lexicographically smallest over the
imputations {x : x(N) = v(N), x_i >= v({i})}; the prenucleolus does the same over all x with
x(N) = v(N).

Stage k solves (F = fixed coalitions with their excess e_S, R = free coalitions)

    t_k = min_{x,t} t   s.t.  v(S) - x(S) <= t (S in R),  v(S) - x(S) = e_S (S in F),
                              x(N) = v(N),  [x_i >= v({i})  for the nucleolus].

Which coalitions to fix after a stage is where published codes go wrong (Guajardo & Jörnsten
2015): a coalition tight at *one* optimum need not be tight at all of them. We fix exactly the
free coalitions whose excess-limit dual is positive: by complementary slackness their excess is
t_k at *every* optimum, so fixing them loses nothing. The duals of the free rows sum to 1, so
at least one coalition is fixed per stage. A free coalition whose characteristic vector is in
the span of the fixed ones (and of N) has its excess determined, so it leaves R too. Each stage
thus raises the rank of the fixed family by at least one; at rank n the allocation is unique
and is read off the fixed equalities. Repeated levels t_{k+1} = t_k are normal (ties).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from market.games.game import Game, membership_matrix
from optimization.excess_lp import EXCESS_LP_BACKENDS, ExcessProblem
from optimization.solver import SolverError, SolverOptions, SolveStatus

DEFAULT_BACKEND = "matrix"
_DUAL_TOLERANCE = 1e-7  # duals of the free rows sum to 1: anything below this is solver noise
_TIGHT_TOLERANCE = 1e-6  # on the normalised game (max |v| = 1)
_SPAN_TOLERANCE = 1e-7  # residual norm of a 0/1 row outside the span is far larger


class EmptyImputationSetError(ValueError):
    """sum_i v({i}) > v(N): there is no imputation, so no nucleolus (the prenucleolus exists)."""


@dataclass(frozen=True, eq=False)
class NucleolusResult:
    """shares: in the game's own kind (cost shares for a cost game).

    levels: the distinct-stage excess levels t_1 >= t_2 >= ..., in profit-form excess units
    (for a cost game that is x(S) - c(S): positive means S pays more than alone).
    """

    shares: np.ndarray
    levels: tuple[float, ...]
    lp_count: int


def nucleolus(
    game: Game, *, options: SolverOptions | None = None, backend: str = DEFAULT_BACKEND
) -> NucleolusResult:
    """The nucleolus (over imputations). Raises :class:`EmptyImputationSetError` if none exist."""
    profit = game.profit_form()
    standalone = profit.standalone_values
    if standalone.sum() > profit.grand_value + _scale(profit) * 1e-9:
        total = abs(float(standalone.sum()))
        relation = "less" if game.kind.value == "cost" else "more"
        raise EmptyImputationSetError(
            f"standalone values sum to {total:g}, {relation} than v(N) = {game.grand_value:g}, "
            "so no allocation is individually rational (no imputation; see least-core)"
        )
    return _sequential_lp(game, standalone, options or SolverOptions(), backend)


def prenucleolus(
    game: Game, *, options: SolverOptions | None = None, backend: str = DEFAULT_BACKEND
) -> NucleolusResult:
    """The prenucleolus (over pre-imputations: no individual-rationality bounds)."""
    return _sequential_lp(game, None, options or SolverOptions(), backend)


def _scale(profit: Game) -> float:
    return max(1.0, float(np.max(np.abs(profit.values))))


def _sequential_lp(
    game: Game, lower_bounds: np.ndarray | None, options: SolverOptions, backend_name: str
) -> NucleolusResult:
    profit = game.profit_form()
    n = game.n_players
    if n == 1:
        return NucleolusResult(game.values[1:2].copy(), (), 0)
    # normalise so tolerances are relative; the nucleolus is covariant with scaling
    scale = _scale(profit)
    masks = np.arange(1, profit.grand_coalition, dtype=np.int64)
    membership = membership_matrix(masks, n)
    problem = ExcessProblem(
        membership=membership,
        values=profit.values[masks] / scale,
        grand_value=profit.grand_value / scale,
        lower_bounds=None if lower_bounds is None else lower_bounds / scale,
    )
    backend = EXCESS_LP_BACKENDS[backend_name]()
    free = np.ones(len(masks), dtype=bool)
    fixed = np.zeros(len(masks), dtype=bool)
    fixed_excess = np.zeros(len(masks))
    basis = [np.ones(n) / math.sqrt(n)]  # orthonormal basis of span{1_N} + fixed rows
    levels: list[float] = []
    lp_count = 0
    shares = np.full(n, math.nan)
    while len(basis) < n and free.any():
        stage = backend.min_max_excess(problem, free, fixed, fixed_excess, options)
        lp_count += 1
        if stage.result.status is not SolveStatus.OPTIMAL:
            raise SolverError(
                f"nucleolus stage {lp_count}: {stage.result.status.value} ({stage.result.message})"
            )
        shares = stage.shares
        level = stage.max_excess
        slack = level - (problem.values - membership @ shares)
        forced = free & (stage.excess_duals > _DUAL_TOLERANCE) & (slack <= _TIGHT_TOLERANCE)
        if not forced.any():
            # duals below the noise floor everywhere: fall back to the largest tight dual
            candidates = np.where(free & (slack <= _TIGHT_TOLERANCE), stage.excess_duals, -1.0)
            forced = np.zeros_like(free)
            forced[int(np.argmax(candidates))] = True
        if not levels or level < levels[-1] - _TIGHT_TOLERANCE:
            levels.append(level + 0.0)  # + 0.0 turns a -0.0 from the solver into 0.0
        # independent forced rows become equalities; dependent ones are determined already
        for row in np.flatnonzero(forced)[np.argsort(-stage.excess_duals[forced])]:
            residual = _residual(membership[row], basis)
            if np.linalg.norm(residual) > _SPAN_TOLERANCE:
                basis.append(residual / np.linalg.norm(residual))
                fixed[row] = True
                fixed_excess[row] = level
        free &= ~forced
        free &= ~_in_span(membership, basis)
    if len(basis) == n:
        shares = _solve_fixed_system(problem, fixed, fixed_excess)
    return NucleolusResult(
        shares=game.to_kind_allocation(shares * scale),
        levels=tuple(level * scale for level in levels),
        lp_count=lp_count,
    )


def _residual(vector: np.ndarray, basis: list[np.ndarray]) -> np.ndarray:
    residual = vector.astype(float).copy()
    for direction in basis:
        residual -= (residual @ direction) * direction
    return residual


def _in_span(membership: np.ndarray, basis: list[np.ndarray]) -> np.ndarray:
    q = np.array(basis)  # (r, n), orthonormal rows
    residual = membership - (membership @ q.T) @ q
    return np.linalg.norm(residual, axis=1) <= _SPAN_TOLERANCE


def _solve_fixed_system(problem: ExcessProblem, fixed: np.ndarray, fixed_excess: np.ndarray):
    """x from the n independent equalities x(N) = v(N), x(S) = v(S) - e_S (cleaner than LP x)."""
    rows = np.vstack([np.ones(problem.n_players), problem.membership[fixed]])
    rhs = np.concatenate([[problem.grand_value], problem.values[fixed] - fixed_excess[fixed]])
    return np.linalg.solve(rows, rhs)
