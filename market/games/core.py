"""Excesses, core membership and the least core.

Profit form throughout (see :mod:`market.games.game`): e(S, x) = v(S) - x(S). For a cost game
that is x(S) - c(S), what S pays beyond its standalone cost. The core is
{x : x(N) = v(N), e(S, x) <= 0 for all S}; the epsilon-core relaxes it to e(S, x) <= epsilon
for the proper non-empty S; the least core is the epsilon-core for the smallest such epsilon
(Maschler, Peleg & Shapley 1979), which is <= 0 exactly when the core is non-empty.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from market.games.game import Game, coalition_sums, membership_matrix
from market.games.nucleolus import prenucleolus
from optimization.excess_lp import EXCESS_LP_BACKENDS, ExcessProblem
from optimization.solver import SolverError, SolverOptions, SolveStatus

DEFAULT_BACKEND = "matrix"


def tolerance(game: Game) -> float:
    """Absolute tolerance for equality/inequality checks, relative to the game's scale."""
    return 1e-7 * max(1.0, float(np.max(np.abs(game.values))))


def excesses(game: Game, shares: np.ndarray) -> np.ndarray:
    """e(S, x) for every bitmask S (entry 0 is the empty coalition, entry 2^n-1 is N)."""
    profit = game.profit_form()
    return profit.values - coalition_sums(game.from_kind_allocation(shares))


def largest_excess(game: Game, shares: np.ndarray) -> tuple[float, int]:
    """max over proper non-empty S of e(S, x), and the (smallest) mask attaining it."""
    if game.n_players == 1:
        return 0.0, 0
    proper = excesses(game, shares)[1 : game.grand_coalition]
    best = int(np.argmax(proper))
    return float(proper[best]), best + 1


def in_core(game: Game, shares: np.ndarray, *, tol: float | None = None) -> bool:
    tol = tolerance(game) if tol is None else tol
    efficient = abs(float(np.sum(shares)) - game.grand_value) <= tol
    return efficient and largest_excess(game, shares)[0] <= tol


@dataclass(frozen=True, eq=False)
class LeastCore:
    """epsilon: the least-core value (profit-form excess units; <= 0 iff the core is non-empty).

    shares: the least core's centre, in the game's own kind. The least core is a set; we
    report its one canonical point, the prenucleolus, which lies in it and lexicographically
    minimises the remaining excesses (an arbitrary LP vertex would make rule comparisons depend
    on the solver).
    """

    epsilon: float
    shares: np.ndarray
    core_empty: bool


def _excess_problem(game: Game) -> tuple[ExcessProblem, float]:
    profit = game.profit_form()
    scale = max(1.0, float(np.max(np.abs(profit.values))))
    masks = np.arange(1, profit.grand_coalition, dtype=np.int64)
    problem = ExcessProblem(
        membership=membership_matrix(masks, game.n_players),
        values=profit.values[masks] / scale,
        grand_value=profit.grand_value / scale,
    )
    return problem, scale


def least_core_epsilon(
    game: Game, *, options: SolverOptions | None = None, backend: str = DEFAULT_BACKEND
) -> float:
    """min epsilon such that {x : x(N) = v(N), e(S, x) <= epsilon for proper S} is non-empty.

    The least-core LP:  min_{x,t} t  s.t.  v(S) - x(S) <= t (proper S),  x(N) = v(N).
    """
    if game.n_players == 1:
        return 0.0  # no proper coalition: the core is {v(N)}
    problem, scale = _excess_problem(game)
    rows = problem.n_coalitions
    stage = EXCESS_LP_BACKENDS[backend]().min_max_excess(
        problem,
        np.ones(rows, bool),
        np.zeros(rows, bool),
        np.zeros(rows),
        options or SolverOptions(),
    )
    if stage.result.status is not SolveStatus.OPTIMAL:
        raise SolverError(f"least-core LP: {stage.result.status.value} ({stage.result.message})")
    return stage.max_excess * scale


def least_core(
    game: Game, *, options: SolverOptions | None = None, backend: str = DEFAULT_BACKEND
) -> LeastCore:
    """The least-core epsilon and the least core's centre (the prenucleolus).

    The prenucleolus's first sequential LP is the least-core LP, so epsilon comes for free.
    """
    if game.n_players == 1:
        return LeastCore(0.0, game.values[1:2].copy(), core_empty=False)
    centre = prenucleolus(game, options=options, backend=backend)
    epsilon = centre.levels[0]
    return LeastCore(epsilon, centre.shares, core_empty=epsilon > tolerance(game))


def nearest_least_core_point(
    game: Game,
    reference: np.ndarray,
    *,
    options: SolverOptions | None = None,
    backend: str = DEFAULT_BACKEND,
) -> np.ndarray:
    """A least-core point nearest (L1) to ``reference`` (shares in the game's own kind).

    E.g. "the most stable allocation closest to the Shapley value". The L1 nearest point need
    not be unique; HiGHS returns one of them.
    """
    options = options or SolverOptions()
    epsilon = least_core_epsilon(game, options=options, backend=backend)
    if game.n_players == 1:
        return game.values[1:2].copy()
    problem, scale = _excess_problem(game)
    target = game.from_kind_allocation(reference) / scale
    point = EXCESS_LP_BACKENDS[backend]().nearest_point(problem, epsilon / scale, target, options)
    if point.result.status is not SolveStatus.OPTIMAL:
        raise SolverError(
            f"least-core point LP: {point.result.status.value} ({point.result.message})"
        )
    return game.to_kind_allocation(point.shares * scale)


def core_is_empty(game: Game, *, options: SolverOptions | None = None) -> bool:
    return least_core_epsilon(game, options=options) > tolerance(game)
