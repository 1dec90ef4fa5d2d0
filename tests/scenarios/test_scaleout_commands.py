"""Coalition values, sweeps and seeds on a real Dask cluster give the in-process numbers."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from distributed import Client, LocalCluster, get_task_stream

from market.analysis import all_coalitions
from market.valuation import VALUATIONS
from scenarios.build import build_run
from scenarios.dask_executor import DaskExecutor
from scenarios.loader import load_scenario
from scenarios.market_tasks import ExecutorEvaluate, ScenarioRef
from scenarios.scaleout import InProcessExecutor
from scenarios.sweep import grid, run_task, summarise
from tests.broker.test_outside import SCENARIO as THREE_SITES
from tests.scenarios.helpers import run_cli, synthetic_text


@pytest.fixture(scope="module")
def cluster():
    environ = dict(os.environ)  # the nannies write their workers' variables into ours
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address="127.0.0.1:0") as local:
        yield local
    os.environ.clear()
    os.environ.update(environ)


@pytest.fixture(scope="module")
def three_sites(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("three") / "three.yaml"
    path.write_text(THREE_SITES)
    return path


@pytest.mark.parametrize("mode", ["plan", "simulate"])
def test_coalition_values_are_identical_on_a_cluster(cluster, three_sites, mode):
    args = ("market", str(three_sites), "--value", mode, "--schemes", "shapley", "--json")
    code, local, _ = run_cli(*args)
    assert code == 0
    code, remote, err = run_cli(*args, "--scheduler", cluster.scheduler_address)
    assert code == 0, err
    local_doc, remote_doc = json.loads(local), json.loads(remote)
    assert len(local_doc["coalitions"]) == 7
    assert remote_doc["coalitions"] == local_doc["coalitions"]  # the same floats
    assert remote_doc["schemes"] == local_doc["schemes"]


def test_coalition_batches_on_a_cluster_give_the_in_process_values(cluster, three_sites):
    loaded = load_scenario(str(three_sites))
    run = build_run(loaded)
    valuation = VALUATIONS["plan"](run.setup, run.config)
    coalitions = all_coalitions(valuation.sites)
    expected = [valuation.value(c) for c in coalitions]
    with Client(cluster) as client:
        executor = DaskExecutor(client)
        assert executor.slots == 2
        with get_task_stream(client) as stream:
            got = ExecutorEvaluate(executor, ScenarioRef.of(loaded), "plan", 3)(
                valuation, coalitions)
    assert got == expected
    assert len(stream.data) == 3  # 7 coalitions in batches of 3


def test_a_sweep_table_is_identical_on_a_cluster(cluster, tmp_path):
    args = ("sweep", "tiny", "--carbon-prices", "0,100", "--policies", "milp,isolated")
    assert run_cli(*args, "--out", str(tmp_path / "here"))[0] == 0
    code, _, err = run_cli(*args, "--out", str(tmp_path / "there"), "--scheduler",
                           cluster.scheduler_address)
    assert code == 0, err
    here = pd.read_csv(tmp_path / "here" / "sweep.csv")
    there = pd.read_csv(tmp_path / "there" / "sweep.csv")
    assert len(here) == 4
    pd.testing.assert_frame_equal(here, there, check_exact=True)


def test_a_resumed_sweep_runs_only_what_is_missing(tmp_path):
    args = ("sweep", "tiny", "--carbon-prices", "0,100", "--policies", "isolated",
            "--out", str(tmp_path))
    assert run_cli(*args[:-2], "--carbon-prices", "0", "--out", str(tmp_path))[0] == 0
    first = pd.read_csv(tmp_path / "sweep.csv")
    code, _, err = run_cli(*args, "--resume")
    assert code == 0 and "2 runs, 1 already written" in err
    both = pd.read_csv(tmp_path / "sweep.csv")
    assert len(both) == 2
    pd.testing.assert_frame_equal(both.iloc[[0]], first, check_exact=True)


def test_a_worker_killed_mid_sweep_still_gives_the_whole_table(cluster):
    """SIGKILL one worker while tasks run: Dask re-runs its tasks and the table is the one
    computed in-process."""
    loaded = load_scenario("tiny")
    tasks = grid(ScenarioRef.of(loaded), ["isolated", "greedy-carbon"], [0.0, 50.0, 100.0], 2)
    expected = InProcessExecutor().map(run_task, tasks)
    killed: list[int] = []
    with Client(cluster) as client:
        def kill_one(label: str, done: int, total: int) -> None:
            if done == 1 and not killed:
                pid = next(iter(client.run(os.getpid).values()))
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

        got = DaskExecutor(client, progress=kill_one).map(run_task, tasks)
    assert killed
    assert pd.DataFrame(got).equals(pd.DataFrame(expected))


def test_an_unreachable_scheduler_is_one_line_within_ten_seconds():
    started = time.perf_counter()
    code, out, err = run_cli("market", "tiny", "--scheduler", "tcp://127.0.0.1:9")
    assert time.perf_counter() - started < 10
    assert code == 2 and out == ""
    assert [line for line in err.splitlines() if line.startswith("error: ")] == [
        line for line in err.splitlines() if "error" in line]
    assert "--scheduler: tcp://127.0.0.1:9: no Dask scheduler answered" in err


def test_seeds_give_the_mean_and_a_students_t_interval(tmp_path):
    """Three seeds of a synthetic scenario: the half-width is t(0.975, 2) x sd / sqrt(3) with
    t(0.975, 2) = 4.302652729911275 (the two-sided 95% Student quantile with 2 degrees of
    freedom), computed here from the three runs' own figures."""
    path = tmp_path / "synth.yaml"
    path.write_text(synthetic_text(seed=5, policies="[isolated]"))
    code, out, _ = run_cli("run", str(path), "--seeds", "3", "--out", str(tmp_path / "o"))
    assert code == 0 and "mean +/- 95% CI half-width over 3" in out
    records = pd.read_csv(tmp_path / "o" / "seeds.csv")
    summary = pd.read_csv(tmp_path / "o" / "seeds_summary.csv").iloc[0]
    carbon = records["carbon_kg"].tolist()
    assert len(set(carbon)) == 3  # different seeds, different runs
    assert records["seed"].iloc[0] == 5  # the first replicate is the scenario's own seed
    assert summary["carbon_kg"] == pytest.approx(statistics.mean(carbon))
    assert summary["carbon_kg_ci"] == pytest.approx(
        4.302652729911275 * statistics.stdev(carbon) / math.sqrt(3))
    assert summarise(records).iloc[0]["carbon_kg_ci"] == pytest.approx(summary["carbon_kg_ci"])


def piped(*args: str) -> subprocess.CompletedProcess:
    """``carbonfed ARGS`` as a real process with stdout and stderr piped, and no COLUMNS
    (rich's width off a terminal is then 80 columns: the case a user meets piping to a file)."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    return subprocess.run([sys.executable, "-m", "scenarios.cli", *args], capture_output=True,
                          text=True, timeout=300, env=env, check=False)


SWEEP_PROGRESS = re.compile(r"^sweep: (?P<done>\d+)/(?P<total>\d+) runs \((?P<pct>\d+)%, ")


def test_a_piped_sweep_counts_runs_and_prints_whole_override_names():
    """12 runs in chunks of 2 (in-process): progress counts the 12 runs, up to 12/12, not the
    chunk ("2/2 (100%)" and then nothing); the override names are printed whole, not cut at
    80 columns to "delay_c…"."""
    done = piped("sweep", "tiny", "--set", "delay_cost_usd_per_gpu_h=0.005,0.01",
                 "--set", "temporal_max_wait_h=12,24,36", "--policies", "milp,isolated")
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert "sweep: started, 12 runs" in lines
    steps = [m for m in map(SWEEP_PROGRESS.match, lines) if m]
    assert {m["total"] for m in steps} == {"12"}
    counts = [int(m["done"]) for m in steps]
    assert counts == sorted(counts) and len(counts) >= 8 and counts[-1] == 12
    assert [int(m["pct"]) for m in steps][-1] == 100
    for delay in ("0.005", "0.01"):
        for wait in (12, 24, 36):
            name = f"delay_cost_usd_per_gpu_h={delay},temporal_max_wait_h={wait}"
            rows = [line for line in done.stdout.splitlines() if name in line]
            assert len(rows) == 2, (name, done.stdout)  # milp and isolated, each on one line
    assert "…" not in done.stdout


def test_piped_market_tables_keep_their_key_columns_whole():
    done = piped("market", "tiny", "--schemes", "shapley,cost-plus")
    assert done.returncode == 0, done.stderr
    assert "coalition that would leave (saves USD)" in done.stdout
    assert "north+south" in done.stdout
    assert "…" not in done.stdout
