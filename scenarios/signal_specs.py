"""Grid signals in a scenario or agent file: carbon intensity and price per zone.

Signals are a tagged union on ``kind``; each spec builds its ``sites.signals.Signal``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from scenarios.data_paths import DataPaths
from scenarios.spec_base import Strict
from sites import ConstantSignal, ListSignal, Signal, SyntheticDiurnal, TableSignal
from sites.readers.electricitymaps import read_electricitymaps
from sites.readers.lwa import CARBON, read_lwa
from sites.readers.prices import PRICE, read_prices
from sites.readers.timeseries import TimeTable, read_column_table

# Default file of each data kind inside the data folder (``{zone}`` / ``{region}`` filled in).
CARBON_FILE = "grid/carbon/{zone}_2023_hourly.csv"
PRICE_FILE = "grid/prices/{zone}_2023_hourly.csv"
LWA_FILE = "grid/lwa/{region}_ci.csv"
# A fill is for a few missing samples, not for inventing data: at most a day.
MAX_FILL_GAP_H = 24.0


class GapFill(Strict):
    """Filling short gaps in a data file: explicit, and off by default.

    ``fill: ffill`` with ``max_gap_h: H`` repeats the last sample before each gap of at most
    H hours (missing samples, i.e. rows; a row with an empty value is still an error); a
    longer gap is still refused when a run reaches it, naming its start and length.
    """

    fill: Literal["ffill"] | None = None
    max_gap_h: float | None = Field(None, gt=0, le=MAX_FILL_GAP_H)

    @model_validator(mode="after")
    def _fill_and_limit_together(self) -> GapFill:
        if self.fill is not None and self.max_gap_h is None:
            raise ValueError("fill: ffill needs max_gap_h, the longest gap to fill (hours)")
        if self.fill is None and self.max_gap_h is not None:
            raise ValueError("max_gap_h does nothing without fill: ffill")
        return self

    def filled(self, table: TimeTable) -> TimeTable:
        if self.fill is None or self.max_gap_h is None:
            return table
        return table.forward_filled(self.max_gap_h)


class ConstantSignalSpec(Strict):
    kind: Literal["constant"]
    value: float

    def lowest(self) -> tuple[str, float]:
        return "value", self.value

    def build(self, paths: DataPaths, field: str, allow_negative: bool) -> Signal:
        return ConstantSignal(self.value)


class HourlySignalSpec(Strict):
    kind: Literal["hourly"]
    values: list[float] = Field(min_length=1)

    def lowest(self) -> tuple[str, float]:
        i = min(range(len(self.values)), key=self.values.__getitem__)
        return f"values[{i}]", self.values[i]

    def build(self, paths: DataPaths, field: str, allow_negative: bool) -> Signal:
        return ListSignal(tuple(self.values))


class SyntheticSignalSpec(Strict):
    kind: Literal["synthetic"]
    mean: float
    amplitude: float = 0.0
    peak_hour: float = Field(19.0, ge=0, lt=24)
    solar_dip: float = 0.0
    noise_sd: float = Field(0.0, ge=0)
    utc_offset_h: float = Field(0.0, ge=-12, le=14)
    floor: float = 0.0

    def lowest(self) -> tuple[str, float]:
        # values are clipped at ``floor``; a negative mean is a typo even when clipped
        return min((("mean", self.mean), ("floor", self.floor)), key=lambda x: x[1])

    def build(self, paths: DataPaths, field: str, allow_negative: bool) -> Signal:
        return SyntheticDiurnal(**self.model_dump(exclude={"kind"}))


class CsvSignalSpec(GapFill):
    kind: Literal["csv"]
    path: Path
    column: str
    time_column: str = "Datetime (UTC)"

    def build(self, paths: DataPaths, field: str, allow_negative: bool) -> Signal:
        path = self.path if self.path.is_absolute() else paths.base_dir / self.path
        table = read_column_table(paths.existing_file(path, f"{field}.path"), self.time_column,
                                  self.column, allow_negative=allow_negative)
        return TableSignal(self.filled(table), self.column)


class ElectricityMapsSignalSpec(GapFill):
    """An Electricity Maps hourly CSV: ``direct`` (operational) or ``lca`` (life-cycle)."""

    kind: Literal["electricitymaps"]
    zone: str = Field(min_length=1)
    column: Literal["direct", "lca"] = "direct"
    path: Path | None = None  # default: grid/carbon/<zone>_2023_hourly.csv in the data folder

    def build(self, paths: DataPaths, field: str, allow_negative: bool) -> Signal:
        file = paths.data_file(self.path or CARBON_FILE.format(zone=self.zone), f"{field}.path")
        return TableSignal(self.filled(read_electricitymaps(file)), self.column)


class PriceFileSignalSpec(GapFill):
    kind: Literal["price-file"]
    zone: str = Field(min_length=1)
    path: Path | None = None  # default: grid/prices/<zone>_2023_hourly.csv in the data folder

    def build(self, paths: DataPaths, field: str, allow_negative: bool) -> Signal:
        file = paths.data_file(self.path or PRICE_FILE.format(zone=self.zone), f"{field}.path")
        return TableSignal(self.filled(read_prices(file)), PRICE)


class LwaSignalSpec(GapFill):
    """Let's Wait Awhile carbon intensity (Germany 15 min, GB and France 30 min, 2020)."""

    kind: Literal["lwa"]
    region: Literal["ger", "gb", "fr"]
    path: Path | None = None

    def build(self, paths: DataPaths, field: str, allow_negative: bool) -> Signal:
        file = paths.data_file(self.path or LWA_FILE.format(region=self.region), f"{field}.path")
        return TableSignal(self.filled(read_lwa(file)), CARBON)


SignalSpec = Annotated[
    ConstantSignalSpec | HourlySignalSpec | SyntheticSignalSpec | CsvSignalSpec
    | ElectricityMapsSignalSpec | PriceFileSignalSpec | LwaSignalSpec,
    Field(discriminator="kind"),
]


class ZoneSpec(Strict):
    """A grid zone's signals: carbon intensity (gCO2/kWh) and energy price (USD/MWh).

    Prices may be negative (real markets go there); carbon intensity may not, on any path:
    written values are checked here, files by their reader.
    """

    carbon_g_per_kwh: SignalSpec
    price_usd_per_mwh: SignalSpec

    def build_one(self, kind: str, paths: DataPaths, field: str) -> Signal:
        """The ``kind`` signal (a field name); ``field`` names it in error messages."""
        spec = getattr(self, kind)
        return spec.build(paths, field, allow_negative=kind == "price_usd_per_mwh")

    def build(self, paths: DataPaths, field: str) -> tuple[Signal, Signal]:
        """(carbon, price) signals; ``field`` names this zone in error messages."""
        return (self.build_one("carbon_g_per_kwh", paths, f"{field}.carbon_g_per_kwh"),
                self.build_one("price_usd_per_mwh", paths, f"{field}.price_usd_per_mwh"))

    @model_validator(mode="after")
    def _carbon_not_negative(self) -> ZoneSpec:
        lowest = getattr(self.carbon_g_per_kwh, "lowest", None)
        if lowest is not None:
            name, value = lowest()
            if value < 0:
                raise ValueError(f"carbon_g_per_kwh.{name}: carbon intensity cannot be "
                                 f"negative (got {value:g})")
        return self
