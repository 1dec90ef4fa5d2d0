"""The savings breakdown against isolated (broker/savings.py), on hand-built cases.

A V100 draws 300 W; with PUE 1, one V100 for 2 h is 0.6 kWh, for 1 h 0.3 kWh.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from broker.jobs import Job
from broker.planner import Assignment, PlannerConfig
from broker.policies import Policy
from broker.savings import PARTS, compute_savings
from broker.simulation import run_simulation
from scenarios.runner import run_scenario
from sites import AffinityMatrix
from tests.scenarios.helpers import (
    build_from_text,
    make_setup,
    simulate,
    steps_for,
    synthetic_text,
    toy_federation,
)


def by_metric(savings):
    return {s.metric: s for s in savings}


def assert_parts_sum_to_saved(savings) -> None:
    for item in savings:
        assert set(item.parts) == set(PARTS)
        assert sum(item.parts.values()) == pytest.approx(item.saved, abs=1e-9), item.metric


def test_spatial_shift_from_a_dirty_home_to_a_clean_site():
    """One 2 h job on 1 V100 at 'dirty' (500 g/kWh); 'clean' (100 g/kWh) has a V100 too, both
    PUE 1, both 50 USD/MWh. isolated runs it home: 0.6 kWh x 500 = 0.3 kg. greedy-carbon runs
    it at clean: 0.6 x 100 = 0.06 kg, same GPU type, same energy.
    carbon: saved 0.24 kg, all of it spatial = 0.6 kWh x (500 - 100) / 1000 = 0.24 kg.
    cost at 100 USD/t: per kWh home 0.05 + 0.1 x 0.5 = 0.10 USD, clean 0.05 + 0.1 x 0.1 = 0.06
    USD, spatial = 0.6 x 0.04 = 0.024 USD; moving 10 GB at 0.05 USD/GB costs 0.5 USD, so
    transfer = -0.5 and saved = 0.024 - 0.5 = -0.476 USD (isolated 0.06, greedy 0.536).
    energy: nothing saved, no part."""
    fed = toy_federation({"dirty": {"V100": 1}, "clean": {"V100": 1}}, egress_usd_per_gb=0.05)
    job = Job("j", "dirty", "toy", 1, steps_for(2, 1, 2.0), 0.0, dataset_gb=10.0)
    setup = make_setup(fed, [job], carbon=[[500], [100]], price=[[50], [50]])
    isolated, greedy = simulate(setup, "isolated"), simulate(setup, "greedy-carbon")
    assert greedy.jobs["site"].tolist() == ["clean"]
    assert greedy.jobs["gpu_type"].tolist() == isolated.jobs["gpu_type"].tolist() == ["V100"]
    savings = by_metric(compute_savings(setup, isolated, greedy, carbon_price_usd_per_t=100))

    carbon = savings["carbon_kg"]
    assert carbon.baseline == pytest.approx(0.3)
    assert carbon.policy == pytest.approx(0.06)
    assert carbon.saved == pytest.approx(0.24)
    assert carbon.parts["spatial_shift"] == pytest.approx(0.6 * (500 - 100) / 1000)
    for part in ("affinity", "temporal_shift", "transfer", "queueing", "unserved", "idle",
                 "other"):
        assert carbon.parts[part] == pytest.approx(0.0, abs=1e-9)

    cost = savings["total_cost_usd"]
    assert cost.baseline == pytest.approx(0.06)
    assert cost.policy == pytest.approx(0.536)
    assert cost.parts["spatial_shift"] == pytest.approx(0.024)
    assert cost.parts["transfer"] == pytest.approx(-0.5)
    assert cost.saved == pytest.approx(-0.476)

    energy = savings["energy_kwh"]
    assert energy.baseline == pytest.approx(0.6) and energy.saved == pytest.approx(0.0, abs=1e-12)
    assert_parts_sum_to_saved(savings.values())


def test_spatial_shift_includes_a_better_pue():
    """Home PUE 1.5 at 400 g, away PUE 1.0 at 300 g; 2 h on 1 V100.
    kWh at home 0.3 x 1.5 x 2 = 0.9, away 0.6. energy spatial = 0.9 - 0.6 = 0.3 kWh;
    carbon spatial = 0.9 x 0.4 - 0.6 x 0.3 = 0.36 - 0.18 = 0.18 kg."""
    fed = toy_federation({"home": {"V100": 1}, "away": {"V100": 1}},
                         pue={"home": 1.5, "away": 1.0})
    job = Job("j", "home", "toy", 1, steps_for(2, 1, 2.0), 0.0)
    setup = make_setup(fed, [job], carbon=[[400], [300]])
    savings = by_metric(compute_savings(setup, simulate(setup, "isolated"),
                                        simulate(setup, "greedy-carbon"), 0.0))
    assert savings["energy_kwh"].parts["spatial_shift"] == pytest.approx(0.3)
    assert savings["energy_kwh"].saved == pytest.approx(0.3)
    assert savings["carbon_kg"].parts["spatial_shift"] == pytest.approx(0.18)
    assert savings["carbon_kg"].saved == pytest.approx(0.18)
    assert_parts_sum_to_saved(savings.values())


def test_temporal_shift_at_home():
    """Home carbon [500, 100, 500, ...]; a 1 h job (0.3 kWh): isolated runs it at 0 (0.15 kg),
    temporal waits for 1 h (0.03 kg). temporal part = 0.15 - 0.03 = 0.12 kg; no spatial part.
    Energy has no temporal part."""
    fed = toy_federation({"a": {"V100": 1}})
    job = Job("j", "a", "toy", 1, steps_for(1, 1, 2.0), 0.0)
    setup = make_setup(fed, [job], carbon=[[500, 100, 500]])
    isolated, temporal = simulate(setup, "isolated"), simulate(setup, "temporal")
    assert temporal.jobs["start_h"].tolist() == [1.0]
    savings = by_metric(compute_savings(setup, isolated, temporal, 0.0))
    assert savings["carbon_kg"].parts["temporal_shift"] == pytest.approx(0.12)
    assert savings["carbon_kg"].parts["spatial_shift"] == pytest.approx(0.0, abs=1e-12)
    assert savings["carbon_kg"].saved == pytest.approx(0.12)
    assert savings["energy_kwh"].parts["temporal_shift"] == 0.0
    assert_parts_sum_to_saved(savings.values())


class HomeK80(Policy):
    """Test policy: start every queued job now at home on a K80."""

    def decide(self, offers, queue: Sequence[Job]) -> Sequence[Assignment]:
        return [Assignment(j.id, j.home_site, "K80", j.gpus, 0, offers.now_h) for j in queue]


def test_affinity_part_of_a_slower_gpu():
    """'job' runs 3 steps/s on V100, 1 on K80; 10800 steps on 1 GPU: 1 h on V100 (300 W,
    0.3 kWh) or 3 h on K80 (150 W, 0.45 kWh). The reference is home's fastest type (V100);
    a policy that picks the K80 has affinity = 0.3 - 0.45 = -0.15 kWh, and at a constant
    200 g/kWh -0.15 x 0.2 = -0.03 kg."""
    affinity = AffinityMatrix.from_nested({"job": {"V100": 3.0, "K80": 1.0}})
    fed = toy_federation({"a": {"V100": 1, "K80": 1}}, affinity=affinity)
    job = Job("j", "a", "job", 1, 10800.0, 0.0)
    setup = make_setup(fed, [job], carbon=[[200]])
    slow = run_simulation(setup, HomeK80(fed, PlannerConfig()), "k80")
    assert slow.jobs["energy_kwh"].tolist() == pytest.approx([0.45])
    savings = by_metric(compute_savings(setup, simulate(setup, "isolated"), slow, 0.0))
    assert savings["energy_kwh"].parts["affinity"] == pytest.approx(-0.15)
    assert savings["energy_kwh"].saved == pytest.approx(-0.15)
    assert savings["carbon_kg"].parts["affinity"] == pytest.approx(-0.03)
    assert_parts_sum_to_saved(savings.values())


def test_parts_sum_to_saved_on_a_synthetic_run():
    """With queueing, moves, deadlines and noisy signals, the parts still add up."""
    run = build_from_text(synthetic_text(seed=11, policies="[milp, isolated]"))
    result = run_scenario(run)
    assert {s.metric for s in result.savings} == {"energy_kwh", "carbon_kg", "total_cost_usd"}
    assert_parts_sum_to_saved(result.savings)
    for item in result.savings:
        total = result.summaries["isolated"].as_dict()[item.metric]
        assert item.baseline == pytest.approx(total)
        assert item.policy == pytest.approx(result.summaries["milp"].as_dict()[item.metric])


def test_job_that_cannot_run_at_home_gets_a_finite_breakdown():
    """'stuck' (runs only on V100) has home 'old' (K80s only): isolated never runs it, so the
    outside option does (the cloud's V100: 1 h, 300 W x PUE 1.11 = 0.333 kWh at 566.3 g =
    0.1885779 kg); greedy runs it at 'new' (V100, 1 h, 0.3 kWh at 300 g = 0.09 kg). 'fine'
    runs 1 h on a K80 at old under both (0.15 kWh at 100 g = 0.015 kg). Both runs cover both
    jobs: isolated 0.015 + 0.1885779 = 0.2035779 kg, greedy 0.015 + 0.09 = 0.105 kg.
    stuck's reference is its own GPU type at home: 0.3 kWh at 100 g = 0.03 kg, so affinity 0,
    spatial 0.03 - 0.09 = -0.06 kg, and unserved = outside - ref = 0.1885779 - 0.03 kg.
    Energy: isolated 0.15 + 0.333, greedy 0.15 + 0.3: saved 0.033 kWh, all of it unserved
    (0.333 - 0.3); spatial 0 (same PUE 1 at both sites)."""
    fed = toy_federation({"old": {"K80": 2}, "new": {"V100": 1}})
    jobs = [Job("stuck", "old", "v100only", 1, 3600.0, 0.0), Job("fine", "old", "toy", 1,
                                                                  3600.0, 0.0)]
    setup = make_setup(fed, jobs, carbon=[[100], [300]])
    isolated, greedy = simulate(setup, "isolated"), simulate(setup, "greedy-carbon")
    assert isolated.unfinished == ("stuck",) and greedy.unfinished == ()
    assert isolated.outside["reason"].tolist() == ["no pool fits"]
    savings = by_metric(compute_savings(setup, isolated, greedy, 0.0))
    for item in savings.values():
        assert all(np.isfinite(v) for v in item.parts.values()), item
    carbon = savings["carbon_kg"]
    assert carbon.baseline == pytest.approx(0.015 + 0.1885779)
    assert carbon.saved == pytest.approx(0.2035779 - 0.105)
    assert carbon.parts["affinity"] == pytest.approx(0.0, abs=1e-12)
    assert carbon.parts["spatial_shift"] == pytest.approx(-0.06)
    assert carbon.parts["unserved"] == pytest.approx(0.1885779 - 0.03)
    assert carbon.parts["queueing"] == pytest.approx(0.0, abs=1e-12)
    energy = savings["energy_kwh"]
    assert energy.saved == pytest.approx(0.033)
    assert energy.parts["unserved"] == pytest.approx(0.333 - 0.3)
    assert energy.parts["spatial_shift"] == pytest.approx(0.0, abs=1e-12)
    assert energy.parts["affinity"] == pytest.approx(0.0, abs=1e-12)
    assert_parts_sum_to_saved(savings.values())
