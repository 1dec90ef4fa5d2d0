"""The one place that talks to HiGHS.

Every solve sets a time limit, a relative MIP gap and a thread count, checks the termination
status and maps it to :class:`SolveStatus`, so callers never see a solver-specific object.

Two paths:

* :func:`solve_model` solves a Pyomo model through Pyomo's APPSI HiGHS interface (a fresh
  ``Highs`` object per call, so HiGHS's cumulative run clock never eats the next budget).
* :class:`MatrixLP` keeps one ``highspy.Highs`` object for the hot loops that re-solve one LP
  many times (column generation, coalition sweeps). HiGHS compares ``time_limit`` with the
  object's cumulative run time, so before each solve we set it to "run time so far + budget".
"""

from __future__ import annotations

import enum
import math
import time
from dataclasses import dataclass, field

import highspy
import numpy as np
import pyomo.environ as pyo
from pyomo.contrib.appsi.base import TerminationCondition
from pyomo.contrib.appsi.solvers import Highs as AppsiHighs


@dataclass(frozen=True)
class SolverOptions:
    """Limits applied to every solve."""

    time_limit_s: float = 30.0
    mip_gap: float = 0.01
    threads: int = 1

    def __post_init__(self) -> None:
        if not self.time_limit_s > 0:
            raise ValueError(f"time_limit_s must be > 0, got {self.time_limit_s}")
        if not 0 <= self.mip_gap < 1:
            raise ValueError(f"mip_gap must be in [0, 1), got {self.mip_gap}")
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")


class SolveStatus(enum.Enum):
    OPTIMAL = "optimal"  # proven within the requested gap
    FEASIBLE = "feasible"  # a limit was hit; the incumbent is usable but not proven
    INFEASIBLE = "infeasible"
    UNBOUNDED = "unbounded"
    NO_SOLUTION = "no_solution"  # a limit was hit before any feasible point was found
    ERROR = "error"

    @property
    def has_solution(self) -> bool:
        return self in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)


@dataclass(frozen=True)
class SolveResult:
    status: SolveStatus
    objective: float = math.nan
    bound: float = math.nan
    solve_time_s: float = 0.0
    message: str = ""
    duals: dict = field(default_factory=dict)

    @property
    def has_solution(self) -> bool:
        return self.status.has_solution

    @property
    def gap(self) -> float:
        """Relative gap between incumbent and bound, as HiGHS defines it (|obj - bound| / |obj|)."""
        if not (math.isfinite(self.objective) and math.isfinite(self.bound)):
            return math.inf
        if self.objective == self.bound:
            return 0.0
        return abs(self.objective - self.bound) / max(abs(self.objective), 1e-12)


class SolverError(RuntimeError):
    """A solve ended without a usable answer where the caller required one."""


_APPSI_STATUS = {
    TerminationCondition.optimal: SolveStatus.OPTIMAL,
    TerminationCondition.infeasible: SolveStatus.INFEASIBLE,
    TerminationCondition.unbounded: SolveStatus.UNBOUNDED,
    TerminationCondition.infeasibleOrUnbounded: SolveStatus.INFEASIBLE,
    TerminationCondition.maxTimeLimit: SolveStatus.NO_SOLUTION,
    TerminationCondition.maxIterations: SolveStatus.NO_SOLUTION,
    TerminationCondition.objectiveLimit: SolveStatus.NO_SOLUTION,
    TerminationCondition.interrupted: SolveStatus.NO_SOLUTION,
}


def solve_model(
    model: pyo.ConcreteModel,
    options: SolverOptions,
    *,
    relax_integrality: bool = False,
    duals: bool = False,
    warmstart: bool = False,
) -> SolveResult:
    """Solve ``model`` with HiGHS; on success load the variable values into it.

    ``duals=True`` returns the constraint duals (an LP, or ``relax_integrality=True``) keyed by
    constraint data object. ``warmstart=True`` hands the variables' current values to HiGHS as
    a starting solution.
    """
    solver = AppsiHighs()
    solver.config.time_limit = options.time_limit_s
    solver.config.mip_gap = options.mip_gap
    solver.config.load_solution = False
    solver.config.warmstart = warmstart
    solver.highs_options = {"threads": options.threads, "output_flag": False}
    started = time.perf_counter()
    # APPSI's HiGHS ignores its relax_integrality option (it returns the MIP optimum), so
    # relax the integer variables in the model itself and put them back afterwards.
    relaxation = pyo.TransformationFactory("core.relax_integer_vars")
    undo = relaxation.apply_to(model, reverse=None) if relax_integrality else None
    try:
        results = solver.solve(model)
    except Exception as error:  # HiGHS or the interface failed: report, never crash the caller
        return SolveResult(SolveStatus.ERROR, message=f"{type(error).__name__}: {error}")
    finally:
        if undo is not None:
            relaxation.apply_to(model, reverse=undo)
    elapsed = time.perf_counter() - started

    status = _APPSI_STATUS.get(results.termination_condition, SolveStatus.ERROR)
    objective = results.best_feasible_objective
    has_incumbent = objective is not None and math.isfinite(objective)
    if status is SolveStatus.NO_SOLUTION and has_incumbent:
        status = SolveStatus.FEASIBLE
    if status.has_solution:
        results.solution_loader.load_vars()
    bound = results.best_objective_bound
    dual_values = results.solution_loader.get_duals() if (duals and status.has_solution) else {}
    return SolveResult(
        status=status,
        objective=float(objective) if has_incumbent else math.nan,
        bound=float(bound) if bound is not None else math.nan,
        solve_time_s=elapsed,
        message=str(results.termination_condition),
        duals=dict(dual_values),
    )


_HIGHS_STATUS = {
    highspy.HighsModelStatus.kOptimal: SolveStatus.OPTIMAL,
    highspy.HighsModelStatus.kInfeasible: SolveStatus.INFEASIBLE,
    highspy.HighsModelStatus.kUnbounded: SolveStatus.UNBOUNDED,
    highspy.HighsModelStatus.kUnboundedOrInfeasible: SolveStatus.INFEASIBLE,
    highspy.HighsModelStatus.kTimeLimit: SolveStatus.NO_SOLUTION,
    highspy.HighsModelStatus.kIterationLimit: SolveStatus.NO_SOLUTION,
    highspy.HighsModelStatus.kSolutionLimit: SolveStatus.NO_SOLUTION,
    highspy.HighsModelStatus.kInterrupt: SolveStatus.NO_SOLUTION,
}


@dataclass(frozen=True)
class MatrixSolution:
    result: SolveResult
    x: np.ndarray  # column values
    row_duals: np.ndarray  # one per row (empty for a MIP)


class MatrixLP:
    """A min-cost LP/MIP held in one ``highspy.Highs`` object, for fast repeated solves.

    minimise c'x  s.t.  row_lower <= A x <= row_upper,  col_lower <= x <= col_upper.
    Columns can be appended (column generation) and their bounds changed between solves.
    """

    def __init__(self, options: SolverOptions) -> None:
        self.options = options
        self._highs = highspy.Highs()
        self._highs.setOptionValue("output_flag", False)
        self._highs.setOptionValue("threads", options.threads)
        self._highs.setOptionValue("mip_rel_gap", options.mip_gap)
        self.solve_s = 0.0  # time inside HiGHS over all solves, to split build from solve

    @property
    def num_cols(self) -> int:
        return self._highs.getNumCol()

    @property
    def num_rows(self) -> int:
        return self._highs.getNumRow()

    def add_rows(self, lower: np.ndarray, upper: np.ndarray) -> None:
        """Append empty rows (their coefficients arrive with the columns)."""
        n = len(lower)
        self._highs.addRows(
            n, np.asarray(lower, float), np.asarray(upper, float), 0,
            np.zeros(n, np.int32), np.array([], np.int32), np.array([], float),
        )

    def add_columns(
        self,
        cost: np.ndarray,
        lower: np.ndarray,
        upper: np.ndarray,
        col_starts: np.ndarray,
        row_index: np.ndarray,
        values: np.ndarray,
        *,
        integer: bool = False,
    ) -> None:
        """Append columns given in compressed-sparse-column form (starts, row indices, values)."""
        first = self.num_cols
        n = len(cost)
        self._highs.addCols(
            n, np.asarray(cost, float), np.asarray(lower, float), np.asarray(upper, float),
            len(values), np.asarray(col_starts, np.int32), np.asarray(row_index, np.int32),
            np.asarray(values, float),
        )
        if integer and n:
            kinds = np.full(n, highspy.HighsVarType.kInteger)
            self._highs.changeColsIntegrality(n, np.arange(first, first + n, dtype=np.int32), kinds)

    def change_column_bounds(self, columns: np.ndarray, lower: np.ndarray,
                             upper: np.ndarray) -> None:
        """Fix or free columns between solves (the basis is kept for a warm start)."""
        columns = np.asarray(columns, np.int32)
        self._highs.changeColsBounds(len(columns), columns, np.asarray(lower, float),
                                     np.asarray(upper, float))

    def set_integrality(self, integer: bool) -> None:
        """Switch every column between continuous (LP) and integer (MIP)."""
        n = self.num_cols
        kind = highspy.HighsVarType.kInteger if integer else highspy.HighsVarType.kContinuous
        self._highs.changeColsIntegrality(
            n, np.arange(n, dtype=np.int32), np.full(n, kind)
        )

    def set_solution(self, x: np.ndarray) -> None:
        """Offer a starting point (a feasible MIP solution) to the next solve."""
        solution = highspy.HighsSolution()
        solution.col_value = list(np.asarray(x, float))
        solution.value_valid = True
        self._highs.setSolution(solution)

    def solve(self, time_limit_s: float | None = None) -> MatrixSolution:
        budget = self.options.time_limit_s if time_limit_s is None else time_limit_s
        # HiGHS's clock is cumulative per object: give this solve its own budget on top.
        self._highs.setOptionValue("time_limit", self._highs.getRunTime() + budget)
        started = time.perf_counter()
        self._highs.run()
        elapsed = time.perf_counter() - started
        self.solve_s += elapsed
        model_status = self._highs.getModelStatus()
        status = _HIGHS_STATUS.get(model_status, SolveStatus.ERROR)
        info = self._highs.getInfo()
        solution = self._highs.getSolution()
        is_mip = info.mip_node_count >= 0 and self._has_integers()
        has_incumbent = info.primal_solution_status == 2  # kSolutionStatusFeasible
        if status is SolveStatus.NO_SOLUTION and has_incumbent:
            status = SolveStatus.FEASIBLE
        objective = info.objective_function_value if status.has_solution else math.nan
        bound = info.mip_dual_bound if is_mip else objective
        x = np.asarray(solution.col_value) if status.has_solution else np.empty(0)
        duals = (
            np.asarray(solution.row_dual)
            if status.has_solution and not is_mip and solution.dual_valid
            else np.empty(0)
        )
        result = SolveResult(
            status=status,
            objective=float(objective),
            bound=float(bound),
            solve_time_s=elapsed,
            message=self._highs.modelStatusToString(model_status),
        )
        return MatrixSolution(result=result, x=x, row_duals=duals)

    def _has_integers(self) -> bool:
        lp = self._highs.getLp()
        return bool(len(lp.integrality_)) and any(
            k == highspy.HighsVarType.kInteger for k in lp.integrality_
        )
