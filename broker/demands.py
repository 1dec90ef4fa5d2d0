"""A round's demands: identical jobs grouped, and the penalty that makes a running job run."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from broker.jobs import Job


def _demand_key(job: Job) -> tuple:
    return (job.home_site, job.job_type, job.gpus, job.work_steps, job.deadline_h, job.dataset_gb,
            job.gpu_types, job.min_gpus, job.max_gpus, job.preemptible, job.checkpoint_overhead_h,
            job.checkpoint_gb, job.elastic, job.resize_overhead_h, job.state, job.excluded_sites,
            job.allowed_sites)


def group_identical_jobs(queue: Sequence[Job]) -> tuple[tuple[Job, ...], ...]:
    """Jobs with equal options and costs form one demand solved as an integer count."""
    groups: dict[tuple, list[Job]] = {}
    for job in sorted(queue, key=lambda j: (j.submit_h, j.id)):
        groups.setdefault(_demand_key(job), []).append(job)
    return tuple(tuple(g) for g in groups.values())


def must_run_penalties(options_abs_cost_usd: float, penalty_usd: np.ndarray,
                       must_run: np.ndarray) -> np.ndarray:
    """Deferral penalties with the ``must_run`` demands' (running jobs that may not pause)
    above what any plan can save by deferring them: more than every option and every other
    deferral together, so an optimal plan (and the greedy one, which starts the costliest
    deferrals first) runs them. ``options_abs_cost_usd``: the sum of |cost| over the round's
    options."""
    if not must_run.any():
        return penalty_usd
    most = float(options_abs_cost_usd + penalty_usd[~must_run].sum())
    return np.where(must_run, 2.0 * most + 1.0, penalty_usd)
