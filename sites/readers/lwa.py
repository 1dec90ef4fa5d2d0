"""Let's Wait Awhile carbon-intensity CSVs (``Time``, ``Carbon Intensity``; 15 or 30 minutes).

Wiesner et al., "Let's Wait Awhile", Middleware 2021: Germany every 15 minutes, Great Britain
and France every 30. Timestamps carry no zone and are read as UTC.
"""

from __future__ import annotations

from pathlib import Path

from sites.readers.timeseries import (
    TimeTable,
    build_table,
    check_values,
    parse_utc,
    read_csv_checked,
)

TIME_COLUMN = "Time"
VALUE_COLUMN = "Carbon Intensity"
CARBON = "carbon_g_per_kwh"


def read_lwa(path: Path | str) -> TimeTable:
    """One column, ``carbon_g_per_kwh``."""
    source = str(path)
    frame = read_csv_checked(path, [TIME_COLUMN, VALUE_COLUMN])
    times = parse_utc(frame[TIME_COLUMN], source, TIME_COLUMN)
    carbon = check_values(frame[VALUE_COLUMN], source, VALUE_COLUMN, allow_negative=False)
    return build_table(source, times, {CARBON: carbon}, TIME_COLUMN)
