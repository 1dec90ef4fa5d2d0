"""What a datacenter is: GPU catalog and affinity, site spec, power model, time-series signals."""

from sites.affinity import AffinityMatrix, default_affinity
from sites.errors import InputError
from sites.gpus import DEFAULT_GPUS, GpuType
from sites.power import idle_energy_kwh, job_energy_kwh
from sites.signals import (
    ConstantSignal,
    ListSignal,
    Signal,
    SyntheticDiurnal,
    TableSignal,
)
from sites.spec import SiteSpec
from sites.timegrid import hourly_to_slots

__all__ = [
    "DEFAULT_GPUS",
    "AffinityMatrix",
    "ConstantSignal",
    "GpuType",
    "InputError",
    "ListSignal",
    "Signal",
    "SiteSpec",
    "SyntheticDiurnal",
    "TableSignal",
    "default_affinity",
    "hourly_to_slots",
    "idle_energy_kwh",
    "job_energy_kwh",
]
