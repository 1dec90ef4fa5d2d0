"""Running jobs replanned at round boundaries: paused, moved and resized, worked out by hand.

V100s draw 300 W at PUE 1, so a GPU-hour is 0.3 kWh; hourly slots; a carbon price of 100 USD/t
(a kg costs 0.1 USD) and energy at a flat 50 USD/MWh. "toy" does 2 steps/s per V100 and scales
linearly (the toy affinity's model).
"""

from __future__ import annotations

import pytest

from broker.jobs import Job
from broker.planner import PlannerConfig
from tests.scenarios.helpers import by_job, make_setup, simulate, steps_for, toy_federation

CONFIG = PlannerConfig(carbon_price_usd_per_t=100.0)
KWH_PER_GPU_H = 0.3


def _spike_job(preemptible: bool) -> Job:
    return Job("j", "a", "toy", 1, steps_for(2.0, 1, 2.0), 0.0, preemptible=preemptible,
               checkpoint_overhead_h=0.1 if preemptible else 0.0)


def test_a_running_job_pauses_over_a_spike_it_could_not_see_when_it_started():
    """Carbon 100, 900, then 100; the planner sees 2 slots ahead. A 2 h job starts at 0 (it
    sees 100, 900: no pause fits in two slots, and waiting costs more). At 1 h it sees 900, 100:
    going on costs 1 h at 900 g; stopping costs 0.2 h more (the work lost since its checkpoint
    and the read back) at 100 g. It pauses and resumes at 2 h, done at 3.2 h.

    Carbon: 0.3 kWh x (1 h x 100 + 1.2 h x 100) = 66 g against 0.3 x (100 + 900) = 300 g for
    the job that may not pause: it saves the spike's 0.3 x (900 - 100) = 240 g less the
    overhead's 0.3 x 0.2 x 100 = 6 g, 234 g, worth 0.0234 USD at 100 USD/t."""
    fed = toy_federation({"a": {"V100": 1}})
    carbon = [[100, 900, 100]]
    rigid = by_job(simulate(make_setup(fed, [_spike_job(False)], carbon, horizon_slots=2),
                            "milp", CONFIG))["j"]
    result = simulate(make_setup(fed, [_spike_job(True)], carbon, horizon_slots=2), "milp",
                      CONFIG)
    paused = by_job(result)["j"]
    assert rigid["carbon_kg"] == pytest.approx(KWH_PER_GPU_H * 1.0, rel=1e-9)
    assert paused["carbon_kg"] == pytest.approx(KWH_PER_GPU_H * 0.22, rel=1e-9)
    saved_kg = rigid["carbon_kg"] - paused["carbon_kg"]
    assert saved_kg == pytest.approx(KWH_PER_GPU_H * (0.8 - 0.02), rel=1e-9)
    assert saved_kg * 0.1 == pytest.approx(0.0234, rel=1e-9)
    assert (paused["segments"], paused["finish_h"]) == (2, pytest.approx(3.2))
    assert paused["checkpoint_h"] == pytest.approx(0.2)
    pieces = result.pieces[result.pieces["job_id"] == "j"]
    assert pieces["steps"].sum() == pytest.approx(steps_for(2.0, 1, 2.0), rel=1e-12)
    assert not ((pieces["from_h"] < 2.0) & (pieces["to_h"] > 1.0)).any()  # idle over the spike


def test_a_paused_job_resumes_elsewhere_shipping_its_checkpoint():
    """Site a turns dirty (900 g) after the first hour and stays so; site b is at 100 g
    throughout, with no free V100 in the first hour (its own 1 h job). A preemptible 3 h job
    from a starts on a at 0; at 1 h it moves to b: 0.2 h of overhead then 2 h of work, done at
    3.2 h, shipping its 10 GB checkpoint at 0.05 USD/GB (0.50 USD) from a; a data set of 0 GB.
    Staying on a costs 2 h x 0.3 kWh x 900 g = 540 g (0.054 USD); moving, 0.66 kWh at 100 g
    (0.0066 USD), 0.5 USD of egress and a little delay: it stays. With the checkpoint at 0.1 GB
    (0.005 USD) it moves."""
    def run(checkpoint_gb: float) -> dict:
        fed = toy_federation({"a": {"V100": 1}, "b": {"V100": 1}}, egress_usd_per_gb=0.05)
        job = Job("j", "a", "toy", 1, steps_for(3.0, 1, 2.0), 0.0, preemptible=True,
                  checkpoint_overhead_h=0.1, checkpoint_gb=checkpoint_gb)
        blocker = Job("b1", "b", "toy", 1, steps_for(1.0, 1, 2.0), 0.0)
        result = simulate(make_setup(fed, [job, blocker], [[100, 900], [100]],
                                     horizon_slots=1), "milp", CONFIG)
        return by_job(result)["j"]

    stays = run(10.0)
    assert (stays["site"], stays["moves"], stays["transfer_cost_usd"]) == ("a", 0, 0.0)
    assert stays["finish_h"] == pytest.approx(3.0)
    moves = run(0.1)
    assert (moves["site"], moves["moves"]) == ("b", 1)
    assert moves["transfer_cost_usd"] == pytest.approx(0.005)
    assert moves["transferred_gb"] == pytest.approx(0.1)
    assert moves["finish_h"] == pytest.approx(3.2 + 0.1 * 8 / 10 / 3600, abs=1e-3)
    assert moves["carbon_kg"] == pytest.approx(KWH_PER_GPU_H * (100 + 2.2 * 100) / 1000)


def test_elastic_resize_conserves_work():
    """Site a has 4 V100s; carbon 100 for two hours, then 900. An elastic job (1-4 GPUs, 8
    GPU-hours of work, 0.1 h per resize) starts on 4 GPUs, the count that finishes most work
    while it is clean. At 1 h a 2-GPU job arrives that must finish by 2 h: the elastic job
    shrinks to 2 (1 GPU would leave most of its work to the dirty hours), losing 0.1 h: 1.8
    GPU-hours done by 2 h. Then it goes on on 2 GPUs: 2.2 GPU-hours left, 1.1 h, done at 3.1 h
    (growing back would cost 0.4 GPU-hours of overhead at 900 g and save nothing).

    Work: 4 + 1.8 + 2.2 = 8 GPU-hours, in two pieces (4 GPUs, then 2); their steps add up to
    the job's."""
    fed = toy_federation({"a": {"V100": 4}})
    elastic = Job("e", "a", "toy", 4, steps_for(8.0, 1, 2.0), 0.0, min_gpus=1, max_gpus=4,
                  elastic=True, resize_overhead_h=0.1)
    urgent = Job("u", "a", "toy", 2, steps_for(1.0, 2, 2.0), 1.0, deadline_h=2.0)
    result = simulate(make_setup(fed, [elastic, urgent], [[100, 100, 900]]), "milp", CONFIG)
    rows = by_job(result)
    e = rows["e"]
    assert (e["gpus"], e["resizes"], e["segments"]) == (2, 1, 1)
    assert e["checkpoint_h"] == pytest.approx(0.1)
    assert e["finish_h"] == pytest.approx(3.1)
    assert e["gpu_hours"] == pytest.approx(4.0 + 2.0 + 2.2)
    assert (rows["u"]["start_h"], rows["u"]["deadline_missed"]) == (1.0, False)
    pieces = result.pieces[result.pieces["job_id"] == "e"]
    assert list(pieces["gpus"]) == [4, 2]  # one piece per count it ran on
    assert pieces["steps"].sum() == pytest.approx(elastic.work_steps, rel=1e-12)
    assert list(pieces["steps"] / 7200.0) == pytest.approx([4.0, 1.8 + 2.2])


def test_jobs_that_may_not_pause_are_not_replanned():
    """The rigid job of the spike case runs through the spike in one piece."""
    fed = toy_federation({"a": {"V100": 1}})
    result = simulate(make_setup(fed, [_spike_job(False)], [[100, 900, 100]], horizon_slots=2),
                      "milp", CONFIG)
    assert len(result.pieces) == 1
    assert (result.pieces["from_h"].iloc[0], result.pieces["to_h"].iloc[0]) == (0.0, 2.0)
