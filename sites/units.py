"""Unit conversions, each written once (DESIGN.md, "Units").

Names say both units: ``kwh_to_mwh`` multiplies kWh by MWh per kWh. Every module that converts
between hours and seconds, grams and kilograms, watts and kilowatts or tonnes and kilograms
imports from here; a literal 3600 or 1000 elsewhere is a bug waiting to drift.
"""

from __future__ import annotations

from typing import Any, TypeAlias

# A quantity: a number or a numpy array of them (the formulas are the same for both).
Q: TypeAlias = Any

SECONDS_PER_HOUR = 3600.0
W_PER_KW = 1000.0
G_PER_KG = 1000.0
KG_PER_T = 1000.0
KWH_PER_MWH = 1000.0
BITS_PER_BYTE = 8.0


def hours_to_seconds(hours: Q) -> Q:
    return hours * SECONDS_PER_HOUR


def seconds_to_hours(seconds: Q) -> Q:
    return seconds / SECONDS_PER_HOUR


def w_to_kw(watts: Q) -> Q:
    return watts / W_PER_KW


def g_to_kg(grams: Q) -> Q:
    return grams / G_PER_KG


def kg_to_t(kilograms: Q) -> Q:
    return kilograms / KG_PER_T


def kwh_to_mwh(kwh: Q) -> Q:
    return kwh / KWH_PER_MWH


def usd_per_t_to_usd_per_kg(usd_per_t: Q) -> Q:
    return usd_per_t / KG_PER_T


def gb_to_gbit(gigabytes: Q) -> Q:
    return gigabytes * BITS_PER_BYTE
