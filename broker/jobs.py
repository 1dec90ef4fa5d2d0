"""Deep-learning training jobs as the broker sees them."""

from __future__ import annotations

from dataclasses import dataclass

from sites import scaling
from sites.affinity import AffinityMatrix


@dataclass(frozen=True)
class InFlight:
    """Where a job that already ran keeps its state, as a round boundary finds it.

    ``computing``: it runs now, so it may go on where it is at no cost. Any other start costs
    ``restart_h`` busy hours first: a job stopped while computing loses the work since its
    last checkpoint and reads the checkpoint back (2 x ``checkpoint_overhead_h``, both metered
    where it restarts, which keeps the pool it leaves free from the boundary on); a job
    paused after writing its checkpoint only reads it back (1 x).
    """

    site_id: str
    gpu_type: str
    gpus: int
    computing: bool
    restart_h: float
    done_steps: float  # work done so far (the job's ``work_steps`` is what is left)


@dataclass(frozen=True)
class Job:
    """A training job submitted at its home site.

    ``work_steps`` is the number of training steps; its run time on GPUs of a type is
    ``sites.scaling.runtime_h`` of its throughput there (``sites.scaling``).
    Moving it off its home site ships ``dataset_gb`` (egress money, transfer time).
    ``gpu_types`` restricts where it may run (a trace's GPU-model constraint); empty: anywhere.

    ``gpus`` is the count it asks for, and what policies that do not choose a count run it on.
    A *moldable* job gives a range (``min_gpus`` to ``max_gpus``, holding ``gpus``) and the
    broker chooses among ``gpu_counts``: the powers of two in the range and its ends (the
    counts training code is tuned for, and Gavel measured).

    ``excluded_sites`` are sites it must not run on (the live broker's: sites that refused it,
    and sites where it failed while others can take it); empty: any. ``allowed_sites``, when
    set, are the only sites it may run on (a live round's candidate sites,
    ``broker.live.candidate_sites``); None: any.

    A *preemptible* job may run in several segments on one pool, paused in between
    (``broker.options.cheapest_schedule``): each pause costs ``checkpoint_overhead_h`` of busy
    GPUs writing its checkpoint, and each resume as long reading it back. A planner that
    replans running jobs (``broker.simulation``) may also pause it at a round boundary and
    resume it later at home or elsewhere, shipping its ``checkpoint_gb``.

    An *elastic* job (a moldable one) may change its GPU count at a round boundary while it
    runs, each resize costing ``resize_overhead_h`` of busy GPUs.

    ``state`` is set on the rest of a job that already ran (``InFlight``): ``work_steps`` is
    then the work left.
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
    min_gpus: int | None = None
    max_gpus: int | None = None
    preemptible: bool = False
    checkpoint_overhead_h: float = 0.0
    checkpoint_gb: float = 0.0
    elastic: bool = False
    resize_overhead_h: float = 0.0
    state: InFlight | None = None
    excluded_sites: frozenset[str] = frozenset()
    allowed_sites: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if self.gpus < 1:
            raise ValueError(f"job {self.id}: gpus must be >= 1")
        if not self.checkpoint_overhead_h >= 0:
            raise ValueError(f"job {self.id}: checkpoint_overhead_h must be >= 0")
        if self.checkpoint_overhead_h > 0 and not self.preemptible:
            raise ValueError(f"job {self.id}: checkpoint_overhead_h needs preemptible: true")
        if not self.checkpoint_gb >= 0:
            raise ValueError(f"job {self.id}: checkpoint_gb must be >= 0")
        if self.checkpoint_gb > 0 and not self.preemptible:
            raise ValueError(f"job {self.id}: checkpoint_gb needs preemptible: true")
        if self.elastic and not self.moldable_range:
            raise ValueError(f"job {self.id}: elastic needs a GPU range (min_gpus < max_gpus)")
        if not self.resize_overhead_h >= 0:
            raise ValueError(f"job {self.id}: resize_overhead_h must be >= 0")
        if self.resize_overhead_h > 0 and not self.elastic:
            raise ValueError(f"job {self.id}: resize_overhead_h needs elastic: true")
        if (self.min_gpus is None) != (self.max_gpus is None):
            raise ValueError(f"job {self.id}: give both min_gpus and max_gpus, or neither")
        if self.min_gpus is not None and self.max_gpus is not None and not (
                1 <= self.min_gpus <= self.gpus <= self.max_gpus):
            raise ValueError(f"job {self.id}: needs 1 <= min_gpus <= gpus <= max_gpus, got "
                             f"{self.min_gpus} <= {self.gpus} <= {self.max_gpus}")
        if not self.work_steps > 0:
            raise ValueError(f"job {self.id}: work_steps must be > 0")
        if self.submit_h < 0:
            raise ValueError(f"job {self.id}: submit_h must be >= 0")
        if self.deadline_h is not None and self.deadline_h <= self.submit_h:
            raise ValueError(f"job {self.id}: deadline_h must be after submit_h")
        if self.dataset_gb < 0:
            raise ValueError(f"job {self.id}: dataset_gb must be >= 0")

    @property
    def moldable_range(self) -> bool:
        return self.min_gpus is not None and self.min_gpus != self.max_gpus

    @property
    def moldable(self) -> bool:
        """The broker chooses its count now (a running job only when it is elastic)."""
        return self.moldable_range and (self.state is None or self.elastic)

    @property
    def replannable(self) -> bool:
        """Once running, a planner may pause, move or resize it at a round boundary."""
        return self.preemptible or self.elastic

    @property
    def gpu_counts(self) -> tuple[int, ...]:
        """The GPU counts the broker may run it on (its own count when it is not moldable;
        a running job that is not elastic keeps the count it runs on)."""
        if self.state is not None and not self.elastic:
            return (self.state.gpus,)
        if self.min_gpus is None or self.max_gpus is None:
            return (self.gpus,)
        powers = {2 ** i for i in range(self.max_gpus.bit_length())}
        return tuple(sorted({k for k in powers if self.min_gpus <= k <= self.max_gpus}
                            | {self.min_gpus, self.max_gpus}))

    def restart_h(self, checkpoint_written: bool) -> float:
        """Busy hours a restart costs before its work goes on (``InFlight.restart_h``): the
        checkpoint read back, and first the work since the last checkpoint when the job was
        stopped before it could write one."""
        return self.checkpoint_overhead_h * (1.0 if checkpoint_written else 2.0)

    def runtime_h(self, steps_per_s: float) -> float:
        """Hours to finish at a throughput of ``steps_per_s`` (the whole job's, on all its
        GPUs: ``AffinityMatrix.job_steps_per_s``); infinite if it cannot run (0)."""
        return float(scaling.runtime_h(self.work_steps, steps_per_s))

    def runtime_on_h(self, affinity: AffinityMatrix, gpu_type: str) -> float:
        """Hours to finish on its GPUs of ``gpu_type`` (infinite where it does not run)."""
        return self.runtime_h(affinity.job_steps_per_s(self.job_type, gpu_type, self.gpus))
