"""Zeus power traces (``zeus_power_<gpu>.csv``): measured training power per power limit.

Columns: ``dataset``, ``network``, ``batch_size``, ``optimizer``, ``power_limit`` (W),
``time_per_epoch`` (s), ``average_power`` (W). Energy per epoch = time x average power.

The per-GPU power model: at the highest power limit measured (the GPU's default), the mean
average power over every workload is what a busy GPU draws; the spread (min and max) is kept
so reports can show how much the workload matters.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sites.errors import InputError
from sites.gpus import GpuType
from sites.readers.timeseries import check_values, line_of, read_csv_checked

COLUMNS = ("dataset", "network", "batch_size", "optimizer", "power_limit", "time_per_epoch",
           "average_power")
J_PER_KWH = 3.6e6


def read_zeus_power(path: Path | str) -> pd.DataFrame:
    """The rows plus ``energy_per_epoch_kwh`` = time_per_epoch x average_power."""
    source = str(path)
    frame = read_csv_checked(path, COLUMNS)
    for column in ("batch_size", "power_limit", "time_per_epoch", "average_power"):
        frame[column] = check_values(frame[column], source, column, allow_negative=False)
    for column in ("power_limit", "time_per_epoch", "average_power"):
        zero = (frame[column] <= 0).to_numpy().nonzero()[0]
        if len(zero):
            raise InputError(source, f"{line_of(int(zero[0]))}, column '{column}'", "must be > 0")
    frame["energy_per_epoch_kwh"] = frame["time_per_epoch"] * frame["average_power"] / J_PER_KWH
    return frame


@dataclass(frozen=True)
class ZeusPowerModel:
    gpu: str
    power_limit_w: float  # the highest limit measured
    mean_power_w: float  # mean over workloads at that limit: a busy GPU's draw
    min_power_w: float
    max_power_w: float
    workloads: int

    def gpu_type(self) -> GpuType:
        return GpuType(self.gpu, board_power_w=self.mean_power_w)


def power_model(frame: pd.DataFrame, gpu: str) -> ZeusPowerModel:
    at_max = frame[frame["power_limit"] == frame["power_limit"].max()]
    power = at_max["average_power"]
    return ZeusPowerModel(gpu, float(at_max["power_limit"].iloc[0]), float(power.mean()),
                          float(power.min()), float(power.max()), len(at_max))
