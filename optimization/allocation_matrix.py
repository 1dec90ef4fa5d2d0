"""The allocation problem in matrix form: the one row and column layout of every highspy path.

Rows (:class:`AllocationLayout`):
    0 .. n_d - 1            job_assignment_balance   sum_{o of d} x_o + u_d = count_d
    n_d .. n_d + n_cells - 1 gpu_capacity_limit      sum_{o on r running in t} gpus_o x_o <= free
                            (one per used (resource, slot) cell, in ``cells`` order)
    n_d + n_cells           carbon_emission_cap      sum_o carbon_kg_o x_o <= cap   (when set)
Columns:
    0 .. n_d - 1            defer_count u_d (first: a model holding them is feasible from the start)
    n_d + k                 assign_count of the k-th option added (all options, in order, for
                            :func:`allocation_matrix`; the generated ones for column generation)

An option column may state x_o <= count_d, which follows from the balance row (x, u >= 0):
dual simplex then flips columns between their bounds instead of pivoting them. The full LP
(:func:`allocation_matrix`) and the solve's column-generation master state it (the
1000x12x24 round's LP takes 10 s instead of 41, ``bench/allocation.py --lp-bound-check``;
the 5000x20x24 master's re-solves 5-7x less time). The market's prices leave it out
(``optimization.duals``), which keeps every marginal value on the rows, where it reads them.
Same model as ``optimization.allocation``; tests hold the optima equal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from optimization.problem import AllocationProblem
from optimization.solver import MatrixLP, SolverOptions


@dataclass(frozen=True)
class ColumnBlock:
    """Columns to append: costs, bounds and CSC nonzeros (``starts`` has n + 1 entries)."""

    cost: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    starts: np.ndarray
    rows: np.ndarray
    values: np.ndarray

    def add_to(self, lp: MatrixLP, *, integer: bool = False) -> None:
        lp.add_columns(self.cost, self.lower, self.upper, self.starts, self.rows, self.values,
                       integer=integer)


def capacity_cells(problem: AllocationProblem) -> np.ndarray:
    """Every (resource, slot) cell some option occupies, as sorted flat indices."""
    return np.flatnonzero(problem.window_cells(np.ones(problem.n_options))[0] > 0)


class AllocationLayout:
    """Rows and columns of one problem (module docstring); builds blocks and MatrixLPs.

    ``cells``: the capacity rows' cells when the problem does not hold the options that occupy
    them (a coordinator whose options live at the sites, ``optimization.decomposed``); by
    default the cells of its own options."""

    def __init__(self, problem: AllocationProblem, cells: np.ndarray | None = None) -> None:
        p = self.problem = problem
        self.cells = capacity_cells(p) if cells is None else np.asarray(cells, dtype=np.int64)
        self.n_demands = p.n_demands
        self.first_capacity_row = p.n_demands
        capped = p.carbon_cap_kg is not None
        self.carbon_row: int | None = p.n_demands + len(self.cells) if capped else None
        count = p.demand_count.astype(float)
        cap = p.capacity_gpus.reshape(-1)[self.cells]
        self.row_lower = np.concatenate([count, np.full(len(self.cells) + capped, -np.inf)])
        self.row_upper = np.concatenate([count, cap, [p.carbon_cap_kg] if capped else []])

    @property
    def n_rows(self) -> int:
        return len(self.row_lower)

    def deferral_columns(self) -> ColumnBlock:
        """u_d: cost deferral_penalty_d, bounds [0, count_d], one nonzero in its balance row."""
        p, n = self.problem, self.n_demands
        return ColumnBlock(p.deferral_penalty_usd.astype(float), np.zeros(n),
                           p.demand_count.astype(float), np.arange(n + 1), np.arange(n),
                           np.ones(n))

    def option_columns(self, options: np.ndarray, *, bounded: bool = False) -> ColumnBlock:
        """x_o for the given options: a 1 in the balance row of d(o), gpus_o in the capacity
        row of each cell it occupies, carbon_kg_o in the carbon row (when capped). Upper
        bound: count_d(o) when ``bounded`` (module docstring), else none."""
        p = self.problem
        options = np.asarray(options, dtype=np.int64)
        slots = p.option_slots[options]
        capped = self.carbon_row is not None
        starts = np.concatenate([[0], np.cumsum(1 + slots + capped)])
        rows = np.empty(starts[-1], dtype=np.int64)
        vals = np.empty(starts[-1])
        rows[starts[:-1]] = p.option_demand[options]
        vals[starts[:-1]] = 1.0
        # capacity entries: positions starts[i] + 1 .. starts[i] + slots[i]
        owner = np.repeat(np.arange(len(options)), slots)
        offset = np.arange(len(owner)) - np.repeat(np.cumsum(slots) - slots, slots)
        cell = (p.option_resource[options][owner] * p.n_slots
                + p.option_start[options][owner] + offset)
        pos = starts[:-1][owner] + 1 + offset
        rows[pos] = self.first_capacity_row + np.searchsorted(self.cells, cell)
        vals[pos] = p.option_gpus[options][owner]
        if self.carbon_row is not None:
            rows[starts[1:] - 1] = self.carbon_row
            vals[starts[1:] - 1] = p.option_carbon_kg[options]
        n = len(options)
        upper = (p.demand_count[p.option_demand[options]].astype(float) if bounded
                 else np.full(n, np.inf))
        return ColumnBlock(p.option_cost_usd[options], np.zeros(n), upper, starts, rows, vals)

    def new_lp(self, options: SolverOptions) -> MatrixLP:
        """A MatrixLP holding every row and the deferral columns (feasible: defer all)."""
        lp = MatrixLP(options)
        lp.add_rows(self.row_lower, self.row_upper)
        self.deferral_columns().add_to(lp)
        return lp


@dataclass(frozen=True)
class AllocationMatrix:
    """The whole problem, every option a column: min cost'z, row_lower <= A z <= row_upper."""

    cost: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    matrix: sp.csc_array
    row_lower: np.ndarray
    row_upper: np.ndarray
    layout: AllocationLayout

    @property
    def n_cols(self) -> int:
        return len(self.cost)

    def new_lp(self, options: SolverOptions) -> MatrixLP:
        lp = MatrixLP(options)
        lp.add_rows(self.row_lower, self.row_upper)
        m = self.matrix
        lp.add_columns(self.cost, self.col_lower, self.col_upper, m.indptr, m.indices, m.data)
        return lp


def _block_matrix(block: ColumnBlock, n_rows: int) -> sp.csc_array:
    return sp.csc_array((block.values, block.rows, block.starts),
                        shape=(n_rows, len(block.cost)))


def allocation_matrix(problem: AllocationProblem) -> AllocationMatrix:
    """All columns (deferrals, then every option in index order) as one sparse matrix, each
    option bounded by its demand's count (module docstring)."""
    layout = AllocationLayout(problem)
    blocks = [layout.deferral_columns(),
              layout.option_columns(np.arange(problem.n_options), bounded=True)]
    matrix = sp.hstack([_block_matrix(b, layout.n_rows) for b in blocks], format="csc")
    return AllocationMatrix(
        cost=np.concatenate([b.cost for b in blocks]),
        col_lower=np.concatenate([b.lower for b in blocks]),
        col_upper=np.concatenate([b.upper for b in blocks]),
        matrix=sp.csc_array(matrix),
        row_lower=layout.row_lower,
        row_upper=layout.row_upper,
        layout=layout,
    )
