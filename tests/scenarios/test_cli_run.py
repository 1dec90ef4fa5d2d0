"""``carbonfed run`` and ``carbonfed scenarios`` end to end, in process and as a real process."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from broker.policy_registry import POLICIES as REGISTERED
from broker.savings import PARTS
from scenarios.cli import main
from tests.scenarios.helpers import BASE_SCENARIO

POLICIES = tuple(REGISTERED)
FILES = ("jobs.csv", "site_slots.csv", "summary.csv", "savings.csv", "summary.json",
         "policies.png", "milp_load_vs_carbon.png")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """`carbonfed run tiny --out DIR` in process, once for the module (stdout captured)."""
    out_dir = tmp_path_factory.mktemp("tiny")
    stdout, stderr = io.StringIO(), io.StringIO()
    with (pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(stdout),
          contextlib.redirect_stderr(stderr)):
        patch.setenv("COLUMNS", "200")  # wide enough that rich never elides a policy name
        code = main(["run", "tiny", "--out", str(out_dir)])
    return code, stdout.getvalue(), stderr.getvalue(), out_dir


def test_run_tiny_exits_0_and_reports_every_policy(tiny_run):
    code, out, err, _ = tiny_run
    assert code == 0
    assert_piped_progress(err)
    assert "tiny" in out
    for name in POLICIES:
        assert name in out
    assert "Savings of milp against isolated" in out
    for part in PARTS:
        assert part.replace("_", " ") in out


def test_run_writes_every_file(tiny_run):
    _, out, _, out_dir = tiny_run
    for name in FILES:
        path = out_dir / name
        assert path.is_file() and path.stat().st_size > 0, name
        assert name in out  # each "wrote PATH" line
    for name in ("policies.png", "milp_load_vs_carbon.png"):
        assert (out_dir / name).read_bytes()[:8] == PNG_MAGIC


def test_outputs_are_consistent(tiny_run):
    """summary.json per-policy totals equal the sums of jobs.csv rows of that policy; the CSV
    summary equals the JSON one; all 6 jobs of tiny are accounted for per policy."""
    _, _, _, out_dir = tiny_run
    jobs = pd.read_csv(out_dir / "jobs.csv")
    summary = json.loads((out_dir / "summary.json").read_text())
    summary_csv = pd.read_csv(out_dir / "summary.csv").set_index("policy")
    assert summary["scenario"] == "tiny"
    assert set(summary["policies"]) == set(POLICIES)
    assert set(jobs["policy"]) == set(POLICIES)
    for name in POLICIES:
        rows = jobs[jobs["policy"] == name]
        got = summary["policies"][name]
        assert got["carbon_kg"] == pytest.approx(rows["carbon_kg"].sum())
        assert got["energy_kwh"] == pytest.approx(rows["energy_kwh"].sum())
        assert got["energy_cost_usd"] == pytest.approx(rows["energy_cost_usd"].sum())
        assert len(rows) == 6  # a row per job, whether the federation ran it or not
        assert got["jobs_finished"] == int((rows["status"] == "finished").sum())
        assert got["jobs_finished"] + len(summary["unfinished"][name]) == 6
        assert got["jobs_moved"] == int((rows["site"] != rows["home_site"]).sum())
        # total cost = energy + transfer + 100 USD/t x carbon
        assert got["total_cost_usd"] == pytest.approx(
            rows["energy_cost_usd"].sum() + rows["transfer_cost_usd"].sum()
            + 100 * rows["carbon_kg"].sum() / 1000)
        for key in ("carbon_kg", "energy_kwh", "total_cost_usd", "jobs_finished"):
            assert summary_csv.loc[name, key] == pytest.approx(got[key])


def test_site_slots_cover_the_whole_run_and_sum_to_the_summary(tiny_run):
    """tiny: 12 h period + 24 h drain = 36 hourly slots per site, and every job finishes by
    then, so 2 x 36 rows per policy. Per policy the slots' energy, CO2 and energy cost sum to
    the summary's totals (tiny has no outside-option job and no idle power), and the busy
    GPU-hours to the jobs' GPU-hours."""
    _, _, _, out_dir = tiny_run
    jobs = pd.read_csv(out_dir / "jobs.csv")
    slots = pd.read_csv(out_dir / "site_slots.csv")
    summary = json.loads((out_dir / "summary.json").read_text())
    for name in POLICIES:
        rows = jobs[jobs["policy"] == name]
        run = slots[slots["policy"] == name]
        assert (rows["finish_h"] <= 36).all()
        assert len(run) == 2 * 36
        assert list(run["slot"][run["site"] == "north"]) == list(range(36))
        for key in ("energy_kwh", "carbon_kg", "energy_cost_usd"):
            assert run[key].sum() == pytest.approx(summary["policies"][name][key])
        assert run["busy_gpu_h"].sum() == pytest.approx(rows["gpu_hours"].sum())


def test_savings_parts_sum_to_saved(tiny_run):
    _, _, _, out_dir = tiny_run
    savings = pd.read_csv(out_dir / "savings.csv").set_index("metric")
    summary = json.loads((out_dir / "summary.json").read_text())
    assert set(savings.index) == {"energy_kwh", "carbon_kg", "total_cost_usd"}
    for metric, row in savings.iterrows():
        assert row[list(PARTS)].sum() == pytest.approx(row["saved"], abs=1e-9)
        assert row["saved"] == pytest.approx(row["isolated"] - row["milp"])
        assert row["isolated"] == pytest.approx(summary["policies"]["isolated"][metric])
        assert row["milp"] == pytest.approx(summary["policies"]["milp"][metric])
        parts = summary["savings"][metric]["parts"]
        assert sum(parts.values()) == pytest.approx(summary["savings"][metric]["saved"])


def test_run_a_scenario_file_with_a_policy_subset(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    path = tmp_path / "base.yaml"
    path.write_text(BASE_SCENARIO)
    out_dir = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out_dir),
                 "--policies", "isolated,greedy-carbon"]) == 0
    out = capsys.readouterr().out
    assert "isolated" in out and "greedy-carbon" in out
    assert "no savings table: it compares milp with isolated, and milp did not run" in out
    assert "milp" not in out.split("no savings table")[0]
    jobs = pd.read_csv(out_dir / "jobs.csv")
    assert set(jobs["policy"]) == {"isolated", "greedy-carbon"}
    assert set(jobs["status"]) == {"finished"}
    assert len(jobs) == 2 * 3
    assert not (out_dir / "milp_load_vs_carbon.png").exists()
    savings = pd.read_csv(out_dir / "savings.csv")  # no milp: no rows, but the header
    assert savings.empty
    assert {"metric", "saved", *PARTS} <= set(savings.columns)


def test_unknown_policy_in_subset_is_a_one_line_error(tmp_path, capsys):
    assert main(["run", "tiny", "--policies", "milp,bogus"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert "bogus" in lines[0] and "Traceback" not in captured.err


def test_scenarios_lists_builtins_with_descriptions(capsys):
    assert main(["scenarios"]) == 0
    lines = capsys.readouterr().out.splitlines()
    named = {line.split()[0]: line.split(None, 1)[1] for line in lines if line.strip()}
    assert {"tiny", "default"} <= set(named)
    assert "2 sites" in named["tiny"]
    assert "5 sites" in named["default"]


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "run" in capsys.readouterr().out


def real_process(*args: str, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "scenarios.cli", *args], capture_output=True,
                          text=True, timeout=120, env=env, cwd=cwd, check=False)


PROGRESS_LINE = re.compile(r"^(?P<policy>[a-z-]+): (started, 36 rounds|"
                           r"(?P<done>\d+)/36 rounds \((?P<pct>\d+)%, [\d.]+ s\))$")


def assert_piped_progress(stderr: str, policies=POLICIES) -> None:
    """tiny has 36 rounds: per policy a start line and one line per 10% (10 lines), in
    order, and nothing else (no bar, no escape codes)."""
    lines = stderr.splitlines()
    assert len(lines) == 11 * len(policies), stderr
    for k, name in enumerate(policies):
        block = [PROGRESS_LINE.match(line) for line in lines[11 * k: 11 * (k + 1)]]
        assert all(m is not None and m["policy"] == name for m in block), stderr
        assert [int(m["pct"]) for m in block[1:]] == list(range(10, 101, 10))


def test_real_process_run_tiny_progress_on_a_pipe(tmp_path):
    """A real process with stdout and stderr piped: exit 0, the report on stdout, and on
    stderr one line as each policy starts and one per 10% of its rounds (so a long piped run
    does not look hung), nothing else."""
    done = real_process("run", "tiny", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert_piped_progress(done.stderr)
    for name in POLICIES:
        assert name in done.stdout
    assert "Savings of milp against isolated" in done.stdout
    assert "\x1b[" not in done.stdout  # no terminal escape codes into a pipe
    for name in FILES:
        assert (tmp_path / name).is_file()


def test_real_process_scenarios_command():
    done = real_process("scenarios")
    assert done.returncode == 0
    assert "tiny" in done.stdout and "default" in done.stdout


def test_console_script_lists_scenarios():
    """The installed ``carbonfed`` entry point (next to this interpreter in the virtualenv)."""
    script = Path(sys.executable).with_name("carbonfed")
    if not script.exists():
        pytest.skip("carbonfed console script not installed next to this interpreter")
    done = subprocess.run([str(script), "scenarios"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    names = [line.split()[0] for line in done.stdout.splitlines() if line.strip()]
    assert "tiny" in names and "default" in names


def test_load_plot_labels_its_axes_with_units_and_shares_the_carbon_scale():
    """milp_load_vs_carbon.png: tiny's two grids are 30 and 500-800 gCO2/kWh; on one carbon
    scale the clean site's line lies low, on a scale per panel both filled their panels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from scenarios.build import build_run
    from scenarios.loader import load_scenario
    from scenarios.outputs import CARBON_LABEL, LOAD_LABEL, TIME_LABEL, load_figure
    from scenarios.runner import run_scenario

    run = build_run(load_scenario("tiny"))
    result = run_scenario(dataclasses_replace_policies(run, ["milp"]))
    fig = load_figure(result, plt)
    try:
        panels = [ax for ax in fig.axes if ax.get_title()]
        twins = [ax for ax in fig.axes if not ax.get_title()]
        assert [ax.get_title() for ax in panels] == ["north", "south"]
        assert len(twins) == 2
        assert panels[0].get_ylabel() == LOAD_LABEL and "%" in LOAD_LABEL
        assert twins[-1].get_ylabel() == CARBON_LABEL and "gCO2/kWh" in CARBON_LABEL
        assert all(ax.get_xlabel() == TIME_LABEL for ax in panels) and "(h)" in TIME_LABEL
        limits = {twin.get_ylim() for twin in twins}
        assert len(limits) == 1  # one carbon scale
        low, high = limits.pop()
        assert low == 0 and high >= 800
    finally:
        plt.close(fig)


def dataclasses_replace_policies(run, policies):
    """``run`` with only ``policies`` (a shorter test)."""
    import dataclasses

    return dataclasses.replace(run, scenario=run.scenario.model_copy(
        update={"policies": policies}))
