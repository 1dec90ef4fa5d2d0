"""How fast a job runs on k GPUs, and so how long it takes: the one run-time formula.

    throughput (steps/s) = throughput(job type, GPU type, k GPUs, consolidated or spread)
    run time (h)         = work (steps) / throughput (steps/s) / 3600          (``runtime_h``)

What a step is, and what a throughput at k GPUs means, follows Gavel's own simulator
(stanford-futuredata/gavel @ c4fa400, the source of ``gpu/gavel_throughputs.json``):

* ``scheduler/utils.py`` ``generate_job``: ``num_steps = run_time *
  throughputs[reference_worker_type][(job_type, scale_factor)]['null']``: a job's steps are
  counted at its own scale factor k, and its throughput entry at k is the *whole job's* steps/s;
* ``scheduler/scheduler.py`` ``Scheduler._get_num_steps``: ``num_steps =
  int(self._throughputs[job_id][worker_type] * self._time_per_iteration)``: a round of
  ``time_per_iteration`` seconds advances the job by throughput(k) x time (each worker then
  gets ``x // scale_factor`` of them), until ``total_steps`` are done.

So a step is one worker's iteration on its own batch, counted over all workers; work is the
same number of steps at any k, and run time = total_steps / throughput(k): a trace job's run
time is Gavel's own. (The linear rule "k GPUs = k x one GPU" made 4-GPU ResNet-50 run 17.56
steps/s on V100 where Gavel measured 9.45.)

The model (``ScalingModel``): at a count Gavel measured (1, 2, 4, 8 GPUs; consolidated on one
server, or spread over servers) the measured throughput, as a speed-up over one GPU
(``measured``) applied to the affinity matrix's one-GPU rate: exactly the table where the
affinity matrix is Gavel's. Elsewhere Amdahl's law with a serial fraction ``s`` fitted per job
type, GPU type and placement (``fit_serial_fraction``; ``s`` absorbs communication):

    speedup(k) = k / (1 + s (k - 1))          throughput(k) = one-GPU rate x speedup(k)

GPU types Gavel did not measure (T4, A100, H100) take the V100's fraction of the job type (the
catalog already derives their one-GPU rate from the V100's); job types it measured on one GPU
only take ``default_serial_fraction``, the median of the fitted ones. ``held_out_errors``
measures the fit on points it did not see. A job on up to ``GPUS_PER_SERVER`` GPUs is placed
on one server (consolidated), a wider one spread over servers.

Non-monotone measurements (LM on V100: 132 steps/s on 2 GPUs, 111 on 4) are kept as measured:
they are what Gavel's simulator runs such a job at, and a policy that chooses a job's GPU count
never takes a count that is slower than a smaller one (more GPUs, less speed, more energy), so
the dip costs nothing where the count is free, and is the truth where the count is fixed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize_scalar

from sites.units import Q, seconds_to_hours

GPUS_PER_SERVER = 8  # Gavel's servers: its consolidated measurements go up to 8 GPUs
# Below -1 / (k - 1) Amdahl's speed-up at k is unbounded; Gavel's widest point is 8 GPUs.
MIN_SERIAL_FRACTION = -0.1
MAX_SERIAL_FRACTION = 1.0
# GPU types without measurements borrow the serial fraction of this one (their one-GPU rate is
# derived from it too: sites.affinity.NEWER_GPU_SPEEDUP_OVER_V100).
PROXY_GPU = "V100"


def runtime_h(work_steps: Q, steps_per_s: Q) -> Q:
    """Hours to do ``work_steps`` at ``steps_per_s``; infinite where it does not run (<= 0)."""
    if np.ndim(steps_per_s) == 0 and np.ndim(work_steps) == 0:
        rate = float(steps_per_s)
        return float("inf") if rate <= 0 else seconds_to_hours(work_steps / rate)
    rate_arr = np.asarray(steps_per_s, dtype=float)
    with np.errstate(divide="ignore"):
        hours = seconds_to_hours(np.asarray(work_steps, dtype=float) / rate_arr)
    return np.where(rate_arr > 0, hours, np.inf)


def amdahl_speedup(gpus: Q, serial_fraction: float) -> Q:
    """``k / (1 + s (k - 1))``: 1 on one GPU, k when s = 0, 1 / s as k grows when s > 0."""
    return gpus / (1.0 + serial_fraction * (gpus - 1.0))


def fit_serial_fraction(speedups: Mapping[int, float]) -> float:
    """The ``s`` whose Amdahl curve is closest to measured speed-ups ``{k: T(k) / T(1)}``, in
    squared log error (a 2x miss counts the same above and below). Counts of 1 are ignored."""
    points = [(k, v) for k, v in speedups.items() if k > 1 and v > 0]
    if not points:
        raise ValueError("no speed-up measured above one GPU")
    ks = np.array([k for k, _ in points], dtype=float)
    logs = np.log([v for _, v in points])
    lowest = max(MIN_SERIAL_FRACTION, -1.0 / (ks.max() - 1.0) + 1e-6)

    def loss(s: float) -> float:
        return float(((np.log(amdahl_speedup(ks, s)) - logs) ** 2).sum())

    found = minimize_scalar(loss, bounds=(lowest, MAX_SERIAL_FRACTION), method="bounded",
                            options={"xatol": 1e-10})
    return float(found.x)


# (job type, GPU type, consolidated) -> {GPU count: steps/s of the whole job}
Measurements = Mapping[tuple[str, str, bool], Mapping[int, float]]


@dataclass(frozen=True)
class ScalingModel:
    """throughput(job type, GPU type, k, consolidated) = one-GPU rate x speed-up(k).

    ``speedups[(job, gpu, consolidated)][k]``: measured T(k) / T(1); ``serial_fraction``: the
    fitted ``s`` per (job, gpu, consolidated); ``default_serial_fraction`` for the rest. An
    empty model with ``default_serial_fraction = 0`` is linear scaling (``LINEAR``): only for
    hand-made tables in tests and examples; every scenario attaches a fitted model.
    """

    speedups: Mapping[tuple[str, str, bool], Mapping[int, float]] = field(default_factory=dict)
    serial_fraction: Mapping[tuple[str, str, bool], float] = field(default_factory=dict)
    default_serial_fraction: float = 0.0

    @classmethod
    def fitted(cls, measured: Measurements,
               default_serial_fraction: float | None = None) -> ScalingModel:
        """Speed-ups and serial fractions from measured whole-job throughputs (a group needs
        its one-GPU figure and at least one more; groups without are left to the default)."""
        speedups: dict[tuple[str, str, bool], dict[int, float]] = {}
        fractions: dict[tuple[str, str, bool], float] = {}
        for key, points in measured.items():
            one = points.get(1, 0.0)
            if one <= 0:
                continue
            ratios = {k: v / one for k, v in points.items() if v > 0}
            speedups[key] = ratios
            if any(k > 1 for k in ratios):
                fractions[key] = fit_serial_fraction(ratios)
        if default_serial_fraction is None:
            consolidated = [s for (_, _, c), s in fractions.items() if c]
            default_serial_fraction = float(np.median(consolidated)) if consolidated else 0.0
        return cls(speedups, fractions, default_serial_fraction)

    def fraction(self, job_type: str, gpu_type: str, consolidated: bool) -> float:
        """The serial fraction used where nothing was measured (see the module docstring)."""
        for gpu in (gpu_type, PROXY_GPU):
            found = self.serial_fraction.get((job_type, gpu, consolidated))
            if found is not None:
                return found
        if not consolidated:  # spread, never fitted: at least the consolidated fraction
            return self.fraction(job_type, gpu_type, True)
        return self.default_serial_fraction

    def speedup(self, job_type: str, gpu_type: str, gpus: int,
                consolidated: bool | None = None) -> float:
        """T(k) / T(1): measured where measured, else Amdahl with the fitted fraction."""
        if gpus == 1:
            return 1.0
        placed = gpus <= GPUS_PER_SERVER if consolidated is None else consolidated
        measured = self.speedups.get((job_type, gpu_type, placed), {}).get(gpus)
        if measured is not None:
            return measured
        return float(amdahl_speedup(float(gpus), self.fraction(job_type, gpu_type, placed)))

    def throughput(self, job_type: str, gpu_type: str, gpus: int, one_gpu_steps_per_s: float,
                   consolidated: bool | None = None) -> float:
        """Steps/s of a job of ``job_type`` on ``gpus`` GPUs of ``gpu_type`` (0 where it does
        not run on one)."""
        if one_gpu_steps_per_s <= 0:
            return 0.0
        return one_gpu_steps_per_s * self.speedup(job_type, gpu_type, gpus, consolidated)


LINEAR = ScalingModel()


@dataclass(frozen=True)
class HeldOut:
    """One measured point predicted by a fit that did not see it."""

    job_type: str
    gpu_type: str
    consolidated: bool
    gpus: int
    measured_steps_per_s: float
    predicted_steps_per_s: float
    linear_steps_per_s: float  # what "k x one GPU" predicts

    @property
    def error(self) -> float:
        """Relative error of the fitted model's prediction."""
        return abs(self.predicted_steps_per_s / self.measured_steps_per_s - 1.0)

    @property
    def linear_error(self) -> float:
        return abs(self.linear_steps_per_s / self.measured_steps_per_s - 1.0)


def held_out_errors(measured: Measurements) -> list[HeldOut]:
    """Leave one out: each multi-GPU point of a group with at least two, predicted from a fit
    to the group's other points."""
    out = []
    for (job, gpu, consolidated), points in sorted(measured.items()):
        one = points.get(1, 0.0)
        multi = sorted(k for k, v in points.items() if k > 1 and v > 0)
        if one <= 0 or len(multi) < 2:
            continue
        for k in multi:
            seen = {m: points[m] / one for m in multi if m != k}
            s = fit_serial_fraction(seen)
            out.append(HeldOut(job, gpu, consolidated, k, points[k],
                               one * float(amdahl_speedup(float(k), s)), one * k))
    return out


def error_summary(held_out: Iterable[HeldOut]) -> dict[str, float]:
    """Median and 90th percentile of the relative errors, fitted and linear."""
    rows = list(held_out)
    if not rows:
        return {"points": 0.0}
    fit = np.array([r.error for r in rows])
    lin = np.array([r.linear_error for r in rows])
    return {"points": float(len(rows)),
            "median_error": float(np.median(fit)), "p90_error": float(np.quantile(fit, 0.9)),
            "median_linear_error": float(np.median(lin)),
            "p90_linear_error": float(np.quantile(lin, 0.9))}


