"""Gavel's measured throughputs (``simulation_throughputs.json``) as an affinity matrix.

Layout: ``{gpu: {"('<job type>', <scale factor>)": {"null": isolated_steps_per_s,
"('<other>', <sf>)": [self, other], ...}}}``. Only the isolated figure (``"null"``) is used: a
job runs alone on its GPUs. Zero means the job does not run on that GPU (it does not fit).
``<gpu>_unconsolidated`` entries are the same GPUs with workers spread over servers; the
consolidated ones are read by default.

Job-type names become carbonfed names: ``"ResNet-18 (batch size 64)"`` -> ``resnet18-bs64``,
``"A3C"`` -> ``a3c``. The built-in catalog's short names (``resnet18``...) are the batch sizes
named in ``GAVEL_DEFAULT_BATCH`` (see ``sites.affinity``).
"""

from __future__ import annotations

import ast
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from sites.affinity import NEWER_GPU_SPEEDUP_OVER_V100, AffinityMatrix
from sites.errors import InputError
from sites.scaling import Measurements

GAVEL_GPUS = {"k80": "K80", "p100": "P100", "v100": "V100"}
UNCONSOLIDATED = "_unconsolidated"
# model names in Gavel -> carbonfed's short names
MODEL_NAMES = {
    "ResNet-18": "resnet18", "ResNet-50": "resnet50", "Transformer": "transformer",
    "LM": "lm", "Recommendation": "recommendation", "A3C": "a3c", "CycleGAN": "cyclegan",
}
# the batch size the built-in catalog's short name stands for
GAVEL_DEFAULT_BATCH = {"resnet18": 64, "resnet50": 64, "transformer": 64, "lm": 20,
                       "recommendation": 2048}
_BATCH = re.compile(r"^(?P<model>.+?) \(batch size (?P<batch>\d+)\)$")


def carbonfed_job_type(gavel_name: str) -> str:
    """``"ResNet-18 (batch size 64)"`` -> ``"resnet18-bs64"``; unknown models are slugged."""
    match = _BATCH.match(gavel_name.strip())
    model = match["model"] if match else gavel_name.strip()
    short = MODEL_NAMES.get(model) or re.sub(r"[^a-z0-9]+", "-", model.lower()).strip("-")
    return f"{short}-bs{match['batch']}" if match else short


def base_job_type(name: str) -> str:
    """``resnet18-bs64`` -> ``resnet18``: the model without its batch size."""
    return name.split("-bs")[0]


@dataclass(frozen=True)
class GavelThroughputs:
    """Isolated throughput (steps/s) per (carbonfed job type, scale factor) and GPU type."""

    source: str
    table: dict[tuple[str, int], dict[str, float]]

    @property
    def scale_factors(self) -> tuple[int, ...]:
        return tuple(sorted({sf for _, sf in self.table}))

    def affinity(self, scale_factor: int = 1, newer_gpus: bool = True) -> AffinityMatrix:
        """Per-GPU throughput of the ``scale_factor``-GPU measurements.

        Gavel's figure for scale factor k is the whole job's steps/s; carbonfed's matrix holds
        one GPU's share (it scales linearly with a job's GPUs), so it is divided by k. With
        ``newer_gpus``, T4/A100/H100 get the V100 figure times the catalog's documented factor.
        """
        rows = {job: {g: v / scale_factor for g, v in per_gpu.items()}
                for (job, sf), per_gpu in self.table.items() if sf == scale_factor}
        if not rows:
            raise InputError(self.source, "", f"no entries with scale factor {scale_factor} "
                             f"(has: {', '.join(map(str, self.scale_factors))})")
        if newer_gpus:
            for row in rows.values():
                for gpu, factor in NEWER_GPU_SPEEDUP_OVER_V100.items():
                    row.setdefault(gpu, row.get("V100", 0.0) * factor)
        return AffinityMatrix.from_nested(rows)


def read_gavel_throughputs(path: Path | str, unconsolidated: bool = False) -> GavelThroughputs:
    """Read and check the JSON; ``unconsolidated`` picks the spread-over-servers entries."""
    return _throughputs(_load(path), str(path), unconsolidated)


def _load(path: Path | str) -> dict:
    source = str(path)
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError(source, "", "no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(source, "", f"not valid JSON ({error})") from None
    if not isinstance(data, dict) or not data:
        raise InputError(source, "", "not an affinity table: expected {gpu: {job: {...}}}")
    return data


def _throughputs(data: dict, source: str, unconsolidated: bool) -> GavelThroughputs:
    suffix = UNCONSOLIDATED if unconsolidated else ""
    wanted = {f"{key}{suffix}": name for key, name in GAVEL_GPUS.items()}
    found = [k for k in data if k in wanted]
    if not found:
        raise InputError(source, "", "not an affinity table: no GPU key among "
                         f"{', '.join(wanted)} (keys: {', '.join(map(str, list(data)[:6]))})")
    table: dict[tuple[str, int], dict[str, float]] = {}
    for gpu_key in found:
        entries = data[gpu_key]
        if not isinstance(entries, dict):
            raise InputError(source, gpu_key, "not an affinity table: expected {job: {...}}")
        for job_key, measured in entries.items():
            job, scale = _parse_job_key(job_key, source, gpu_key)
            value = measured.get("null") if isinstance(measured, dict) else None
            field = f"{gpu_key}.{job_key}.null"
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise InputError(source, field, f"missing or non-numeric throughput {value!r}")
            if not math.isfinite(value) or value < 0:
                raise InputError(source, field, f"throughput must be finite and >= 0, got {value}")
            table.setdefault((carbonfed_job_type(job), scale), {})[wanted[gpu_key]] = float(value)
    return GavelThroughputs(source, table)


def gavel_measurements(path: Path | str) -> Measurements:
    """Whole-job throughputs of every (job type, GPU type, placement) at each scale factor
    Gavel measured, consolidated and (where the file has them) spread, for
    ``sites.scaling.ScalingModel.fitted``."""
    data, source = _load(path), str(path)
    spread = any(str(key).endswith(UNCONSOLIDATED) for key in data)
    out: dict[tuple[str, str, bool], dict[int, float]] = {}
    for consolidated in (True, False) if spread else (True,):
        measured = _throughputs(data, source, unconsolidated=not consolidated)
        for (job, k), per_gpu in measured.table.items():
            for gpu, value in per_gpu.items():
                out.setdefault((job, gpu, consolidated), {})[k] = value
    return out


def _parse_job_key(key: str, source: str, gpu_key: str) -> tuple[str, int]:
    try:
        job, scale = ast.literal_eval(key)
    except (ValueError, SyntaxError, TypeError):
        raise InputError(source, f"{gpu_key}.{key}", "not an affinity table: job key is not "
                         "\"('<job type>', <scale>)\"") from None
    if not isinstance(job, str) or not isinstance(scale, int) or scale < 1:
        raise InputError(source, f"{gpu_key}.{key}", "job key needs a name and a scale >= 1")
    return job, scale
