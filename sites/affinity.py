"""Resource affinity: training throughput of each job type on each GPU type, on one GPU and
(through its scaling model, ``sites.scaling``) on k GPUs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from sites.scaling import LINEAR, ScalingModel
from sites.units import hours_to_seconds


@dataclass(frozen=True)
class AffinityMatrix:
    """Throughput in steps/s of one GPU, ``throughput[job_type_index, gpu_type_index]``, and
    the ``scaling`` model that gives a job's throughput on k GPUs (``job_steps_per_s``).

    Zero means the job type does not run on that GPU type (it does not fit in memory, say).
    A table built by hand without a scaling model scales linearly (``sites.scaling.LINEAR``);
    the built-in catalog and every scenario carry the measured/fitted model.
    """

    job_types: tuple[str, ...]
    gpu_types: tuple[str, ...]
    throughput: np.ndarray
    scaling: ScalingModel = field(default=LINEAR, compare=False)

    def __post_init__(self) -> None:
        shape = (len(self.job_types), len(self.gpu_types))
        table = np.asarray(self.throughput, dtype=float)
        if table.shape != shape:
            raise ValueError(f"throughput has shape {table.shape}, expected {shape}")
        if (table < 0).any() or not np.isfinite(table).all():
            raise ValueError("throughput must be finite and >= 0")
        table.setflags(write=False)
        object.__setattr__(self, "throughput", table)

    @classmethod
    def from_nested(cls, table: Mapping[str, Mapping[str, float]],
                    scaling: ScalingModel = LINEAR) -> AffinityMatrix:
        """Build from ``{job_type: {gpu_type: steps_per_s}}``; missing entries are 0."""
        job_types = tuple(table)
        gpu_types = tuple(dict.fromkeys(g for row in table.values() for g in row))
        values = [[float(table[j].get(g, 0.0)) for g in gpu_types] for j in job_types]
        return cls(job_types, gpu_types,
                   np.array(values).reshape(len(job_types), len(gpu_types)), scaling)

    def job_index(self, job_type: str) -> int:
        return self.job_types.index(job_type)

    def gpu_index(self, gpu_type: str) -> int:
        return self.gpu_types.index(gpu_type)

    def steps_per_s(self, job_type: str, gpu_type: str) -> float:
        """One GPU's throughput (0 where the job type does not run on the GPU type)."""
        if gpu_type not in self.gpu_types:
            return 0.0
        return float(self.throughput[self.job_index(job_type), self.gpu_index(gpu_type)])

    def job_steps_per_s(self, job_type: str, gpu_type: str, gpus: int,
                        consolidated: bool | None = None) -> float:
        """The whole job's throughput on ``gpus`` GPUs of ``gpu_type`` (``sites.scaling``)."""
        return self.scaling.throughput(job_type, gpu_type, gpus,
                                       self.steps_per_s(job_type, gpu_type), consolidated)

    def work_steps_for_h(self, job_type: str, gpu_type: str, gpus: int, hours: float) -> float:
        """The work (steps) a ``job_type`` job does in ``hours`` on ``gpus`` GPUs of
        ``gpu_type``: the inverse of the run time (hours x its throughput there). ValueError
        when the job type is unknown or does not run on that GPU type."""
        if job_type not in self.job_types:
            raise ValueError(f"unknown job type '{job_type}' (known: {', '.join(self.job_types)})")
        if self.steps_per_s(job_type, gpu_type) <= 0:
            runs_on = [g for g in self.gpu_types if self.steps_per_s(job_type, g) > 0]
            raise ValueError(f"{job_type} does not run on {gpu_type} (runs on: "
                             f"{', '.join(runs_on)})")
        return hours_to_seconds(hours) * self.job_steps_per_s(job_type, gpu_type, gpus)


# Isolated single-GPU throughput (steps/s) measured by Gavel (Narayanan et al., OSDI 2020),
# file scheduler/simulation_throughputs.json, key "(<model> (batch size B), 1)" -> "null".
# One batch size per model keeps the catalog small; the Gavel key is given for each.
_GAVEL_MEASURED: dict[str, dict[str, float]] = {
    # "ResNet-18 (batch size 64)"
    "resnet18": {"K80": 7.052080666695425, "P100": 22.30494387033663, "V100": 24.093231895382736},
    # "ResNet-50 (batch size 64)"
    "resnet50": {"K80": 0.6190282202246573, "P100": 2.6194694075770055, "V100": 4.394774823323071},
    # "Transformer (batch size 64)"
    "transformer": {"K80": 1.7522265657120206, "P100": 5.091830907900463, "V100": 8.61775899193302},
    # "LM (batch size 20)"
    "lm": {"K80": 17.142289692304086, "P100": 58.17267240669826, "V100": 64.74245099960703},
    # "Recommendation (batch size 2048)"
    "recommendation": {"K80": 10.441219687328084, "P100": 16.59663998583255,
                       "V100": 7.469632060833725},
    # "A3C"
    "a3c": {"K80": 3.4387678290723933, "P100": 5.681346110543853, "V100": 7.175767179667988},
    # "CycleGAN"
    "cyclegan": {"K80": 0.5047705689725351, "P100": 2.4026681703106223, "V100": 4.426088263367452},
}

# Whole-job throughput (steps/s) Gavel measured at 2, 4 and 8 GPUs on one server, same file,
# keys "(<model> (batch size B), k)" -> "null", for the catalog's batch sizes above (the three
# job types it measured on one GPU only, and spread placements, use the fitted model).
_GAVEL_MEASURED_MULTI: dict[str, dict[str, dict[int, float]]] = {
    "resnet18": {
        "K80": {2: 12.495482346599234, 4: 21.625568416059814, 8: 42.64410449114462},
        "P100": {2: 41.4822445592434, 4: 74.99057006200313, 8: 120.03699011475503},
        "V100": {2: 74.13589143268821, 4: 95.58814453205626, 8: 255.82913926317391},
    },
    "resnet50": {
        "K80": {2: 1.2636370655757299, 4: 2.4122290974193286, 8: 4.568730189823378},
        "P100": {2: 5.515986118186492, 4: 10.36465731519379, 8: 18.221203053711378},
        "V100": {2: 7.922054367597505, 4: 9.451949566394442, 8: 17.303172756892167},
    },
    "transformer": {
        "K80": {2: 3.0630786746251895, 4: 5.030983562889494, 8: 8.97621997981465},
        "P100": {2: 7.886748284628143, 4: 13.313004543426457, 8: 19.942981926164425},
        "V100": {2: 15.876496488983058, 4: 19.65962221663049, 8: 49.650700211670745},
    },
    "lm": {
        "K80": {2: 23.773289373427588, 4: 35.70344542111913, 8: 61.44923706594953},
        "P100": {2: 62.33209834747592, 4: 93.81478290324394, 8: 116.64882298424683},
        "V100": {2: 132.17413449742747, 4: 110.99685986392635, 8: 497.2952582330656},
    },
}

# The median serial fraction of Amdahl fits to every consolidated job type and GPU of Gavel's
# file (sites.scaling.ScalingModel.fitted on gpu/gavel_throughputs.json; a real-data test
# holds this figure to the file): the scaling of job types with no multi-GPU measurement.
GAVEL_MEDIAN_SERIAL_FRACTION = 0.0842

# Newer GPUs have no Gavel measurement. Rule: throughput = V100 throughput x a per-GPU factor,
# the rough per-accelerator training speed-up over V100 seen in MLPerf Training results
# (A100 about 2x V100; H100 about 2.2x A100) and, for the inference-oriented T4 (70 W, 320 GB/s),
# about a quarter of a V100 when training. Scenario files can override any entry.
NEWER_GPU_SPEEDUP_OVER_V100: dict[str, float] = {"T4": 0.25, "A100": 2.0, "H100": 4.4}


def default_measurements() -> dict[tuple[str, str, bool], dict[int, float]]:
    """The built-in catalog's measured whole-job throughputs, by (job, GPU, consolidated)."""
    return {
        (job, gpu, True): {1: _GAVEL_MEASURED[job][gpu], **points}
        for job, per_gpu in _GAVEL_MEASURED_MULTI.items() for gpu, points in per_gpu.items()
    }


def default_scaling() -> ScalingModel:
    """The built-in catalog's scaling: Gavel's consolidated measurements, fitted."""
    return ScalingModel.fitted(default_measurements(), GAVEL_MEDIAN_SERIAL_FRACTION)


def default_affinity() -> AffinityMatrix:
    """Gavel's measured K80/P100/V100 throughputs plus the documented rule for newer GPUs, with
    the measured scaling (``default_scaling``)."""
    table = {
        job: {
            **measured,
            **{gpu: measured["V100"] * f for gpu, f in NEWER_GPU_SPEEDUP_OVER_V100.items()},
        }
        for job, measured in _GAVEL_MEASURED.items()
    }
    return AffinityMatrix.from_nested(table, default_scaling())
