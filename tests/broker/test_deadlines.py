"""Deadlines are met whatever the delay cost, and a late job keeps a penalty
(``broker.costs.waiting_prices``), with the delay cost at 0.

The federation: one site ``a`` with one V100; the ``toy`` job type does 2 steps/s there, so a
job of ``steps_for(1, 1, 2)`` runs exactly 1 h. Energy 50 USD/MWh; carbon 500 gCO2/kWh in hours
0-3, then 100; carbon price 100 USD/t (0.1 USD/kg).
"""

from __future__ import annotations

import numpy as np
import pytest

from broker.costs import MIN_LATENESS_USD_PER_GPU_H
from broker.jobs import Job
from broker.offers import RoundOffers
from broker.planner import PlannerConfig, build_round_problem
from tests.scenarios.helpers import by_job, make_setup, simulate, steps_for, toy_federation

CARBON = [[500, 500, 500, 500, 100]]
NO_DELAY = PlannerConfig(carbon_price_usd_per_t=100.0, delay_cost_usd_per_gpu_h=0.0)


def one_hour_job(deadline_h: float | None) -> Job:
    return Job("j", "a", "toy", 1, steps_for(1.0, 1, 2.0), 0.0, deadline_h=deadline_h)


def round_zero(job: Job, config: PlannerConfig = NO_DELAY):
    """The first round's problem (12 hourly slots from 0 h, the signals above)."""
    setup = make_setup(toy_federation({"a": {"V100": 1}}), [job], carbon=CARBON)
    offers = RoundOffers(now_h=0.0, slot_h=1.0, free_gpus=np.ones((1, 12), int),
                         price_usd_per_mwh=setup.price_usd_per_mwh[:, :12],
                         carbon_g_per_kwh=setup.carbon_g_per_kwh[:, :12])
    return setup, build_round_problem(setup.federation, offers, [job], config).problem


def test_the_repro_a_deadline_it_can_meet_is_met_with_delay_cost_zero():
    """The issue's repro: 1 h job due at 1 h, carbon 500 then 100 from hour 4, delay cost 0.

    Round 0 keeps the one on-time option, start 0 (completion 1 h). Its cost c is energy plus
    carbon; the deferral penalty is c + delay x horizon (0) + one slot of lateness at
    lambda = max(0, 0.01) + spread / (1 GPU x 1 h) = 0.01 (one option: spread 0), so deferring
    costs c + 0.01 USD: strictly more, and the job starts at 0 h. (Before: penalty = c, a tie
    the solver broke by deferring; the job then waited for the cheap hours and was late, or
    here, with every later hour equally cheap, never started and went to the outside option.)
    """
    setup, p = round_zero(one_hour_job(deadline_h=1.0))
    assert p.option_start.tolist() == [0]
    assert p.option_delay_cost_usd.tolist() == [0.0]  # on time: no lateness
    assert p.deferral_penalty_usd[0] - p.option_cost_usd[0] == pytest.approx(0.01, abs=1e-12)
    assert MIN_LATENESS_USD_PER_GPU_H == 0.01
    ran = by_job(simulate(setup, "milp", NO_DELAY))["j"]
    assert (ran["start_h"], ran["deadline_missed"]) == (0.0, False)


def test_a_late_job_keeps_a_penalty_and_runs_as_early_as_it_can():
    """Due at 0.5 h, the 1 h job is late whatever it does: every start t = 0..11 is kept, late
    by t + 0.5 h. Its options cost c_t = e + k g_t with g_t = 0.5 kg/kWh for t < 4, 0.1 after
    (k: kWh x 0.1 USD/kg), so spread = 0.4 k and lambda = 0.01 + 0.4 k per GPU-h late; each
    option's lateness is lambda (t + 0.5). Starting at 4 h would save 0.4 k of carbon but cost
    4 lambda > 0.4 k more lateness: the job runs at 0 h. Deferring costs the dearest option
    (t = 11: c_11 + 11.5 lambda) plus a slot of lateness (lambda)."""
    setup, p = round_zero(one_hour_job(deadline_h=0.5))
    assert p.option_start.tolist() == list(range(12))
    kwh = p.option_energy_kwh[0]
    lam = 0.01 + 0.4 * kwh * 0.1
    late_h = np.arange(12) + 0.5
    assert p.option_delay_cost_usd == pytest.approx(lam * late_h, rel=1e-9)
    assert p.deferral_penalty_usd[0] == pytest.approx(p.option_cost_usd[11] + lam, rel=1e-9)
    assert int(np.argmin(p.option_cost_usd)) == 0
    ran = by_job(simulate(setup, "milp", NO_DELAY))["j"]
    assert (ran["start_h"], ran["deadline_missed"]) == (0.0, True)


def test_a_job_without_deadline_is_priced_as_before():
    """No deadline: no lateness, and deferring costs the dearest option plus a horizon of
    delay: 0.005 USD/GPU-h x 1 GPU x 12 h = 0.06 USD."""
    config = PlannerConfig(carbon_price_usd_per_t=100.0, delay_cost_usd_per_gpu_h=0.005)
    _, p = round_zero(one_hour_job(deadline_h=None), config)
    delay = 0.005 * (p.option_start + 1.0)  # completion from now, 1 GPU
    assert p.option_delay_cost_usd == pytest.approx(delay, rel=1e-12)
    assert p.deferral_penalty_usd[0] == pytest.approx(p.option_cost_usd.max() + 0.06, rel=1e-12)


@pytest.mark.parametrize("deadline_h", [2.0, 5.0])
def test_with_delay_cost_zero_a_job_waits_for_clean_hours_only_within_its_deadline(deadline_h):
    """Due at 2 h it can start at 0 or 1 (both dirty; the same cost): it must not be deferred
    past 1 h. Due at 5 h it can wait for the clean hour 4 (completion 5 h): it does."""
    setup, _ = round_zero(one_hour_job(deadline_h=deadline_h))
    ran = by_job(simulate(setup, "milp", NO_DELAY))["j"]
    assert ran["deadline_missed"] is False or ran["deadline_missed"] == 0
    assert ran["start_h"] + 1.0 <= deadline_h
    if deadline_h == 5.0:
        assert ran["start_h"] == 4.0
