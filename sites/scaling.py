"""How fast a job runs on k GPUs, and so how long it takes: the one run-time formula.

    throughput (steps/s) = the job's rate on all its GPUs          (``throughput_steps_per_s``)
    run time (h)         = work (steps) / throughput (steps/s) / 3600      (``runtime_h``)

Every consumer (the options of a round or of the period plan, the baselines, the meter, the
live broker's estimates, the outside option, the savings breakdown) goes through these two.
Today the throughput on k GPUs is k times the per-GPU rate of the affinity matrix; the measured
scaling model of issue 20 replaces ``throughput_steps_per_s`` and nothing else.
"""

from __future__ import annotations

import numpy as np

from sites.units import Q, seconds_to_hours


def throughput_steps_per_s(per_gpu_steps_per_s: Q, gpus: Q) -> Q:
    """Steps/s of a job on ``gpus`` GPUs that each do ``per_gpu_steps_per_s`` on their own
    (linear scaling; 0 where the job does not run)."""
    return per_gpu_steps_per_s * gpus


def runtime_h(work_steps: Q, steps_per_s: Q) -> Q:
    """Hours to do ``work_steps`` at ``steps_per_s``; infinite where it does not run (<= 0)."""
    if np.ndim(steps_per_s) == 0 and np.ndim(work_steps) == 0:
        rate = float(steps_per_s)
        return float("inf") if rate <= 0 else seconds_to_hours(work_steps / rate)
    rate_arr = np.asarray(steps_per_s, dtype=float)
    with np.errstate(divide="ignore"):
        hours = seconds_to_hours(np.asarray(work_steps, dtype=float) / rate_arr)
    return np.where(rate_arr > 0, hours, np.inf)
