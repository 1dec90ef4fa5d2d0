"""Pyomo models and the HiGHS solver wrapper; arrays in, arrays out, no project imports.

The Pyomo allocation model (``build_allocation_model``, ``solve_allocation_pyomo``) lives in
``optimization.allocation``, imported from there: importing Pyomo is slow, and the package's
hot paths (matrices and highspy) do not need it.
"""

from optimization.duals import AllocationDuals, allocation_lp_duals
from optimization.greedy import greedy_allocation
from optimization.problem import AllocationProblem, AllocationSolution, breakdown_usd
from optimization.solve import ALLOCATION_METHODS, SOLVE_METHODS, solve_allocation
from optimization.solver import SolveResult, SolverOptions, SolveStatus
from optimization.status import relative_gap

__all__ = [
    "ALLOCATION_METHODS",
    "SOLVE_METHODS",
    "AllocationDuals",
    "AllocationProblem",
    "AllocationSolution",
    "SolveResult",
    "SolveStatus",
    "SolverOptions",
    "allocation_lp_duals",
    "breakdown_usd",
    "greedy_allocation",
    "relative_gap",
    "solve_allocation",
]
