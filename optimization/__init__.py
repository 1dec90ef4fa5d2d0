"""Pyomo models and the HiGHS solver wrapper; arrays in, arrays out, no project imports."""

from optimization.allocation import build_allocation_model, solve_allocation_pyomo
from optimization.problem import AllocationProblem, AllocationSolution
from optimization.solve import ALLOCATION_METHODS, SOLVE_METHODS, solve_allocation
from optimization.solver import SolveResult, SolverOptions, SolveStatus

__all__ = [
    "ALLOCATION_METHODS",
    "SOLVE_METHODS",
    "AllocationProblem",
    "AllocationSolution",
    "SolveResult",
    "SolveStatus",
    "SolverOptions",
    "build_allocation_model",
    "solve_allocation",
    "solve_allocation_pyomo",
]
