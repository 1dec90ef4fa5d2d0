"""A real broker, real agents, a real one-node Slurm cluster (``.ci/slurm.sh``: gpu:v100:4 and
gpu:a100:2 on stand-in devices; the ``slurm`` executor).

Each test names its sites apart (Slurm keeps finished jobs in squeue for an hour, and a site
finds its jobs by name). Where Slurm cannot run here the tests skip, saying why in one line.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.api.federation import (
    Federation,
    all_active,
    gated_run,
    job,
    job_state,
    sh,
    site,
)

SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "slurm.sh"


@pytest.fixture(scope="module")
def slurm_conf() -> str:
    conf = os.environ.get("SLURM_CONF") if os.environ.get("CARBONFED_TEST_SLURM") else None
    if conf is None:
        done = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True,
                              timeout=600)
        conf = done.stdout.strip()
    if not conf:
        pytest.skip("no Slurm here (.ci/slurm.sh could not install or start slurm-wlm)")
    return conf


@pytest.fixture
def slurm(slurm_conf, monkeypatch) -> str:
    monkeypatch.setenv("SLURM_CONF", slurm_conf)  # the agents' sbatch, squeue, scancel
    return slurm_conf


def squeue(*args: str) -> str:
    return subprocess.run(["squeue", "-h", "-t", "all", *args], capture_output=True, text=True,
                          check=True, timeout=30).stdout


def slurm_executor(tmp_path: Path, **extra: object) -> dict:
    return {"kind": "slurm", "grace_s": 1.5, "work_dir": str(tmp_path), **extra}


def free_v100_now(admin, site_id: str) -> int:
    return admin.get(f"/v1/sites/{site_id}/offer").json()["free_gpus"]["V100"][0]


def test_a_job_becomes_a_slurm_job_and_the_offer_counts_the_clusters_gpus(
        tmp_path, processes, slurm):
    fed = Federation(tmp_path, processes)
    admin = fed.start()
    fed.add_site(site("sa", {"V100": 4}, price=10), slurm_executor(tmp_path / "sa"))
    fed.wait(lambda: all_active(admin, 1), "the site offering")
    fed.wait(lambda: free_v100_now(admin, "sa") == 4, "all four V100s offered")
    # a job the broker did not place holds two V100s: the offer drops to two
    foreign = subprocess.run(
        ["sbatch", "--parsable", "--job-name=someone-else", "--gres=gpu:v100:2", "--time=5",
         "--output=/dev/null", "--wrap", "sleep 600"],
        capture_output=True, text=True, check=True, timeout=30).stdout.strip()
    try:
        fed.wait(lambda: free_v100_now(admin, "sa") == 2, "the foreign job's GPUs out of the offer")
    finally:
        subprocess.run(["scancel", foreign], check=True, timeout=30)
    fed.wait(lambda: free_v100_now(admin, "sa") == 4, "the GPUs back")

    out = tmp_path / "out"
    out.mkdir()
    run = sh(f'echo "$SLURM_JOB_NAME $CUDA_VISIBLE_DEVICES" > {out}/ran; sleep 2')
    assert admin.post("/v1/jobs", json=job("j1", run, home="sa")).status_code == 201
    fed.wait(lambda: job_state(admin, "j1")["status"] == "running", "the job running")
    fed.wait(lambda: free_v100_now(admin, "sa") == 3, "its GPU out of the offer")
    fed.wait(lambda: job_state(admin, "j1")["status"] == "completed", "the job completing")
    [attempt] = job_state(admin, "j1")["history"]
    slurm_id = attempt["run_ref"]
    name, devices = (out / "ran").read_text().split()
    assert name == f"cf.sa.{attempt['assignment_id']}.j1" and devices == "0"
    assert squeue("-j", slurm_id, "-o", "%j|%T").strip() == f"{name}|COMPLETED"
    assert attempt["exit_state"] == "COMPLETED" and attempt["exit_code"] == 0
    # Slurm's own start and end times (whole seconds), around the job's 2 s of sleep
    started, ended = attempt["started_at_s"], attempt["ended_at_s"]
    assert started == int(started) and ended == int(ended) and ended - started >= 2
    fed.wait(lambda: free_v100_now(admin, "sa") == 4, "its GPU back in the offer")
    assert f"job j1 started (1 x V100, assignment 1, run {slurm_id})" in fed.log("sa")


def test_failure_elsewhere_policy_reject_and_scancel_on_revoke(tmp_path, processes, slurm):
    fed = Federation(tmp_path, processes)
    admin = fed.start()
    # sb (the cheaper) takes no job of more than 1 h; sc takes anything
    fed.add_site(site("sb", {"V100": 4}, price=10),
                 slurm_executor(tmp_path / "sb", accept={"max_runtime_h": 1.5}))
    fed.add_site(site("sc", {"V100": 4}, price=90), slurm_executor(tmp_path / "sc"))
    fed.wait(lambda: all_active(admin, 2), "both sites offering")
    out = tmp_path / "out"
    out.mkdir()
    flaky = sh(f'if [ ! -e {out}/mark ]; then touch {out}/mark; echo boom >&2; exit 1; fi')
    long = job("long", sh(f"echo ran > {out}/long"), hours=2.0, home="sc")
    jobs = [job("flaky", flaky, home="sc"), long]
    assert admin.post("/v1/jobs/batch", json={"jobs": jobs}).status_code == 201
    fed.wait(lambda: all(job_state(admin, j["id"])["status"] == "completed" for j in jobs),
             "both jobs to complete", timeout_s=60)
    history = job_state(admin, "flaky")["history"]
    assert [(h["site_id"], h["status"], h["exit_code"]) for h in history] == [
        ("sb", "failed", 1), ("sc", "completed", 0)]
    assert history[0]["exit_state"] == "FAILED" and "boom" in history[0]["message"]
    history = job_state(admin, "long")["history"]
    assert [(h["site_id"], h["requeue_reason"]) for h in history] == [
        ("sb", "rejected"), ("sc", None)]
    assert "above this site's 1.5 h" in history[0]["message"]

    # revoke: the job is cancelled at the broker, scancelled at the cluster; it got SIGTERM
    stubborn = sh(f'trap "echo checkpoint > {out}/term" TERM; while true; do sleep 0.1; done',
                  checkpoint_dir=str(out))
    assert admin.post("/v1/jobs", json=job("stuck", stubborn, home="sb")).status_code == 201
    fed.wait(lambda: job_state(admin, "stuck")["status"] == "running", "the job running")
    [attempt] = job_state(admin, "stuck")["history"]
    assert admin.post("/v1/jobs/stuck/cancel").json()["status"] == "cancelled"
    fed.wait(lambda: squeue("-j", attempt["run_ref"], "-o", "%T").strip() == "CANCELLED",
             "the Slurm job cancelled")
    assert (out / "term").read_text() == "checkpoint\n"


def test_a_restarted_agent_re_adopts_its_slurm_job_by_name(tmp_path, processes, slurm):
    fed = Federation(tmp_path, processes)
    admin = fed.start("--lease-s", "60")
    fed.add_site(site("sd", {"V100": 4}, price=10), slurm_executor(tmp_path / "sd"))
    fed.wait(lambda: all_active(admin, 1), "the site offering")
    out = tmp_path / "out"
    out.mkdir()
    run = gated_run(out)
    assert admin.post("/v1/jobs", json=job("j1", run, home="sd")).status_code == 201
    fed.wait(lambda: job_state(admin, "j1")["status"] == "running", "the job running")
    fed.restart_agent("sd")
    assert free_v100_now(admin, "sd") == 3  # its first offer after the restart holds the job
    (out / "go").touch()
    fed.wait(lambda: job_state(admin, "j1")["status"] == "completed", "the job completing")
    assert (out / "runs").read_text() == "started\ndone\n"  # once
    [attempt] = job_state(admin, "j1")["history"]
    assert (f"job j1 re-adopted after a restart (assignment 1, run {attempt['run_ref']})"
            in fed.log("sd"))
