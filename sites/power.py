"""Power model: what a job's GPUs draw at the wall."""

from __future__ import annotations

from sites.gpus import GpuType

W_PER_KW = 1000.0


def job_energy_kwh(gpus: int, gpu: GpuType, pue: float, hours: float) -> float:
    """Wall-plug energy of ``gpus`` busy GPUs for ``hours``: GPUs x board power x PUE x hours."""
    return gpus * gpu.board_power_w * pue * hours / W_PER_KW


def idle_energy_kwh(idle_gpus: float, gpu: GpuType, pue: float, hours: float) -> float:
    """Energy of GPUs that sit free (0 when the GPU type has no idle power)."""
    if gpu.idle_power_w is None:
        return 0.0
    return idle_gpus * gpu.idle_power_w * pue * hours / W_PER_KW
