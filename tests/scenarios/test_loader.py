"""Loading scenarios: built-ins, parsing, and what build_run makes of a file."""

from __future__ import annotations

import numpy as np
import pytest

from broker.planner import PLANNER_DEFAULTS
from scenarios.build import build_run
from scenarios.loader import builtin_scenarios, load_scenario, parse_scenario
from sites import InputError, default_affinity
from sites.errors import field_path
from tests.realdata import DATA_DIR, needs_data
from tests.scenarios.helpers import BASE_SCENARIO, build_from_text


def test_builtin_scenarios_have_descriptions():
    found = builtin_scenarios()
    assert {"tiny", "default"} <= set(found)
    assert all(len(found[name]) > 10 for name in ("tiny", "default"))


@pytest.mark.parametrize("name", ["tiny", "default"])
def test_builtins_load(name):
    loaded = load_scenario(name)
    assert loaded.scenario.name == name
    assert loaded.source == f"built-in:{name}"


def test_tiny_jobs_get_work_from_their_reference_runtime():
    """Job b: transformer on 2 GPUs for 1 h on the reference V100, so work = 1 h x its
    throughput on 2 V100s (Gavel measured 15.876 steps/s for Transformer batch 64, not 2 x
    8.618 = 17.236) x 3600 and its run time on V100 is 1 h; job f (cyclegan, 1 GPU, 4 h) runs
    4 h on V100 and 4 x rate(V100) / rate(K80) h on a K80."""
    run = build_run(load_scenario("tiny"))
    aff = default_affinity()
    jobs = {j.id: j for j in run.setup.jobs}
    b = jobs["b"]
    assert b.gpus == 2
    assert aff.job_steps_per_s("transformer", "V100", 2) == pytest.approx(15.876496488983058)
    assert b.work_steps == pytest.approx(1 * 15.876496488983058 * 3600)
    assert b.runtime_on_h(aff, "V100") == pytest.approx(1.0)
    f = jobs["f"]
    ratio = aff.steps_per_s("cyclegan", "V100") / aff.steps_per_s("cyclegan", "K80")
    assert f.runtime_on_h(aff, "K80") == pytest.approx(4 * ratio)
    assert (f.deadline_h, f.dataset_gb, f.submit_h) == (20.0, 0.5, 5.0)


def test_build_run_slots_and_signals():
    """BASE_SCENARIO: period 6 h, drain 12 h, horizon 6 h, 1 h slots. north is in the constant
    'clean' zone (50 g, 60 USD/MWh), south in 'dirty' (400, 400, then 600 repeating)."""
    run = build_from_text(BASE_SCENARIO)
    setup = run.setup
    assert (setup.slot_h, setup.period_slots, setup.drain_slots, setup.horizon_slots) == (
        1.0, 6, 12, 6)
    n = setup.carbon_g_per_kwh.shape[1]
    assert n >= 6 + 12 + 6  # period, drain and a horizon at least
    np.testing.assert_array_equal(setup.carbon_g_per_kwh[0], np.full(n, 50.0))
    np.testing.assert_array_equal(setup.carbon_g_per_kwh[1, :8], [400, 400] + [600] * 6)
    assert (setup.carbon_g_per_kwh[1, 2:] == 600).all()
    np.testing.assert_array_equal(setup.price_usd_per_mwh[:, 0], [60.0, 30.0])
    assert [s.id for s in setup.federation.sites] == ["north", "south"]
    assert setup.federation.sites[1].pue == 1.3
    assert run.config.carbon_price_usd_per_t == 50


def test_two_hour_slots_average_the_hourly_signal():
    """2 h slots over [400, 400, 600, 600, ...]: [400, 600, 600, ...]; period 6 h -> 3 slots."""
    text = BASE_SCENARIO.replace("slot_h: 1", "slot_h: 2")
    setup = build_from_text(text).setup
    assert setup.period_slots == 3
    np.testing.assert_array_equal(setup.carbon_g_per_kwh[1, :3], [400, 600, 600])


def test_half_hour_slots_repeat_the_hourly_signal():
    text = BASE_SCENARIO.replace("slot_h: 1", "slot_h: 0.5")
    setup = build_from_text(text).setup
    assert setup.period_slots == 12
    np.testing.assert_array_equal(setup.carbon_g_per_kwh[1, :6], [400] * 4 + [600] * 2)


def test_seed_drives_synthetic_signals():
    text = BASE_SCENARIO.replace("{kind: constant, value: 50}",
                                 "{kind: synthetic, mean: 50, amplitude: 10, noise_sd: 0.2}")
    a = build_from_text(text).setup.carbon_g_per_kwh
    b = build_from_text(text).setup.carbon_g_per_kwh
    c = build_from_text(text.replace("seed: 7", "seed: 8")).setup.carbon_g_per_kwh
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a[0], c[0])


def test_csv_signal_relative_to_the_scenario_file(tmp_path):
    """A CSV path in the file resolves against the file's folder."""
    (tmp_path / "ci.csv").write_text(
        "Datetime (UTC),ci\n" + "".join(f"2023-06-05 {h:02d}:00:00,{100 + h}\n" for h in range(24))
        + "".join(f"2023-06-06 {h:02d}:00:00,{200 + h}\n" for h in range(24))
        + "".join(f"2023-06-07 {h:02d}:00:00,{300 + h}\n" for h in range(24))
    )
    text = BASE_SCENARIO.replace("{kind: constant, value: 50}",
                                 "{kind: csv, path: ci.csv, column: ci}")
    path = tmp_path / "s.yaml"
    path.write_text(text)
    setup = build_run(load_scenario(str(path))).setup
    np.testing.assert_array_equal(setup.carbon_g_per_kwh[0, :3], [100, 101, 102])
    np.testing.assert_array_equal(setup.carbon_g_per_kwh[0, 24:26], [200, 201])


def test_field_path_formats_and_drops_union_tags():
    assert field_path(("sites", 0, "gpus", "V100")) == "sites[0].gpus.V100"
    data = {"workload": {"kind": "list", "jobs": [{"id": "a"}]},
            "zones": {"z": {"carbon_g_per_kwh": {"kind": "constant", "value": "x"}}}}
    assert field_path(("workload", "list", "jobs", 0, "gpus"), data) == "workload.jobs[0].gpus"
    assert field_path(("zones", "z", "carbon_g_per_kwh", "constant", "value"), data) == (
        "zones.z.carbon_g_per_kwh.value")
    # a real field that happens to equal the tag is kept
    assert field_path(("workload", "kind"), data) == "workload.kind"


def test_parse_errors_are_input_errors():
    with pytest.raises(InputError) as info:
        parse_scenario("- just\n- a list\n", "x.yaml", None)
    assert info.value.source == "x.yaml"
    assert "mapping" in info.value.problem


def test_a_folder_named_like_a_builtin_does_not_shadow_it(tmp_path, monkeypatch):
    """`carbonfed run tiny` from a folder holding a `tiny/` output directory still runs tiny."""
    (tmp_path / "tiny").mkdir()
    monkeypatch.chdir(tmp_path)
    assert load_scenario("tiny").scenario.name == "tiny"


def test_load_yaml_refuses_duplicates_at_every_depth_and_keeps_merge_keys():
    from scenarios.loader import DuplicateKeyError, load_yaml

    with pytest.raises(DuplicateKeyError) as raised:
        load_yaml("a: 1\nb:\n  c: 2\n  d: 3\n  c: 4\n")
    assert (raised.value.key, raised.value.first_line, raised.value.second_line) == ("c", 3, 5)
    with pytest.raises(DuplicateKeyError):
        load_yaml("jobs:\n  - {id: a, gpus: 1, gpus: 2}\n")
    # the same key in two different mappings is no duplicate, and a merge key may be
    # overridden by the mapping that merges it (that is what merge keys are for)
    assert load_yaml("x: {k: 1}\ny: {k: 2}\n") == {"x": {"k": 1}, "y": {"k": 2}}
    assert load_yaml("base: &b {k: 1, j: 1}\nz:\n  <<: *b\n  k: 2\n")["z"] == {"k": 2, "j": 1}


GER_YEAR = """\
name: ger-year
start: "2020-01-01T00:00:00Z"
period_h: 8760
horizon_h: 24
drain_h: 24
zones:
  de:
    carbon_g_per_kwh: {{kind: lwa, region: ger{fill}}}
    price_usd_per_mwh: {{kind: constant, value: 60}}
sites:
  - {{id: berlin, zone: de, gpus: {{V100: 2}}}}
workload:
  kind: list
  jobs:
    - {{id: a, home_site: berlin, job_type: resnet50, gpus: 1, reference_runtime_h: 1,
       submit_h: 8500}}
"""


@pytest.mark.realdata
@needs_data
def test_a_year_on_lwa_germany_runs_with_an_explicit_fill(tmp_path):
    """ger_ci.csv misses two 15-minute samples on 2020-12-19: a year of 2020 is refused as
    the file is, and runs with fill: ffill, max_gap_h: 0.25 (a real process, as a user runs
    it)."""
    import os
    import subprocess
    import sys

    def run(fill: str) -> subprocess.CompletedProcess:
        path = tmp_path / "ger.yaml"
        path.write_text(GER_YEAR.format(fill=fill))
        return subprocess.run([sys.executable, "-m", "scenarios.cli", "run", str(path),
                               "--policies", "isolated", "--data", str(DATA_DIR)],
                              capture_output=True, text=True, timeout=300, check=False,
                              env={**os.environ, "COLUMNS": "200"})

    as_is = run("")
    assert as_is.returncode == 2 and as_is.stdout == ""
    assert ("ger_ci.csv: gap in the data: no value for 2020-12-19 23:15:00+00:00 (the gap "
            "starts at 2020-12-19 23:15:00+00:00 and lasts 0.25 h") in as_is.stderr
    filled = run(", fill: ffill, max_gap_h: 0.25")
    assert filled.returncode == 0, filled.stderr
    assert "isolated" in filled.stdout


def test_solver_aggregate_tolerance_reaches_the_rounds(tmp_path):
    """``solver.aggregate_tolerance_usd`` in a scenario is the tolerance every planning round
    solves with (0, merging none, when absent)."""
    plain = parse_scenario(BASE_SCENARIO, "base", tmp_path).scenario
    assert plain.planner_config().solver.aggregate_tolerance_usd == 0.0
    text = BASE_SCENARIO + "solver: {aggregate_tolerance_usd: 0.05}\n"
    asked = parse_scenario(text, "base", tmp_path).scenario
    assert asked.planner_config().solver.aggregate_tolerance_usd == 0.05


def test_solver_max_listed_options_reaches_the_rounds(tmp_path):
    """``solver.max_listed_options`` is where the scenario's rounds switch to a grid (the
    planner's default when absent)."""
    plain = parse_scenario(BASE_SCENARIO, "base", tmp_path).scenario
    assert plain.planner_config().max_listed_options == PLANNER_DEFAULTS.max_listed_options
    text = BASE_SCENARIO + "solver: {max_listed_options: 0}\n"
    assert parse_scenario(text, "base", tmp_path).scenario.planner_config(
    ).max_listed_options == 0
