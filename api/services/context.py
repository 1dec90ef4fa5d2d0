"""What every service shares: the database, the settings, the clock and the GPU catalog."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from api.clock import Clock
from api.db import Database
from api.settings import Settings
from sites import DEFAULT_GPUS, AffinityMatrix, GpuType, default_affinity


@dataclass(frozen=True)
class Context:
    db: Database
    settings: Settings
    clock: Clock
    gpu_catalog: Mapping[str, GpuType] = field(default_factory=lambda: dict(DEFAULT_GPUS))
    affinity: AffinityMatrix = field(default_factory=default_affinity)

    def known_gpu(self, gpu: str) -> bool:
        return gpu in self.gpu_catalog and gpu in self.affinity.gpu_types
