"""Gavel traces and Alibaba pod lists to jobs (small files written here; real ones if present)."""

from __future__ import annotations

import numpy as np
import pytest

from broker.traces import (
    TraceWindow,
    alibaba_pod_jobs,
    gavel_trace_jobs,
    read_alibaba_pods,
    read_gavel_trace,
)
from sites import AffinityMatrix
from sites.errors import InputError
from tests.realdata import DATA_DIR, needs_data

AFFINITY = AffinityMatrix.from_nested({"resnet18-bs64": {"V100": 2.0}, "lm": {"V100": 1.0}})


def trace_line(job: str, steps: int, arrival_s: float, gpus: int) -> str:
    return "\t".join([job, "cd %s && python3 train.py", "-n", "1", str(steps), f"{arrival_s:f}",
                      str(gpus)])


def write_trace(tmp_path, lines):
    path = tmp_path / "vc.trace"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_gavel_trace_to_jobs_with_window_and_rate_scale(tmp_path):
    """Arrivals at 0, 2 h, 4 h, 6 h; window [2, 6) h at twice the rate: the jobs arriving at 2 h
    and 4 h are submitted at 0 and 1 h. 'LM (batch size 20)' falls back to 'lm'."""
    path = write_trace(tmp_path, [
        trace_line("ResNet-18 (batch size 64)", 7200, 0, 1),
        trace_line("ResNet-18 (batch size 64)", 7200, 7200, 2),
        trace_line("LM (batch size 20)", 3600, 14400, 1),
        trace_line("LM (batch size 20)", 3600, 21600, 1),
    ])
    trace = read_gavel_trace(path)
    taken = gavel_trace_jobs(trace, "a", AFFINITY, TraceWindow(2, 6, rate_scale=2), 168, None,
                             "a-", str(path))
    assert [(j.job_type, j.gpus, j.submit_h) for j in taken.jobs] == [
        ("resnet18-bs64", 2, 0.0), ("lm", 1, 1.0)]
    # 7200 steps on 2 GPUs at 2 steps/s each: 7200 / 4 = 1800 s = 0.5 h
    assert taken.jobs[0].runtime_on_h(AFFINITY, "V100") == 0.5  # AFFINITY scales linearly


def test_gavel_trace_counts_what_it_leaves_out(tmp_path):
    """8 GPUs > max_gpus 4; 36,000 steps at 1 step/s is 10 h > max_runtime_h 5."""
    path = write_trace(tmp_path, [trace_line("LM (batch size 20)", 100, 0, 8),
                                  trace_line("LM (batch size 20)", 36000, 1, 1),
                                  trace_line("LM (batch size 20)", 100, 2, 1)])
    taken = gavel_trace_jobs(read_gavel_trace(path), "a", AFFINITY,
                             TraceWindow(max_gpus=4, max_runtime_h=5), 168, None, "a-", "f")
    assert len(taken.jobs) == 1
    assert taken.skipped == {"wider than max_gpus": 1, "longer than max_runtime_h": 1}


@pytest.mark.parametrize(("lines", "message"), [
    ([], "the file is empty"),
    (["ResNet\tonly three\tfields"], "line 1: 3 tab-separated fields, expected 7"),
    ([trace_line("LM (batch size 20)", 10, 5, 1), trace_line("LM (batch size 20)", 10, 1, 1)],
     "line 2, field 'arrival_time_s': time goes backwards"),
    ([trace_line("LM (batch size 20)", 0, 0, 1)], "field 'total_steps': must be a whole number"),
    (["\t".join(["LM", "c", "-n", "1", "many", "0", "1"])], "missing or non-numeric value"),
])
def test_gavel_trace_bad_input(tmp_path, lines, message):
    with pytest.raises(InputError, match=message):
        read_gavel_trace(write_trace(tmp_path, lines))


def test_unknown_gavel_job_type_names_the_line(tmp_path):
    path = write_trace(tmp_path, [trace_line("BERT (batch size 8)", 10, 0, 1)])
    with pytest.raises(InputError, match=r"line 1, field 'job_type': job type 'BERT"):
        gavel_trace_jobs(read_gavel_trace(path), "a", AFFINITY, TraceWindow(), 168, None, "a-",
                         str(path))


POD_HEADER = ("name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,"
              "creation_time,deletion_time,scheduled_time")


def test_alibaba_pods_fractional_gpus_and_constraints(tmp_path):
    """A pod using 500 milli-GPU for 2 h becomes a 1-GPU job of 1 GPU-hour; the CPU pod and the
    never-scheduled pod are counted, not kept."""
    rows = [POD_HEADER,
            "p0,1,1,1,500,V100M16|V100M32,LS,Running,0,7200,0",
            "p1,1,1,0,0,,LS,Running,10,7200,10",
            "p2,1,1,2,1000,,LS,Pending,20,7200,",
            "p3,1,1,2,1000,,LS,Running,3600,10800,3600"]
    path = tmp_path / "pods.csv"
    path.write_text("\n".join(rows) + "\n")
    pods = read_alibaba_pods(path)
    assert pods["gpu_spec"].iloc[0] == ("V100M16", "V100M32")
    taken = alibaba_pod_jobs(pods, "a", AFFINITY, ["lm"], "V100", TraceWindow(), 168,
                             np.random.default_rng(0), "a-")
    assert [(j.gpus, j.submit_h) for j in taken.jobs] == [(1, 0.0), (2, 1.0)]
    assert taken.jobs[0].runtime_on_h(AFFINITY, "V100") == pytest.approx(1.0)  # 2 h x 0.5 GPU
    assert taken.jobs[1].runtime_on_h(AFFINITY, "V100") == pytest.approx(2.0)
    assert taken.skipped == {"no GPU": 1, "never scheduled": 1}


def test_alibaba_pods_bad_input(tmp_path):
    path = tmp_path / "pods.csv"
    path.write_text(f"{POD_HEADER}\np0,1,1,1,1500,,LS,Running,0,10,0\n")
    with pytest.raises(InputError, match=r"line 2, column 'gpu_milli': more than one GPU"):
        read_alibaba_pods(path)
    path.write_text(f"{POD_HEADER}\np0,1,1,1,100,,LS,Running,50,60,50\n"
                    "p1,1,1,1,100,,LS,Running,10,60,10\n")
    with pytest.raises(InputError, match=r"line 3, column 'creation_time': time goes backwards"):
        read_alibaba_pods(path)


@pytest.mark.realdata
@needs_data
def test_real_traces_read_and_map_to_gavel_affinity():
    """15 Philly-derived traces, all job types known to Gavel's table; 8152 default pods."""
    from sites.readers.gavel_affinity import read_gavel_throughputs
    affinity = read_gavel_throughputs(DATA_DIR / "gpu/gavel_throughputs.json").affinity()
    files = sorted((DATA_DIR / "jobs/gavel_philly").glob("*.trace"))
    assert len(files) == 15
    total = 0
    for path in files:
        taken = gavel_trace_jobs(read_gavel_trace(path), "a", affinity, TraceWindow(), 1e9, None,
                                 "a-", str(path))
        assert all("-bs" in j.job_type or j.job_type in ("a3c", "cyclegan") for j in taken.jobs)
        total += len(taken.jobs)
    assert total == 15_264  # `wc -l` over the 15 files: one job per line
    pods = read_alibaba_pods(DATA_DIR / "jobs/alibaba_v2023/openb_pod_list_default.csv")
    assert len(pods) == 8152


def test_alibaba_gpu_spec_is_enforced_through_a_model_map(tmp_path):
    """With {V100M16: V100, V100M32: V100, T4: T4}: p0 (V100M16|V100M32) may only use V100s;
    p1 (no spec) anything; p2 (A10 only, not mapped) cannot run here and is left out."""
    rows = [POD_HEADER,
            "p0,1,1,1,1000,V100M16|V100M32,LS,Running,0,3600,0",
            "p1,1,1,1,1000,,LS,Running,0,3600,0",
            "p2,1,1,1,1000,A10,LS,Running,0,3600,0"]
    path = tmp_path / "pods.csv"
    path.write_text("\n".join(rows) + "\n")
    models = {"V100M16": "V100", "V100M32": "V100", "T4": "T4"}
    taken = alibaba_pod_jobs(read_alibaba_pods(path), "a", AFFINITY, ["lm"], "V100",
                             TraceWindow(), 168, np.random.default_rng(0), "a-", models)
    assert [j.gpu_types for j in taken.jobs] == [("V100",), ()]
    assert taken.skipped == {"gpu_spec names no GPU type here": 1}
