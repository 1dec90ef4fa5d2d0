"""``carbonfed data describe``: kinds, statistics, period and column options, bad input."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from scenarios.cli import main
from scenarios.data_catalog import describe, recognise
from tests.realdata import DATA_DIR, needs_data


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def price_file(tmp_path):
    """Hourly prices 10, 20, 30, then 14:00-16:00 missing, then 60 at 05:00."""
    rows = ["Datetime (UTC),Price (USD/MWh)", "2023-01-01 00:00:00,10", "2023-01-01 01:00:00,20",
            "2023-01-01 02:00:00,30", "2023-01-01 05:00:00,60"]
    path = tmp_path / "prices.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_describe_prices_json(price_file):
    """4 rows, mean (10+20+30+60)/4 = 30, sample sd sqrt((400+100+0+900)/3) = 21.6025;
    one gap (03:00 and 04:00 missing) of 2 h."""
    code, out, _ = run_cli("data", "describe", str(price_file), "--json")
    assert code == 0
    got = json.loads(out)
    assert got["kind"] == "price" and got["rows"] == 4
    assert got["first"] == "2023-01-01 00:00:00+00:00"
    assert got["last"] == "2023-01-01 05:00:00+00:00"
    assert (got["resolution"], got["gaps"], got["longest_gap"]) == ("1 h", 1, "2 h")
    stats = got["columns"]["price_usd_per_mwh"]
    assert stats["mean"] == pytest.approx(30.0)
    assert stats["sd"] == pytest.approx(21.6025, abs=1e-4)
    assert (stats["min"], stats["max"]) == (10.0, 60.0)


def test_describe_period_and_column(price_file):
    """[01:00, 03:00) keeps 20 and 30: mean 25, no gap."""
    d = describe(price_file, "2023-01-01T01:00Z", "2023-01-01T03:00Z", "price_usd_per_mwh")
    assert d.rows == 2 and d.gaps == 0
    assert d.columns["price_usd_per_mwh"].mean == 25.0


def test_end_before_start_is_an_error(price_file):
    code, out, err = run_cli("data", "describe", str(price_file), "--start", "2023-01-01T03:00Z",
                             "--end", "2023-01-01T01:00Z")
    assert code == 2 and out == "" and len(err.splitlines()) == 1
    assert "--end: 2023-01-01 01:00:00+00:00 is not after --start" in err


def test_json_never_prints_nan(price_file):
    """A window with no rows has no statistics: null in the JSON, never a bare NaN."""
    code, out, _ = run_cli("data", "describe", str(price_file), "--start", "2023-01-01T03:00Z",
                           "--end", "2023-01-01T04:00Z", "--json")
    assert code == 0 and "NaN" not in out
    got = json.loads(out)
    assert got["rows"] == 0
    assert got["columns"]["price_usd_per_mwh"] == {"mean": None, "sd": None, "min": None,
                                                   "max": None}


def test_describe_table_output(price_file):
    code, out, _ = run_cli("data", "describe", str(price_file))
    assert code == 0 and "price" in out and "price_usd_per_mwh" in out


def test_unknown_kind_and_bad_options_exit_2(tmp_path, price_file):
    other = tmp_path / "x.csv"
    other.write_text("a,b\n1,2\n")
    code, _, err = run_cli("data", "describe", str(other))
    assert code == 2 and err.count("\n") == 1 and "not a data file carbonfed knows" in err
    code, _, err = run_cli("data", "describe", str(price_file), "--column", "nope")
    assert code == 2 and "--column: no numeric column 'nope'" in err
    code, _, err = run_cli("data", "describe", str(tmp_path / "missing.csv"))
    assert code == 2 and "no such file" in err


def test_a_broken_file_of_a_known_kind_gets_the_readers_line(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("Datetime (UTC),Price (USD/MWh)\n2023-01-01 01:00,1\n2023-01-01 00:00,2\n")
    code, _, err = run_cli("data", "describe", str(path))
    assert code == 2 and "line 3" in err and "time goes backwards" in err


@pytest.mark.realdata
@needs_data
@pytest.mark.parametrize(("relative", "kind"), [
    ("grid/carbon/DE-LU_2023_hourly.csv", "carbon-intensity"),
    ("grid/prices/ZA_2023_hourly.csv", "price"),
    ("grid/lwa/gb_ci.csv", "carbon-intensity-lwa"),
    ("gpu/gavel_throughputs.json", "affinity"),
    ("jobs/gavel_philly/0e4a51.trace", "gavel-trace"),
    ("jobs/alibaba_v2023/openb_node_list_gpu_node.csv", "alibaba-nodes"),
    ("jobs/alibaba_v2023/openb_pod_list_gpuspec33.csv", "alibaba-pods"),
    ("jobs/pai_v2020_machine_spec.csv", "pai-machines"),
    ("energy/zeus_power_v100.csv", "gpu-power"),
    ("gpu/gpus_tdp.csv", "gpu-tdp"),
])
def test_real_files_are_recognised(relative, kind):
    assert recognise(DATA_DIR / relative) == kind


@pytest.mark.realdata
@needs_data
def test_real_carbon_file_description():
    d = describe(DATA_DIR / "grid/carbon/DE-LU_2023_hourly.csv")
    assert (d.rows, d.resolution, d.gaps) == (8760, "1 h", 0)
    assert set(d.columns) >= {"direct", "lca"}
    nodes = describe(DATA_DIR / "jobs/alibaba_v2023/openb_node_list_gpu_node.csv", column="gpu")
    assert nodes.rows == 1213
    assert nodes.columns["gpu"].mean * nodes.rows == pytest.approx(6212)
