"""Bad scenario files: one line on stderr naming the file, the field and the problem; exit 2.

Each case starts from the valid ``BASE_SCENARIO`` and changes one thing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from scenarios.cli import main
from tests.scenarios.helpers import BASE_SCENARIO, build_from_text

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
    # filling gaps in a data file is explicit and bounded
    ("fill-without-max-gap", CLEAN_CARBON, "{kind: csv, path: ci.csv, column: ci, fill: ffill}",
     "zones.clean.carbon_g_per_kwh", "fill: ffill needs max_gap_h"),
    ("max-gap-without-fill", CLEAN_CARBON, "{kind: csv, path: ci.csv, column: ci, max_gap_h: 1}",
     "zones.clean.carbon_g_per_kwh", "max_gap_h does nothing without fill: ffill"),
    ("max-gap-of-two-days", CLEAN_CARBON,
     "{kind: lwa, region: ger, fill: ffill, max_gap_h: 48}",
     "zones.clean.carbon_g_per_kwh.max_gap_h", "less than or equal to 24"),
    ("unknown-fill", CLEAN_CARBON, "{kind: lwa, region: ger, fill: interpolate, max_gap_h: 1}",
     "zones.clean.carbon_g_per_kwh.fill", "'ffill'"),
    # malleable jobs: each knob needs the mode it tunes
    ("elastic-without-range", JOB_A, JOB_A.replace("gpus: 1,", "gpus: 1, elastic: true,"),
     "workload.jobs[0]", "elastic needs a GPU range"),
    ("resize-overhead-without-elastic", JOB_A,
     JOB_A.replace("gpus: 1,", "gpus: {min: 1, max: 2}, resize_overhead_h: 0.1,"),
     "workload.jobs[0]", "resize_overhead_h needs elastic: true"),
    ("checkpoint-gb-without-preemptible", JOB_A,
     JOB_A.replace("gpus: 1,", "gpus: 1, checkpoint_gb: 2,"),
     "workload.jobs[0]", "checkpoint_gb needs preemptible: true"),
    ("negative-checkpoint-gb", "seed: 7", "seed: 7\npreemptible: {checkpoint_gb: -1}",
     "preemptible.checkpoint_gb", "greater than or equal to 0"),
    ("negative-aggregate-tolerance", "seed: 7",
     "seed: 7\nsolver: {aggregate_tolerance_usd: -0.5}", "solver.aggregate_tolerance_usd",
     "greater than or equal to 0"),
    ("negative-max-listed-options", "seed: 7", "seed: 7\nsolver: {max_listed_options: -1}",
     "solver.max_listed_options", "greater than or equal to 0"),
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


# Silent mistakes (issue 24, item 7): each is refused, or said, where the user sees it: in a
# real process, as a shell runs it.

def carbonfed(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scenarios.cli", *args], capture_output=True,
                          text=True, timeout=timeout, check=False,
                          env={**os.environ, "COLUMNS": "200"})


def refused(done: subprocess.CompletedProcess) -> str:
    """Exit 2, nothing on stdout, one line on stderr (progress lines aside): that line."""
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and len(done.stderr.splitlines()) == 1, done.stderr
    return lines[0]


def test_a_duplicate_key_is_refused_naming_the_key_and_both_lines(tmp_path):
    """``period_h: 6`` is line 4 of the base; a second ``period_h: 24`` added as line 5 was
    taken silently (the last one won)."""
    path = write_case(tmp_path, "period_h: 6\n", "period_h: 6\nperiod_h: 24\n")
    line = refused(carbonfed("run", str(path)))
    assert line == (f"error: {path}: line 5: duplicate key 'period_h' (first at line 4, again "
                    "at line 5): keep one")


def test_a_duplicate_key_deep_in_the_file_is_refused_too(tmp_path):
    """Inside a flow mapping of a list item: both on line 19, the north site."""
    path = write_case(tmp_path, NORTH, NORTH.replace("pue: 1.1", "pue: 1.1, pue: 1.5"))
    line = refused(carbonfed("run", str(path)))
    assert "duplicate key 'pue' (first at line 19, again at line 19)" in line


def test_a_duplicate_key_in_an_agent_config_is_refused_before_any_connection(tmp_path):
    """The agent's YAML goes through the same loader: refused before the (dead) broker is
    ever tried."""
    path = tmp_path / "north.yaml"
    path.write_text("site: {id: north, zone: hydro, pue: 1.1, gpus: {V100: 2}}\n"
                    "signals:\n"
                    "  carbon_g_per_kwh: {kind: constant, value: 30}\n"
                    "  price_usd_per_mwh: {kind: constant, value: 80}\n"
                    "  carbon_g_per_kwh: {kind: constant, value: 300}\n")
    line = refused(carbonfed("agent", str(path), "--broker", "http://127.0.0.1:9",
                             timeout=60))
    assert line == (f"error: {path}: line 5: duplicate key 'carbon_g_per_kwh' (first at line "
                    "3, again at line 5): keep one")


@pytest.mark.parametrize(("args", "says"), [
    # the tax ran and the cap was ignored
    (["market", "default", "--cap-t", "0.3"],
     "error: --cap-t: not used by the carbon policy in force (tax, from the scenario's "
     "carbon_policy): add --policy cap or --policy cap-and-trade"),
    (["market", "tiny", "--policy", "cap", "--cut", "0.2", "--cap-t", "1"],
     "error: --cut: not used with --cap-t"),
    (["market", "tiny", "--policy", "tax", "--cut", "0.2"],
     "error: --cut: not used by the carbon policy in force (tax, from --policy): add --policy "
     "cap-and-trade"),
    (["market", "tiny", "--carbon-prices", "10,20", "--cap-t", "1"],
     "error: --cap-t: not used with --carbon-prices"),
    (["market", "tiny", "--carbon-prices", "10,20", "--policy", "cap-and-trade"],
     "error: --policy: cap-and-trade: --carbon-prices analyses a tax at each price"),
    (["market", "tiny", "--schemes", "shapley", "--markup", "0.3"],
     "error: --markup: only the cost-plus scheme uses it"),
    (["market", "tiny", "--exact", "--samples", "50"], "error: --samples: not used with --exact"),
    (["market", "tiny", "--markup", "-5"],
     "error: --markup: must be a finite number >= 0, a fraction of the metered cost (got -5)"),
    # paid hosts negative amounts
    (["run", "tiny", "--ledger", "cost-plus", "--markup", "-5"],
     "error: --markup: must be a finite number >= 0, a fraction of the metered cost (got -5)"),
    (["run", "tiny", "--ledger", "cost-plus", "--markup", "inf"],
     "error: --markup: must be a finite number >= 0"),
    (["run", "tiny", "--markup", "0.5"], "error: --markup: only --ledger cost-plus uses it"),
    (["run", "tiny", "--ledger", "market", "--markup", "0.5"],
     "error: --markup: only --ledger cost-plus uses it (--ledger is market)"),
])
def test_an_option_that_would_do_nothing_or_harm_is_refused(args, says):
    assert refused(carbonfed(*args)).startswith(says)


def test_a_cap_that_does_not_bind_says_so_in_tonnes(tmp_path):
    """default's cap-and-trade with a 20% cut: the federation already emits less than the cap
    without a carbon price, so the implied price is 0 and the cap changes nothing. Text and
    JSON both give the cap in tonnes and say it does not bind."""
    done = carbonfed("market", "default", "--policy", "cap-and-trade", "--cut", "0.2",
                     "--json")
    assert done.returncode == 0, done.stderr
    policy = json.loads(done.stdout)["carbon_policy"]
    allowances_t = sum(policy["allowances_kg"].values()) / 1000
    assert policy["cap_in_force_t"] == pytest.approx(allowances_t, rel=1e-12)
    assert policy["cap_binds"] is False
    assert policy["price_in_force_usd_per_t"] == 0.0
    done = carbonfed("market", "default", "--policy", "cap-and-trade", "--cut", "0.2",
                     "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())  # rich wraps lines
    assert f"cap {allowances_t:,.6g} t" in text
    assert "the cap does not bind: the federation emits" in text
    assert f"within the cap of {allowances_t:,.6g} t" in text
    assert (f"cap {allowances_t:,.6g} t (it does not bind: the federation meets it without a "
            "carbon price)") in (tmp_path / "report.html").read_text()


def test_a_cap_that_binds_says_so_in_json(tmp_path):
    """tiny emits more than 0.9 x its standalone emissions at price 0 (checked: the implied
    price is above 0), so the cap binds."""
    done = carbonfed("market", "tiny", "--policy", "cap-and-trade", "--cut", "0.3", "--json")
    assert done.returncode == 0, done.stderr
    policy = json.loads(done.stdout)["carbon_policy"]
    assert policy["price_in_force_usd_per_t"] > 0
    assert policy["cap_binds"] is True
    assert policy["cap_in_force_t"] == pytest.approx(
        sum(policy["allowances_kg"].values()) / 1000, rel=1e-12)
    text = carbonfed("market", "tiny", "--policy", "cap-and-trade", "--cut", "0.3").stdout
    assert "does not bind" not in text


def gappy_csv(tmp_path, missing_hours: tuple[int, ...]):
    """Hourly carbon for the base scenario's 2 days, without the hours in ``missing_hours``."""
    start = pd.Timestamp("2023-06-05T00:00:00")
    rows = [f"{start + pd.Timedelta(hours=h)},{100 + h}" for h in range(48)
            if h not in missing_hours]
    (tmp_path / "ci.csv").write_text("Datetime (UTC),ci\n" + "\n".join(rows) + "\n")


def test_a_short_gap_is_filled_only_when_asked(tmp_path):
    """Hour 3 missing from a data file: refused (naming the gap's start and length, and the
    option), then run with fill: ffill, max_gap_h: 1, where hour 3 repeats hour 2."""
    gappy_csv(tmp_path, (3,))
    path = write_case(tmp_path, CLEAN_CARBON, "{kind: csv, path: ci.csv, column: ci}")
    line = refused(carbonfed("run", str(path), "--policies", "isolated"))
    assert line.endswith("ci.csv: gap in the data: no value for 2023-06-05 03:00:00+00:00 (the "
                         "gap starts at 2023-06-05 03:00:00+00:00 and lasts 1 h; fill: ffill "
                         "with max_gap_h fills short gaps)")
    assert "zones.clean.carbon_g_per_kwh" in line
    path = write_case(tmp_path, CLEAN_CARBON,
                      "{kind: csv, path: ci.csv, column: ci, fill: ffill, max_gap_h: 1}")
    done = carbonfed("run", str(path), "--policies", "isolated")
    assert done.returncode == 0, done.stderr
    carbon = build_from_text(path.read_text(), tmp_path).setup.carbon_g_per_kwh[0]
    np.testing.assert_array_equal(carbon[:6], [100, 101, 102, 102, 104, 105])


def test_a_gap_longer_than_max_gap_h_is_refused_with_its_start_and_length(tmp_path):
    gappy_csv(tmp_path, (3, 4))
    path = write_case(tmp_path, CLEAN_CARBON,
                      "{kind: csv, path: ci.csv, column: ci, fill: ffill, max_gap_h: 1}")
    line = refused(carbonfed("run", str(path), "--policies", "isolated"))
    assert line.endswith("no value for 2023-06-05 03:00:00+00:00 (the gap starts at "
                         "2023-06-05 03:00:00+00:00 and lasts 2 h, longer than max_gap_h (1 h): "
                         "not filled)")
