"""Preemptible jobs: interrupted runs in the cleanest (or cheapest) slots, worked out by hand.

One V100 (300 W, PUE 1) in hourly slots; energy price 0 and a carbon price of 100 USD/t, so a
kg costs 0.1 USD; no delay cost (both runs below meet the deadline, so it does not decide).
"""

from __future__ import annotations

import numpy as np
import pytest

from broker.jobs import Job
from broker.options import SlotRanking, cheapest_schedule
from broker.planner import PlannerConfig
from broker.summary import summarize
from tests.scenarios.helpers import make_setup, simulate, steps_for, toy_federation

CONFIG = PlannerConfig(carbon_price_usd_per_t=100.0, delay_cost_usd_per_gpu_h=0.0)


def test_cheapest_slots_by_hand():
    """Carbon 300 500 100 400 200 600, 2 h of work, no overhead: slots 2 and 4 (100 + 200).
    Carbon 100 900 100, 1.5 h and 0.25 h per checkpoint: slot 0 (0.75 h work, 0.25 h writing)
    then slot 2 (0.25 h reading, 0.75 h work), done at 3.0 h. With 2 h of work the two slots
    cannot hold the 0.5 h of overhead: three slots, one run, no pause."""
    two = cheapest_schedule(np.array([300, 500, 100, 400, 200, 600.0]), 2.0, 0.0, 1.0, 6)
    assert two is not None and two.segments_h == ((2.0, 3.0), (4.0, 5.0))
    spike = cheapest_schedule(np.array([100, 900, 100.0]), 1.5, 0.25, 1.0, 3)
    assert spike is not None and spike.segments_h == ((0.0, 1.0), (2.0, 3.0))
    assert spike.overhead_h == 0.5 and spike.busy_h == 2.0
    whole = cheapest_schedule(np.array([100, 900, 100.0]), 2.0, 0.25, 1.0, 3)
    assert whole is not None and whole.segments_h == ((0.0, 2.0),)
    assert cheapest_schedule(np.array([100, 900, 100.0]), 2.0, 0.25, 1.0, 1) is None


def test_no_schedule_once_the_deadline_has_passed():
    """A deadline two slots ago leaves -2 usable slots: no schedule (the slots must not be
    read from the end of the series, as a Python slice [:-2] would)."""
    carbon = np.array([300, 500, 100, 400, 200, 600.0])
    assert cheapest_schedule(carbon, 1.0, 0.0, 1.0, -2) is None
    assert cheapest_schedule(SlotRanking(carbon, -2), 1.0, 0.0, 1.0, -2) is None


def _spike_job(preemptible: bool) -> Job:
    return Job("j", "a", "toy", 1, steps_for(1.5, 1, 2.0), 0.0, deadline_h=3.0,
               preemptible=preemptible, checkpoint_overhead_h=0.25 if preemptible else 0.0)


def test_pausing_over_a_carbon_spike_saves_the_spike_less_the_overhead():
    """Carbon 100, 900, 100 g/kWh; a 1.5 h job due at 3 h. Run through: 1 h at 100 and 0.5 h
    at 900 = 0.3 kW x (0.1 + 0.45) = 0.165 kg. Paused over the spike: slot 0 and slot 2, each
    1 h busy at 100 (0.25 h of each is checkpointing) = 0.3 kW x 2 h x 0.1 = 0.06 kg. Saved:
    0.105 kg = the spike's 0.135 kg, less the 0.5 h of work moved to a clean hour (0.015 kg),
    less the 0.5 h of checkpoints (0.015 kg); at 0.1 USD/kg, 0.0105 USD."""
    fed = toy_federation({"a": {"V100": 1}})
    runs = {}
    for preemptible in (False, True):
        setup = make_setup(fed, [_spike_job(preemptible)], carbon=[[100, 900, 100, 100]],
                           price=[[0.0]], period_slots=1, drain_slots=6)
        runs[preemptible] = simulate(setup, "milp", CONFIG).jobs.iloc[0]
    through, paused = runs[False], runs[True]
    assert through["carbon_kg"] == pytest.approx(0.165)
    assert (through["segments"], through["finish_h"]) == (1, pytest.approx(1.5))
    assert paused["carbon_kg"] == pytest.approx(0.06)
    assert (paused["segments"], paused["checkpoint_h"]) == (2, pytest.approx(0.5))
    assert paused["finish_h"] == pytest.approx(3.0) and not paused["deadline_missed"]
    assert paused["energy_kwh"] == pytest.approx(0.6)  # 2 h busy, overheads at full draw
    assert paused["gpu_hours"] == pytest.approx(2.0)
    saved_kg = through["carbon_kg"] - paused["carbon_kg"]
    assert saved_kg == pytest.approx(0.135 - 0.015 - 0.015)
    assert saved_kg * 0.1 == pytest.approx(0.0105)


def test_lets_wait_awhile_single_site_both_policies_reach_the_interruptible_optimum():
    """Two preemptible 1-GPU jobs of 2 h each, submitted at 0 and due at 6 h, on two V100s;
    carbon 300 500 100 400 200 600. The interruptible optimum runs each in the two cleanest
    hours, slots 2 and 4: 0.3 kW x (0.1 + 0.2) = 0.09 kg a job, 0.18 kg in all (an
    uninterrupted run can do no better than slots 2-3: 0.15 kg a job). temporal-preemptive
    (carbon only) and milp (carbon priced, energy free) both find it; temporal, which does not
    pause, gets 0.3 kg."""
    fed = toy_federation({"a": {"V100": 2}})
    jobs = [Job(f"j{i}", "a", "toy", 1, steps_for(2.0, 1, 2.0), 0.0, deadline_h=6.0,
                preemptible=True) for i in range(2)]
    setup = make_setup(fed, jobs, carbon=[[300, 500, 100, 400, 200, 600]], price=[[0.0]],
                       period_slots=1, drain_slots=8)
    for policy in ("temporal-preemptive", "milp"):
        sim = simulate(setup, policy, CONFIG)
        result = sim.jobs
        assert result["carbon_kg"].sum() == pytest.approx(0.18), policy
        assert (result["segments"] == 2).all() and (result["finish_h"] == 5.0).all(), policy
        # both submitted at 0, both done at 5 h: completion 5 h each, makespan 5 h
        summary = summarize(sim, 100.0)
        assert (summary.mean_completion_h, summary.makespan_h) == (5.0, 5.0)
    assert simulate(setup, "temporal", CONFIG).jobs["carbon_kg"].sum() == pytest.approx(0.3)


def test_a_job_that_is_not_preemptible_never_pauses():
    fed = toy_federation({"a": {"V100": 1}})
    setup = make_setup(fed, [_spike_job(False)], carbon=[[100, 900, 100, 100]], price=[[0.0]],
                       period_slots=1, drain_slots=6)
    for policy in ("milp", "temporal-preemptive"):
        assert (simulate(setup, policy, CONFIG).jobs["segments"] == 1).all()
    with pytest.raises(ValueError, match="checkpoint_overhead_h needs preemptible"):
        Job("x", "a", "toy", 1, 1.0, 0.0, checkpoint_overhead_h=0.1)


def test_the_period_plan_values_an_interrupted_run():
    """The market's plan (one LP over the run, 2 h plan slots, hourly signals) on one site:
    carbon 100 900 100 900 ... g/kWh, the 1.5 h job due at 3 h, 0.25 h checkpoints, no delay
    cost, 100 USD/t and free energy. Run through, its best start costs 0.165 kg (1 h at 100,
    0.5 h at 900, whether it starts at 0 or 2 h: the period plan prices lateness by delay, not
    by deadline); interrupted in hours 0 and 2, 0.06 kg. The coalition's value is the
    interrupted run's: 0.06 kg x 0.1 USD/kg = 0.006 USD (0.0165 when the job may not pause)."""
    from broker.period_plan import PeriodPlanSettings, build_period_problem, solve_coalition

    fed = toy_federation({"a": {"V100": 1}})
    settings = PeriodPlanSettings(delay_cost_usd_per_gpu_h=0.0)
    values = {}
    for preemptible in (False, True):
        setup = make_setup(fed, [_spike_job(preemptible)], carbon=[[100, 900, 100, 900]],
                           price=[[0.0]], period_slots=1, drain_slots=6)
        outcome = solve_coalition(build_period_problem(setup, 100.0, settings), {"a"})
        values[preemptible] = outcome
    assert values[False].cost_usd == pytest.approx(0.0165)
    assert values[True].cost_usd == pytest.approx(0.006)
    assert values[True].carbon_kg == pytest.approx(0.06)
    (placement,) = values[True].placements
    assert placement.gpu_hours == pytest.approx(2.0)  # 1.5 h of work and 0.5 h of checkpoints
