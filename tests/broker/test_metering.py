"""Metering: energy, emissions, cost and GPU-hours of each job, by hand on tiny cases."""

from __future__ import annotations

import numpy as np
import pytest

from broker.federation import Federation
from broker.jobs import Job
from broker.metering import Meter
from broker.policy_registry import POLICIES
from broker.summary import summarize
from sites import DEFAULT_GPUS, GpuType, SiteSpec
from sites.timegrid import slot_overlaps
from tests.scenarios.helpers import (
    TOY_AFFINITY,
    by_job,
    make_setup,
    simulate,
    steps_for,
    toy_federation,
)


def test_one_job_energy_carbon_cost_by_hand():
    """Site a: PUE 1.1, 2 V100 (300 W). Job: 2 GPUs, toy at 2 steps/s per V100, 1.5 h of work
    (1.5 h x 2 GPUs x 2 steps/s x 3600 = 21600 steps), submitted at 0, starts at once.
    energy = 2 x 300 W x 1.1 x 1.5 h = 0.99 kWh: 0.66 kWh in slot 0 (1 h), 0.33 in slot 1 (0.5 h).
    carbon [100, 300] g/kWh: 0.66 x 100 + 0.33 x 300 = 66 + 99 = 165 g = 0.165 kg.
    price [50, 80] USD/MWh: 0.66 x 0.050 + 0.33 x 0.080 = 0.033 + 0.0264 = 0.0594 USD.
    GPU-hours = 2 x 1.5 = 3 = 21600 / (2 steps/s x 3600)."""
    fed = toy_federation({"a": {"V100": 2}}, pue={"a": 1.1})
    job = Job("j", "a", "toy", 2, steps_for(1.5, 2, 2.0), 0.0)
    setup = make_setup(fed, [job], carbon=[[100, 300, 0]], price=[[50, 80, 0]])
    result = simulate(setup, "isolated")
    row = by_job(result)["j"]
    assert row["site"] == "a" and row["gpu_type"] == "V100"
    assert row["start_h"] == 0.0 and row["run_start_h"] == 0.0
    assert row["finish_h"] == pytest.approx(1.5)
    assert row["steps_per_s"] == 2.0
    assert row["gpu_hours"] == pytest.approx(3.0)
    assert row["energy_kwh"] == pytest.approx(0.99)
    assert row["carbon_kg"] == pytest.approx(0.165)
    assert row["energy_cost_usd"] == pytest.approx(0.0594)
    assert row["transfer_cost_usd"] == 0.0 and row["transferred_gb"] == 0.0
    assert row["completion_h"] == pytest.approx(1.5)

    slots = result.site_slots
    assert list(slots["slot"][:3]) == [0, 1, 2]
    np.testing.assert_allclose(slots["energy_kwh"][:3], [0.66, 0.33, 0.0])
    np.testing.assert_allclose(slots["busy_gpu_h"][:3], [2.0, 1.0, 0.0])
    np.testing.assert_allclose(slots["utilization"][:3], [1.0, 0.5, 0.0])
    np.testing.assert_allclose(slots["carbon_kg"][:3], [0.066, 0.099, 0.0])
    assert len(slots) == setup.n_rounds  # one site, every slot of the run (period + drain)


def test_slower_gpu_takes_longer_and_meters_its_own_power():
    """toy on K80 runs 1 step/s: 7200 steps on 1 GPU take 7200 / 3600 = 2 h.
    energy = 1 x 150 W x PUE 1.0 x 2 h = 0.3 kWh; carbon 0.3 x 200 g = 60 g = 0.06 kg."""
    fed = toy_federation({"a": {"K80": 1}})
    job = Job("k", "a", "toy", 1, 7200.0, 0.0)
    result = simulate(make_setup(fed, [job], carbon=[[200]]), "isolated")
    row = by_job(result)["k"]
    assert row["gpu_type"] == "K80" and row["steps_per_s"] == 1.0
    assert row["finish_h"] == pytest.approx(2.0)
    assert row["gpu_hours"] == pytest.approx(2.0)
    assert row["energy_kwh"] == pytest.approx(0.3)
    assert row["carbon_kg"] == pytest.approx(0.06)


def test_moved_job_pays_egress_and_waits_for_its_data():
    """45 GB at 10 Gbps: 45 x 8 / 10 = 36 s = 0.01 h before it computes; egress at the home's
    0.05 USD/GB: 45 x 0.05 = 2.25 USD. greedy-carbon moves it from home (500 g) to away (100 g).
    Run 1 h on 1 V100 (7200 steps at 2 steps/s): finish = 0.01 + 1 = 1.01 h.
    energy = 0.3 kWh (PUE 1), carbon 0.3 x 100 g = 0.03 kg."""
    fed = toy_federation({"home": {"V100": 1}, "away": {"V100": 1}}, egress_usd_per_gb=0.05)
    job = Job("m", "home", "toy", 1, 7200.0, 0.0, dataset_gb=45.0)
    result = simulate(make_setup(fed, [job], carbon=[[500], [100]]), "greedy-carbon")
    row = by_job(result)["m"]
    assert row["site"] == "away" and row["home_site"] == "home"
    assert row["start_h"] == 0.0
    assert row["run_start_h"] == pytest.approx(0.01)
    assert row["finish_h"] == pytest.approx(1.01)
    assert row["transferred_gb"] == 45.0
    assert row["transfer_cost_usd"] == pytest.approx(2.25)
    assert row["energy_kwh"] == pytest.approx(0.3)
    assert row["carbon_kg"] == pytest.approx(0.03)


def test_slot_overlaps_with_half_hour_slots():
    """[0.25, 1.6) over 0.5 h slots: slot 0 has 0.25 h, slots 1 and 2 0.5 h, slot 3 0.1 h."""
    slots, hours = slot_overlaps(0.25, 1.6, 0.5)
    np.testing.assert_array_equal(slots, [0, 1, 2, 3])
    np.testing.assert_allclose(hours, [0.25, 0.5, 0.5, 0.1])
    slots, hours = slot_overlaps(1.0, 2.0, 0.5)  # exactly two whole slots
    np.testing.assert_array_equal(slots, [2, 3])
    np.testing.assert_allclose(hours, [0.5, 0.5])


def test_meter_refuses_runs_past_the_signals():
    """Signals of 3 slots, a 4 h job: metering it would read past the data."""
    fed = toy_federation({"a": {"V100": 1}})
    meter = Meter(fed, 1.0, np.full((1, 3), 100.0), np.full((1, 3), 50.0))
    with pytest.raises(ValueError, match="past the end"):
        meter.record_run(Job("long", "a", "toy", 1, steps_for(4, 1, 2.0), 0.0), 0, 0.0)


def test_idle_gpus_draw_idle_power_over_the_run_window_by_hand():
    """Site a: 2 V100 with 50 W idle power, PUE 1.2, 100 g/kWh; period 2 h + drain 1 h = a
    3 h run window. One 1-GPU job runs [0, 1): busy 1 x 300 W x 1.2 x 1 h = 0.36 kWh.
    Idle GPU-hours: slot 0: 2 - 1 = 1, slots 1 and 2: 2 each, 5 in all:
    5 x 50 W x 1.2 = 0.3 kWh (0.06, 0.12, 0.12 by slot), 0.03 kg. Every policy meters it."""
    catalog = {**DEFAULT_GPUS, "V100": GpuType("V100", 300.0, idle_power_w=50.0)}
    fed = Federation((SiteSpec("a", "a", {"V100": 2}, pue=1.2),), catalog, TOY_AFFINITY)
    job = Job("j", "a", "toy", 1, steps_for(1, 1, 2.0), 0.0)
    setup = make_setup(fed, [job], carbon=[[100]], period_slots=2, drain_slots=1)
    for name in POLICIES:
        result = simulate(setup, name)
        slots = result.site_slots
        assert len(slots) == 3
        np.testing.assert_allclose(slots["idle_gpu_h"], [1.0, 2.0, 2.0])
        np.testing.assert_allclose(slots["idle_energy_kwh"], [0.06, 0.12, 0.12])
        np.testing.assert_allclose(slots["energy_kwh"], [0.36 + 0.06, 0.12, 0.12])
        summary = summarize(result, 0.0)
        assert summary.idle_energy_kwh == pytest.approx(0.3)
        assert summary.energy_kwh == pytest.approx(0.66)
        assert summary.carbon_kg == pytest.approx(0.066)
        assert result.jobs["energy_kwh"].tolist() == pytest.approx([0.36])  # the job's own
