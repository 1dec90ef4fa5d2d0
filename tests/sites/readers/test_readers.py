"""Every reader against small files written here, and one test per kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sites.errors import InputError
from sites.readers.electricitymaps import read_electricitymaps
from sites.readers.fleets import read_alibaba_nodes, read_pai_machines
from sites.readers.gavel_affinity import carbonfed_job_type, read_gavel_throughputs
from sites.readers.gpu_power import read_gpu_tdp
from sites.readers.lwa import read_lwa
from sites.readers.prices import read_prices
from sites.readers.transfer_costs import read_transfer_costs
from sites.readers.zeus import power_model, read_zeus_power

EM_HEADER = ("Datetime (UTC),Country,Zone Name,Zone Id,Carbon Intensity gCO₂eq/kWh (direct),"
             "Carbon Intensity gCO₂eq/kWh (LCA),Low Carbon Percentage,Renewable Percentage,"
             "Data Source,Data Estimated,Data Estimation Method")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def em_file(tmp_path: Path, rows: list[tuple[str, str, str]]) -> Path:
    lines = [EM_HEADER] + [f"{t},Germany,Germany,DE,{d},{lca},80,70,entsoe.eu,false,"
                           for t, d, lca in rows]
    return write(tmp_path, "DE_2023_hourly.csv", "\n".join(lines) + "\n")


def test_electricitymaps_reads_direct_and_lca_in_utc(tmp_path):
    path = em_file(tmp_path, [("2023-01-01 00:00:00", "100", "150"),
                              ("2023-01-01 01:00:00", "200", "250")])
    table = read_electricitymaps(path)
    assert table.resolution == pd.Timedelta(hours=1)
    assert str(table.frame.index[0].tz) == "UTC"
    np.testing.assert_allclose(table.frame["direct"], [100, 200])
    np.testing.assert_allclose(table.frame["lca"], [150, 250])
    # half-hour slots from 00:30: [100, 200] (each hour's value holds for the whole hour)
    np.testing.assert_allclose(table.slots("lca", pd.Timestamp("2023-01-01T00:30Z"), 0.5, 2),
                               [150, 250])


def test_prices_allow_negative_values(tmp_path):
    path = write(tmp_path, "p.csv", "Datetime (UTC),Datetime (Local),Price (USD/MWh)\n"
                 "2023-01-01 00:00:00+00:00,2023-01-01 01:00:00+01:00,-3.5\n"
                 "2023-01-01 01:00:00+00:00,2023-01-01 02:00:00+01:00,10\n")
    np.testing.assert_allclose(read_prices(path).frame["price_usd_per_mwh"], [-3.5, 10])


def test_price_timestamps_with_an_offset_are_converted_to_utc(tmp_path):
    """01:00+01:00 is 00:00 UTC."""
    path = write(tmp_path, "p.csv", "Datetime (UTC),Price (USD/MWh)\n2023-01-01T01:00:00+01:00,5\n")
    assert read_prices(path).frame.index[0] == pd.Timestamp("2023-01-01T00:00Z")


def test_lwa_15_minute_data_to_hourly_mean(tmp_path):
    """Four quarter-hours 100, 200, 300, 400: the hour's mean is 250."""
    rows = "\n".join(f"2020-01-01 00:{m:02d}:00,{v}" for m, v in
                     zip((0, 15, 30, 45), (100, 200, 300, 400), strict=True))
    table = read_lwa(write(tmp_path, "ger_ci.csv", f"Time,Carbon Intensity\n{rows}\n"))
    assert table.resolution == pd.Timedelta(minutes=15)
    np.testing.assert_allclose(
        table.slots("carbon_g_per_kwh", pd.Timestamp("2020-01-01T00:00Z"), 1.0, 1), [250.0])


# --- bad input: one line naming the file, the row or key and the problem -------------------


def test_missing_column(tmp_path):
    path = write(tmp_path, "c.csv", "Datetime (UTC),Carbon Intensity gCO₂eq/kWh (direct)\n"
                 "2023-01-01 00:00:00,1\n")
    with pytest.raises(InputError, match=r"c.csv: column 'Carbon Intensity gCO₂eq/kWh \(LCA\)': "
                                         "missing column"):
        read_electricitymaps(path)


def test_unparsable_timestamp_names_its_line(tmp_path):
    path = em_file(tmp_path, [("2023-01-01 00:00:00", "1", "1"), ("yesterday", "1", "1")])
    with pytest.raises(InputError, match=r"line 3, column 'Datetime \(UTC\)': unparsable "
                                         "timestamp 'yesterday'"):
        read_electricitymaps(path)


def test_time_going_backwards(tmp_path):
    path = em_file(tmp_path, [("2023-01-01 02:00:00", "1", "1"), ("2023-01-01 01:00:00", "1", "1")])
    with pytest.raises(InputError, match=r"line 3.*time goes backwards"):
        read_electricitymaps(path)


def test_duplicate_timestamp(tmp_path):
    path = em_file(tmp_path, [("2023-01-01 01:00:00", "1", "1"), ("2023-01-01 01:00:00", "2", "2")])
    with pytest.raises(InputError, match=r"line 3.*duplicate timestamp"):
        read_electricitymaps(path)


def test_nan_carbon_intensity(tmp_path):
    path = em_file(tmp_path, [("2023-01-01 00:00:00", "", "1")])
    with pytest.raises(InputError, match=r"line 2, column 'Carbon Intensity gCO₂eq/kWh \(direct\)'"
                                         ": missing or non-numeric"):
        read_electricitymaps(path)


def test_negative_carbon_intensity(tmp_path):
    path = em_file(tmp_path, [("2023-01-01 00:00:00", "5", "-1")])
    with pytest.raises(InputError, match=r"line 2.*negative value -1.0"):
        read_electricitymaps(path)


def test_nan_price_is_refused_even_though_negative_prices_are_fine(tmp_path):
    path = write(tmp_path, "p.csv", "Datetime (UTC),Price (USD/MWh)\n2023-01-01 00:00:00,nan\n")
    with pytest.raises(InputError, match=r"line 2.*missing or non-numeric"):
        read_prices(path)


@pytest.mark.parametrize("text", ["", "Time,Carbon Intensity\n"])
def test_empty_file(tmp_path, text):
    with pytest.raises(InputError, match=r"lwa.csv: the file (is empty|has a header but no rows)"):
        read_lwa(write(tmp_path, "lwa.csv", text))


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"nope.csv: no such file"):
        read_prices(tmp_path / "nope.csv")


# --- Gavel throughputs -----------------------------------------------------------------------


def gavel_json(tmp_path: Path, data: object) -> Path:
    return write(tmp_path, "thr.json", json.dumps(data))


GAVEL = {
    "v100": {"('ResNet-18 (batch size 64)', 1)": {"null": 24.0, "('A3C', 1)": [1, 2]},
             "('ResNet-18 (batch size 64)', 2)": {"null": 40.0},
             "('A3C', 1)": {"null": 7.0}},
    "k80": {"('ResNet-18 (batch size 64)', 1)": {"null": 7.0}, "('A3C', 1)": {"null": 0.0}},
    "v100_unconsolidated": {"('ResNet-18 (batch size 64)', 1)": {"null": 20.0}},
}


def test_gavel_names_and_zero_means_does_not_run(tmp_path):
    affinity = read_gavel_throughputs(gavel_json(tmp_path, GAVEL)).affinity()
    assert carbonfed_job_type("ResNet-18 (batch size 64)") == "resnet18-bs64"
    assert affinity.steps_per_s("resnet18-bs64", "V100") == 24.0
    assert affinity.steps_per_s("a3c", "K80") == 0.0
    # T4 follows the catalog rule: a quarter of the V100 figure
    assert affinity.steps_per_s("resnet18-bs64", "T4") == pytest.approx(6.0)


def test_gavel_scale_factor_is_per_gpu_and_unconsolidated_is_an_option(tmp_path):
    """Scale factor 2 measured 40 steps/s for the whole job: 20 per GPU."""
    path = gavel_json(tmp_path, GAVEL)
    assert read_gavel_throughputs(path).affinity(2).steps_per_s("resnet18-bs64", "V100") == 20.0
    spread = read_gavel_throughputs(path, unconsolidated=True).affinity()
    assert spread.steps_per_s("resnet18-bs64", "V100") == 20.0


@pytest.mark.parametrize(("data", "message"), [
    ([1, 2], "not an affinity table"),
    ({"a100": {}}, "not an affinity table: no GPU key"),
    ({"v100": {"resnet": {"null": 1}}}, r"v100.resnet: not an affinity table"),
    ({"v100": {"('A3C', 1)": {"null": -1}}}, r"v100.\('A3C', 1\).null: throughput must be"),
    ({"v100": {"('A3C', 1)": {}}}, r"missing or non-numeric throughput"),
])
def test_gavel_bad_tables(tmp_path, data, message):
    with pytest.raises(InputError, match=message):
        read_gavel_throughputs(gavel_json(tmp_path, data))


def test_gavel_not_json(tmp_path):
    with pytest.raises(InputError, match=r"thr.json: not valid JSON"):
        read_gavel_throughputs(write(tmp_path, "thr.json", "{oops"))


# --- fleets, power, transfer costs -------------------------------------------------------------


def test_alibaba_nodes_and_the_slice_worked_example(tmp_path):
    """Docstring example of Fleet.slice: V100 399, T4 842 -> 64 GPUs = {V100: 21, T4: 43}."""
    rows = ["sn,cpu_milli,memory_mib,gpu,model", "n0,1,1,204,V100M32", "n1,1,1,195,V100M16",
            "n2,1,1,842,T4", "n3,1,1,0,CPU"]
    fleet = read_alibaba_nodes(write(tmp_path, "nodes.csv", "\n".join(rows) + "\n"))
    assert fleet.total_gpus == 1241 and fleet.total_nodes == 3
    models = {"V100M32": "V100", "V100M16": "V100", "T4": "T4"}
    assert fleet.slice(models, 64) == {"V100": 21, "T4": 43}
    assert fleet.slice({"T4": "T4"}) == {"T4": 842}
    with pytest.raises(InputError, match=r"models.A10: no such GPU model"):
        fleet.slice({"A10": "A10"})


def test_fleet_duplicate_node_and_fractional_gpus(tmp_path):
    dup = write(tmp_path, "a.csv", "sn,gpu,model\nn0,2,T4\nn0,2,T4\n")
    with pytest.raises(InputError, match=r"line 3, column 'sn': duplicate node id 'n0'"):
        read_alibaba_nodes(dup)
    half = write(tmp_path, "b.csv", "machine,gpu_type,cap_gpu\nm0,T4,0.5\n")
    with pytest.raises(InputError, match=r"line 2, column 'cap_gpu': GPU count must be a whole"):
        read_pai_machines(half)


def test_pai_machines_leave_out_cpu_machines(tmp_path):
    rows = ("machine,gpu_type,cap_cpu,cap_mem,cap_gpu\n"
            "m0,CPU,96,512,0\nm1,T4,96,512,2\nm2,T4,1,1,2\n")
    fleet = read_pai_machines(write(tmp_path, "pai.csv", rows))
    assert fleet.gpus_by_model == {"T4": 4} and fleet.nodes_by_model == {"T4": 2}


def test_gpu_tdp_keeps_gpu_rows_and_refuses_conflicting_duplicates(tmp_path):
    ok = write(tmp_path, "g.csv", "name,type,tdp_watts\nT4,gpu,70\nXeon,cpu,145\nT4,gpu,70\n")
    assert {n: g.board_power_w for n, g in read_gpu_tdp(ok).items()} == {"T4": 70.0}
    bad = write(tmp_path, "h.csv", "name,type,tdp_watts\nT4,gpu,70\nT4,gpu,75\n")
    with pytest.raises(InputError, match=r"line 3, column 'name': 'T4' given twice"):
        read_gpu_tdp(bad)


def test_zeus_energy_per_epoch_and_power_model(tmp_path):
    """Energy per epoch = 100 s x 200 W = 20,000 J = 0.005556 kWh; at the top limit (250 W)
    the two workloads draw 200 and 240 W: the model's busy power is 220 W."""
    rows = ["dataset,network,batch_size,optimizer,power_limit,time_per_epoch,average_power",
            "c,a,32,sgd,250,100,200", "c,b,32,sgd,250,50,240", "c,a,32,sgd,100,150,90"]
    frame = read_zeus_power(write(tmp_path, "z.csv", "\n".join(rows) + "\n"))
    assert frame["energy_per_epoch_kwh"].iloc[0] == pytest.approx(20_000 / 3.6e6)
    model = power_model(frame, "V100")
    assert (model.power_limit_w, model.mean_power_w, model.workloads) == (250, 220, 2)


def test_transfer_costs_square_and_zero_diagonal(tmp_path):
    ok = write(tmp_path, "t.csv", ",a,b\na,0,0.02\nb,0.05,0\n")
    assert read_transfer_costs(ok).cost_usd_per_gb("b", "a") == 0.05
    with pytest.raises(InputError, match=r"not a square region matrix"):
        read_transfer_costs(write(tmp_path, "u.csv", ",a,b\na,0,1\nc,1,0\n"))
    with pytest.raises(InputError, match=r"line 3, column 'b': moving data within a region"):
        read_transfer_costs(write(tmp_path, "v.csv", ",a,b\na,0,1\nb,1,2\n"))
