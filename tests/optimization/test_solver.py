"""The HiGHS wrapper: limits always set, statuses mapped, relaxations real."""

from __future__ import annotations

import math

import highspy
import numpy as np
import pyomo.environ as pyo
import pytest

from optimization.solver import HIGHS_STATUS, MatrixLP, SolverOptions, SolveStatus, solve_model


def knapsack() -> pyo.ConcreteModel:
    """min 3 x1 + 2 x2  s.t.  x1 + x2 >= 1.5, x binary.

    MIP optimum: both items, 5. LP relaxation: x2 = 1, x1 = 0.5, 3.5 (x2 is cheaper per unit).
    """
    m = pyo.ConcreteModel()
    m.x = pyo.Var([1, 2], within=pyo.Binary)
    m.cover = pyo.Constraint(expr=m.x[1] + m.x[2] >= 1.5)
    m.cost = pyo.Objective(expr=3 * m.x[1] + 2 * m.x[2])
    return m


def test_mip_and_its_relaxation():
    m = knapsack()
    relaxed = solve_model(m, SolverOptions(5, 0.0, 1), relax_integrality=True, duals=True)
    assert relaxed.status is SolveStatus.OPTIMAL
    assert relaxed.objective == pytest.approx(3.5)
    assert pyo.value(m.x[1]) == pytest.approx(0.5)
    assert relaxed.duals[m.cover] == pytest.approx(3.0)  # the marginal unit comes from x1
    assert m.x[1].domain is pyo.Binary  # the relaxation is undone
    exact = solve_model(m, SolverOptions(5, 0.0, 1))
    assert exact.objective == pytest.approx(5.0)
    assert exact.gap == 0.0


def test_infeasible_is_reported_not_raised():
    m = knapsack()
    m.cover.set_value(m.x[1] + m.x[2] >= 3)
    result = solve_model(m, SolverOptions(5, 0.0, 1))
    assert result.status is SolveStatus.INFEASIBLE
    assert not result.has_solution
    assert math.isnan(result.objective)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"time_limit_s": 0}, "time_limit_s"), ({"mip_gap": 1.5}, "mip_gap"),
     ({"threads": 0}, "threads")],
)
def test_options_are_checked(kwargs, field):
    with pytest.raises(ValueError, match=field):
        SolverOptions(**kwargs)


def test_matrix_lp_time_budget_is_per_solve():
    """HiGHS's time limit is cumulative per object: each solve must get its own budget."""
    lp = MatrixLP(SolverOptions(time_limit_s=0.5, mip_gap=0.0, threads=1))
    lp.add_rows(np.array([1.5]), np.array([np.inf]))
    lp.add_columns(np.array([3.0, 2.0]), np.zeros(2), np.ones(2), np.array([0, 1]),
                   np.array([0, 0]), np.ones(2))
    first = lp.solve()
    lp._highs.setOptionValue("time_limit", 0.0)  # as if the first budget were spent
    for _ in range(3):
        again = lp.solve()
        assert again.result.status is SolveStatus.OPTIMAL
        assert again.result.objective == pytest.approx(first.result.objective)
    assert first.result.objective == pytest.approx(3.5)
    assert first.row_duals.tolist() == pytest.approx([3.0])


def test_status_is_a_string_enum():
    assert SolveStatus.OPTIMAL == "optimal"
    assert f"{SolveStatus.NO_SOLUTION}" == "no_solution"
    assert SolveStatus("feasible") is SolveStatus.FEASIBLE


def test_every_error_status_of_highs_maps_to_error():
    errors = {"kLoadError", "kModelError", "kPresolveError", "kSolveError", "kPostsolveError",
              "kMemoryLimit", "kUnknown", "kNotset", "kModelEmpty"}
    for name in errors:
        assert HIGHS_STATUS.get(getattr(highspy.HighsModelStatus, name),
                                SolveStatus.ERROR) is SolveStatus.ERROR
    assert HIGHS_STATUS[highspy.HighsModelStatus.kTimeLimit] is SolveStatus.NO_SOLUTION


def test_highs_failure_is_an_error_result_with_its_message():
    """An infinite cost makes HiGHS stop with an unknown model status: ERROR, not a crash."""
    lp = MatrixLP(SolverOptions(5, 0.0, 1))
    lp.add_rows(np.array([1.0]), np.array([np.inf]))
    lp.add_columns(np.array([np.inf]), np.zeros(1), np.ones(1), np.array([0]), np.array([0]),
                   np.ones(1))
    solved = lp.solve()
    assert solved.result.status is SolveStatus.ERROR
    assert solved.result.message
    assert len(solved.x) == 0


def test_rejected_model_data_raises():
    """A coefficient HiGHS refuses is our bug: it raises rather than solving without it."""
    lp = MatrixLP(SolverOptions(5, 0.0, 1))
    lp.add_rows(np.array([1.0]), np.array([np.inf]))
    with pytest.raises(ValueError, match="HiGHS rejected"):
        lp.add_columns(np.ones(1), np.zeros(1), np.ones(1), np.array([0]), np.array([0]),
                       np.array([np.inf]))


def test_programming_errors_are_not_swallowed():
    """A nonlinear model is a bug in the caller: solve_model lets the exception through."""
    m = knapsack()
    m.cost.set_value(m.x[1] * m.x[2])
    with pytest.raises(Exception, match=r"(?i)degree|quadratic|linear"):
        solve_model(m, SolverOptions(5, 0.0, 1))


def test_highs_banner_never_reaches_file_descriptor_1() -> None:
    """highspy 1.16 writes its banner from C++ to fd 1 at the first ``Highs()``; a process that
    imports the solver wrapper and then makes Highs objects writes nothing there (read through a
    real pipe, as ``carbonfed ... --json | jq`` would), and the banner is kept for the log."""
    import subprocess
    import sys

    code = ("import highspy, optimization.solver as s; highspy.Highs(); highspy.Highs(); "
            "import sys; sys.stderr.write(s.HIGHS_BANNER)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout == ""
    assert "HiGHS" in done.stderr
