"""What a data file is and what is in it: kind recognition and ``carbonfed data describe``.

``KINDS`` maps each kind to its recogniser (does this header / JSON / line look like mine?) and
its loader (the reader of ``sites.readers`` or ``broker.traces``, then the numeric columns and,
when the file is a time series, its UTC index). Recognisers are tried in order; the first that
says yes names the kind. The reader then checks the file, so a file that looks right but is
broken gets the reader's one-line error.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from broker.traces import read_alibaba_pods, read_gavel_trace
from sites.errors import InputError
from sites.readers.electricitymaps import read_electricitymaps
from sites.readers.fleets import read_alibaba_nodes, read_pai_machines
from sites.readers.gavel_affinity import read_gavel_throughputs
from sites.readers.gpu_power import read_gpu_tdp
from sites.readers.lwa import read_lwa
from sites.readers.prices import read_prices
from sites.readers.timeseries import TimeTable, find_gaps, infer_resolution
from sites.readers.transfer_costs import read_transfer_costs
from sites.readers.zeus import read_zeus_power
from sites.units import SECONDS_PER_HOUR


@dataclass(frozen=True)
class Loaded:
    """A file's numeric columns; ``times`` is its UTC index when it is a time series."""

    frame: pd.DataFrame
    times: pd.DatetimeIndex | None = None
    relative_time_column: str | None = None  # traces: seconds since the trace's start


@dataclass(frozen=True)
class DataKind:
    description: str
    recognise: Callable[[Path, str], bool]  # (path, first line) -> is it mine?
    load: Callable[[Path], Loaded]


def _header_has(*columns: str) -> Callable[[Path, str], bool]:
    def recognise(path: Path, first_line: str) -> bool:
        header = [c.strip().strip('"') for c in first_line.split(",")]
        return all(c in header for c in columns)
    return recognise


def _table(read: Callable[[Path], TimeTable]) -> Callable[[Path], Loaded]:
    def load(path: Path) -> Loaded:
        table = read(path)
        return Loaded(table.frame.reset_index(drop=True), pd.DatetimeIndex(table.frame.index))
    return load


def _affinity(path: Path) -> Loaded:
    measured = read_gavel_throughputs(path)
    rows = [{"job_type": j, "scale_factor": sf, **per_gpu}
            for (j, sf), per_gpu in measured.table.items()]
    return Loaded(pd.DataFrame(rows).drop(columns=["job_type"]))


def _gavel_trace(path: Path) -> Loaded:
    return Loaded(read_gavel_trace(path).drop(columns=["job_type"]),
                  relative_time_column="arrival_time_s")


def _pods(path: Path) -> Loaded:
    frame = read_alibaba_pods(path)
    return Loaded(frame.drop(columns=["name", "gpu_spec"]), relative_time_column="creation_time")


def _csv_numeric(path: Path, check: Callable[[Path], object]) -> Loaded:
    check(path)  # the reader's checks; the numbers below are the file's own columns
    return Loaded(pd.read_csv(path).select_dtypes("number"))


def _is_json_object(path: Path, first_line: str) -> bool:
    return first_line.lstrip().startswith("{")


def _is_gavel_trace(path: Path, first_line: str) -> bool:
    return path.suffix == ".trace" or first_line.count("\t") == 6


KINDS: dict[str, DataKind] = {
    "carbon-intensity": DataKind(
        "Electricity Maps hourly carbon intensity (gCO2/kWh, direct and LCA)",
        _header_has("Datetime (UTC)", "Carbon Intensity gCO₂eq/kWh (direct)"),
        _table(read_electricitymaps)),
    "carbon-intensity-lwa": DataKind(
        "Let's Wait Awhile carbon intensity (gCO2/kWh, 15 or 30 min)",
        _header_has("Time", "Carbon Intensity"), _table(read_lwa)),
    "price": DataKind("hourly electricity price (USD/MWh)",
                      _header_has("Datetime (UTC)", "Price (USD/MWh)"), _table(read_prices)),
    "affinity": DataKind("Gavel throughput table (steps/s per job type, scale factor, GPU)",
                         _is_json_object, _affinity),
    "gavel-trace": DataKind("Gavel job trace (Philly-derived arrivals)", _is_gavel_trace,
                            _gavel_trace),
    "alibaba-pods": DataKind("Alibaba v2023 pod list", _header_has("name", "num_gpu", "gpu_milli"),
                             _pods),
    "alibaba-nodes": DataKind("Alibaba v2023 GPU node list", _header_has("sn", "gpu", "model"),
                              lambda p: _csv_numeric(p, read_alibaba_nodes)),
    "pai-machines": DataKind("Alibaba PAI 2020 machine spec",
                             _header_has("machine", "gpu_type", "cap_gpu"),
                             lambda p: _csv_numeric(p, read_pai_machines)),
    "gpu-power": DataKind("Zeus measured GPU training power",
                          _header_has("power_limit", "time_per_epoch", "average_power"),
                          lambda p: Loaded(read_zeus_power(p).select_dtypes("number"))),
    "gpu-tdp": DataKind("GPU thermal design power table", _header_has("name", "type", "tdp_watts"),
                        lambda p: _csv_numeric(p, read_gpu_tdp)),
    "transfer-costs": DataKind(
        "inter-region transfer price matrix (USD/GB)",
        lambda p, line: line.startswith(","),
        lambda p: Loaded(pd.DataFrame(read_transfer_costs(p).usd_per_gb,
                                      columns=read_transfer_costs(p).regions))),
}


def recognise(path: Path) -> str:
    """The kind of the file at ``path`` (``InputError`` when no kind matches)."""
    source = str(path)
    if not path.is_file():
        raise InputError(source, "", "no such file")
    with path.open(encoding="utf-8", errors="replace") as handle:
        first_line = handle.readline().rstrip("\r\n")
    if not first_line.strip():
        raise InputError(source, "", "the file is empty")
    for name, kind in KINDS.items():
        if kind.recognise(path, first_line):
            return name
    raise InputError(source, "line 1", "not a data file carbonfed knows (kinds: "
                     f"{', '.join(KINDS)})")


@dataclass(frozen=True)
class ColumnStats:
    mean: float
    sd: float
    min: float
    max: float


@dataclass(frozen=True)
class Description:
    path: str
    kind: str
    rows: int
    first: str | None
    last: str | None
    resolution: str | None
    gaps: int | None
    longest_gap: str | None
    columns: dict[str, ColumnStats]

    def as_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k != "columns"}
        out["columns"] = {c: s.__dict__ for c, s in self.columns.items()}
        return out


def describe(path: Path, start: str | None = None, end: str | None = None,
             column: str | None = None) -> Description:
    """Kind, rows, period, resolution, gaps and per-column statistics of a data file.

    ``start``/``end`` (UTC timestamps for grid series; trace hours for traces) keep the rows in
    ``[start, end)``; ``column`` keeps one numeric column.
    """
    kind = recognise(path)
    loaded = KINDS[kind].load(path)
    frame, times = loaded.frame, loaded.times
    source = str(path)
    first = last = resolution = longest = None
    gaps = None
    if times is not None:
        keep = np.ones(len(times), dtype=bool)
        lo = _utc(start, source, "--start") if start is not None else None
        hi = _utc(end, source, "--end") if end is not None else None
        _check_window(lo, hi, source)
        if lo is not None:
            keep &= times >= lo
        if hi is not None:
            keep &= times < hi
        frame, times = frame[keep], times[keep]
        if len(times):
            step = infer_resolution(times)
            found = find_gaps(times, step)
            first, last, resolution = str(times[0]), str(times[-1]), _duration(step)
            gaps = len(found)
            longest = _duration(max(g.length for g in found)) if found else None
    elif loaded.relative_time_column is not None:
        hours = frame[loaded.relative_time_column].to_numpy(float) / SECONDS_PER_HOUR
        keep = np.ones(len(hours), dtype=bool)
        lo_h = _hours(start, source, "--start") if start is not None else None
        hi_h = _hours(end, source, "--end") if end is not None else None
        _check_window(lo_h, hi_h, source)
        if lo_h is not None:
            keep &= hours >= lo_h
        if hi_h is not None:
            keep &= hours < hi_h
        frame = frame[keep]
        if len(frame):
            first, last = f"{hours[keep][0]:g} h", f"{hours[keep][-1]:g} h"
    elif start is not None or end is not None:
        raise InputError(source, "--start/--end", f"a {kind} file has no time axis")
    numeric = frame.select_dtypes("number")
    if column is not None:
        if column not in numeric.columns:
            raise InputError(source, "--column", f"no numeric column '{column}' "
                             f"(has: {', '.join(map(str, numeric.columns))})")
        numeric = numeric[[column]]
    stats = {str(c): _stats(numeric[c].to_numpy(float)) for c in numeric.columns}
    return Description(source, kind, len(frame), first, last, resolution, gaps, longest, stats)


def _check_window(lo: object, hi: object, source: str) -> None:
    if lo is not None and hi is not None and not hi > lo:  # type: ignore[operator]
        raise InputError(source, "--end", f"{hi} is not after --start {lo}")


def _stats(values: np.ndarray) -> ColumnStats:
    if len(values) == 0:
        return ColumnStats(math.nan, math.nan, math.nan, math.nan)
    sd = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return ColumnStats(float(values.mean()), sd, float(values.min()), float(values.max()))


def _utc(text: str, source: str, option: str) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(text)
    except ValueError:
        raise InputError(source, option, f"not a timestamp: {text!r}") from None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _hours(text: str, source: str, option: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InputError(source, option, f"traces take hours since the trace's start, "
                         f"got {text!r}") from None


def _duration(delta: pd.Timedelta) -> str:
    minutes = delta.total_seconds() / 60
    return f"{minutes / 60:g} h" if minutes >= 60 else f"{minutes:g} min"
