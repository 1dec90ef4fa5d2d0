"""A live round's candidate sites (``broker.live.candidate_sites``), the greedy plan's bound,
and identical jobs that differ only in the sites they are barred from."""

from __future__ import annotations

import dataclasses

import pytest

from broker.jobs import InFlight, Job
from broker.live import (
    SiteOffer,
    anytime_plan,
    candidate_sites,
    greedy_plan,
    live_federation,
    round_offers,
)
from broker.planner import MilpPlanner, PlannerConfig
from broker.round_grid import listed_options_estimate
from optimization import SolverOptions
from sites import DEFAULT_GPUS, SiteSpec, default_affinity

SLOTS = 6
V100_H = 4.394774823323071 * 3600.0  # resnet50 steps in an hour on one V100
CONFIG = PlannerConfig(solver=SolverOptions(30.0, 0.0, 1), method="full")


def world(free: list[int], price: list[float] | None = None):
    """One 4-V100 site per entry of ``free`` (its free V100s in every slot), site i's energy
    price 10 x (i + 1) unless given: s0 is the cheapest."""
    sites = [SiteSpec(f"s{i}", f"z{i}", {"V100": 4}, 1.2, 0.02) for i in range(len(free))]
    fed = live_federation(sites, {s.id for s in sites}, dict(DEFAULT_GPUS), default_affinity(),
                          10.0)
    price = price or [10.0 * (i + 1) for i in range(len(free))]
    offers = {s.id: SiteOffer(s.id, 0.0, 1.0, {"V100": [n] * SLOTS}, [price[i]] * SLOTS,
                              [300.0] * SLOTS) for i, (s, n) in enumerate(zip(sites, free,
                                                                              strict=True))}
    return fed, round_offers(fed, offers, 0.0, 1.0, SLOTS)


def job(job_id: str, home: str, gpus: int = 2, hours: float = 6.0, **extra) -> Job:
    return Job(job_id, home, "resnet50", gpus, V100_H * hours * _speedup(gpus), 0.0, **extra)


def _speedup(gpus: int) -> float:
    """Whole-job throughput on ``gpus`` V100s over one's (so ``hours`` is the run time)."""
    fed, _ = world([4])
    row = fed.throughput_row("resnet50", (), gpus)
    return float(row[0] / fed.throughput_row("resnet50", (), 1)[0])


def allowed(queue: list[Job]) -> dict[str, set[str]]:
    return {j.id: set(j.allowed_sites or ()) for j in queue}


def test_each_job_keeps_its_fill_its_spares_and_its_home():
    """8 sites, cheapest first; s1 has one V100 free (no 2-GPU job fits); every other site two,
    in every slot: one 6-h 2-GPU job each. Three identical jobs (home s7) fill s0, s2, s3, and
    keep one spare (s4); a later job finds those taken, fills s4 and keeps s5."""
    fed, offers = world([2, 1, 2, 2, 2, 2, 2, 2])
    queue = [job(f"a{i}", "s7") for i in range(3)]
    queue.append(dataclasses.replace(job("b", "s7", hours=5.5), submit_h=0.5))
    reduced = candidate_sites(fed, offers, queue, CONFIG, spare_sites=1)
    assert [j.id for j in reduced] == [j.id for j in queue]
    assert allowed(reduced) == {**{f"a{i}": {"s0", "s2", "s3", "s4", "s7"} for i in range(3)},
                                "b": {"s4", "s5", "s7"}}
    # on this round the candidates lose nothing: the same optimum as over every site
    full = MilpPlanner(fed, CONFIG).plan(offers, queue)
    cut = MilpPlanner(fed, CONFIG).plan(offers, reduced)
    assert full.status.value == cut.status.value == "optimal"
    assert cut.objective_usd == pytest.approx(full.objective_usd, rel=1e-9)
    assert cut.n_options < full.n_options


def test_with_as_many_spares_as_sites_nothing_is_left_out():
    fed, offers = world([2, 1, 2, 2])
    queue = [job(f"a{i}", "s3") for i in range(3)]
    assert candidate_sites(fed, offers, queue, CONFIG, spare_sites=4) == queue


def test_a_running_job_keeps_its_site_and_a_refusal_stays():
    """The running job's pool is its fill (it goes on where it runs, at the dearest site);
    the other job was refused by the cheapest site, which stays barred."""
    fed, offers = world([2, 2, 2, 2, 2, 2])
    running = job("r", "s0", state=InFlight("s5", "V100", 2, computing=True, restart_h=0.0,
                                           done_steps=1.0))
    refused = job("x", "s1", excluded_sites=frozenset({"s0"}))
    reduced = candidate_sites(fed, offers, [running, refused], CONFIG, spare_sites=1)
    assert allowed(reduced) == {"r": {"s0", "s1", "s5"}, "x": {"s1", "s2"}}
    assert reduced[1].excluded_sites == {"s0"}


def test_identical_jobs_barred_from_different_sites_are_planned_apart():
    """Two identical 1-GPU jobs; the cheap site (room for both) refused the second one: it
    runs at the dear site, never at the site that refused it."""
    fed, offers = world([2, 2])
    first = job("a", "s1", gpus=1, hours=1.0)
    second = dataclasses.replace(first, id="b", excluded_sites=frozenset({"s0"}))
    plan = MilpPlanner(fed, CONFIG).plan(offers, [first, second])
    assert {a.job_id: a.site_id for a in plan.assignments} == {"a": "s0", "b": "s1"}


def test_the_greedy_plan_has_a_bound_tight_with_room_and_below_when_capacity_binds():
    fed, offers = world([4, 4, 4])
    ample = [job(f"a{i}", "s2", gpus=1, hours=2.0) for i in range(3)]
    plan = greedy_plan(fed, offers, ample, CONFIG)  # all fit at s0: no capacity binds
    assert plan.bound_usd == pytest.approx(plan.objective_usd, rel=1e-9)
    fed, offers = world([2, 2, 2])
    crowded = [job(f"c{i}", "s2", gpus=2, hours=6.0) for i in range(3)]  # one per site
    best = anytime_plan(fed, offers, crowded, CONFIG, budget_s=30.0)
    assert best.method == "milp" and best.status == "optimal"
    bound = greedy_plan(fed, offers, crowded, CONFIG).bound_usd
    assert bound < best.plan.objective_usd - 1e-6  # everyone wants s0: the bound is below
    assert best.plan.bound_usd >= bound  # the round keeps the better of its bounds


def test_a_live_round_above_the_listing_limit_is_planned_as_a_grid():
    """``anytime_plan`` holds a round above ``max_listed_options`` (here 0) as a grid: the
    same optimum as the listed round on the fill-and-spares round above, each job at one of
    its candidate sites, a refused site never used, within the budget's plan."""
    fed, offers = world([2, 1, 2, 2, 2, 2, 2, 2])
    queue = [job(f"a{i}", "s7") for i in range(3)]
    queue.append(dataclasses.replace(job("b", "s7", hours=5.5), submit_h=0.5,
                                     excluded_sites=frozenset({"s4"})))
    reduced = candidate_sites(fed, offers, queue, CONFIG, spare_sites=1)
    listed = anytime_plan(fed, offers, reduced, CONFIG, budget_s=30.0)
    grid = anytime_plan(fed, offers, reduced, dataclasses.replace(CONFIG, max_listed_options=0),
                        budget_s=30.0)
    assert "held as a grid" in grid.plan.message and "held as a grid" not in listed.plan.message
    assert grid.plan.objective_usd == pytest.approx(listed.plan.objective_usd, rel=1e-9)
    where = {a.job_id: a.site_id for a in grid.plan.assignments}
    assert set(where) == {j.id for j in queue}
    for j in reduced:
        assert where[j.id] in j.allowed_sites and where[j.id] not in j.excluded_sites


def test_the_listing_estimate_counts_only_the_pools_a_job_may_use():
    """One pool a site, 6 starts: a job with candidate sites counts theirs, less a refused
    one; a job with none counts every site."""
    fed, offers = world([2, 1, 2, 2, 2, 2, 2, 2])
    free = job("f", "s7")
    some = job("c", "s7", allowed_sites=frozenset({"s0", "s2", "s7"}),
               excluded_sites=frozenset({"s2"}))
    assert listed_options_estimate(fed, offers, [free], None) == 8 * SLOTS
    assert listed_options_estimate(fed, offers, [some], None) == 2 * SLOTS
    assert listed_options_estimate(fed, offers, [free, some], (0, 2, 4)) == (8 + 2) * 3
