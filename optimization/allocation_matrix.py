"""The allocation problem in matrix form, for highspy (the hot loops) and LP bounds.

Columns: one per option (assign_count), then one per demand (defer_count).
Rows:    job_assignment_balance (one per demand, = count), gpu_capacity_limit (one per used
         (resource, slot) cell, <= capacity), and carbon_emission_cap when set.
Same model as ``optimization.allocation``; a test holds the two optima equal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optimization.problem import AllocationProblem


@dataclass(frozen=True)
class AllocationMatrix:
    cost: np.ndarray
    col_upper: np.ndarray
    col_starts: np.ndarray  # CSC
    row_index: np.ndarray
    values: np.ndarray
    row_lower: np.ndarray
    row_upper: np.ndarray
    cells: np.ndarray  # flat (resource * n_slots + slot) of each capacity row

    @property
    def n_cols(self) -> int:
        return len(self.cost)


def capacity_cells(problem: AllocationProblem) -> np.ndarray:
    """Every (resource, slot) cell some option occupies, as sorted flat indices."""
    _, resources, slots = problem.occupancy()
    return np.unique(resources * problem.n_slots + slots)


def option_columns(
    problem: AllocationProblem, options: np.ndarray, cells: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSC pieces (starts, rows, values) of the given options' columns.

    Row layout: demands first, then capacity cells (``cells`` order), then the carbon row.
    """
    p = problem
    n_d = p.n_demands
    slots = p.option_slots[options]
    nnz_per = 1 + slots + (1 if p.carbon_cap_kg is not None else 0)
    starts = np.concatenate([[0], np.cumsum(nnz_per)])
    rows = np.empty(starts[-1], dtype=np.int64)
    vals = np.empty(starts[-1])
    rows[starts[:-1]] = p.option_demand[options]
    vals[starts[:-1]] = 1.0
    # capacity entries: positions starts[i] + 1 .. starts[i] + slots[i]
    owner = np.repeat(np.arange(len(options)), slots)
    offset = np.arange(len(owner)) - np.repeat(np.cumsum(slots) - slots, slots)
    cell = p.option_resource[options][owner] * p.n_slots + p.option_start[options][owner] + offset
    pos = starts[:-1][owner] + 1 + offset
    rows[pos] = n_d + np.searchsorted(cells, cell)
    vals[pos] = p.option_gpus[options][owner]
    if p.carbon_cap_kg is not None:
        last = starts[1:] - 1
        rows[last] = n_d + len(cells)
        vals[last] = p.option_carbon_kg[options]
    return starts, rows, vals


def allocation_matrix(problem: AllocationProblem) -> AllocationMatrix:
    p = problem
    cells = capacity_cells(p)
    starts, rows, vals = option_columns(p, np.arange(p.n_options), cells)
    n_d = p.n_demands
    # deferral columns: one nonzero each, in its demand's balance row
    defer_starts = starts[-1] + np.arange(1, n_d + 1)
    col_starts = np.concatenate([starts, defer_starts])
    row_index = np.concatenate([rows, np.arange(n_d)])
    values = np.concatenate([vals, np.ones(n_d)])
    cap = p.capacity_gpus.reshape(-1)[cells]
    carbon_lo = [-np.inf] if p.carbon_cap_kg is not None else []
    carbon_hi = [p.carbon_cap_kg] if p.carbon_cap_kg is not None else []
    count = p.demand_count.astype(float)
    return AllocationMatrix(
        cost=np.concatenate([p.option_cost_usd, p.deferral_penalty_usd]),
        col_upper=np.concatenate([count[p.option_demand], count]),
        col_starts=col_starts,
        row_index=row_index,
        values=values,
        row_lower=np.concatenate([count, np.full(len(cells), -np.inf), carbon_lo]),
        row_upper=np.concatenate([count, cap, carbon_hi]),
        cells=cells,
    )
