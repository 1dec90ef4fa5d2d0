"""The allocation MILP (DESIGN.md, "The allocation MILP") in Pyomo.

Sets
    DEMANDS d        groups of identical queued jobs (count_d of them)
    OPTIONS o        sparse feasible (demand, resource, start) triples; only these exist
    CAPACITY_CELLS   (resource r, slot t) pairs that some option occupies

Variables
    assign_count[o] in {0..count_d(o)}   jobs of demand d(o) that take option o
    defer_count[d]  in {0..count_d}       jobs of demand d deferred to a later round

Objective
    min  energy_cost_usd + carbon_cost_usd + transfer_cost_usd + delay_cost_usd + deferral_cost_usd

Build (``build_allocation_model``) is separate from solve (``optimization.solver``) and from
result extraction (``extract_allocation``), one function per constraint family. Cost parts of
a plan: ``optimization.problem.breakdown_usd``.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pyomo.environ as pyo
from pyomo.core.expr.numeric_expr import LinearExpression

from optimization.greedy import greedy_allocation
from optimization.problem import (
    AllocationProblem,
    AllocationSolution,
    all_deferred,
    deferred_of,
    make_solution,
    plan_cost_usd,
    trivial_lower_bound,
)
from optimization.solver import SolverOptions, SolveStatus, solve_model
from optimization.status import relative_gap


def _linear(coefs: np.ndarray, variables: list) -> LinearExpression:
    return LinearExpression(constant=0.0, linear_coefs=list(map(float, coefs)),
                            linear_vars=variables)


def _group(keys: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Members of each group as (order, starts): group g is order[starts[g]:starts[g+1]]."""
    order = np.argsort(keys, kind="stable")
    starts = np.searchsorted(keys[order], np.arange(n_groups + 1))
    return order, starts


def define_sets(m: pyo.ConcreteModel, p: AllocationProblem) -> None:
    m.DEMANDS = pyo.RangeSet(0, p.n_demands - 1)
    m.OPTIONS = pyo.RangeSet(0, p.n_options - 1)
    options, resources, slots = p.occupancy()
    cell = resources * p.n_slots + slots
    used_cells = np.unique(cell)
    m.CAPACITY_CELLS = pyo.Set(initialize=used_cells.tolist(), ordered=True)
    # Nonzeros of the capacity rows, grouped by cell, kept for the constraint rule.
    order, starts = _group(np.searchsorted(used_cells, cell), len(used_cells))
    m._cell_members = {
        int(c): options[order[starts[i]: starts[i + 1]]] for i, c in enumerate(used_cells)
    }


def define_variables(m: pyo.ConcreteModel, p: AllocationProblem) -> None:
    count = p.demand_count
    option_count = count[p.option_demand]
    m.assign_count = pyo.Var(m.OPTIONS, within=pyo.NonNegativeIntegers,
                             bounds=lambda _, o: (0, int(option_count[o])))
    m.defer_count = pyo.Var(m.DEMANDS, within=pyo.NonNegativeIntegers,
                            bounds=lambda _, d: (0, int(count[d])))


def define_job_assignment_balance(m: pyo.ConcreteModel, p: AllocationProblem) -> None:
    """Every queued job either takes exactly one option or is deferred.

    sum_{o : d(o) = d} assign_count[o] + defer_count[d] = count_d        for all d
    """
    order, starts = _group(p.option_demand, p.n_demands)

    def rule(m, d):
        members = order[starts[d]: starts[d + 1]]
        variables = [m.assign_count[int(o)] for o in members] + [m.defer_count[d]]
        return _linear(np.ones(len(variables)), variables) == int(p.demand_count[d])

    m.job_assignment_balance = pyo.Constraint(m.DEMANDS, rule=rule)


def define_gpu_capacity_limit(m: pyo.ConcreteModel, p: AllocationProblem) -> None:
    """GPUs of the options running in a slot fit in what the resource advertised free.

    sum_{o : r(o) = r, start(o) <= t < start(o) + slots(o)} gpus_o * assign_count[o]
        <= capacity_gpus[r, t]                                   for all (r, t) in CAPACITY_CELLS
    """
    n_slots = p.n_slots

    def rule(m, cell):
        members = m._cell_members[cell]
        r, t = divmod(cell, n_slots)
        expr = _linear(p.option_gpus[members], [m.assign_count[int(o)] for o in members])
        return expr <= float(p.capacity_gpus[r, t])

    m.gpu_capacity_limit = pyo.Constraint(m.CAPACITY_CELLS, rule=rule)


def define_cost_expressions(m: pyo.ConcreteModel, p: AllocationProblem) -> None:
    """Named cost parts (USD) and physical totals, so reports can break the objective down.

    energy_kwh        = sum_o energy_kwh_o x_o
    carbon_kg         = sum_o carbon_kg_o x_o
    energy_cost_usd   = sum_o energy_cost_o x_o
    carbon_cost_usd   = carbon_price_usd_per_kg * carbon_kg
    transfer_cost_usd = sum_o transfer_cost_o x_o
    delay_cost_usd    = sum_o delay_cost_o x_o
    deferral_cost_usd = sum_d deferral_penalty_d u_d
    """
    x = [m.assign_count[o] for o in range(p.n_options)]
    u = [m.defer_count[d] for d in range(p.n_demands)]
    m.energy_kwh = pyo.Expression(expr=_linear(p.option_energy_kwh, x))
    m.carbon_kg = pyo.Expression(expr=_linear(p.option_carbon_kg, x))
    m.energy_cost_usd = pyo.Expression(expr=_linear(p.option_energy_cost_usd, x))
    m.carbon_cost_usd = pyo.Expression(expr=p.carbon_price_usd_per_kg * m.carbon_kg)
    m.transfer_cost_usd = pyo.Expression(expr=_linear(p.option_transfer_cost_usd, x))
    m.delay_cost_usd = pyo.Expression(expr=_linear(p.option_delay_cost_usd, x))
    m.deferral_cost_usd = pyo.Expression(expr=_linear(p.deferral_penalty_usd, u))


def define_carbon_emission_cap(m: pyo.ConcreteModel, p: AllocationProblem) -> None:
    """Optional policy hook: the round's emissions stay under a cap.

    sum_o carbon_kg_o x_o <= carbon_cap_kg
    """
    if p.carbon_cap_kg is not None:
        m.carbon_emission_cap = pyo.Constraint(expr=m.carbon_kg <= p.carbon_cap_kg)


def define_objective(m: pyo.ConcreteModel, p: AllocationProblem) -> None:
    """Total cost at the carbon price: the sum of the named cost parts."""
    x = [m.assign_count[o] for o in range(p.n_options)]
    u = [m.defer_count[d] for d in range(p.n_demands)]
    total = _linear(np.concatenate([p.option_cost_usd, p.deferral_penalty_usd]), x + u)
    m.total_cost_usd = pyo.Objective(expr=total, sense=pyo.minimize)


def build_allocation_model(p: AllocationProblem) -> pyo.ConcreteModel:
    m = pyo.ConcreteModel(name="allocation")
    define_sets(m, p)
    define_variables(m, p)
    define_job_assignment_balance(m, p)
    define_gpu_capacity_limit(m, p)
    define_cost_expressions(m, p)
    define_carbon_emission_cap(m, p)
    define_objective(m, p)
    return m


def extract_allocation(m: pyo.ConcreteModel, p: AllocationProblem) -> np.ndarray:
    """Jobs per option of a solved model (deferrals follow from the balance rows)."""
    return np.rint([pyo.value(m.assign_count[o]) for o in range(p.n_options)]).astype(int)


def set_start(m: pyo.ConcreteModel, p: AllocationProblem, option_count: np.ndarray) -> None:
    """Load a plan into the variables, as HiGHS's starting solution (``warmstart=True``)."""
    for o in range(p.n_options):
        m.assign_count[o].set_value(int(option_count[o]))
    for d, u in enumerate(deferred_of(p, option_count)):
        m.defer_count[d].set_value(int(u))


def solve_allocation_pyomo(p: AllocationProblem, options: SolverOptions) -> AllocationSolution:
    """Build the full Pyomo model and solve it, warm-started from the greedy plan.

    The greedy plan is the floor: when HiGHS stops without a better incumbent (a work limit,
    the wall-clock safety net, or a HiGHS failure) the round returns the greedy plan,
    FEASIBLE, with HiGHS's bound when it has one and else the trivial bound
    sum_d count_d min(penalty_d, min_o c_o).
    """
    if p.n_options == 0:
        return all_deferred(p, SolveStatus.OPTIMAL)
    started = time.perf_counter()
    greedy = greedy_allocation(p)
    greedy_usd = plan_cost_usd(p, greedy, deferred_of(p, greedy))
    m = build_allocation_model(p)
    set_start(m, p, greedy)
    build_s = time.perf_counter() - started
    result = solve_model(m, options, warmstart=True)
    floor = trivial_lower_bound(p)
    bound = max(result.bound, floor) if math.isfinite(result.bound) else floor
    if result.has_solution and result.objective <= greedy_usd:
        return make_solution(p, result.status, extract_allocation(m, p), bound, build_s,
                             result.solve_time_s, result.message,
                             wall_clock_hit=result.time_limit_hit)
    status = SolveStatus.OPTIMAL if relative_gap(greedy_usd, bound) <= options.mip_gap \
        else SolveStatus.FEASIBLE
    return make_solution(p, status, greedy, bound, build_s, result.solve_time_s,
                         f"greedy plan; HiGHS: {result.status} ({result.message})",
                         wall_clock_hit=result.time_limit_hit)

