"""What a datacenter is, as the federation sees it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SiteSpec:
    """A site: its grid zone, GPUs per type, PUE and the price of moving data out of it."""

    id: str
    zone: str
    gpus: dict[str, int] = field(default_factory=dict)
    pue: float = 1.2
    egress_usd_per_gb: float = 0.02

    def __post_init__(self) -> None:
        if any(n < 0 for n in self.gpus.values()):
            raise ValueError(f"site {self.id}: GPU counts must be >= 0")
        if self.pue < 1:
            raise ValueError(f"site {self.id}: pue must be >= 1, got {self.pue}")
        if self.egress_usd_per_gb < 0:
            raise ValueError(f"site {self.id}: egress_usd_per_gb must be >= 0")

    @property
    def total_gpus(self) -> int:
        return sum(self.gpus.values())
