"""Scenarios that read data files: signals, affinity, power, fleets, traces, calibration,
forecast error; and the one-line errors when the data folder or a file is missing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from broker.policy_registry import POLICIES
from broker.simulation import run_simulation
from scenarios.build import build_run
from scenarios.loader import parse_scenario
from sites.errors import InputError
from tests.scenarios.helpers import synthetic_text


def make_data_dir(root: Path) -> Path:
    """A miniature data folder: zone X (carbon 100 then 300 from 02:00; prices 50), a Gavel
    table, a TDP table, a 4-node fleet and a 3-job trace."""
    data = root / "data"
    (data / "grid/carbon").mkdir(parents=True)
    (data / "grid/prices").mkdir(parents=True)
    (data / "gpu").mkdir()
    (data / "jobs").mkdir()
    header = ("Datetime (UTC),Carbon Intensity gCO₂eq/kWh (direct),"
              "Carbon Intensity gCO₂eq/kWh (LCA)")
    rows = [f"2023-06-05 {h:02d}:00:00,{100 if h < 2 else 300},{150 if h < 2 else 350}"
            for h in range(24)]
    (data / "grid/carbon/X_2023_hourly.csv").write_text("\n".join([header, *rows]) + "\n")
    prices = [f"2023-06-05 {h:02d}:00:00+00:00,50" for h in range(24)]
    (data / "grid/prices/X_2023_hourly.csv").write_text(
        "\n".join(["Datetime (UTC),Price (USD/MWh)", *prices]) + "\n")
    (data / "gpu/gavel.json").write_text(json.dumps({
        "v100": {"('ResNet-18 (batch size 64)', 1)": {"null": 2.0}},
        "p100": {"('ResNet-18 (batch size 64)', 1)": {"null": 1.0}},
    }))
    (data / "gpu/tdp.csv").write_text("name,type,tdp_watts\nTesla V100-SXM2-16GB,gpu,250\n")
    (data / "jobs/nodes.csv").write_text(
        "sn,gpu,model\nn0,8,V100M16\nn1,8,V100M16\nn2,4,P100\nn3,8,G2\n")
    line = "ResNet-18 (batch size 64)\tcmd\t-n\t1\t{steps}\t{arrival}\t{gpus}"
    (data / "jobs/vc.trace").write_text("\n".join([
        line.format(steps=7200, arrival=0, gpus=1), line.format(steps=14400, arrival=3600, gpus=2),
        line.format(steps=7200, arrival=36000, gpus=1)]) + "\n")
    return data


SCENARIO = """\
name: data
start: "2023-06-05T00:00:00Z"
period_h: 6
horizon_h: 4
drain_h: 4
policies: [milp, isolated]
affinity_file: {path: gpu/gavel.json}
gpu_power_file: {path: gpu/tdp.csv, gpus: {V100: Tesla V100-SXM2-16GB}}
zones:
  X:
    carbon_g_per_kwh: {kind: electricitymaps, zone: X, column: lca}
    price_usd_per_mwh: {kind: price-file, zone: X}
sites:
  - id: a
    zone: X
    fleet: {kind: alibaba-nodes, path: jobs/nodes.csv, models: {V100M16: V100, P100: P100},
            sample_gpus: 10}
workload:
  kind: trace
  format: gavel
  files: {a: jobs/vc.trace}
  window_h: [0, 6]
"""


def test_data_file_scenario_builds_from_the_files(tmp_path):
    """Fleet: V100 16, P100 4 -> 10 GPUs: {V100: 8, P100: 2}. LCA carbon: 150, 150, 350...
    The trace's third job arrives at 10 h, outside the window [0, 6)."""
    data = make_data_dir(tmp_path)
    run = build_run(parse_scenario(SCENARIO, "d.yaml", tmp_path, data))
    fed = run.setup.federation
    assert fed.sites[0].gpus == {"V100": 8, "P100": 2}
    assert fed.gpu_catalog["V100"].board_power_w == 250.0
    assert fed.affinity.steps_per_s("resnet18-bs64", "P100") == 1.0
    np.testing.assert_allclose(run.setup.carbon_g_per_kwh[0, :4], [150, 150, 350, 350])
    assert [(j.job_type, j.gpus, j.submit_h) for j in run.setup.jobs] == [
        ("resnet18-bs64", 1, 0.0), ("resnet18-bs64", 2, 1.0)]


def test_a_window_past_the_data_names_the_file_and_first_missing_hour(tmp_path):
    data = make_data_dir(tmp_path)
    with pytest.raises(InputError, match=r"d.yaml: zones.X.carbon_g_per_kwh: .*X_2023_hourly.csv:"
                                         r" no data for 2023-06-06 00:00:00\+00:00"):
        build_run(parse_scenario(SCENARIO.replace("period_h: 6", "period_h: 30"), "d.yaml",
                                 tmp_path, data))


def test_missing_data_folder_says_how_to_point_at_it(tmp_path):
    with pytest.raises(InputError, match=r"d.yaml: gpu_power_file.path: needs the data folder for "
                                         "'gpu/tdp.csv': pass --data DIR or set CARBONFED_DATA"):
        parse_scenario(SCENARIO, "d.yaml", tmp_path, None)


def test_missing_data_file_is_named(tmp_path):
    data = make_data_dir(tmp_path)
    (data / "jobs/vc.trace").unlink()
    with pytest.raises(InputError, match=r"workload.files.a: no such data file: .*vc.trace"):
        build_run(parse_scenario(SCENARIO, "d.yaml", tmp_path, data))


def test_fleet_model_mapped_to_an_unknown_gpu_type(tmp_path):
    data = make_data_dir(tmp_path)
    with pytest.raises(InputError, match=r"sites\[0\].fleet.models: unknown GPU type 'G9'"):
        parse_scenario(SCENARIO.replace("P100: P100}", "P100: G9}"), "d.yaml", tmp_path, data)


def test_calibrated_synthetic_scenario(tmp_path):
    text = synthetic_text().replace("  deadline_fraction: 0.3", "  deadline_fraction: 0.3\n"
                                    "  calibrate: philly\n  max_gpus: 4")
    run = build_run(parse_scenario(text, "c.yaml", tmp_path))
    assert max(j.gpus for j in run.setup.jobs) <= 4
    assert len(run.setup.jobs) > 0


def test_forecast_error_keeps_same_seed_identical_and_meters_actual(tmp_path):
    text = synthetic_text(policies="[milp, greedy-carbon]") + \
        "forecast: {carbon_error_sd: 0.3, price_error_sd: 0.3}\n"
    runs = [build_run(parse_scenario(text, "f.yaml", tmp_path)) for _ in range(2)]
    results = [run_simulation(r.setup, POLICIES["greedy-carbon"](r.setup.federation, r.config),
                              "greedy-carbon") for r in runs]
    assert results[0].jobs.equals(results[1].jobs)
    # metering on the actual series: each job's kg is kWh x the actual carbon of its slots
    setup = runs[0].setup
    assert setup.forecast.carbon_error_sd == 0.3
    jobs = results[0].jobs
    assert (jobs["carbon_kg"] > 0).all()
    exact = build_run(parse_scenario(synthetic_text(policies="[milp, greedy-carbon]"), "e.yaml",
                                     tmp_path))
    np.testing.assert_array_equal(exact.setup.carbon_g_per_kwh, setup.carbon_g_per_kwh)
