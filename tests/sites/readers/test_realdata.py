"""Structural facts of the real files in the data folder (skipped when it is absent)."""

from __future__ import annotations

import numpy as np
import pytest

from sites.readers.electricitymaps import read_electricitymaps
from sites.readers.fleets import read_alibaba_nodes, read_pai_machines
from sites.readers.gavel_affinity import read_gavel_throughputs
from sites.readers.gpu_power import read_gpu_tdp
from sites.readers.lwa import read_lwa
from sites.readers.prices import read_prices
from sites.readers.transfer_costs import read_transfer_costs
from sites.readers.zeus import read_zeus_power
from tests.realdata import DATA_DIR, needs_data

pytestmark = [pytest.mark.realdata, needs_data]
ZONES = ("US-CAL-CISO", "US-TEX-ERCO", "US-MIDA-PJM", "US-NY-NYIS", "CA-ON", "DE-LU", "AU-NSW",
         "JP-TK", "KR", "SG", "BR-SP", "ZA")


@pytest.mark.parametrize("zone", ZONES)
def test_every_zone_has_8760_gapless_hours_of_2023(zone):
    for table in (read_electricitymaps(DATA_DIR / f"grid/carbon/{zone}_2023_hourly.csv"),
                  read_prices(DATA_DIR / f"grid/prices/{zone}_2023_hourly.csv")):
        assert len(table.frame) == 8760
        assert str(table.frame.index[0]) == "2023-01-01 00:00:00+00:00"
        assert str(table.frame.index[-1]) == "2023-12-31 23:00:00+00:00"
        assert table.gaps == ()


def test_de_lu_prices_go_below_minus_400():
    prices = read_prices(DATA_DIR / "grid/prices/DE-LU_2023_hourly.csv").frame
    assert prices["price_usd_per_mwh"].min() < -400


def test_lwa_resolutions():
    assert read_lwa(DATA_DIR / "grid/lwa/ger_ci.csv").resolution.total_seconds() == 900
    assert read_lwa(DATA_DIR / "grid/lwa/gb_ci.csv").resolution.total_seconds() == 1800
    assert read_lwa(DATA_DIR / "grid/lwa/fr_ci.csv").resolution.total_seconds() == 1800


def test_alibaba_node_list_matches_its_readme():
    """README: 1213 nodes, 6212 GPUs."""
    fleet = read_alibaba_nodes(DATA_DIR / "jobs/alibaba_v2023/openb_node_list_gpu_node.csv")
    assert (fleet.total_nodes, fleet.total_gpus) == (1213, 6212)
    assert set(fleet.gpus_by_model) == {"G2", "T4", "G3", "P100", "V100M32", "V100M16", "A10"}


def test_pai_fleet_has_1814_gpu_machines():
    """1897 machines of which 83 are CPU-only."""
    fleet = read_pai_machines(DATA_DIR / "jobs/pai_v2020_machine_spec.csv")
    assert fleet.total_nodes == 1897 - 83
    assert set(fleet.gpus_by_model) == {"P100", "T4", "V100", "V100M32", "MISC"}


def test_gavel_affinity_matches_the_built_in_catalog():
    """The catalog's resnet50 is Gavel's 'ResNet-50 (batch size 64)'; 26 job types at sf 1."""
    affinity = read_gavel_throughputs(DATA_DIR / "gpu/gavel_throughputs.json").affinity()
    assert len(affinity.job_types) == 26
    assert affinity.steps_per_s("resnet50-bs64", "V100") == pytest.approx(4.394774823323071)


def test_other_files_read_cleanly():
    assert read_gpu_tdp(DATA_DIR / "gpu/gpus_tdp.csv")["T4"].board_power_w == 70
    for gpu in ("a40", "p100", "rtx6000", "v100"):
        assert len(read_zeus_power(DATA_DIR / f"energy/zeus_power_{gpu}.csv")) > 0
    for cloud in ("aws", "azure", "gcp"):
        matrix = read_transfer_costs(DATA_DIR / f"network/{cloud}_transfer_cost_usd_per_gb.csv")
        assert len(matrix.regions) > 1


def test_lwa_germany_serves_a_year_only_with_an_explicit_fill():
    """ger_ci.csv misses 2020-12-19 23:15 and 23:45 (two 15-minute gaps): a year of 2020
    is refused as it is, and served with fill: ffill, max_gap_h: 0.25; the 23:00 hour is
    then (a + a + b + b) / 4 of its two samples, every other hour as before."""
    import pandas as pd

    from sites.errors import InputError

    table = read_lwa(DATA_DIR / "grid/lwa/ger_ci.csv")
    assert [(str(g.first_missing), g.length.total_seconds()) for g in table.gaps] == [
        ("2020-12-19 23:15:00+00:00", 900.0), ("2020-12-19 23:45:00+00:00", 900.0)]
    year = pd.Timestamp("2020-01-01T00:00Z")
    with pytest.raises(InputError, match=r"no value for 2020-12-19 23:15:00\+00:00 .* lasts "
                                         r"0.25 h"):
        table.slots("carbon_g_per_kwh", year, 1.0, 8784)
    hourly = table.forward_filled(0.25).slots("carbon_g_per_kwh", year, 1.0, 8784)
    at = int((pd.Timestamp("2020-12-19T23:00Z") - year) / pd.Timedelta(hours=1))
    a, b = table.frame["carbon_g_per_kwh"].loc["2020-12-19 23:00":"2020-12-19 23:30"]
    # (a cumulative integral over a year: exact to ~1e-12 relative, not to the last bit)
    assert hourly[at] == pytest.approx((a + a + b + b) / 4, rel=1e-9)
    before = table.slots("carbon_g_per_kwh", year, 1.0, at)
    np.testing.assert_allclose(hourly[:at], before, rtol=1e-9)
