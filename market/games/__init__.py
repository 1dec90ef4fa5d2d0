"""Cooperative game toolkit: any characteristic function given as a table.

The README's "Cooperative games" section explains cost versus savings games and the
``carbonfed game`` command.
"""

from market.games.core import (
    LeastCore,
    core_is_empty,
    excesses,
    in_core,
    largest_excess,
    least_core,
    least_core_epsilon,
    nearest_least_core_point,
    tolerance,
)
from market.games.diagnostics import (
    AllocationDiagnostics,
    GameReport,
    RuleOutcome,
    compare_rules,
    diagnose,
)
from market.games.game import Game, GameKind, coalition_sums
from market.games.nucleolus import (
    EmptyImputationSetError,
    NucleolusResult,
    nucleolus,
    prenucleolus,
)
from market.games.rules import (
    RULES,
    Allocation,
    AllocationRule,
    RuleNotApplicableError,
    RuleSettings,
    allocate,
    equal_split_of_savings,
    proportional_split,
)
from market.games.shapley import ShapleyEstimate, sampled_shapley, shapley_value

__all__ = [
    "RULES",
    "Allocation",
    "AllocationDiagnostics",
    "AllocationRule",
    "EmptyImputationSetError",
    "Game",
    "GameKind",
    "GameReport",
    "LeastCore",
    "NucleolusResult",
    "RuleNotApplicableError",
    "RuleOutcome",
    "RuleSettings",
    "ShapleyEstimate",
    "allocate",
    "coalition_sums",
    "compare_rules",
    "core_is_empty",
    "diagnose",
    "equal_split_of_savings",
    "excesses",
    "in_core",
    "largest_excess",
    "least_core",
    "least_core_epsilon",
    "nearest_least_core_point",
    "nucleolus",
    "prenucleolus",
    "proportional_split",
    "sampled_shapley",
    "shapley_value",
    "tolerance",
]
