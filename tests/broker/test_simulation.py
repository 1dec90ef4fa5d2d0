"""The simulation loop: determinism, conservation of jobs, and metering identities."""

from __future__ import annotations

import logging
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from broker.jobs import Job
from broker.planner import PlannerConfig
from broker.policies import Policy
from broker.policy_registry import POLICIES
from broker.simulation import check_conservation, run_simulation
from broker.summary import summarize
from optimization import SolveStatus
from scenarios.runner import run_scenario
from tests.scenarios.helpers import (
    build_from_text,
    by_job,
    make_setup,
    simulate,
    steps_for,
    synthetic_text,
    toy_federation,
)

POLICY_NAMES = tuple(POLICIES)


@pytest.fixture(scope="module")
def synthetic():
    """A day of synthetic arrivals on two sites, every policy run once."""
    run = build_from_text(synthetic_text(seed=3))
    return run, run_scenario(run)


def assert_accounted_once(setup, result) -> None:
    """Independent of check_conservation: ids that ran are unique, and ran + unfinished is
    exactly the set of submitted jobs, with no job in both."""
    ran = list(result.jobs["job_id"]) if len(result.jobs) else []
    assert len(ran) == len(set(ran))
    assert set(ran).isdisjoint(result.unfinished)
    assert set(ran) | set(result.unfinished) == {j.id for j in setup.jobs}
    assert len(ran) + len(result.unfinished) == len(setup.jobs)


# --- determinism ----------------------------------------------------------------------------


def test_same_seed_gives_identical_per_job_frames(synthetic):
    run, first = synthetic
    again = run_scenario(build_from_text(synthetic_text(seed=3)))
    assert run.setup.jobs == build_from_text(synthetic_text(seed=3)).setup.jobs
    assert len(run.setup.jobs) >= 20
    for name in POLICY_NAMES:
        a, b = first.results[name], again.results[name]
        assert len(a.jobs) > 0
        pd.testing.assert_frame_equal(a.jobs, b.jobs)
        pd.testing.assert_frame_equal(a.site_slots, b.site_slots)
        assert a.unfinished == b.unfinished


def test_different_seed_gives_different_jobs_and_signals():
    a = build_from_text(synthetic_text(seed=3)).setup
    b = build_from_text(synthetic_text(seed=4)).setup
    assert a.jobs != b.jobs
    assert [j.submit_h for j in a.jobs] != [j.submit_h for j in b.jobs]
    n = min(a.carbon_g_per_kwh.shape[1], b.carbon_g_per_kwh.shape[1])  # longest jobs differ
    assert not np.allclose(a.carbon_g_per_kwh[:, :n], b.carbon_g_per_kwh[:, :n])  # seeded noise


# --- conservation ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_every_job_runs_once_or_is_unfinished(synthetic, name):
    run, result = synthetic
    sim = result.results[name]
    assert check_conservation(run.setup, sim) == []
    assert_accounted_once(run.setup, sim)


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_capacity_too_small_leaves_jobs_unfinished(name):
    """One site with 1 V100, five 3 h single-GPU jobs at t=0, period 2 + drain 4 = rounds at
    0..5 h. One GPU can start a 3 h job only at 0 and 3 (the next would start at 6, after the
    last round): exactly 2 run, 3 are reported unfinished, whatever the policy."""
    fed = toy_federation({"a": {"V100": 1}})
    jobs = [Job(f"j{i}", "a", "toy", 1, steps_for(3, 1, 2.0), 0.0) for i in range(5)]
    setup = make_setup(fed, jobs, carbon=[[100]], period_slots=2, drain_slots=4)
    result = simulate(setup, name)
    assert check_conservation(setup, result) == []
    assert_accounted_once(setup, result)
    assert len(result.jobs) == 2
    assert len(result.unfinished) == 3
    assert sorted(result.jobs["start_h"]) == [0.0, 3.0]


def test_fifo_order_decides_who_is_unfinished():
    """Same case under isolated: first come first served, so j0 and j1 run, j2..j4 do not."""
    fed = toy_federation({"a": {"V100": 1}})
    jobs = [Job(f"j{i}", "a", "toy", 1, steps_for(3, 1, 2.0), 0.0) for i in range(5)]
    setup = make_setup(fed, jobs, carbon=[[100]], period_slots=2, drain_slots=4)
    result = simulate(setup, "isolated")
    assert list(result.jobs["job_id"]) == ["j0", "j1"]
    assert result.unfinished == ("j2", "j3", "j4")


def test_job_that_fits_no_pool_at_home():
    """'v100only' does not run on K80 and its home 'old' has only K80s: isolated and temporal
    (which keep jobs home) never start it; greedy-carbon runs it on the V100 at 'new'."""
    fed = toy_federation({"old": {"K80": 2}, "new": {"V100": 1}})
    stuck = Job("stuck", "old", "v100only", 1, 3600.0, 0.0)
    fine = Job("fine", "old", "toy", 1, 3600.0, 0.0)
    setup = make_setup(fed, [stuck, fine], carbon=[[100], [300]])
    for name in ("isolated", "temporal"):
        result = simulate(setup, name)
        assert result.unfinished == ("stuck",)
        assert list(result.jobs["job_id"]) == ["fine"]
        assert check_conservation(setup, result) == []
        assert_accounted_once(setup, result)
    result = simulate(setup, "greedy-carbon")
    assert result.unfinished == ()
    assert by_job(result)["stuck"]["site"] == "new"
    assert check_conservation(setup, result) == []


def test_a_run_where_nothing_runs_still_has_the_job_columns():
    """Only job cannot run at home: isolated runs nothing, the frame is empty but typed, and
    the summary says 0 finished, 1 unfinished."""
    fed = toy_federation({"old": {"K80": 1}, "new": {"V100": 1}})
    setup = make_setup(fed, [Job("stuck", "old", "v100only", 1, 3600.0, 0.0)],
                       carbon=[[100], [300]])
    result = simulate(setup, "isolated")
    assert result.jobs.empty
    assert {"job_id", "site", "carbon_kg", "energy_kwh", "completion_h"} <= set(result.jobs)
    assert check_conservation(setup, result) == []
    summary = summarize(result, 0.0)
    assert (summary.jobs_finished, summary.jobs_outside) == (0, 1)


def test_jobs_submitted_after_the_last_round_are_unfinished():
    """Rounds at 0..3 h (period 2 + drain 2); a job submitted at 10 h never arrives."""
    fed = toy_federation({"a": {"V100": 1}})
    jobs = [Job("early", "a", "toy", 1, 3600.0, 0.0), Job("late", "a", "toy", 1, 3600.0, 10.0)]
    setup = make_setup(fed, jobs, carbon=[[100]], period_slots=2, drain_slots=2)
    result = simulate(setup, "isolated")
    assert result.unfinished == ("late",)
    assert check_conservation(setup, result) == []


def test_check_conservation_reports_violations():
    """The checker itself: a job listed twice, one missing, one both ran and unfinished."""
    fed = toy_federation({"a": {"V100": 2}})
    jobs = [Job(i, "a", "toy", 1, 3600.0, 0.0) for i in ("x", "y", "z")]
    setup = make_setup(fed, jobs, carbon=[[100]])
    good = simulate(setup, "isolated")
    assert check_conservation(setup, good) == []
    doubled = pd.concat([good.jobs, good.jobs.iloc[[0]]], ignore_index=True)
    bad = replace(good, jobs=doubled.iloc[[0, 3, 1]], outside=pd.DataFrame({"job_id": ["y"]}))
    problems = check_conservation(setup, bad)
    assert "x ran twice" in problems
    assert "z unaccounted" in problems
    assert "y both ran and unfinished" in problems


def test_completion_frees_gpus_before_an_arrival_at_the_same_instant():
    """1 V100: A runs [0, 2); B is submitted at exactly 2 h. Completions come before arrivals,
    so at the 2 h round the GPU is free and B starts at 2.0 (not 3.0)."""
    fed = toy_federation({"a": {"V100": 1}})
    jobs = [Job("A", "a", "toy", 1, steps_for(2, 1, 2.0), 0.0),
            Job("B", "a", "toy", 1, steps_for(1, 1, 2.0), 2.0)]
    result = simulate(make_setup(fed, jobs, carbon=[[100]]), "isolated")
    rows = by_job(result)
    assert rows["A"]["finish_h"] == pytest.approx(2.0)
    assert rows["B"]["start_h"] == 2.0


# --- metering identities on the synthetic run ------------------------------------------------


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_gpu_hours_are_work_over_throughput(synthetic, name):
    """Per job: run time = work_steps / (job_steps_per_s x 3600) and gpu_hours = gpus x run
    time, where job_steps_per_s is the scaling model's throughput of the job type on its GPU
    count of the GPU type it ran on, and steps_per_s the affinity entry (one GPU alone). The
    synthetic run has multi-GPU jobs, and their throughput is not gpus x one GPU's."""
    run, result = synthetic
    affinity = run.setup.federation.affinity
    jobs = result.results[name].jobs
    not_linear = 0
    for row in jobs.to_dict("records"):
        one = affinity.throughput[affinity.job_index(row["job_type"]),
                                  affinity.gpu_index(row["gpu_type"])]
        rate = affinity.job_steps_per_s(row["job_type"], row["gpu_type"], row["gpus"])
        assert one > 0 and rate > 0
        assert row["steps_per_s"] == pytest.approx(one, rel=1e-12)
        assert row["job_steps_per_s"] == pytest.approx(rate, rel=1e-12)
        runtime = row["work_steps"] / (rate * 3600.0)
        assert row["finish_h"] - row["run_start_h"] == pytest.approx(runtime, rel=1e-9)
        assert row["gpu_hours"] == pytest.approx(row["gpus"] * runtime, rel=1e-9)
        not_linear += row["gpus"] > 1 and abs(rate / (row["gpus"] * one) - 1) > 0.01
    assert not_linear > 0


def _independent_site_slot_energy(setup, jobs: pd.DataFrame) -> np.ndarray:
    """kWh per (site, slot) recomputed from the job rows: GPUs x board W x PUE x hours of
    overlap of [run_start_h, finish_h) with each slot, walking slot by slot."""
    fed = setup.federation
    n_slots = setup.carbon_g_per_kwh.shape[1]
    energy = np.zeros((len(fed.sites), n_slots))
    for row in jobs.to_dict("records"):
        s = fed.site_index[row["site"]]
        kw = row["gpus"] * fed.gpu_catalog[row["gpu_type"]].board_power_w * fed.sites[s].pue / 1e3
        for t in range(n_slots):
            lo, hi = t * setup.slot_h, (t + 1) * setup.slot_h
            overlap = min(hi, row["finish_h"]) - max(lo, row["run_start_h"])
            if overlap > 0:
                energy[s, t] += kw * overlap
    return energy


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_emissions_are_energy_times_intensity_by_slot(synthetic, name):
    """Per site: carbon_kg = sum over slots of kWh x gCO2/kWh / 1000, with kWh recomputed from
    the jobs and the intensity read from the setup's carbon array; the per-job carbon sums
    to the same per-site total over all slots, and site_slots carries the same numbers over
    the whole run: every slot of period + drain, and on until the last job finished (no GPU
    of these built-in types has idle power, so site energy is busy energy)."""
    run, result = synthetic
    setup = run.setup
    sim = result.results[name]
    energy = _independent_site_slot_energy(setup, sim.jobs)
    carbon_kg = energy * setup.carbon_g_per_kwh / 1000.0
    cost_usd = energy * setup.price_usd_per_mwh / 1000.0
    busy_slots = np.flatnonzero(energy.sum(axis=0) > 0)
    p = max(setup.n_rounds, int(busy_slots[-1]) + 1)
    for s, site in enumerate(setup.federation.sites):
        frame = sim.site_slots[sim.site_slots["site"] == site.id]
        assert list(frame["slot"]) == list(range(p))
        np.testing.assert_allclose(frame["carbon_g_per_kwh"], setup.carbon_g_per_kwh[s, :p])
        np.testing.assert_allclose(frame["energy_kwh"], energy[s, :p], atol=1e-9)
        np.testing.assert_allclose(frame["carbon_kg"], carbon_kg[s, :p], atol=1e-9)
        np.testing.assert_allclose(frame["energy_cost_usd"], cost_usd[s, :p], atol=1e-9)
        at_site = sim.jobs[sim.jobs["site"] == site.id]
        assert at_site["carbon_kg"].sum() == pytest.approx(carbon_kg[s].sum(), rel=1e-9)
        assert at_site["energy_kwh"].sum() == pytest.approx(energy[s].sum(), rel=1e-9)
    assert energy.sum() > 0


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_job_energy_is_gpus_power_pue_hours(synthetic, name):
    run, result = synthetic
    fed = run.setup.federation
    for row in result.results[name].jobs.to_dict("records"):
        site = fed.sites[fed.site_index[row["site"]]]
        hours = row["finish_h"] - row["run_start_h"]
        expected = row["gpus"] * fed.gpu_catalog[row["gpu_type"]].board_power_w * site.pue * hours
        assert row["energy_kwh"] == pytest.approx(expected / 1000.0, rel=1e-9)


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_no_gpu_pool_is_ever_overfilled(synthetic, name):
    """At every slot, the GPUs held by jobs on a (site, GPU type) pool (from start_h, which
    includes the data transfer, to finish_h) never exceed the pool's size."""
    run, result = synthetic
    setup = run.setup
    fed = setup.federation
    n_slots = setup.carbon_g_per_kwh.shape[1]
    held = np.zeros((len(fed.resources), n_slots))
    for row in result.results[name].jobs.to_dict("records"):
        r = fed.resource_of(row["site"], row["gpu_type"])
        first = math.floor(row["start_h"] / setup.slot_h + 1e-9)
        last = math.ceil(row["finish_h"] / setup.slot_h - 1e-9)
        held[r, first:last] += row["gpus"]
    assert (held <= fed.resource_total_gpus[:, None]).all()


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_jobs_start_on_a_round_after_submission(synthetic, name):
    run, result = synthetic
    jobs = result.results[name].jobs
    assert (jobs["start_h"] >= jobs["submit_h"] - 1e-9).all()
    assert np.allclose(jobs["start_h"] % run.setup.slot_h, 0.0)
    assert (jobs["start_h"] < run.setup.n_rounds * run.setup.slot_h).all()


class _FailingPlanner(Policy):
    """A policy whose every solve ends without a plan: it starts nothing."""

    def decide(self, offers, queue):
        return []

    def last_solve(self):
        return SolveStatus.NO_SOLUTION, "time limit reached before a feasible point"


def test_a_failed_solve_is_counted_and_logged(caplog):
    """Two rounds solve (the job is queued in both); both fail: two warnings naming the
    round and the solver's message, the round stats carry the status, the summary counts
    two failed rounds, and the job goes to the outside option as still queued."""
    fed = toy_federation({"a": {"V100": 1}})
    setup = make_setup(fed, [Job("j", "a", "toy", 1, 7200.0, 0.0)], carbon=[[100]],
                       period_slots=1, drain_slots=1)
    with caplog.at_level(logging.WARNING, logger="broker.simulation"):
        result = run_simulation(setup, _FailingPlanner(fed, PlannerConfig()), "failing")
    assert [r.status for r in result.rounds] == [SolveStatus.NO_SOLUTION] * 2
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == [f"failing round {k}: solver no_solution (time limit reached before a "
                        "feasible point)" for k in (0, 1)]
    summary = summarize(result, 0.0)
    assert (summary.rounds_optimal, summary.rounds_feasible, summary.rounds_failed) == (0, 0, 2)
    assert result.outside["reason"].tolist() == ["still queued at the end"]


def test_milp_rounds_are_counted_by_status(synthetic):
    """The milp policy reports a status for every round that had a queue; baselines none."""
    _, result = synthetic
    milp = result.results["milp"]
    solved = [r for r in milp.rounds if r.queued > 0]
    assert solved and all(r.status is not None for r in solved)
    summary = result.summaries["milp"]
    assert summary.rounds_optimal + summary.rounds_feasible + summary.rounds_failed == len(solved)
    assert all(r.status is None for r in result.results["isolated"].rounds)
