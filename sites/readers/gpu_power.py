"""The GPU TDP table (mlco2/impact ``gpus.csv``): board power per GPU model.

Columns used: ``name``, ``type`` (gpu, tpu or cpu), ``tdp_watts``. Only ``gpu`` rows become GPU
types. TDP is the board's limit, an upper bound of what training draws.
"""

from __future__ import annotations

from pathlib import Path

from sites.errors import InputError
from sites.gpus import GpuType
from sites.readers.timeseries import check_values, line_of, read_csv_checked


def read_gpu_tdp(path: Path | str) -> dict[str, GpuType]:
    """``{file name: GpuType}`` for the ``gpu`` rows; a name given twice must agree."""
    source = str(path)
    frame = read_csv_checked(path, ["name", "type", "tdp_watts"])
    tdp = check_values(frame["tdp_watts"], source, "tdp_watts", allow_negative=False)
    out: dict[str, GpuType] = {}
    for row, (name, kind, watts) in enumerate(zip(frame["name"], frame["type"], tdp, strict=True)):
        if str(kind).strip() != "gpu":
            continue
        name = str(name).strip()
        if watts <= 0:
            raise InputError(source, f"{line_of(row)}, column 'tdp_watts'", "TDP must be > 0")
        if name in out and out[name].board_power_w != watts:
            raise InputError(source, f"{line_of(row)}, column 'name'",
                             f"'{name}' given twice with different TDPs "
                             f"({out[name].board_power_w} and {watts})")
        out[name] = GpuType(name, float(watts))
    return out
