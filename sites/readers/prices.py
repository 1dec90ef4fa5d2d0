"""Hourly wholesale electricity price CSVs (``Datetime (UTC)``, ``Price (USD/MWh)``).

Prices may be negative (DE-LU goes below -400 USD/MWh in 2023); they may not be missing.
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
PRICE_COLUMN = "Price (USD/MWh)"
PRICE = "price_usd_per_mwh"


def read_prices(path: Path | str) -> TimeTable:
    """One column, ``price_usd_per_mwh``."""
    source = str(path)
    frame = read_csv_checked(path, [TIME_COLUMN, PRICE_COLUMN])
    times = parse_utc(frame[TIME_COLUMN], source, TIME_COLUMN)
    price = check_values(frame[PRICE_COLUMN], source, PRICE_COLUMN, allow_negative=True)
    return build_table(source, times, {PRICE: price}, TIME_COLUMN)
