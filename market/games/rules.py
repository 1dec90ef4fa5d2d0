"""Sharing rules: a registry name -> rule class, each turning a Game into an Allocation.

Every rule returns shares in the game's own kind: a cost game gets each player's share of
c(N), a profit game each player's share of v(N).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from market.games.core import least_core
from market.games.game import Game
from market.games.nucleolus import EmptyImputationSetError, nucleolus
from market.games.shapley import shapley_value
from optimization.solver import SolverOptions


class RuleNotApplicableError(ValueError):
    """The rule has no answer for this game (e.g. no imputations for the nucleolus)."""


@dataclass(frozen=True)
class RuleSettings:
    """Inputs some rules need. ``weights`` (per player, in game order) are for ``proportional``;
    None means the standalone values v({i}) (standalone cost for a cost game)."""

    weights: tuple[float, ...] | None = None
    solver: SolverOptions = field(default_factory=SolverOptions)
    lp_backend: str = "matrix"


@dataclass(frozen=True, eq=False)
class Allocation:
    rule: str
    players: tuple[str, ...]
    shares: np.ndarray
    note: str = ""

    def as_dict(self) -> dict[str, float]:
        return {
            player: float(share) for player, share in zip(self.players, self.shares, strict=True)
        }


def proportional_split(game: Game, weights: np.ndarray | None = None) -> np.ndarray:
    """x_i = v(N) * w_i / sum_j w_j; default weights are the standalone values v({i}).

    Weights must be finite, >= 0 and not all zero.
    """
    weights = game.standalone_values if weights is None else np.asarray(weights, dtype=float)
    if weights.shape != (game.n_players,):
        raise RuleNotApplicableError(
            f"need one weight per player ({game.n_players}), got {weights.shape[0]}"
        )
    if not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
        raise RuleNotApplicableError(
            f"weights must be >= 0 with a positive sum, got {np.round(weights, 6).tolist()}"
        )
    return game.grand_value * weights / weights.sum()


def equal_split_of_savings(game: Game) -> np.ndarray:
    """Everyone gets its standalone value plus an equal share of what cooperation adds.

    cost: x_i = c({i}) - s(N)/n with s(N) = sum_j c({j}) - c(N);
    profit: x_i = v({i}) + (v(N) - sum_j v({j}))/n.
    """
    savings = game.savings_game()
    return game.allocation_from_savings(
        np.full(game.n_players, savings.grand_value / game.n_players)
    )


class AllocationRule(ABC):
    summary: str = ""

    @abstractmethod
    def shares(self, game: Game, settings: RuleSettings) -> tuple[np.ndarray, str]:
        """(shares in the game's kind, a short note or "")."""


class ShapleyRule(AllocationRule):
    summary = "Shapley value (exact, average marginal contribution)"

    def shares(self, game, settings):
        return shapley_value(game), ""


class NucleolusRule(AllocationRule):
    summary = "nucleolus (lexicographically smallest excesses over imputations)"

    def shares(self, game, settings):
        try:
            result = nucleolus(game, options=settings.solver, backend=settings.lp_backend)
        except EmptyImputationSetError as error:
            raise RuleNotApplicableError(str(error)) from error
        return result.shares, f"{result.lp_count} LPs"


class LeastCoreRule(AllocationRule):
    summary = "least core's centre (the prenucleolus), with the least-core epsilon"

    def shares(self, game, settings):
        result = least_core(game, options=settings.solver, backend=settings.lp_backend)
        return result.shares, f"epsilon = {result.epsilon:.6g}"


class ProportionalRule(AllocationRule):
    summary = "v(N) split in proportion to weights (default: standalone values)"

    def shares(self, game, settings):
        weights = None if settings.weights is None else np.asarray(settings.weights, dtype=float)
        source = "standalone values" if weights is None else "given weights"
        return proportional_split(game, weights), f"weights: {source}"


class EqualSplitRule(AllocationRule):
    summary = "standalone value plus an equal share of the savings"

    def shares(self, game, settings):
        return equal_split_of_savings(game), ""


RULES: dict[str, type[AllocationRule]] = {
    "shapley": ShapleyRule,
    "nucleolus": NucleolusRule,
    "least-core": LeastCoreRule,
    "proportional": ProportionalRule,
    "equal": EqualSplitRule,
}


def allocate(game: Game, rule: str, settings: RuleSettings | None = None) -> Allocation:
    """Apply the registered rule ``rule``; raises RuleNotApplicableError when it has no answer."""
    if rule not in RULES:
        raise KeyError(f"unknown rule {rule!r}; known: {', '.join(RULES)}")
    shares, note = RULES[rule]().shares(game, settings or RuleSettings())
    return Allocation(rule=rule, players=game.players, shares=np.asarray(shares, float), note=note)
