"""Checks on an allocation (efficiency, individual rationality, core, largest excess) and a
report that applies several rules to one game."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from market.games.core import largest_excess, least_core_epsilon, tolerance
from market.games.game import Game
from market.games.rules import Allocation, RuleNotApplicableError, RuleSettings, allocate


@dataclass(frozen=True)
class AllocationDiagnostics:
    """max_excess: largest e(S, x) over proper coalitions S (profit form; for a cost game
    x(S) - c(S), what S pays beyond its standalone cost). Positive means S would rather leave."""

    efficient: bool
    efficiency_gap: float  # sum_i x_i - v(N)
    individually_rational: bool
    in_core: bool
    max_excess: float
    max_excess_coalition: tuple[str, ...]

    def as_dict(self) -> dict:
        return {
            "efficient": self.efficient,
            "efficiency_gap": self.efficiency_gap,
            "individually_rational": self.individually_rational,
            "in_core": self.in_core,
            "max_excess": self.max_excess,
            "max_excess_coalition": list(self.max_excess_coalition),
        }


def diagnose(game: Game, shares: np.ndarray) -> AllocationDiagnostics:
    shares = np.asarray(shares, dtype=float)
    tol = tolerance(game)
    gap = float(shares.sum() - game.grand_value)
    # individual rationality in profit form: y_i >= v({i})  (cost: x_i <= c({i}))
    profit_shares = game.from_kind_allocation(shares)
    rational = bool(np.all(profit_shares >= game.profit_form().standalone_values - tol))
    excess, mask = largest_excess(game, shares)
    efficient = abs(gap) <= tol
    return AllocationDiagnostics(
        efficient=efficient,
        efficiency_gap=gap,
        individually_rational=rational,
        in_core=efficient and excess <= tol,
        max_excess=excess,
        max_excess_coalition=game.members(mask),
    )


@dataclass(frozen=True)
class RuleOutcome:
    """One rule on one game: an allocation with its diagnostics, or why there is none."""

    rule: str
    allocation: Allocation | None
    diagnostics: AllocationDiagnostics | None
    not_applicable: str = ""


@dataclass(frozen=True)
class GameReport:
    game: Game
    least_core_epsilon: float
    core_empty: bool
    outcomes: tuple[RuleOutcome, ...]

    def as_dict(self) -> dict:
        return {
            "players": list(self.game.players),
            "kind": self.game.kind.value,
            "grand_value": self.game.grand_value,
            "core_empty": self.core_empty,
            "least_core_epsilon": self.least_core_epsilon,
            "allocations": {
                o.rule: o.allocation.as_dict() for o in self.outcomes if o.allocation is not None
            },
            "diagnostics": {
                o.rule: o.diagnostics.as_dict() for o in self.outcomes if o.diagnostics is not None
            },
            "not_applicable": {o.rule: o.not_applicable for o in self.outcomes if o.not_applicable},
        }


def compare_rules(
    game: Game, rules: Sequence[str], settings: RuleSettings | None = None
) -> GameReport:
    settings = settings or RuleSettings()
    outcomes = []
    for rule in rules:
        try:
            allocation = allocate(game, rule, settings)
        except RuleNotApplicableError as error:
            outcomes.append(RuleOutcome(rule, None, None, not_applicable=str(error)))
            continue
        outcomes.append(RuleOutcome(rule, allocation, diagnose(game, allocation.shares)))
    epsilon = least_core_epsilon(game, options=settings.solver, backend=settings.lp_backend)
    return GameReport(game, epsilon, epsilon > tolerance(game), tuple(outcomes))
