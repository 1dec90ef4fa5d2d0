"""The scaling model: Gavel's table at measured points, Amdahl between, trace run times as
Gavel's own simulator has them, and its fit error on points it did not see."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import numpy as np
import pytest

from broker.traces import TraceWindow, gavel_trace_jobs, read_gavel_trace
from scenarios.loader import parse_scenario
from sites.affinity import GAVEL_MEDIAN_SERIAL_FRACTION, AffinityMatrix, default_affinity
from sites.errors import InputError
from sites.readers.gavel_affinity import carbonfed_job_type, gavel_measurements
from sites.scaling import (
    LINEAR,
    ScalingModel,
    amdahl_speedup,
    error_summary,
    fit_serial_fraction,
    held_out_errors,
)
from tests.realdata import DATA_DIR, needs_data
from tests.scenarios.helpers import BASE_SCENARIO

GAVEL = "gpu/gavel_throughputs.json"


def _affinity(text: str) -> AffinityMatrix:
    loaded = parse_scenario(text, "s.yaml", Path.cwd(), DATA_DIR)
    assert loaded.resolved is not None
    return loaded.resolved.affinity


# --- by hand --------------------------------------------------------------------------------

def test_amdahl_by_hand():
    """s = 0.2: speed-up on 2 GPUs 2 / 1.2 = 1.667, on 5 GPUs 5 / 1.8 = 2.778; s = 0: k;
    one GPU: 1 whatever s."""
    assert amdahl_speedup(2.0, 0.2) == pytest.approx(2 / 1.2)
    assert amdahl_speedup(5.0, 0.2) == pytest.approx(5 / 1.8)
    assert amdahl_speedup(8.0, 0.0) == 8.0
    assert amdahl_speedup(1.0, 0.7) == 1.0


def test_the_fit_recovers_the_fraction_that_made_the_points():
    """Speed-ups made by s = 0.15 at 2, 4, 8 GPUs fit back to 0.15; a super-linear pair
    (2.2x on 2 GPUs) gives a negative fraction: 2 / (1 + s) = 2.2, s = -0.0909."""
    points = {k: float(amdahl_speedup(float(k), 0.15)) for k in (2, 4, 8)}
    assert fit_serial_fraction(points) == pytest.approx(0.15, abs=1e-6)
    assert fit_serial_fraction({2: 2.2}) == pytest.approx(2 / 2.2 - 1, abs=1e-6)
    with pytest.raises(ValueError, match="no speed-up measured above one GPU"):
        fit_serial_fraction({1: 1.0})


def test_measured_points_exact_amdahl_between_defaults_for_the_rest():
    """Job "m" on V100: 10 steps/s on 1 GPU, 16 on 2, 24 on 4 (measured). At 2 and 4 the model
    gives the measurement; at 3 the fitted Amdahl curve, between 16 and 24; on T4 (one GPU 2.5)
    at 4 GPUs the V100's fraction: 2.5 x 24/10 would be the measured ratio, and Amdahl at the
    fitted s gives close to it; job "u", never measured on several GPUs, gets the default
    fraction 0.1: 4 / 1.3 x its one-GPU rate. Spread over servers (9 GPUs) with no spread
    measurement: the consolidated fraction."""
    model = ScalingModel.fitted({("m", "V100", True): {1: 10.0, 2: 16.0, 4: 24.0}}, 0.1)
    assert model.throughput("m", "V100", 2, 10.0) == 16.0
    assert model.throughput("m", "V100", 4, 10.0) == 24.0
    s = model.serial_fraction[("m", "V100", True)]
    assert 16.0 < model.throughput("m", "V100", 3, 10.0) < 24.0
    assert model.throughput("m", "V100", 3, 10.0) == pytest.approx(10 * 3 / (1 + 2 * s))
    assert model.throughput("m", "T4", 4, 2.5) == pytest.approx(2.5 * 4 / (1 + 3 * s))
    assert model.throughput("u", "V100", 4, 3.0) == pytest.approx(3.0 * 4 / 1.3)
    assert model.throughput("m", "V100", 9, 10.0) == pytest.approx(10 * 9 / (1 + 8 * s))
    assert model.throughput("m", "V100", 4, 0.0) == 0.0  # does not run there
    assert LINEAR.throughput("m", "V100", 4, 10.0) == 40.0


def test_a_scenario_gives_scaling_points_and_is_refused_without_a_one_gpu_rate():
    """``scaling: {toy: {V100: {4: 30}}}`` with toy's one-GPU V100 rate 10: 30 steps/s on 4."""
    text = BASE_SCENARIO + "affinity: {toy: {V100: 10.0}}\nscaling: {toy: {V100: {4: 30.0}}}\n"
    affinity = _affinity(text)
    assert affinity.job_steps_per_s("toy", "V100", 4) == pytest.approx(30.0)
    bad = BASE_SCENARIO + "scaling: {toy: {A100: {4: 30.0}}}\n"
    with pytest.raises(InputError, match=r"s.yaml: scaling\.toy\.A100: no one-GPU throughput"):
        _affinity(bad)


def test_the_built_in_catalog_scales_as_gavel_measured():
    """ResNet-50 (batch 64) on 4 V100s: Gavel measured 9.45 steps/s, where linear scaling said
    4 x 4.39 = 17.56; LM (batch 20) on V100 is slower on 4 GPUs (111.0) than on 2 (132.2), and
    the model keeps that (a chosen GPU count never takes it; a fixed one runs at it)."""
    affinity = default_affinity()
    assert affinity.job_steps_per_s("resnet50", "V100", 4) == pytest.approx(9.451949566394442)
    assert affinity.job_steps_per_s("resnet50", "V100", 1) == pytest.approx(4.394774823323071)
    assert affinity.job_steps_per_s("lm", "V100", 4) < affinity.job_steps_per_s("lm", "V100", 2)
    # T4 has no measurement: the V100's fraction on the T4's one-GPU rate
    s = affinity.scaling.fraction("resnet50", "V100", True)
    t4 = affinity.steps_per_s("resnet50", "T4")
    assert affinity.job_steps_per_s("resnet50", "T4", 4) == pytest.approx(t4 * 4 / (1 + 3 * s))


def test_a_hand_made_table_scales_linearly_unless_given_a_model():
    table = AffinityMatrix.from_nested({"toy": {"V100": 2.0}})
    assert table.job_steps_per_s("toy", "V100", 4) == 8.0


# --- against Gavel's file --------------------------------------------------------------------

def _gavel_file() -> dict:
    assert DATA_DIR is not None
    return json.loads((DATA_DIR / GAVEL).read_text())


@pytest.mark.realdata
@needs_data
def test_every_measured_point_of_the_file_is_returned_exactly():
    """Every (job type, scale factor) of every GPU, consolidated and spread: the model built
    from the file returns the file's figure (to float rounding of ratio x one-GPU rate)."""
    model = ScalingModel.fitted(gavel_measurements(DATA_DIR / GAVEL))
    data = _gavel_file()
    checked = 0
    for gpu_key, entries in data.items():
        consolidated = not gpu_key.endswith("_unconsolidated")
        gpu = gpu_key.removesuffix("_unconsolidated").upper()
        for key, measured in entries.items():
            job, k = ast.literal_eval(key)
            one = entries.get(str((job, 1)), {}).get("null", 0.0)
            if measured["null"] <= 0 or one <= 0:
                continue
            got = model.throughput(carbonfed_job_type(job), gpu, k, one, consolidated)
            assert got == pytest.approx(measured["null"], rel=1e-12), (gpu_key, key)
            checked += 1
    assert checked > 400


@pytest.mark.realdata
@needs_data
def test_the_built_in_figures_are_the_files():
    """The catalog's embedded multi-GPU points and median fraction come from the file."""
    measured = gavel_measurements(DATA_DIR / GAVEL)
    builtin = default_affinity()
    names = {"resnet18": "resnet18-bs64", "resnet50": "resnet50-bs64",
             "transformer": "transformer-bs64", "lm": "lm-bs20"}
    for short, full in names.items():
        for gpu in ("K80", "P100", "V100"):
            for k in (1, 2, 4, 8):
                assert builtin.job_steps_per_s(short, gpu, k) == pytest.approx(
                    measured[(full, gpu, True)][k], rel=1e-12)
    fitted = ScalingModel.fitted(measured)
    assert fitted.default_serial_fraction == pytest.approx(GAVEL_MEDIAN_SERIAL_FRACTION,
                                                           abs=5e-5)


@pytest.mark.realdata
@needs_data
def test_a_philly_trace_job_runs_as_long_as_in_gavel():
    """Gavel's simulator runs a job at its scale factor's throughput until total_steps are
    done: run time = total_steps / throughput[gpu][(job type, scale factor)] (sites.scaling).
    Checked on every multi-GPU job of one virtual cluster's trace, on V100 and K80."""
    affinity = _affinity(BASE_SCENARIO + f"affinity_file: {{path: {GAVEL}}}\n")
    trace = read_gavel_trace(DATA_DIR / "jobs/gavel_philly/0e4a51.trace")
    taken = gavel_trace_jobs(trace, "a", affinity, TraceWindow(), math.inf, None, "t-", "trace")
    data = _gavel_file()
    wide = [j for j in taken.jobs if j.gpus > 1 and j.job_type in affinity.job_types]
    assert len(wide) > 20
    names = {carbonfed_job_type(ast.literal_eval(k)[0]): ast.literal_eval(k)[0]
             for k in data["v100"]}
    for job in wide:
        for gpu in ("v100", "k80"):
            measured = data[gpu].get(str((names[job.job_type], job.gpus)), {}).get("null", 0)
            if measured > 0:
                expected_h = job.work_steps / measured / 3600.0
                assert job.runtime_on_h(affinity, gpu.upper()) == pytest.approx(expected_h,
                                                                                 rel=1e-12)
    # what the linear rule got wrong: some wide jobs ran more than 2x too fast
    ratios = [affinity.steps_per_s(j.job_type, "V100") * j.gpus
              / affinity.job_steps_per_s(j.job_type, "V100", j.gpus) for j in wide]
    assert max(ratios) > 2.0


@pytest.mark.realdata
@needs_data
def test_the_fit_beats_linear_scaling_on_points_it_did_not_see():
    """Leave-one-out over Gavel's multi-GPU points: the fitted model's median relative error
    is less than half of the linear rule's."""
    summary = error_summary(held_out_errors(gavel_measurements(DATA_DIR / GAVEL)))
    assert summary["points"] > 300
    assert summary["median_error"] < 0.5 * summary["median_linear_error"]
    assert np.isfinite(summary["p90_error"])
