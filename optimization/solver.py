"""The one place that talks to HiGHS.

Every solve sets a deterministic work budget (simplex iterations per LP, branch-and-bound nodes
per MIP), a relative MIP gap, a thread count and a wall-clock safety net (:class:`SolverOptions`),
checks the termination status and maps it to :class:`SolveStatus` through one table
(``HIGHS_STATUS``, read by :func:`result_from_highs` for both paths), so callers never see a
solver-specific object. A solve the safety net stopped says so (``SolveResult.time_limit_hit``):
its answer depends on the machine's speed and load.

Two paths:

* :func:`solve_model` solves a Pyomo model through Pyomo's APPSI HiGHS interface (a fresh
  ``Highs`` object per call, so HiGHS's cumulative run clock never eats the next budget).
* :class:`MatrixLP` keeps one ``highspy.Highs`` object for the hot loops that re-solve one LP
  many times (column generation, coalition sweeps). HiGHS compares ``time_limit`` with the
  object's cumulative run time, so before each solve we set it to "run time so far + budget".

Failures, the same on both paths: what HiGHS reports as a failure (HiGHS not available, ``run``
returning ``kError``, a model status of the error family: load, model, presolve, solve or
postsolve error, memory limit, unknown) becomes a :class:`SolveResult` with
``SolveStatus.ERROR`` and HiGHS's message; the caller decides (the allocation methods fall
back to their greedy plan). Python exceptions are *not* caught: they come from our side (a
nonlinear expression, arrays of the wrong shape or type) and swallowing them would turn a bug
into rounds that silently defer every job.
"""

from __future__ import annotations

import ctypes
import logging
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import highspy
import numpy as np

from optimization.status import SolveStatus, relative_gap

if TYPE_CHECKING:
    import pyomo.environ as pyo

__all__ = [
    "HIGHS_STATUS",
    "MatrixLP",
    "MatrixSolution",
    "SafetyNet",
    "SolveResult",
    "SolveStatus",
    "SolverError",
    "SolverOptions",
    "relative_gap",
    "result_from_highs",
    "solve_model",
]


# HiGHS's algorithm for an LP solve, by name (``SolverOptions.lp_method``); a MIP always gets
# HiGHS's own choice, since forcing ``solver`` on a MIP makes HiGHS drop its integrality.
# Dual simplex is the default on evidence: on the 5000x20x24 round, column generation's LP
# reached 3,388 USD (Lagrangian bound 3,131) in 120 s with it, against 3,825 with primal
# simplex and 4,088 with IPM, neither with a bound above the trivial one
# (``bench/allocation.py --lp-methods``, docs/benchmarks.md).
LP_METHODS: dict[str, dict[str, Any]] = {
    "dual": {"solver": "simplex", "simplex_strategy": 1},
    "primal": {"solver": "simplex", "simplex_strategy": 4},
    "ipm": {"solver": "ipm", "run_crossover": "on"},
    "pdlp": {"solver": "pdlp"},
}
MIP_METHOD: dict[str, Any] = {"solver": "choose", "simplex_strategy": 1}


@dataclass(frozen=True)
class SolverOptions:
    """What one solve may spend, written once: every default of the solver lives here.

    Reproducible results (the same scenario and seed give the same plans on any machine at any
    load) need every limit that can end a solve to count *work*, never seconds:

    * ``lp_iteration_limit``: simplex iterations one LP solve may take (HiGHS's
      ``simplex_iteration_limit``; it does not bound a MIP's sub-LPs);
    * ``mip_node_limit``: branch-and-bound nodes one MIP solve may explore (``mip_max_nodes``);
    * ``pricing_rounds``: column-generation rounds for one LP relaxation
      (:mod:`optimization.column_generation`);
    * ``dive_steps``: LP re-solves of one LP dive, ``restricted_mips``: restricted MILPs of one
      allocation solve (:mod:`optimization.lp_guided`);
    * ``threads``: 1 by default, so that HiGHS's path never depends on thread scheduling;
    * ``lp_method``: HiGHS's algorithm for LP solves (``LP_METHODS``; dual simplex);
    * ``aggregate_tolerance_usd``: when > 0, ``lp-guided`` merges near-identical demands
      within this many USD a job (:mod:`optimization.aggregation`), solves the smaller round
      and hands the jobs back, its bound still proven; 0 (the default) merges nothing;
    * ``presolve``: HiGHS's presolve, on by default. It reduces nothing on a full allocation LP
      (the broker's presolve already did) and costs 1 of the 1000x12x24 bound LP's 10 s, 9 of
      the moldable round's 28 s, so ``bench/allocation.py``'s LP bound turns it off.

    HiGHS's own work (presolve, cuts, heuristics, sub-MIPs) is deterministic for given limits and
    one thread. The defaults are several times what the largest round of the built-in scenarios
    needs (``federation-12``: at most 73 LP solves, 2 restricted MILPs of at most 1 node, 5,834
    simplex iterations a round), so they bind only on pathological rounds.

    ``time_limit_s`` is a safety net, not a budget: the wall-clock seconds one allocation solve
    (a planning round) may take before it stops with the best plan so far. It never decides
    anything while it holds; when it is hit, the result says so (``SolveResult.time_limit_hit``,
    ``AllocationSolution.wall_clock_hit``) and callers report it, since that plan then depends
    on the machine's load. The live broker, which must answer within a budget, sets it to what
    is left of its round's budget.
    """

    time_limit_s: float = 120.0
    mip_gap: float = 0.01
    threads: int = 1
    lp_iteration_limit: int = 1_000_000
    mip_node_limit: int = 10_000
    pricing_rounds: int = 200
    dive_steps: int = 200
    restricted_mips: int = 8
    presolve: bool = True
    lp_method: str = "dual"
    aggregate_tolerance_usd: float = 0.0

    def __post_init__(self) -> None:
        if self.lp_method not in LP_METHODS:
            raise ValueError(f"lp_method must be one of {', '.join(LP_METHODS)}, "
                             f"got {self.lp_method!r}")
        if not self.time_limit_s > 0:
            raise ValueError(f"time_limit_s must be > 0, got {self.time_limit_s}")
        if not self.aggregate_tolerance_usd >= 0:
            raise ValueError(f"aggregate_tolerance_usd must be >= 0, "
                             f"got {self.aggregate_tolerance_usd}")
        if not 0 <= self.mip_gap < 1:
            raise ValueError(f"mip_gap must be in [0, 1), got {self.mip_gap}")
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        for name in ("lp_iteration_limit", "mip_node_limit", "pricing_rounds", "dive_steps",
                     "restricted_mips"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    def highs_options(self) -> dict[str, Any]:
        """The HiGHS options of every solve (the wall-clock limit is set per solve)."""
        return {"threads": self.threads, "mip_rel_gap": self.mip_gap,
                "simplex_iteration_limit": self.lp_iteration_limit,
                "mip_max_nodes": self.mip_node_limit, "output_flag": False,
                "presolve": "on" if self.presolve else "off"}


class SafetyNet:
    """The wall clock of one allocation solve: stages ask ``expired()`` between their
    deterministic steps, and every HiGHS solve inside gets ``left_s()`` as its time limit.

    While it holds, it decides nothing (the deterministic budgets do); ``hit`` records that it
    stopped a stage or a solve, so the solve can report that its answer depends on the load.
    """

    def __init__(self, limit_s: float) -> None:
        self.limit_s = limit_s
        self.deadline = time.perf_counter() + limit_s
        self.hit = False

    def left_s(self) -> float:
        return self.deadline - time.perf_counter()

    def expired(self) -> bool:
        if time.perf_counter() >= self.deadline:
            self.hit = True
        return self.hit

    def note(self, result: SolveResult) -> None:
        """Record a solve that HiGHS stopped on the wall clock."""
        self.hit = self.hit or result.time_limit_hit


@dataclass(frozen=True)
class SolveResult:
    status: SolveStatus
    objective: float = math.nan
    bound: float = math.nan
    solve_time_s: float = 0.0
    message: str = ""
    duals: dict[Any, float] = field(default_factory=dict)
    time_limit_hit: bool = False  # the wall-clock safety net stopped it (load-dependent)

    @property
    def has_solution(self) -> bool:
        return self.status.has_solution

    @property
    def gap(self) -> float:
        """Relative gap between incumbent and bound (:func:`relative_gap`)."""
        return relative_gap(self.objective, self.bound)


_log = logging.getLogger(__name__)


def _quiet_first_highs() -> str:
    """Construct this process's first ``Highs`` object with file descriptor 1 sent to a
    temporary file, and return what HiGHS wrote there.

    highspy 1.16 prints its banner ("Running HiGHS ... Copyright") from C++ straight to file
    descriptor 1 when the first ``Highs`` object is made, before any ``output_flag`` can be
    set: ``--json`` output and the serve log would carry it. Python's ``sys.stdout`` never
    sees it, so swapping ``sys.stdout`` would not help. The banner is kept for the log
    (debug level: ``--verbose``).
    """
    try:
        stdout_fd = 1
        saved = os.dup(stdout_fd)
    except OSError:  # no file descriptor 1 (a daemon): nothing to guard
        highspy.Highs()
        return ""
    libc = ctypes.CDLL(None)
    with tempfile.TemporaryFile() as sink:
        libc.fflush(None)
        os.dup2(sink.fileno(), stdout_fd)
        try:
            highspy.Highs()
            libc.fflush(None)  # C's stdio buffer, before the descriptor is given back
        finally:
            os.dup2(saved, stdout_fd)
            os.close(saved)
        sink.seek(0)
        return sink.read().decode(errors="replace")


HIGHS_BANNER = _quiet_first_highs()
if HIGHS_BANNER:
    _log.debug("%s", HIGHS_BANNER.rstrip())


class SolverError(RuntimeError):
    """A solve ended without a usable answer where the caller required one."""


_M = highspy.HighsModelStatus
# HiGHS model status -> ours. A limit maps to NO_SOLUTION, promoted to FEASIBLE when HiGHS
# holds a feasible incumbent. Statuses not listed (load, model, presolve, solve and postsolve
# errors, memory limit, unknown, not set, empty model) are failures: ERROR.
HIGHS_STATUS: dict[highspy.HighsModelStatus, SolveStatus] = {
    _M.kOptimal: SolveStatus.OPTIMAL,
    _M.kInfeasible: SolveStatus.INFEASIBLE,
    _M.kUnbounded: SolveStatus.UNBOUNDED,
    _M.kUnboundedOrInfeasible: SolveStatus.INFEASIBLE,
    _M.kTimeLimit: SolveStatus.NO_SOLUTION,
    _M.kIterationLimit: SolveStatus.NO_SOLUTION,
    _M.kSolutionLimit: SolveStatus.NO_SOLUTION,
    _M.kInterrupt: SolveStatus.NO_SOLUTION,
    _M.kObjectiveBound: SolveStatus.NO_SOLUTION,
    _M.kObjectiveTarget: SolveStatus.NO_SOLUTION,
}


def _checked(status: highspy.HighsStatus, what: str) -> None:
    """HiGHS refused model data (a non-finite coefficient, a bad index): that is our bug or bad
    input, not a solver outcome, so raise instead of solving a model that lacks it."""
    if status == highspy.HighsStatus.kError:
        raise ValueError(f"HiGHS rejected {what}")


def _has_integers(highs: highspy.Highs) -> bool:
    kinds = highs.getLp().integrality_
    return bool(len(kinds)) and any(k == highspy.HighsVarType.kInteger for k in kinds)


def result_from_highs(highs: highspy.Highs, elapsed_s: float,
                      run_status: highspy.HighsStatus | None = None,
                      is_mip: bool | None = None) -> SolveResult:
    """Read the outcome of the last ``run`` of ``highs``: status, objective, bound, message.

    The objective is the incumbent's (nan without one); the bound is HiGHS's MIP dual bound
    for a MIP and the objective itself for a solved LP. ``is_mip``: whether the model has
    integer columns, when the caller knows (else read from the model: a copy of the LP).
    """
    model_status = highs.getModelStatus()
    message = highs.modelStatusToString(model_status)
    status = HIGHS_STATUS.get(model_status, SolveStatus.ERROR)
    if run_status == highspy.HighsStatus.kError:
        status, message = SolveStatus.ERROR, f"HiGHS run failed ({message})"
    info = highs.getInfo()
    has_incumbent = info.primal_solution_status == 2  # kSolutionStatusFeasible
    if status is SolveStatus.NO_SOLUTION and has_incumbent:
        status = SolveStatus.FEASIBLE
    objective = float(info.objective_function_value) if status.has_solution else math.nan
    if is_mip is None:
        is_mip = _has_integers(highs)
    is_mip = is_mip and info.mip_node_count >= 0
    bound = float(info.mip_dual_bound) if is_mip else objective
    return SolveResult(status, objective, bound, elapsed_s, message,
                       time_limit_hit=model_status == _M.kTimeLimit)


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
    a starting solution. HiGHS failures come back as ``SolveStatus.ERROR`` (module docstring).
    """
    # Imported here, as in every module that builds a Pyomo model: importing Pyomo costs
    # about 1.5 s of CPU (it also makes SciPy load scipy.stats), which every command that
    # only takes the matrix path (`carbonfed run`) would otherwise pay at start-up.
    import pyomo.environ as pyo
    from pyomo.contrib.appsi.solvers import Highs as AppsiHighs

    solver = AppsiHighs()
    if not solver.available():
        return SolveResult(SolveStatus.ERROR, message="HiGHS is not available")
    solver.config.time_limit = options.time_limit_s
    solver.config.mip_gap = options.mip_gap
    solver.config.load_solution = False
    solver.config.warmstart = warmstart
    solver.highs_options = options.highs_options()
    started = time.perf_counter()
    # APPSI's HiGHS ignores its relax_integrality option (it returns the MIP optimum), so
    # relax the integer variables in the model itself and put them back afterwards.
    relaxation = pyo.TransformationFactory("core.relax_integer_vars")
    undo = relaxation.apply_to(model, reverse=None) if relax_integrality else None
    try:
        results = solver.solve(model)
    finally:
        if undo is not None:
            relaxation.apply_to(model, reverse=undo)
    # APPSI keeps the highspy object it ran: read HiGHS's own status through the one table.
    result = result_from_highs(solver._solver_model, time.perf_counter() - started)
    if not result.has_solution:
        return result
    results.solution_loader.load_vars()
    dual_values = results.solution_loader.get_duals() if duals else {}
    return SolveResult(result.status, result.objective, result.bound, result.solve_time_s,
                       result.message, dict(dual_values), result.time_limit_hit)


@dataclass(frozen=True)
class MatrixSolution:
    result: SolveResult
    x: np.ndarray  # column values (empty without a solution)
    row_duals: np.ndarray  # one per row (empty for a MIP or without a solution)


class MatrixLP:
    """A min-cost LP/MIP held in one ``highspy.Highs`` object, for fast repeated solves.

    minimise c'x  s.t.  row_lower <= A x <= row_upper,  col_lower <= x <= col_upper.
    Columns can be appended (column generation) and their bounds changed between solves.
    """

    def __init__(self, options: SolverOptions) -> None:
        self.options = options
        self._highs = highspy.Highs()
        for name, value in options.highs_options().items():
            self._highs.setOptionValue(name, value)
        self.solve_s = 0.0  # time inside HiGHS over all solves, to split build from solve
        self._integer = False  # some column is integer

    @property
    def num_cols(self) -> int:
        return int(self._highs.getNumCol())

    @property
    def num_rows(self) -> int:
        return int(self._highs.getNumRow())

    def add_rows(self, lower: np.ndarray, upper: np.ndarray) -> None:
        """Append empty rows (their coefficients arrive with the columns)."""
        n = len(lower)
        _checked(self._highs.addRows(
            n, np.asarray(lower, float), np.asarray(upper, float), 0,
            np.zeros(n, np.int32), np.array([], np.int32), np.array([], float),
        ), f"{n} rows")

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
        """Append columns in compressed-sparse-column form (``col_starts`` has one entry per
        column, or one more: scipy's ``indptr``; the last is ignored)."""
        first = self.num_cols
        n = len(cost)
        _checked(self._highs.addCols(
            n, np.asarray(cost, float), np.asarray(lower, float), np.asarray(upper, float),
            len(values), np.asarray(col_starts[:n], np.int32), np.asarray(row_index, np.int32),
            np.asarray(values, float),
        ), f"{n} columns (values must be finite, row indices in range)")
        if integer and n:
            self._integer = True
            kinds = np.full(n, highspy.HighsVarType.kInteger)
            self._highs.changeColsIntegrality(n, np.arange(first, first + n, dtype=np.int32), kinds)

    def change_column_bounds(self, columns: np.ndarray, lower: np.ndarray,
                             upper: np.ndarray) -> None:
        """Fix or free columns between solves (the basis is kept for a warm start)."""
        columns = np.asarray(columns, np.int32)
        _checked(self._highs.changeColsBounds(len(columns), columns, np.asarray(lower, float),
                                              np.asarray(upper, float)), "column bounds")

    def set_integrality(self, integer: bool) -> None:
        """Switch every column between continuous (LP) and integer (MIP)."""
        n = self.num_cols
        self._integer = integer and n > 0
        kind = highspy.HighsVarType.kInteger if integer else highspy.HighsVarType.kContinuous
        self._highs.changeColsIntegrality(
            n, np.arange(n, dtype=np.int32), np.full(n, kind)
        )

    def set_mip_goal(self, mip_gap: float, objective_target: float = -np.inf) -> None:
        """Stop a MIP when its own relative gap is at most ``mip_gap`` or as soon as it holds
        an incumbent of cost <= ``objective_target`` (status FEASIBLE: a goal, not a proof,
        e.g. "within the gap of a bound HiGHS does not know")."""
        self._highs.setOptionValue("mip_rel_gap", mip_gap)
        self._highs.setOptionValue("objective_target", float(objective_target))

    def set_solution(self, x: np.ndarray) -> None:
        """Offer a starting point (a feasible MIP solution) to the next solve."""
        solution = highspy.HighsSolution()
        solution.col_value = list(np.asarray(x, float))
        solution.value_valid = True
        self._highs.setSolution(solution)

    def solve(self, time_limit_s: float | None = None) -> MatrixSolution:
        """Solve within the options' work limits; ``time_limit_s`` (default: the options')
        is the wall-clock safety net of this solve."""
        budget = self.options.time_limit_s if time_limit_s is None else time_limit_s
        # HiGHS's clock is cumulative per object: give this solve its own budget on top.
        self._highs.setOptionValue("time_limit", self._highs.getRunTime() + budget)
        method = MIP_METHOD if self._integer else LP_METHODS[self.options.lp_method]
        for name, value in method.items():
            self._highs.setOptionValue(name, value)
        started = time.perf_counter()
        run_status = self._highs.run()
        elapsed = time.perf_counter() - started
        self.solve_s += elapsed
        result = result_from_highs(self._highs, elapsed, run_status, self._integer)
        if not result.has_solution:
            return MatrixSolution(result, np.empty(0), np.empty(0))
        solution = self._highs.getSolution()
        x = np.asarray(solution.col_value)
        lp = not self._integer
        duals = np.asarray(solution.row_dual) if lp and solution.dual_valid else np.empty(0)
        return MatrixSolution(result, x, duals)
