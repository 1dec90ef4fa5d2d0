"""Bad scenario files: one line on stderr naming the file, the field and the problem; exit 2.

Each case starts from the valid ``BASE_SCENARIO`` and changes one thing.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from scenarios.cli import main
from tests.scenarios.helpers import BASE_SCENARIO

NORTH = "  - {id: north, zone: clean, pue: 1.1, gpus: {V100: 2}}"
SOUTH = "  - {id: south, zone: dirty, pue: 1.3, gpus: {K80: 2, P100: 1}}"
JOB_A = ("    - {id: a, home_site: south, job_type: resnet50, gpus: 1, reference_runtime_h: 1, "
         "submit_h: 0}")
JOB_B = "    - {id: b, home_site: south, job_type: lm,"
CLEAN_PRICE = "    price_usd_per_mwh: {kind: constant, value: 60}\n"
CLEAN_CARBON = "{kind: constant, value: 50}"

# (case id, text to replace, replacement, field path expected, words of the problem expected)
CASES = [
    ("wrong-type", "period_h: 6", 'period_h: "a week"', "period_h", "valid number"),
    ("negative-gpus", "gpus: {V100: 2}", "gpus: {V100: -2}", "sites[0].gpus.V100",
     "greater than or equal to 0"),
    ("unknown-gpu-type", "gpus: {V100: 2}", "gpus: {V200: 2}", "sites[0].gpus.V200",
     "unknown GPU type 'V200'"),
    ("unknown-job-type", "job_type: resnet50", "job_type: bert", "workload.jobs[0].job_type",
     "unknown job type 'bert'"),
    ("zone-not-defined", "id: south, zone: dirty", "id: south, zone: nuclear",
     "sites[1].zone", "zone 'nuclear' has no signals"),
    ("zone-without-price", CLEAN_PRICE, "", "zones.clean.price_usd_per_mwh", "missing field"),
    ("horizon-below-slot", "horizon_h: 6", "horizon_h: 0.5", "horizon_h",
     "shorter than a slot"),
    ("deadline-before-submit", "deadline_h: 9}", "deadline_h: 0.5}",
     "workload.jobs[1].deadline_h", "must be after submit_h (1.0) (got 0.5)"),
    ("yaml-does-not-parse", "period_h: 6", "period_h: [6", "line ", "YAML does not parse"),
    ("unknown-field", NORTH, NORTH.replace("pue: 1.1", "pue: 1.1, colour: red"),
     "sites[0].colour", "unknown field"),
    ("duplicate-site-id", "id: south", "id: north", "sites[1].id", "duplicate site id 'north'"),
    ("csv-file-missing", CLEAN_CARBON, "{kind: csv, path: no_such.csv, column: ci}",
     "zones.clean.carbon_g_per_kwh", "no_such.csv"),
    ("signal-value-wrong-type", CLEAN_CARBON, "{kind: constant, value: lots}",
     "zones.clean.carbon_g_per_kwh.value", "valid number"),
    ("unknown-signal-kind", CLEAN_CARBON, "{kind: magic, value: 50}",
     "zones.clean.carbon_g_per_kwh", "'magic'"),
    ("job-gpus-zero", JOB_A, JOB_A.replace("gpus: 1", "gpus: 0"), "workload.jobs[0].gpus",
     "greater than or equal to 1"),
    ("job-fits-no-pool", JOB_A, JOB_A.replace("gpus: 1", "gpus: 8"), "workload.jobs[0]",
     "fits no GPU pool"),
    ("job-unknown-home", JOB_B, JOB_B.replace("home_site: south", "home_site: east"),
     "workload.jobs[1].home_site", "unknown site 'east'"),
    ("job-missing-work", JOB_A, JOB_A.replace("reference_runtime_h: 1, ", ""),
     "workload.jobs[0]", "exactly one of work_steps and reference_runtime_h"),
    ("missing-required-field", "period_h: 6\n", "", "period_h", "missing field"),
    ("unknown-policy", "policies: [milp,", "policies: [fastest,", "policies[0]", "'milp'"),
    ("pue-below-one", "pue: 1.3", "pue: 0.8", "sites[1].pue", "greater than or equal to 1"),
    ("submit-after-period", "submit_h: 1,", "submit_h: 7,",
     "workload.jobs[1].submit_h", "after the end of the period"),
    # carbon intensity is never negative, on any path (prices may be)
    ("negative-constant-carbon", CLEAN_CARBON, "{kind: constant, value: -5}", "zones.clean",
     "carbon_g_per_kwh.value: carbon intensity cannot be negative (got -5)"),
    ("negative-hourly-carbon", "values: [400, 400, 600", "values: [400, -1, 600",
     "zones.dirty", "carbon_g_per_kwh.values[1]: carbon intensity cannot be negative (got -1)"),
    ("negative-synthetic-carbon", CLEAN_CARBON, "{kind: synthetic, mean: -40}", "zones.clean",
     "carbon_g_per_kwh.mean: carbon intensity cannot be negative (got -40)"),
    ("negative-seed", "seed: 7", "seed: -1", "seed", "greater than or equal to 0 (got -1)"),
    ("typo-in-a-required-key", "period_h: 6", "perod_h: 6", "period_h",
     "missing field (found unknown field 'perod_h': a typo?)"),
]


def write_case(tmp_path, old: str, new: str):
    assert old in BASE_SCENARIO, old  # the case really changes the base
    path = tmp_path / "scenario.yaml"
    path.write_text(BASE_SCENARIO.replace(old, new, 1))
    return path


def run_cli(args, capsys) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(("old", "new", "field", "problem"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_scenario_gives_one_line_naming_file_field_and_problem(
        tmp_path, capsys, old, new, field, problem):
    path = write_case(tmp_path, old, new)
    code, out, err = run_cli(["run", str(path)], capsys)
    assert code == 2
    assert "Traceback" not in out + err
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith(f"error: {path}: ")
    assert f": {field}" in line
    assert problem in line


def test_the_base_scenario_itself_is_valid(tmp_path, capsys):
    """Guards the cases above: without the change, the same file runs fine."""
    path = tmp_path / "scenario.yaml"
    path.write_text(BASE_SCENARIO)
    code, out, err = run_cli(["run", str(path), "--policies", "isolated"], capsys)
    assert code == 0
    assert all(line.startswith("isolated: ") for line in err.splitlines())  # progress only
    assert "isolated" in out


def test_field_path_points_at_the_exact_field(tmp_path, capsys):
    """The whole prefix, not just a suffix: 'sites[0].gpus.V100: Input should ...'."""
    path = write_case(tmp_path, "gpus: {V100: 2}", "gpus: {V100: -2}")
    _, _, err = run_cli(["run", str(path)], capsys)
    assert err.startswith(f"error: {path}: sites[0].gpus.V100: Input should be greater than")
    assert "(got -2)" in err


def test_yaml_error_names_the_line(tmp_path, capsys):
    """'period_h: [6' is on line 5 of the base text; the parser reports where it gave up,
    which is at or after that line."""
    path = write_case(tmp_path, "period_h: 6", "period_h: [6")
    _, _, err = run_cli(["run", str(path)], capsys)
    line_no = int(err.split("line ")[1].split(",")[0])
    assert line_no >= 5


def test_a_file_that_is_not_a_mapping(tmp_path, capsys):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    code, _, err = run_cli(["run", str(path)], capsys)
    assert code == 2
    assert err.strip() == f"error: {path}: a scenario must be a YAML mapping of fields"


def test_missing_scenario_file_and_unknown_builtin(tmp_path, capsys):
    missing = tmp_path / "nope.yaml"
    code, _, err = run_cli(["run", str(missing)], capsys)
    assert code == 2
    assert err.strip() == f"error: {missing}: no such scenario file"
    code, _, err = run_cli(["run", "no-such-builtin"], capsys)
    assert code == 2
    assert len(err.splitlines()) == 1
    assert "no-such-builtin" in err and "tiny" in err  # lists the built-ins


def test_csv_without_the_column(tmp_path, capsys):
    (tmp_path / "ci.csv").write_text("Datetime (UTC),other\n2023-06-05 00:00:00,1\n")
    path = write_case(tmp_path, CLEAN_CARBON, "{kind: csv, path: ci.csv, column: ci}")
    code, _, err = run_cli(["run", str(path)], capsys)
    assert code == 2
    assert len(err.splitlines()) == 1
    assert "zones.clean.carbon_g_per_kwh" in err and "Traceback" not in err


def test_csv_that_does_not_cover_the_period(tmp_path, capsys):
    """Only 3 hours of data for a run that needs days: names the first missing hour."""
    (tmp_path / "ci.csv").write_text(
        "Datetime (UTC),ci\n2023-06-05 00:00:00,1\n2023-06-05 01:00:00,2\n"
        "2023-06-05 02:00:00,3\n")
    path = write_case(tmp_path, CLEAN_CARBON, "{kind: csv, path: ci.csv, column: ci}")
    code, _, err = run_cli(["run", str(path)], capsys)
    assert code == 2
    assert len(err.splitlines()) == 1
    assert "zones.clean.carbon_g_per_kwh" in err
    assert "ci.csv: no data for 2023-06-05 03:00:00" in err


def test_real_process_prints_no_traceback(tmp_path):
    path = write_case(tmp_path, "gpus: {V100: 2}", "gpus: {V200: 2}")
    done = subprocess.run([sys.executable, "-m", "scenarios.cli", "run", str(path)],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 2
    assert "Traceback" not in done.stderr + done.stdout
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1
    assert str(path) in lines[0] and "sites[0].gpus.V200" in lines[0]


def test_calibrated_workload_too_wide_for_the_federation_is_one_line(tmp_path, capsys):
    """Helios needs 8-GPU jobs to reach its mean; a federation of 2-GPU pools cannot host
    them: one line naming the workload, exit 2, no traceback."""
    path = tmp_path / "cal.yaml"
    path.write_text(
        "name: cal\nperiod_h: 24\n"
        "zones:\n  z: {carbon_g_per_kwh: {kind: constant, value: 100},"
        " price_usd_per_mwh: {kind: constant, value: 50}}\n"
        "sites:\n  - {id: a, zone: z, gpus: {V100: 2}}\n"
        "workload: {kind: synthetic, jobs_per_hour: 5, calibrate: helios, max_gpus: 8}\n")
    from scenarios.cli import main

    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"{path}: workload: no site has 8 GPUs" in err
    assert "Traceback" not in err


def test_a_period_of_a_thousand_years_is_refused_not_run(tmp_path, capsys):
    """period_h: 1e7 would generate signals and jobs for over a thousand years."""
    path = tmp_path / "long.yaml"
    path.write_text(
        "name: long\nperiod_h: 10000000\n"
        "zones:\n  z: {carbon_g_per_kwh: {kind: constant, value: 100},"
        " price_usd_per_mwh: {kind: constant, value: 50}}\n"
        "sites:\n  - {id: a, zone: z, gpus: {V100: 2}}\n"
        "workload: {kind: synthetic, jobs_per_hour: 1}\n")
    from scenarios.cli import main

    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: period_h: Input should be less than or equal to 87600" in err


def test_negative_price_is_allowed(tmp_path, capsys):
    """Real markets go below zero: a negative price is not an error (carbon is)."""
    price = "    price_usd_per_mwh: {kind: constant, value: -20}\n"
    path = write_case(tmp_path, CLEAN_PRICE, price)
    code, _, err = run_cli(["run", str(path), "--policies", "isolated"], capsys)
    assert code == 0 and "error" not in err


def test_a_directory_given_as_scenario_says_so(tmp_path, capsys):
    code, _, err = run_cli(["run", str(tmp_path)], capsys)
    assert code == 2
    assert err == f"error: {tmp_path}: is a directory, not a scenario file\n"


def test_a_directory_given_as_a_csv_signal_says_so(tmp_path, capsys):
    (tmp_path / "ci").mkdir()
    path = write_case(tmp_path, CLEAN_CARBON, "{kind: csv, path: ci, column: ci}")
    code, _, err = run_cli(["run", str(path)], capsys)
    assert code == 2
    assert "zones.clean.carbon_g_per_kwh.path" in err and "is a directory, not a file" in err


def test_empty_policy_list_is_an_error(capsys):
    code, out, err = run_cli(["run", "tiny", "--policies", ""], capsys)
    assert code == 2 and out == ""
    assert err == "error: --policies: names no policy (give e.g. milp,isolated)\n"


def test_out_onto_a_file_is_refused_before_the_run(tmp_path, capsys):
    target = tmp_path / "results"
    target.write_text("not a folder")
    code, out, err = run_cli(["run", "tiny", "--out", str(target)], capsys)
    assert code == 2 and out == ""  # no report: nothing ran
    assert err == f"error: --out: {target}: is a file, not a folder\n"


def test_out_into_a_folder_of_other_files_is_refused_and_left_alone(tmp_path, capsys):
    (tmp_path / "thesis.tex").write_text("precious")
    code, out, err = run_cli(["run", "tiny", "--out", str(tmp_path)], capsys)
    assert code == 2 and out == ""
    assert "holds files carbonfed did not write (thesis.tex)" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis.tex"]


def test_out_into_an_earlier_results_folder_overwrites_it(tmp_path, capsys):
    assert main(["run", "tiny", "--out", str(tmp_path)]) == 0
    first = (tmp_path / "summary.csv").read_text()
    assert main(["run", "tiny", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "summary.csv").read_text() == first
    capsys.readouterr()


def test_unwritable_out_is_refused_before_the_run(tmp_path, capsys):
    """A folder inside a file cannot be made (even by root): one line, nothing run."""
    (tmp_path / "plain").write_text("")
    code, out, err = run_cli(["run", "tiny", "--out", str(tmp_path / "plain" / "out")], capsys)
    assert code == 2 and out == ""
    assert "cannot write here" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("args", [["scenarios"], ["run", "tiny"]])
def test_a_closed_pipe_ends_quietly(args):
    """The reader goes away at once (as `| head -c 0` would): no BrokenPipeError traceback."""
    process = subprocess.Popen([sys.executable, "-m", "scenarios.cli", *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 1  # quietly: no message, the Python way
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr
