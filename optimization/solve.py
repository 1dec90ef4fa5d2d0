"""Choosing how to solve an allocation problem: a registry of methods."""

from __future__ import annotations

from collections.abc import Callable

from optimization.allocation import solve_allocation_pyomo
from optimization.lp_guided import solve_allocation_lp_guided
from optimization.problem import AllocationProblem, AllocationSolution
from optimization.solver import SolverOptions

# Below this, Pyomo build time is negligible and the reference model answers directly.
AUTO_FULL_MAX_OPTIONS = 1_000

ALLOCATION_METHODS: dict[str, Callable[[AllocationProblem, SolverOptions], AllocationSolution]] = {
    "full": solve_allocation_pyomo,
    "lp-guided": solve_allocation_lp_guided,
}

# What a scenario or the live broker may name: a registered method, or "auto" to pick one.
SOLVE_METHODS = ("auto", *ALLOCATION_METHODS)


def solve_allocation(
    problem: AllocationProblem, options: SolverOptions, method: str = "auto"
) -> AllocationSolution:
    """Solve with the named method; ``auto`` picks the full model (small) or the scalable one.

    The full Pyomo model is the reference formulation; LP-guided (highspy matrices) scales to
    hundreds of thousands of options and avoids Pyomo's per-nonzero build cost on the many
    small rounds of a simulation (tests hold the two to the same optimum, with and without a
    carbon cap). Both start from the greedy plan, so every round returns a feasible plan
    within its time limit (FEASIBLE when the limit hit before the MIP gap was proven).
    """
    if method == "auto":
        method = "full" if problem.n_options <= AUTO_FULL_MAX_OPTIONS else "lp-guided"
    return ALLOCATION_METHODS[method](problem, options)
