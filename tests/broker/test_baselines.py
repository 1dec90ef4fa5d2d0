"""Each baseline does what its definition says (broker/baselines.py), on cases solved by hand.

Unless said otherwise: hourly slots, PUE 1, no data to move (no transfer time), the toy
job type runs 2 steps/s on a V100 and 1 step/s on a K80, so 7200 steps on one V100 take 1 h.
"""

from __future__ import annotations

import numpy as np
import pytest

from broker.baselines import _Placer
from broker.jobs import Job
from broker.offers import RoundOffers
from broker.planner import PlannerConfig
from tests.scenarios.helpers import by_job, make_setup, simulate, steps_for, toy_federation


def v100_job(job_id: str, home: str, hours: float, submit_h: float = 0.0,
             deadline_h: float | None = None, gpus: int = 1) -> Job:
    return Job(job_id, home, "toy", gpus, steps_for(hours, gpus, 2.0), submit_h, deadline_h)


# --- isolated ---------------------------------------------------------------------------------


def test_isolated_keeps_jobs_home_on_the_fastest_gpu_with_room():
    """Site a has 1 V100 and 1 K80, site b (far cleaner) 1 V100. Three 1 h-on-V100 jobs from a
    at t=0: j1 takes a's V100 (fastest), j2 a's K80 (the fastest with room; 2 h there), j3
    waits for a's V100, free at 1 h. Nothing goes to b; b's own job runs on b at 0."""
    fed = toy_federation({"a": {"V100": 1, "K80": 1}, "b": {"V100": 1}})
    jobs = [v100_job("j1", "a", 1), v100_job("j2", "a", 1), v100_job("j3", "a", 1),
            v100_job("b1", "b", 1)]
    rows = by_job(simulate(make_setup(fed, jobs, carbon=[[900], [10]]), "isolated"))
    assert {k: (r["site"], r["gpu_type"], r["start_h"]) for k, r in rows.items()} == {
        "j1": ("a", "V100", 0.0),
        "j2": ("a", "K80", 0.0),
        "j3": ("a", "V100", 1.0),
        "b1": ("b", "V100", 0.0),
    }
    assert rows["j2"]["finish_h"] == pytest.approx(2.0)


def test_isolated_queues_first_come_first_served_when_full():
    """One V100 at a; four 2 h jobs submitted at 0, 0, 1, 0.5 (ids in submit order q1..q4 are
    q1@0, q2@0, q4@0.5, q3@1). They start one after the other in submit order: 0, 2, 4, 6."""
    fed = toy_federation({"a": {"V100": 1}})
    jobs = [v100_job("q1", "a", 2, 0.0), v100_job("q2", "a", 2, 0.0),
            v100_job("q3", "a", 2, 1.0), v100_job("q4", "a", 2, 0.5)]
    rows = by_job(simulate(make_setup(fed, jobs, carbon=[[100]]), "isolated"))
    assert {k: r["start_h"] for k, r in rows.items()} == {
        "q1": 0.0, "q2": 2.0, "q4": 4.0, "q3": 6.0}


def test_isolated_lets_a_smaller_later_job_use_gpus_a_bigger_one_cannot():
    """The documented exception to strict FIFO: 2 V100s, p1 (1 GPU, 2 h) starts at 0; p2 needs
    2 GPUs and waits; p3 (1 GPU, 1 h) fits the second GPU now and starts at 0. p2 starts at 2
    once both GPUs are free."""
    fed = toy_federation({"a": {"V100": 2}})
    jobs = [v100_job("p1", "a", 2), v100_job("p2", "a", 1, gpus=2), v100_job("p3", "a", 1)]
    rows = by_job(simulate(make_setup(fed, jobs, carbon=[[100]]), "isolated"))
    assert rows["p1"]["start_h"] == 0.0
    assert rows["p3"]["start_h"] == 0.0
    assert rows["p2"]["start_h"] == 2.0


# --- greedy-carbon / greedy-price ---------------------------------------------------------------


def three_sites():
    return toy_federation({"a": {"V100": 1}, "b": {"V100": 1}, "c": {"V100": 1}})


def test_greedy_carbon_takes_the_cleanest_site_now_then_the_next():
    """Carbon now: a 300, b 100, c 200 (constant). Four 2 h jobs from a at t=0: g1 -> b
    (cleanest), g2 -> c (next), g3 -> a (last with room), g4 waits; at 2 h all are free again
    and g4 goes to b. Prices are set the other way round to show they are ignored."""
    setup = make_setup(three_sites(), [v100_job(f"g{i}", "a", 2) for i in range(1, 5)],
                       carbon=[[300], [100], [200]], price=[[10], [90], [50]])
    rows = by_job(simulate(setup, "greedy-carbon"))
    assert {k: (r["site"], r["start_h"]) for k, r in rows.items()} == {
        "g1": ("b", 0.0), "g2": ("c", 0.0), "g3": ("a", 0.0), "g4": ("b", 2.0)}


def test_greedy_carbon_looks_at_now_not_the_future():
    """b is cleanest at 0 h (100) but dirtiest from 1 h on (900); c is 200 throughout.
    x (submitted 0) goes to b; y (submitted 1) goes to c, the cleanest at 1 h."""
    setup = make_setup(three_sites(), [v100_job("x", "a", 1, 0.0), v100_job("y", "a", 1, 1.0)],
                       carbon=[[300], [100, 900], [200]])
    rows = by_job(simulate(setup, "greedy-carbon"))
    assert rows["x"]["site"] == "b" and rows["x"]["start_h"] == 0.0
    assert rows["y"]["site"] == "c" and rows["y"]["start_h"] == 1.0


def test_greedy_price_takes_the_cheapest_site_now_then_the_next():
    """Price now: a 80, b 60, c 20 USD/MWh; carbon the other way round (c dirtiest). Three
    1 h jobs from a: c, then b, then a. A fourth waits and goes to c at 1 h."""
    setup = make_setup(three_sites(), [v100_job(f"p{i}", "a", 1) for i in range(1, 5)],
                       carbon=[[10], [50], [900]], price=[[80], [60], [20]])
    rows = by_job(simulate(setup, "greedy-price"))
    assert {k: (r["site"], r["start_h"]) for k, r in rows.items()} == {
        "p1": ("c", 0.0), "p2": ("b", 0.0), "p3": ("a", 0.0), "p4": ("c", 1.0)}


def test_greedy_skips_a_clean_site_whose_gpus_cannot_run_the_job():
    """'v100only' cannot run on the cleanest site's K80s; it goes to the next cleanest."""
    fed = toy_federation({"a": {"V100": 1}, "k": {"K80": 4}, "b": {"V100": 1}})
    job = Job("v", "a", "v100only", 1, 3600.0, 0.0)
    rows = by_job(simulate(make_setup(fed, [job], carbon=[[500], [10], [100]]), "greedy-carbon"))
    assert rows["v"]["site"] == "b"


# --- temporal -----------------------------------------------------------------------------------


def test_temporal_waits_for_the_cleanest_window_at_home():
    """Home a: carbon [500, 400, 100, 300, 300, ...]; b is cleaner (10) but temporal stays
    home. A 1 h job with no deadline (max_wait 24 h) waits for the 100 slot: starts at 2 h."""
    fed = toy_federation({"a": {"V100": 1}, "b": {"V100": 1}})
    setup = make_setup(fed, [v100_job("t", "a", 1)], carbon=[[500, 400, 100, 300], [10]])
    row = by_job(simulate(setup, "temporal"))["t"]
    assert row["site"] == "a"
    assert row["start_h"] == 2.0
    assert row["carbon_kg"] == pytest.approx(0.3 * 100 / 1000)  # 0.3 kWh at 100 g/kWh


def test_temporal_uses_the_mean_over_the_whole_run():
    """2 h job, carbon [300, 300, 100, 500, 50, 50, 300...]: mean over a 2 h run starting at
    0: 300, 1: 200, 2: 300, 3: 275, 4: 50 -> it waits until 4 h (one cheap slot at 2 is not
    enough)."""
    fed = toy_federation({"a": {"V100": 1}})
    setup = make_setup(fed, [v100_job("w", "a", 2)],
                       carbon=[[300, 300, 100, 500, 50, 50, 300]])
    row = by_job(simulate(setup, "temporal"))["w"]
    assert row["start_h"] == 4.0
    assert row["carbon_kg"] == pytest.approx(0.6 * 50 / 1000)


def test_temporal_starts_now_when_now_is_cleanest():
    fed = toy_federation({"a": {"V100": 1}})
    setup = make_setup(fed, [v100_job("n", "a", 1)], carbon=[[100, 200, 300, 400]])
    assert by_job(simulate(setup, "temporal"))["n"]["start_h"] == 0.0


def test_temporal_respects_the_deadline():
    """Carbon [500, 400, 100, ...]; 1 h job due at 2.5 h: latest start 1.5 h, so the starts it
    may choose are 0 h (500) and 1 h (400): it starts at 1 h, not at the 100 slot."""
    fed = toy_federation({"a": {"V100": 1}})
    setup = make_setup(fed, [v100_job("d", "a", 1, deadline_h=2.5)],
                       carbon=[[500, 400, 100, 300]])
    row = by_job(simulate(setup, "temporal"))["d"]
    assert row["start_h"] == 1.0
    assert not row["deadline_missed"]


def test_temporal_respects_max_wait_without_deadline():
    """Same signal, no deadline, max_wait_h = 1: latest start 1 h, so it starts at 1 h (400)."""
    fed = toy_federation({"a": {"V100": 1}})
    setup = make_setup(fed, [v100_job("m", "a", 1)], carbon=[[500, 400, 100, 300]])
    row = by_job(simulate(setup, "temporal", PlannerConfig(max_wait_h=1.0)))["m"]
    assert row["start_h"] == 1.0


def test_temporal_waits_past_a_busy_home_then_starts():
    """Home a has 1 V100 held by 'first' (3 h, now is cleanest: carbon constant) from 0 to 3;
    'second' wants to start at once too but waits for room: starts at 3 h, at home."""
    fed = toy_federation({"a": {"V100": 1}, "b": {"V100": 1}})
    setup = make_setup(fed, [v100_job("first", "a", 3), v100_job("second", "a", 1)],
                       carbon=[[200], [10]])
    rows = by_job(simulate(setup, "temporal"))
    assert rows["first"]["start_h"] == 0.0
    assert rows["second"]["start_h"] == 3.0
    assert rows["second"]["site"] == "a"


# --- the placer against the rule it implements ------------------------------------------------


def _reference_fastest_with_room(fed, offers, free, job, site, rates):
    """The rule written out pool by pool: at ``site``, the pool where the job runs fastest
    among those with ``job.gpus`` free in every slot it would hold (transfer first when the
    pool is away from home); the first such pool on ties."""
    best, best_rate = None, 0.0
    for r in range(len(fed.resources)):
        if fed.resource_site[r] != site or rates[r] <= best_rate:
            continue
        hours = job.runtime_h(rates[r])
        if site != fed.site_index[job.home_site]:
            hours += fed.transfer_h(job.dataset_gb)
        slots = max(1, min(int(np.ceil(hours / offers.slot_h - 1e-9)), free.shape[1]))
        if (free[r, :slots] >= job.gpus).all():
            best, best_rate = r, rates[r]
    return best


@pytest.mark.parametrize("seed", range(5))
def test_the_placer_picks_what_the_pool_by_pool_rule_picks(seed):
    rng = np.random.default_rng(seed)
    fed = toy_federation({"a": {"V100": 4, "K80": 6}, "b": {"V100": 2, "K80": 2},
                          "c": {"K80": 8}})
    horizon = 6
    free = rng.integers(0, 9, size=(len(fed.resources), horizon))
    free = np.minimum(free, fed.resource_total_gpus[:, None])
    offers = RoundOffers(3.0, 1.0, free, np.full((3, horizon), 50.0), np.full((3, horizon), 300.0))
    queue = [Job(f"j{i}", str(rng.choice(["a", "b", "c"])), "toy", int(rng.integers(1, 5)),
                 steps_for(float(rng.uniform(0.2, 7.0)), 1, 2.0), 0.0,
                 dataset_gb=float(rng.choice([0.0, 2000.0, 9000.0])))
            for i in range(25)]
    placer = _Placer(fed, offers, queue)
    reference_free = free.astype(float)
    picked = 0
    for i, job in enumerate(queue):
        for site in range(3):
            expected = _reference_fastest_with_room(fed, offers, reference_free, job, site,
                                                    placer.rates[i])
            assert placer.fastest_with_room(i, site) == expected
        home = fed.site_index[job.home_site]
        r = placer.fastest_with_room(i, home)
        if r is not None:  # place it, and keep the reference's free GPUs in step
            picked += 1
            placer.place(i, r)
            reference_free[r, : placer.slots[i, r]] -= job.gpus
            assert (placer.free == reference_free).all()
    assert 0 < picked < len(queue)  # some fit and some did not: both branches were checked


def test_afs_p_hands_out_gpus_by_marginal_gain_per_work_left():
    """Four V100s at one site, two moldable jobs (1 to 4 GPUs), one GPU doing 10 steps/s:
    "poor" scales 10/16/20 steps/s on 1/2/4 GPUs and has 36,000 steps to do; "lin" scales
    10/20/40 and has 72,000. Marginal gain per GPU per step left:
      poor 0->1: 10/36,000 = 2.8e-4 > lin 0->1: 10/72,000 = 1.4e-4: poor gets 1;
      poor 1->2: 6/36,000 = 1.7e-4 > 1.4e-4: poor gets 2;
      poor 2->4: 4/2/36,000 = 5.6e-5 < lin 0->1 1.4e-4: lin gets 1; lin 1->2: 10/72,000 =
      1.4e-4 > 5.6e-5: lin gets 2; no room for more.
    So both run on 2 GPUs; isolated, which does not choose, gives the first job the 4 it
    asked for and the second waits."""
    from broker.baselines import AfsPPolicy, IsolatedPolicy
    from broker.planner import PlannerConfig
    from sites.affinity import AffinityMatrix
    from sites.scaling import ScalingModel

    model = ScalingModel.fitted({("poor", "V100", True): {1: 10.0, 2: 16.0, 4: 20.0},
                                 ("lin", "V100", True): {1: 10.0, 2: 20.0, 4: 40.0}}, 0.0)
    affinity = AffinityMatrix.from_nested({"poor": {"V100": 10.0}, "lin": {"V100": 10.0}},
                                          model)
    fed = toy_federation({"a": {"V100": 4}}, affinity=affinity)
    offers = RoundOffers(0.0, 1.0, np.full((1, 6), 4), np.full((1, 6), 50.0),
                         np.full((1, 6), 300.0))
    queue = [Job("p", "a", "poor", 4, 36_000.0, 0.0, min_gpus=1, max_gpus=4),
             Job("l", "a", "lin", 4, 72_000.0, 0.0, min_gpus=1, max_gpus=4)]
    afs = AfsPPolicy(fed, PlannerConfig()).decide(offers, queue)
    assert sorted((a.job_id, a.gpus) for a in afs) == [("l", 2), ("p", 2)]
    iso = IsolatedPolicy(fed, PlannerConfig()).decide(offers, queue)
    assert [(a.job_id, a.gpus) for a in iso] == [("p", 4)]
