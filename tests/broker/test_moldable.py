"""Moldable jobs: the broker chooses the GPU count, with costs worked out by hand.

The job type "m" scales poorly on V100: 10 steps/s on 1 GPU, 16 on 2, 20 on 4 (measured
points). A job of 57,600 steps (16 x 3,600) with a range of 2 to 4 GPUs:

* on 2 GPUs: 57,600 / 16 = 3,600 s = 1.0 h; 2 x 300 W x 1.0 h = 0.6 kWh (PUE 1);
* on 4 GPUs: 57,600 / 20 = 2,880 s = 0.8 h; 4 x 300 W x 0.8 h = 0.96 kWh.

At 100 USD/MWh, no carbon price, and a delay cost of 0.005 USD per GPU-hour to completion,
2 GPUs cost 0.06 + 2 x 1.0 x 0.005 = 0.07 USD and 4 GPUs 0.096 + 4 x 0.8 x 0.005 = 0.112 USD:
2 GPUs win. With a deadline at 0.9 h only 4 GPUs (done at 0.8 h) meet it: 4 GPUs win.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from broker.jobs import Job
from broker.live import greedy_plan
from broker.offers import RoundOffers
from broker.planner import MilpPlanner, PlannerConfig
from scenarios.loader import parse_scenario
from sites.affinity import AffinityMatrix
from sites.scaling import ScalingModel
from tests.scenarios.helpers import BASE_SCENARIO, make_setup, simulate, toy_federation

POOR = AffinityMatrix.from_nested(
    {"m": {"V100": 10.0}},
    ScalingModel.fitted({("m", "V100", True): {1: 10.0, 2: 16.0, 4: 20.0}}, 0.0))
CONFIG = PlannerConfig(carbon_price_usd_per_t=0.0, delay_cost_usd_per_gpu_h=0.005)


def _job(deadline_h: float | None = None) -> Job:
    return Job("j", "a", "m", 4, 16.0 * 3600.0, 0.0, deadline_h=deadline_h,
               min_gpus=2, max_gpus=4)


def _round() -> RoundOffers:
    return RoundOffers(0.0, 1.0, np.full((1, 3), 4), np.full((1, 3), 100.0),
                       np.full((1, 3), 300.0))


def test_gpu_counts_are_the_powers_of_two_in_the_range_and_its_ends():
    assert _job().gpu_counts == (2, 4)
    assert Job("x", "a", "m", 8, 1.0, 0.0, min_gpus=1, max_gpus=8).gpu_counts == (1, 2, 4, 8)
    assert Job("x", "a", "m", 4, 1.0, 0.0, min_gpus=3, max_gpus=6).gpu_counts == (3, 4, 6)
    assert Job("x", "a", "m", 4, 1.0, 0.0).gpu_counts == (4,)
    with pytest.raises(ValueError, match="min_gpus <= gpus <= max_gpus"):
        Job("x", "a", "m", 8, 1.0, 0.0, min_gpus=1, max_gpus=4)


def test_two_gpus_beat_four_on_cost_when_scaling_is_poor():
    fed = toy_federation({"a": {"V100": 4}}, affinity=POOR)
    plan = MilpPlanner(fed, CONFIG).plan(_round(), [_job()])
    (a,) = plan.assignments
    assert (a.gpus, a.start_offset) == (2, 0)
    assert plan.objective_usd == pytest.approx(0.07)
    # the anytime broker's greedy plan reads the same options
    (g,) = greedy_plan(fed, _round(), [_job()], CONFIG).assignments
    assert g.gpus == 2


def test_four_gpus_beat_two_under_a_deadline_only_four_can_meet():
    fed = toy_federation({"a": {"V100": 4}}, affinity=POOR)
    plan = MilpPlanner(fed, CONFIG).plan(_round(), [_job(deadline_h=0.9)])
    (a,) = plan.assignments
    assert (a.gpus, a.start_offset) == (4, 0)
    assert plan.objective_usd == pytest.approx(0.112)


def test_the_simulation_meters_the_chosen_count_and_isolated_runs_the_asked_one():
    """milp runs the job on 2 GPUs for 1 h (0.6 kWh); isolated, which does not choose, on the
    4 it asked for, 0.8 h (0.96 kWh). The savings' GPU-count part is their difference in kWh
    at the same (fastest, home) type: 0.96 - 0.6 = 0.36 kWh."""
    from broker.savings import compute_savings

    fed = toy_federation({"a": {"V100": 4}}, affinity=POOR)
    setup = make_setup(fed, [_job()], carbon=[[300.0]], price=[[100.0]])
    milp, isolated = simulate(setup, "milp", CONFIG), simulate(setup, "isolated", CONFIG)
    m, i = milp.jobs.iloc[0], isolated.jobs.iloc[0]
    assert (m["gpus"], m["asked_gpus"], i["gpus"]) == (2, 4, 4)
    assert m["finish_h"] - m["run_start_h"] == pytest.approx(1.0)
    assert m["energy_kwh"] == pytest.approx(0.6) and i["energy_kwh"] == pytest.approx(0.96)
    energy = next(s for s in compute_savings(setup, isolated, milp, 0.0)
                  if s.metric == "energy_kwh")
    assert energy.parts["gpu_count"] == pytest.approx(0.36)
    assert energy.parts["affinity"] == pytest.approx(0.0, abs=1e-12)


def test_a_scenario_job_gives_a_range_and_moldable_widens_every_job():
    """A listed job with ``gpus: {min: 1, max: 2}`` asks for 2 and may run on 1 or 2; the
    scenario-wide ``moldable`` gives the other jobs 1 to 8 around their own count."""
    from scenarios.build import build_run

    text = BASE_SCENARIO.replace("gpus: 1,", "gpus: {min: 1, max: 2},", 1)
    assert text != BASE_SCENARIO
    jobs = build_run(parse_scenario(text, "s.yaml", Path.cwd())).setup.jobs
    first = jobs[0]
    assert (first.gpus, first.gpu_counts) == (2, (1, 2))
    assert not jobs[1].moldable
    wide = build_run(parse_scenario(text + "moldable: {min_gpus: 1, max_gpus: 8}\n", "s.yaml",
                                    Path.cwd())).setup.jobs
    assert wide[0].gpu_counts == (1, 2)  # its own range is kept
    assert all(j.gpu_counts == (1, 2, 4, 8) for j in wide[1:] if j.gpus <= 8)


def test_run_moldable_through_the_cli_shows_the_chosen_counts():
    """``carbonfed run tiny --moldable`` as a user pipes it: the report counts, per policy,
    the jobs run on fewer, as many or more GPUs than they asked for; isolated never chooses."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "scenarios.cli", "run", "tiny", "--moldable",
                           "--policies", "milp,isolated"], capture_output=True, text=True,
                          check=True)
    lines = done.stdout.splitlines()
    title = next(i for i, line in enumerate(lines) if "GPU counts of the" in line)
    jobs = int(lines[title].split("GPU counts of the ")[1].split()[0])
    isolated = next(line for line in lines[title:] if "isolated" in line)
    cells = [c.strip() for c in isolated.split("│") if c.strip()]
    assert cells[:4] == ["isolated", "0", str(jobs), "0"]


def test_the_signals_cover_a_moldable_job_on_its_slowest_count():
    """A transformer job asking for 2 V100s for 20 h may run on 1: about 36.8 h there (Gavel:
    15.88 steps/s on 2, 8.62 on 1). The scenario builder sizes the run's signals by the
    longest run a job may take; it must count the job's slowest count, or a policy that takes
    1 GPU late in the run meters past the signals' end (it did on federation-12 with
    --moldable)."""
    from broker.federation import Federation
    from scenarios.build import _longest_run_h
    from sites import DEFAULT_GPUS, SiteSpec, default_affinity

    affinity = default_affinity()
    fed = Federation((SiteSpec("a", "z", {"V100": 2}),), DEFAULT_GPUS, affinity)
    work = affinity.work_steps_for_h("transformer", "V100", 2, 20.0)
    job = Job("c", "a", "transformer", 2, work, 0.0, min_gpus=1, max_gpus=2)
    one_gpu_h = work / affinity.job_steps_per_s("transformer", "V100", 1) / 3600
    assert one_gpu_h == pytest.approx(20.0 * 15.876496488983058 / 8.61775899193302)
    assert _longest_run_h((job,), fed) == pytest.approx(one_gpu_h)
