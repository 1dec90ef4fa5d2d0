"""Power model: what GPUs draw at the wall (the one energy formula of the project).

    wall power (kW) = board power (W) / 1000 x PUE
    energy (kWh)    = GPUs x wall power (kW) x hours

Busy GPUs draw their board power; free GPUs draw their idle power when the GPU type has one.
"""

from __future__ import annotations

from sites.gpus import GpuType
from sites.units import Q, w_to_kw


def wall_power_kw(power_w: Q, pue: Q) -> Q:
    """Wall-plug kW of one GPU drawing ``power_w`` at a site with ``pue``."""
    return w_to_kw(power_w) * pue


def energy_kwh(gpus: Q, power_w: Q, pue: Q, hours: Q) -> Q:
    """Wall-plug energy of ``gpus`` GPUs drawing ``power_w`` each for ``hours``."""
    return gpus * wall_power_kw(power_w, pue) * hours


def job_energy_kwh(gpus: int, gpu: GpuType, pue: float, hours: float) -> float:
    """Energy of ``gpus`` busy GPUs of type ``gpu`` for ``hours``."""
    return float(energy_kwh(gpus, gpu.board_power_w, pue, hours))


def idle_energy_kwh(idle_gpus: float, gpu: GpuType, pue: float, hours: float) -> float:
    """Energy of GPUs that sit free (0 when the GPU type has no idle power)."""
    if gpu.idle_power_w is None:
        return 0.0
    return float(energy_kwh(idle_gpus, gpu.idle_power_w, pue, hours))
