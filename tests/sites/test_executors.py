"""Executors apart from the broker: the acceptance policy, Slurm's outputs as the agent reads
them, a real process stopped at its max run time, and the agent file's executor section."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from sites.executors import AcceptPolicy, ExecutorContext, ExecutorSpec, LocalJob, build_executor
from sites.executors.slurm import exit_status, gres_counts, node_gres


def local_job(run: dict | None, gpus: int = 1, runtime_h: float = 1.0) -> LocalJob:
    return LocalJob(7, "j7", "V100", gpus, runtime_h, run=run, runtime_h=runtime_h)


@pytest.mark.parametrize(("policy", "run", "gpus", "refusal"), [
    ({}, {"command": ["python", "x.py"]}, 1, None),
    ({}, {"command": ["x"], "image": "pytorch:24"}, 1, "image 'pytorch:24' is not allowed here"),
    ({"images": ["pytorch:24"]}, {"command": ["x"], "image": "pytorch:24"}, 1, None),
    ({"command_prefixes": ["python train.py", "torchrun"]},
     {"command": ["python", "train.py", "--lr", "1"]}, 1, None),
    ({"command_prefixes": ["python train.py"]}, {"command": ["python", "evil.py"]}, 1,
     "command 'python' does not start with an allowed prefix"),
    ({"scripts": False}, {"script": "#!/bin/sh\ntrue\n"}, 1, "this site runs no batch scripts"),
    ({"max_gpus_per_job": 4}, {"command": ["x"]}, 8, "8 GPUs is above this site's 4 per job"),
    ({"max_runtime_h": 2}, {"command": ["x"]}, 1, "run time 3 h is above this site's 2 h"),
    ({"max_runtime_h": 2}, {"command": ["x"], "max_runtime_h": 1.5}, 1, None),
])
def test_the_acceptance_policy_says_why_it_refuses(policy, run, gpus, refusal):
    assert AcceptPolicy(**policy).refusal(local_job(run, gpus, runtime_h=3.0)) == refusal


def test_slurm_outputs_are_read_as_the_cluster_gives_them():
    # squeue --json exit codes are wait statuses: exit 2 is 512, SIGTERM is 15
    assert exit_status(512) == (2, 0) and exit_status(15) == (0, 15)
    assert gres_counts("gpu:v100:4(S:0),gpu:a100:1(IDX:4)") == {"v100": 4, "a100": 1}
    nodes = (
        "NodeName=n1 Arch=x86_64 State=MIXED Partitions=gpu,debug OS=Linux 6.1 #1 SMP "
        "Gres=gpu:v100:4,gpu:a100:2 GresUsed=gpu:v100:3(IDX:0-2),gpu:a100:0(IDX:N/A)\n"
        "NodeName=n2 State=IDLE+DRAIN Partitions=gpu Gres=gpu:v100:4 "
        "GresUsed=gpu:v100:0(IDX:N/A)\n"
        "NodeName=n3 State=IDLE Partitions=cpu Gres=gpu:v100:8 GresUsed=gpu:v100:0(IDX:N/A)\n")
    # the drained node counts for nothing; n3 is outside the partition
    assert node_gres(nodes, "gpu") == ({"v100": 4, "a100": 2}, {"v100": 3, "a100": 0})
    assert node_gres(nodes, None)[0] == {"v100": 12, "a100": 2}


def test_a_process_past_its_max_runtime_is_stopped_and_reported_failed(tmp_path):
    executor = build_executor(ExecutorSpec(kind="process", grace_s=0.5),
                              ExecutorContext("north", {"V100": 1}, tmp_path, 1.0))
    # 0.0002 h is 0.72 s of real time; the job would sleep for a minute
    job = local_job({"command": ["/bin/sh", "-c", "echo working; sleep 60"],
                     "max_runtime_h": 0.0002})
    job.gpu_indices = (0,)
    executor.launch(job)
    assert job.ref is not None and job.ref.isdigit()
    ends = time.monotonic() + 20
    status = executor.poll(job)
    while status.state == "running" and time.monotonic() < ends:
        time.sleep(0.1)
        status = executor.poll(job)
    assert status.state == "failed" and status.exit_state == "TIMEOUT"
    assert "max_runtime_h" in (status.message or "") and "working" in (status.message or "")
    pid = int(job.ref)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[-1].split()[0] == "Z":
                    break
        except OSError:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the stopped job still runs")


@pytest.mark.parametrize(("executor", "says"), [
    ("{kind: docker}", "executor.kind: unknown executor 'docker' (known: simulate, process, "
     "slurm)"),
    ("{kind: process, gpu_indices: {K80: [0]}}", "executor.gpu_indices.K80: not a GPU type of "
     "the site"),
    ("{kind: process, accept: {images: [x]}}", "accept.images needs container_prefix"),
    ("{kind: slurm, grace_s: -1}", "executor.grace_s"),
])
def test_a_bad_executor_section_is_one_line_before_any_connection(tmp_path, executor, says):
    path = tmp_path / "north.yaml"
    path.write_text("site: {id: north, zone: hydro, pue: 1.1, gpus: {V100: 2}}\n"
                    "signals:\n"
                    "  carbon_g_per_kwh: {kind: constant, value: 30}\n"
                    "  price_usd_per_mwh: {kind: constant, value: 80}\n"
                    f"executor: {executor}\n")
    done = subprocess.run([sys.executable, "-m", "scenarios.cli", "agent", str(path),
                           "--broker", "http://127.0.0.1:9"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0] and "Traceback" not in done.stderr


def test_nvml_measures_a_runs_gpu_energy_where_a_gpu_is():
    from sites.executors.energy import kwh_between, open_nvml

    nvml, note = open_nvml()
    if nvml is None:
        pytest.skip(note)
    start = nvml.read_mj([0])
    time.sleep(1.0)
    kwh = kwh_between(start, nvml.read_mj([0]))
    assert kwh is not None and kwh > 0  # an idle GPU still draws tens of watts
