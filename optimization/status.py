"""Solver outcomes as the rest of the project sees them: a status and a relative gap.

No solver import here: :mod:`optimization.problem` and callers outside the package use these
without pulling in HiGHS or Pyomo. The mapping *from* HiGHS lives in :mod:`optimization.solver`.
"""

from __future__ import annotations

import enum
import math

# Relative gaps below this are float noise between two evaluations of the same plan.
GAP_TOLERANCE = 1e-9


class SolveStatus(enum.StrEnum):
    """How a solve ended. A ``StrEnum``: ``SolveStatus.OPTIMAL == "optimal"`` holds, so code
    that stores or compares plain strings (reports, the API's database) keeps working."""

    OPTIMAL = "optimal"  # proven within the requested gap
    FEASIBLE = "feasible"  # a limit was hit; the incumbent is usable but not proven
    INFEASIBLE = "infeasible"
    UNBOUNDED = "unbounded"
    NO_SOLUTION = "no_solution"  # a limit was hit before any feasible point was found
    ERROR = "error"  # HiGHS failed (see the result's message)

    @property
    def has_solution(self) -> bool:
        return self in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)


def relative_gap(objective: float, bound: float) -> float:
    """The one relative gap of the project, as HiGHS defines its MIP gap:

        gap = |objective - bound| / max(|objective|, 1e-12)

    ``inf`` when either value is missing (nan or infinite), 0 when the two agree to float noise
    (below ``GAP_TOLERANCE``). For a minimisation, bound <= objective.
    """
    if not (math.isfinite(objective) and math.isfinite(bound)):
        return math.inf
    gap = abs(objective - bound) / max(abs(objective), 1e-12)
    return 0.0 if gap <= GAP_TOLERANCE else gap
