"""Inter-region data-transfer price matrices (USD per GB): rows = source, columns = destination.

The first column holds the source region names (an unnamed header cell). The matrix must be
square over the same regions, numeric, >= 0, with zeros on the diagonal.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sites.errors import InputError
from sites.readers.timeseries import check_values, line_of, read_csv_checked


@dataclass(frozen=True)
class TransferCostMatrix:
    regions: tuple[str, ...]
    usd_per_gb: np.ndarray  # [source, destination]

    def cost_usd_per_gb(self, source: str, destination: str) -> float:
        return float(self.usd_per_gb[self.regions.index(source), self.regions.index(destination)])


def read_transfer_costs(path: Path | str) -> TransferCostMatrix:
    source = str(path)
    frame = read_csv_checked(path, [])
    first = frame.columns[0]
    rows = tuple(str(r) for r in frame[first])
    columns = tuple(str(c) for c in frame.columns[1:])
    if rows != columns:
        extra = sorted(set(rows) ^ set(columns)) or ["(order differs)"]
        raise InputError(source, "", f"not a square region matrix: rows and columns differ "
                         f"({', '.join(extra[:5])})")
    matrix = np.column_stack([check_values(frame[c], source, c, allow_negative=False)
                              for c in frame.columns[1:]])
    diagonal = np.flatnonzero(np.diag(matrix) != 0)
    if len(diagonal):
        i = int(diagonal[0])
        raise InputError(source, f"{line_of(i)}, column '{columns[i]}'",
                         "moving data within a region must cost 0")
    return TransferCostMatrix(rows, matrix)
