"""Real GPU fleets: the Alibaba v2023 node list and the Alibaba PAI 2020 machine spec.

* Alibaba v2023 (``openb_node_list_gpu_node.csv``): ``sn``, ``cpu_milli``, ``memory_mib``,
  ``gpu`` (GPUs on the node), ``model`` (G2, T4, G3, P100, V100M32, V100M16, A10; G2 and G3 are
  anonymised models).
* PAI 2020 (``pai_v2020_machine_spec.csv``): ``machine``, ``gpu_type`` (P100, T4, V100,
  V100M32, MISC, CPU), ``cap_cpu``, ``cap_mem``, ``cap_gpu``.

A site's fleet is a *slice* of such a fleet: the GPU models it keeps, each mapped to a GPU type
of the scenario's catalog (``{V100M32: V100, T4: T4}``; models not named are left out), and
optionally scaled to ``sample_gpus`` GPUs keeping the fleet's mix (largest-remainder
rounding, so the counts add up exactly and no random draw is involved).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sites.errors import InputError
from sites.readers.timeseries import check_values, line_of, read_csv_checked


@dataclass(frozen=True)
class Fleet:
    """GPUs per model and how many nodes (machines) carry them."""

    source: str
    gpus_by_model: dict[str, int]
    nodes_by_model: dict[str, int]

    @property
    def total_gpus(self) -> int:
        return sum(self.gpus_by_model.values())

    @property
    def total_nodes(self) -> int:
        return sum(self.nodes_by_model.values())

    def slice(self, models: Mapping[str, str], sample_gpus: int | None = None) -> dict[str, int]:
        """GPUs per catalog type: the ``models`` kept (model -> type), scaled to ``sample_gpus``.

        Worked example: a fleet of {V100M32: 204, V100M16: 195, T4: 842}, models {V100M32: V100,
        V100M16: V100, T4: T4}, sample_gpus 64: V100 = 399, T4 = 842 (1241 in all); exact shares
        64 x 399/1241 = 20.58 and 43.42; floors 20 + 43 = 63, the larger remainder (V100, .58)
        gets the last GPU: {V100: 21, T4: 43}.
        """
        unknown = [m for m in models if m not in self.gpus_by_model]
        if unknown:
            raise InputError(self.source, f"models.{unknown[0]}", "no such GPU model in the "
                             f"fleet (has: {', '.join(self.gpus_by_model)})")
        kept: dict[str, int] = {}
        for model, gpu_type in models.items():
            kept[gpu_type] = kept.get(gpu_type, 0) + self.gpus_by_model[model]
        if sample_gpus is None:
            return kept
        total = sum(kept.values())
        if total == 0:
            raise InputError(self.source, "models", "the models kept have no GPUs")
        exact = np.array(list(kept.values()), dtype=float) * sample_gpus / total
        counts = np.floor(exact).astype(int)
        short = sample_gpus - int(counts.sum())
        # largest remainders first; ties by order given, so the result is reproducible
        order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - counts[i]), i))
        for i in order[:short]:
            counts[i] += 1
        return {g: int(n) for g, n in zip(kept, counts, strict=True) if n > 0}


def read_alibaba_nodes(path: Path | str) -> Fleet:
    source = str(path)
    frame = read_csv_checked(path, ["sn", "gpu", "model"])
    gpus = _gpu_counts(frame["gpu"], source, "gpu")
    return _fleet(source, frame["model"].astype(str).str.strip(), gpus, frame["sn"], "sn")


def read_pai_machines(path: Path | str) -> Fleet:
    """Machines without GPUs (``CPU``, ``cap_gpu`` 0) are left out."""
    source = str(path)
    frame = read_csv_checked(path, ["machine", "gpu_type", "cap_gpu"])
    gpus = _gpu_counts(frame["cap_gpu"], source, "cap_gpu")
    return _fleet(source, frame["gpu_type"].astype(str).str.strip(), gpus, frame["machine"],
                  "machine")


def _gpu_counts(values, source: str, column: str) -> np.ndarray:
    numbers = check_values(values, source, column, allow_negative=False)
    fractional = np.flatnonzero(numbers != np.round(numbers))
    if len(fractional):
        raise InputError(source, f"{line_of(int(fractional[0]))}, column '{column}'",
                         f"GPU count must be a whole number, got {numbers[fractional[0]]}")
    return numbers.astype(int)


def _fleet(source: str, models, gpus: np.ndarray, ids, id_column: str) -> Fleet:
    duplicated = np.flatnonzero(ids.duplicated().to_numpy())
    if len(duplicated):
        row = int(duplicated[0])
        raise InputError(source, f"{line_of(row)}, column '{id_column}'",
                         f"duplicate node id '{ids.iloc[row]}'")
    gpus_by_model: dict[str, int] = {}
    nodes_by_model: dict[str, int] = {}
    for model, n in zip(models, gpus, strict=True):
        if n > 0:
            gpus_by_model[model] = gpus_by_model.get(model, 0) + int(n)
            nodes_by_model[model] = nodes_by_model.get(model, 0) + 1
    if not gpus_by_model:
        raise InputError(source, "", "the fleet has no GPUs")
    return Fleet(source, gpus_by_model, nodes_by_model)
