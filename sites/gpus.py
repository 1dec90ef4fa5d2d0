"""GPU types and the built-in catalog of their board power."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GpuType:
    """A GPU model as the power model sees it.

    ``board_power_w`` is drawn while a job runs; ``idle_power_w`` (optional) while it sits free.
    """

    name: str
    board_power_w: float
    idle_power_w: float | None = None

    def __post_init__(self) -> None:
        if not self.board_power_w > 0:
            raise ValueError(f"{self.name}: board_power_w must be > 0, got {self.board_power_w}")
        if self.idle_power_w is not None and not 0 <= self.idle_power_w <= self.board_power_w:
            raise ValueError(f"{self.name}: idle_power_w must be in [0, board_power_w]")


DEFAULT_GPUS: dict[str, GpuType] = {
    gpu.name: gpu
    for gpu in (
        # K80: one GK210 die, the unit CUDA, cloud providers and Gavel call "a K80 GPU"; the
        # dual-die board is 300 W (NVIDIA Tesla K80 board spec; gpus_tdp.csv "Tesla K80").
        GpuType("K80", board_power_w=150.0),
        # P100 PCIe 16 GB: 250 W (NVIDIA Tesla P100 datasheet; gpus_tdp.csv "Tesla P100").
        GpuType("P100", board_power_w=250.0),
        # V100 SXM2 32 GB: 300 W (NVIDIA V100 datasheet; gpus_tdp.csv "Tesla V100-SXM2-32GB").
        GpuType("V100", board_power_w=300.0),
        # T4: 70 W (NVIDIA T4 datasheet; gpus_tdp.csv "T4").
        GpuType("T4", board_power_w=70.0),
        # A100 SXM4 80 GB: 400 W (NVIDIA A100 datasheet; gpus_tdp.csv "A100 SXM4 80 GB").
        GpuType("A100", board_power_w=400.0),
        # H100 SXM: 700 W (NVIDIA H100 datasheet; gpus_tdp.csv "H100 SXM").
        GpuType("H100", board_power_w=700.0),
    )
}
