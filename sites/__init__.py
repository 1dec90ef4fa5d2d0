"""What a datacenter is: GPU catalog and affinity, site spec, power model, time-series signals."""

from sites.affinity import AffinityMatrix, default_affinity
from sites.errors import InputError
from sites.gpus import DEFAULT_GPUS, GpuType
from sites.power import idle_energy_kwh, job_energy_kwh
from sites.signals import (
    ConstantSignal,
    CsvSignal,
    ListSignal,
    Signal,
    SyntheticDiurnal,
    hourly_to_slots,
)
from sites.spec import SiteSpec

__all__ = [
    "DEFAULT_GPUS",
    "AffinityMatrix",
    "ConstantSignal",
    "CsvSignal",
    "GpuType",
    "InputError",
    "ListSignal",
    "Signal",
    "SiteSpec",
    "SyntheticDiurnal",
    "default_affinity",
    "hourly_to_slots",
    "idle_energy_kwh",
    "job_energy_kwh",
]
