"""Measured GPU energy, where the site can measure it: NVML's total-energy counters.

``nvmlDeviceGetTotalEnergyConsumption`` (millijoules since the driver loaded; Volta and newer)
is read for a job's GPUs when it starts and when it ends; the difference is the run's GPU
energy. It needs ``pynvml`` (not a dependency of carbonfed: ``pip install nvidia-ml-py`` on a
GPU host) and an NVIDIA driver. Without them ``open_nvml`` says why in one line and the agent
reports no measurement (the broker keeps its model). Slurm's ``ConsumedEnergy`` needs an
accounting database with an energy plugin; the slurm executor does not read it yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

MJ_PER_KWH = 3.6e9


class NvmlEnergy:
    def __init__(self, nvml: Any) -> None:
        self.nvml = nvml

    def read_mj(self, indices: Sequence[int]) -> float | None:
        """The summed energy counters of GPUs ``indices`` (mJ), or None if one cannot say."""
        try:
            return float(sum(self.nvml.nvmlDeviceGetTotalEnergyConsumption(
                self.nvml.nvmlDeviceGetHandleByIndex(i)) for i in indices))
        except Exception:
            return None


def open_nvml() -> tuple[NvmlEnergy | None, str]:
    """NVML's energy counters, or None and why not (one line)."""
    try:
        import pynvml
    except ImportError:
        return None, "no pynvml: run energy is modelled, not measured"
    try:
        pynvml.nvmlInit()
        count = pynvml.nvmlDeviceGetCount()
    except Exception as error:
        return None, f"no NVIDIA driver ({error}): run energy is modelled, not measured"
    if count == 0:
        return None, "no GPU: run energy is modelled, not measured"
    return NvmlEnergy(pynvml), f"measuring GPU energy with NVML ({count} GPUs)"


def kwh_between(start_mj: float | None, end_mj: float | None) -> float | None:
    if start_mj is None or end_mj is None or end_mj < start_mj:
        return None
    return (end_mj - start_mj) / MJ_PER_KWH
