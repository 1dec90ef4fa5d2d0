"""The one option model (``broker.options``) against the five pipelines it replaced.

``legacy_options`` holds the code as it was (frozen copies); on the built-in ``default``
scenario and on ``federation-12`` (real data), with the linear scaling the old code assumed
(the measured scaling model is tested in ``tests/sites/test_scaling.py``), rounds at several
times of the run must give the
very same options (same jobs, pools, starts, held slots, GPUs) at the same prices, the period
plan the same problem, the baselines the same slot counts, the live broker the same estimates
and the meter the same run times. Tolerance 1e-12 relative: the old code multiplied the link's
hours per GB by the data set, the new one converts the data set (the last bit may differ).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from broker.baselines import _Placer
from broker.demands import group_identical_jobs
from broker.live import estimate_run
from broker.metering import Meter
from broker.offers import RoundOffers
from broker.options import (
    at_starts,
    deadline_options,
    job_runs,
    meets_deadline,
    price_options,
    run_of,
)
from broker.period_plan import PeriodPlanSettings, build_period_problem
from broker.planner import PlannerConfig, build_round_problem
from broker.simulation import SimulationSetup
from scenarios.build import build_run
from scenarios.loader import load_scenario
from sites.scaling import LINEAR
from sites.timegrid import slot_index, slot_overlaps, slots_until
from tests.broker import legacy_options as legacy
from tests.realdata import DATA_DIR, needs_data

RTOL = 1e-12


def _setup(name: str) -> SimulationSetup:
    """The scenario with linear scaling, what the old pipelines assumed."""
    setup = build_run(load_scenario(name, DATA_DIR)).setup
    fed = setup.federation
    linear = dataclasses.replace(fed.affinity, scaling=LINEAR)
    return dataclasses.replace(setup, federation=dataclasses.replace(fed, affinity=linear))


def _rounds(setup: SimulationSetup, n: int = 4) -> list[tuple[RoundOffers, list]]:
    """``n`` rounds spread over the run: the jobs of the last day as the queue, part of every
    pool taken (so capacity differs by pool and slot), the actual signals as the forecast."""
    out = []
    total = setup.federation.resource_total_gpus[:, None]
    rng = np.random.default_rng(7)
    for k in np.linspace(1, setup.period_slots - 1, n).astype(int):
        now_h = k * setup.slot_h
        queue = [j for j in setup.jobs if now_h - 24.0 <= j.submit_h <= now_h]
        window = slice(k, k + setup.horizon_slots)
        taken = rng.integers(0, total + 1, size=(len(total), setup.horizon_slots))
        out.append((RoundOffers(now_h, setup.slot_h, np.maximum(total - taken, 0),
                                setup.price_usd_per_mwh[:, window],
                                setup.carbon_g_per_kwh[:, window]), queue))
    return out


def _same(new: dict[str, np.ndarray], old: dict[str, np.ndarray]) -> None:
    assert set(new) >= set(old)
    for name, want in old.items():
        got = new[name]
        assert got.shape == want.shape, name
        if np.issubdtype(want.dtype, np.integer):
            np.testing.assert_array_equal(got, want, err_msg=name)
        else:
            np.testing.assert_allclose(got, want, rtol=RTOL, atol=1e-12, err_msg=name)


def _priced_round_options(fed, offers, reps, offsets, delay_cost_usd_per_gpu_h):
    """A round's contiguous options as ``build_round_problem`` prices them, before lateness."""
    horizon = offers.horizon_slots
    starts = np.array(offsets if offsets is not None else range(horizon), dtype=int)
    options = at_starts(job_runs(fed, reps), starts[starts < horizon], offers.slot_h)
    options = options.take(np.flatnonzero(deadline_options(options, reps, offers.now_h)))
    return price_options(options, offers.price_usd_per_mwh, offers.carbon_g_per_kwh,
                         offers.slot_h, 0.0, delay_cost_usd_per_gpu_h)


def _check_rounds(setup: SimulationSetup) -> int:
    fed = setup.federation
    n_options = 0
    for offers, queue in _rounds(setup):
        reps = [d[0] for d in group_identical_jobs(queue)]
        for offsets in (None, (0, 1, 2, 4, 8)):
            config = PlannerConfig(delay_cost_usd_per_gpu_h=0.005, start_offsets=offsets)
            p = build_round_problem(fed, offers, queue, config).problem
            new = {name: getattr(p, name) for name in p.__dataclass_fields__}
            # The round adds a lateness price to a late option's delay cost (issue 24's
            # deadline fix, broker.costs.waiting_prices): compare the options' own delay cost,
            # and hold the round's equal to it on every option that meets its deadline.
            priced = _priced_round_options(fed, offers, reps, offsets, 0.005)
            on_time = offers.now_h + priced.options.completion_h <= np.array(
                [np.inf if j.deadline_h is None else j.deadline_h for j in reps]
            )[priced.options.job] + 1e-9
            np.testing.assert_allclose(p.option_delay_cost_usd[on_time],
                                       priced.delay_cost_usd[on_time], rtol=RTOL)
            new["option_delay_cost_usd"] = priced.delay_cost_usd
            _same(new, legacy.round_options(fed, offers, reps, offsets, 0.005))
            n_options += p.n_options
        # the baselines' slot counts, on every pool a job fits
        placer = _Placer(fed, offers, queue)
        runs = job_runs(fed, queue)
        old = legacy.baseline_slots(fed, offers, queue)
        np.testing.assert_array_equal(placer.slots[runs.job, runs.resource],
                                      old[runs.job, runs.resource])
        # the live broker's estimate and the meter's run time, on a sample of runs
        for i in np.linspace(0, len(runs) - 1, min(len(runs), 25)).astype(int):
            job, r = queue[runs.job[i]], int(runs.resource[i])
            site_i, gpu = fed.resources[r]
            got = estimate_run(fed, offers, job, fed.sites[site_i].id, gpu, 2)
            want = legacy.estimate(fed, offers, job, fed.sites[site_i].id, gpu, 2)
            for name, value in want.items():
                assert getattr(got, name) == pytest.approx(value, rel=RTOL, abs=1e-12), name
            meter = Meter(fed, setup.slot_h, setup.carbon_g_per_kwh, setup.price_usd_per_mwh)
            record = meter.record_run(job, r, offers.now_h)
            run_start, finish = legacy.metered_times(fed, job, r, offers.now_h)
            assert (record.run_start_h, record.finish_h) == pytest.approx((run_start, finish),
                                                                         rel=RTOL)
    return n_options


def _check_period(setup: SimulationSetup) -> None:
    settings = PeriodPlanSettings()
    pp = build_period_problem(setup, 100.0, settings)
    old = legacy.period_options(setup.federation, setup.jobs, setup.price_usd_per_mwh,
                                setup.carbon_g_per_kwh, setup.slot_h, settings.slot_h,
                                settings.max_wait_h, settings.delay_cost_usd_per_gpu_h)
    n_fed = len(old["option_demand"])
    p = pp.problem
    assert p.n_options == n_fed + len(setup.jobs)  # one cloud option per job after them
    _same({name: getattr(p, name)[:n_fed] for name in old}, old)


def test_default_rounds_period_plan_baselines_estimates_and_meter_as_before():
    setup = _setup("default")
    assert _check_rounds(setup) > 1000  # the rounds are not trivially empty
    _check_period(setup)


@pytest.mark.realdata
@needs_data
def test_federation12_rounds_period_plan_baselines_estimates_and_meter_as_before():
    setup = _setup("federation-12")
    assert _check_rounds(setup) > 1000
    _check_period(setup)


# --- the slot arithmetic and deadline rule, by hand -----------------------------------------

def test_slot_counting_on_boundaries_with_float_noise():
    """0.1 + 0.2 h is 0.30000000000000004 h: on slots of 0.1 h it ends the third slot, not a
    fourth; a time a hair before a boundary (float noise) is on it; 2.5 h takes 3 slots of 1 h."""
    assert slots_until(0.1 + 0.2, 0.1) == 3
    assert slots_until(2.5, 1.0) == 3 and slots_until(2.0, 1.0) == 2
    assert slot_index(2.0 - 1e-12, 1.0) == 2 and slot_index(1.999, 1.0) == 1
    np.testing.assert_array_equal(slots_until(np.array([0.0, 0.5, 1.0, 1.5]), 0.5), [0, 1, 2, 3])
    slots, hours = slot_overlaps(0.5, 2.25, 1.0)
    np.testing.assert_array_equal(slots, [0, 1, 2])
    np.testing.assert_allclose(hours, [0.5, 1.0, 0.25])


def test_a_run_by_hand_and_its_options():
    """Job of 3 600 x 2 x 2 steps on 2 V100s (2 steps/s each on the toy affinity) runs 1 h; at
    its 1 h-away site it first ships 45 GB at 10 Gbit/s = 0.01 h. Options at slots 0 and 1 of
    0.5 h: completions 1.0 and 1.5 h at home; the remote pool holds 1.01 h = 3 slots."""
    from broker.jobs import Job
    from tests.scenarios.helpers import toy_federation

    fed = toy_federation({"home": {"V100": 2}, "away": {"V100": 4, "K80": 1}},
                         egress_usd_per_gb=0.02)
    job = Job("j", "home", "toy", 2, 3600.0 * 2 * 2, 0.0, deadline_h=1.2, dataset_gb=45.0)
    runs = job_runs(fed, [job])
    # pools: home V100, away V100 (the away K80 has 1 GPU: too few for a 2-GPU job)
    assert [fed.resources[r] for r in runs.resource] == [(0, "V100"), (1, "V100")]
    np.testing.assert_allclose(runs.runtime_h, [1.0, 1.0])
    np.testing.assert_allclose(runs.transfer_h, [0.0, 0.01])
    np.testing.assert_allclose(runs.transfer_cost_usd, [0.0, 0.9])
    options = at_starts(runs, np.array([0, 1]), 0.5)
    np.testing.assert_allclose(options.completion_h, [1.0, 1.5, 1.01, 1.51])
    np.testing.assert_array_equal(options.slots, [2, 2, 3, 3])  # held from each start
    # deadline 1.2 h: only the two slot-0 options meet it
    np.testing.assert_array_equal(deadline_options(options, [job], 0.0),
                                  [True, False, True, False])
    # the meter's run on the away pool with the assignment's own GPU count (4: half the time)
    run = run_of(fed, job, 1, gpus=4)
    assert float(run.runtime_h[0]) == pytest.approx(0.5)
    assert meets_deadline(1.2 + 1e-10, 1.2) and not meets_deadline(1.2 + 1e-6, 1.2)
    assert meets_deadline(99.0, None)


def test_the_assignments_gpu_count_is_what_the_simulation_holds_and_meters():
    """A policy that gives a 1-GPU job of 2 h (at 2 steps/s on one V100) two V100s: with the
    linear model it runs 1 h, the meter records 2 GPUs and 2 GPU-hours, and the pool is held
    for 1 slot with both GPUs (a second such job submitted then cannot start until 1 h)."""
    from broker.jobs import Job
    from broker.planner import Assignment, PlannerConfig
    from broker.policies import Policy
    from broker.simulation import run_simulation
    from tests.scenarios.helpers import make_setup, steps_for, toy_federation

    class TwoGpus(Policy):
        def decide(self, offers, queue):
            free = offers.free_gpus[0, 0]
            return [Assignment(j.id, "a", "V100", 2, 0, offers.now_h) for j in queue[:1]
                    if free >= 2]

    fed = toy_federation({"a": {"V100": 2}})
    jobs = [Job(f"j{i}", "a", "toy", 1, steps_for(2, 1, 2.0), 0.0) for i in range(2)]
    setup = make_setup(fed, jobs, carbon=[[100]], period_slots=4, drain_slots=4)
    result = run_simulation(setup, TwoGpus(fed, PlannerConfig()), "two-gpus")
    rows = result.jobs.set_index("job_id")
    assert rows.loc["j0", "gpus"] == 2 and rows.loc["j0", "finish_h"] == pytest.approx(1.0)
    assert rows.loc["j0", "gpu_hours"] == pytest.approx(2.0)
    assert rows.loc["j1", "start_h"] == pytest.approx(1.0)
