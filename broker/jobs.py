"""Deep-learning training jobs as the broker sees them."""

from __future__ import annotations

from dataclasses import dataclass

from sites import scaling
from sites.affinity import AffinityMatrix


@dataclass(frozen=True)
class Job:
    """A training job submitted at its home site.

    ``work_steps`` is the number of training steps; its run time on GPUs of a type is
    ``sites.scaling.runtime_h`` of its throughput there (``sites.scaling``).
    Moving it off its home site ships ``dataset_gb`` (egress money, transfer time).
    ``gpu_types`` restricts where it may run (a trace's GPU-model constraint); empty: anywhere.
    """

    id: str
    home_site: str
    job_type: str
    gpus: int
    work_steps: float
    submit_h: float
    deadline_h: float | None = None
    dataset_gb: float = 0.0
    gpu_types: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.gpus < 1:
            raise ValueError(f"job {self.id}: gpus must be >= 1")
        if not self.work_steps > 0:
            raise ValueError(f"job {self.id}: work_steps must be > 0")
        if self.submit_h < 0:
            raise ValueError(f"job {self.id}: submit_h must be >= 0")
        if self.deadline_h is not None and self.deadline_h <= self.submit_h:
            raise ValueError(f"job {self.id}: deadline_h must be after submit_h")
        if self.dataset_gb < 0:
            raise ValueError(f"job {self.id}: dataset_gb must be >= 0")

    def runtime_h(self, steps_per_s: float) -> float:
        """Hours to finish at a throughput of ``steps_per_s`` (the whole job's, on all its
        GPUs: ``AffinityMatrix.job_steps_per_s``); infinite if it cannot run (0)."""
        return float(scaling.runtime_h(self.work_steps, steps_per_s))

    def runtime_on_h(self, affinity: AffinityMatrix, gpu_type: str) -> float:
        """Hours to finish on its GPUs of ``gpu_type`` (infinite where it does not run)."""
        return self.runtime_h(affinity.job_steps_per_s(self.job_type, gpu_type, self.gpus))
