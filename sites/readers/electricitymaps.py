"""Electricity Maps hourly carbon-intensity CSVs (the data portal's export format).

Columns used: ``Datetime (UTC)``, ``Carbon Intensity gCO₂eq/kWh (direct)`` (operational
emissions) and ``... (LCA)`` (life-cycle); ``Low Carbon Percentage`` and ``Renewable
Percentage`` when present. Intensities must be present and >= 0.
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

TIME_COLUMN = "Datetime (UTC)"
CARBON_COLUMNS = {
    "direct": "Carbon Intensity gCO₂eq/kWh (direct)",
    "lca": "Carbon Intensity gCO₂eq/kWh (LCA)",
}
SHARE_COLUMNS = ("Low Carbon Percentage", "Renewable Percentage")


def read_electricitymaps(path: Path | str) -> TimeTable:
    """Columns ``direct`` and ``lca`` (gCO2/kWh) plus the percentage columns present."""
    source = str(path)
    frame = read_csv_checked(path, [TIME_COLUMN, *CARBON_COLUMNS.values()])
    times = parse_utc(frame[TIME_COLUMN], source, TIME_COLUMN)
    columns = {
        short: check_values(frame[long], source, long, allow_negative=False)
        for short, long in CARBON_COLUMNS.items()
    }
    for name in SHARE_COLUMNS:
        if name in frame.columns:
            columns[name] = check_values(frame[name], source, name, allow_negative=False)
    return build_table(source, times, columns, TIME_COLUMN)
