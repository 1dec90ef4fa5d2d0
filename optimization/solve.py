"""Choosing how to solve an allocation problem: a registry of methods."""

from __future__ import annotations

from collections.abc import Callable

from optimization.lp_guided import solve_allocation_lp_guided
from optimization.problem import AllocationProblem, AllocationSolution
from optimization.solver import SolverOptions

# ``auto`` uses the full Pyomo model up to this many options. It was 1,000; with the planner's
# presolve the rounds left are small but many, and Pyomo's build dominated them: on `default`
# the milp policy took 4.1 s of CPU that way and 1.75 s with lp-guided on every round, at
# the same 1% gap (total cost 122.42 against 122.74 USD). The full model stays the reference
# (tests hold the two equal) and can be asked for by name.
AUTO_FULL_MAX_OPTIONS = 0

def solve_allocation_full(problem: AllocationProblem, options: SolverOptions) -> AllocationSolution:
    """The full Pyomo model (``optimization.allocation``, imported only when asked for: see
    ``optimization.solver.solve_model``)."""
    from optimization.allocation import solve_allocation_pyomo

    return solve_allocation_pyomo(problem, options)


ALLOCATION_METHODS: dict[str, Callable[[AllocationProblem, SolverOptions], AllocationSolution]] = {
    "full": solve_allocation_full,
    "lp-guided": solve_allocation_lp_guided,
}

# What a scenario or the live broker may name: a registered method, or "auto" to pick one.
SOLVE_METHODS = ("auto", *ALLOCATION_METHODS)


def solve_allocation(
    problem: AllocationProblem, options: SolverOptions, method: str = "auto"
) -> AllocationSolution:
    """Solve with the named method; ``auto`` picks lp-guided (see ``AUTO_FULL_MAX_OPTIONS``).

    The full Pyomo model is the reference formulation; LP-guided (highspy matrices) scales to
    hundreds of thousands of options and avoids Pyomo's per-nonzero build cost on the many
    small rounds of a simulation (tests hold the two to the same optimum, with and without a
    carbon cap). Both start from the greedy plan, so every round returns a feasible plan
    within its time limit (FEASIBLE when the limit hit before the MIP gap was proven).
    """
    if method == "auto":
        method = "full" if problem.n_options <= AUTO_FULL_MAX_OPTIONS else "lp-guided"
    return ALLOCATION_METHODS[method](problem, options)
