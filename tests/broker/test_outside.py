"""Like-for-like accounting: a job no pool of its home can run, by hand, through a scenario.

Three sites, PUE 1, 50 USD/MWh everywhere, carbon 400 (A), 100 (B), 200 (C) g/kWh, 100 USD/t.
A has one K80; B and C one V100 each. Jobs, all submitted at 0, 1 GPU each:

  a1  home A, ``v100only`` (1 step/s on V100 only), 3600 steps: 1 h on a V100, 10 GB data
  b1  home B, ``toy`` (2 steps/s on V100), 7200 steps: 1 h on a V100
  c1  home C, the same at C

A cannot run a1, so isolated and temporal (which never move a job) leave it to the outside
option: the cloud's V100 for 1 h = 1 GPU-h, billed 2.48 USD, energy 300 W x PUE 1.11 x 1 h =
0.333 kWh at 566.3 g = 0.1885779 kg, plus egress of its 10 GB at A's 0.05 USD/GB = 0.5 USD.
isolated runs b1 and c1 at home: 0.3 kWh each, at 100 g (0.03 kg) and 200 g (0.06 kg),
0.015 USD of energy each.
"""

from __future__ import annotations

import pytest

from broker.policy_registry import POLICIES
from broker.savings import compute_savings
from scenarios.runner import run_scenario
from scenarios.tables import jobs_table, site_table
from tests.scenarios.helpers import build_from_text

SCENARIO = """\
name: three
period_h: 4
slot_h: 1
horizon_h: 4
drain_h: 4
carbon_price_usd_per_t: 100
affinity:
  toy: {V100: 2.0, K80: 1.0}
  v100only: {V100: 1.0}
zones:
  za:
    carbon_g_per_kwh: {kind: constant, value: 400}
    price_usd_per_mwh: {kind: constant, value: 50}
  zb:
    carbon_g_per_kwh: {kind: constant, value: 100}
    price_usd_per_mwh: {kind: constant, value: 50}
  zc:
    carbon_g_per_kwh: {kind: constant, value: 200}
    price_usd_per_mwh: {kind: constant, value: 50}
sites:
  - {id: A, zone: za, pue: 1.0, egress_usd_per_gb: 0.05, gpus: {K80: 1}}
  - {id: B, zone: zb, pue: 1.0, egress_usd_per_gb: 0.05, gpus: {V100: 1}}
  - {id: C, zone: zc, pue: 1.0, egress_usd_per_gb: 0.05, gpus: {V100: 1}}
workload:
  kind: list
  jobs:
    - {id: a1, home_site: A, job_type: v100only, gpus: 1, work_steps: 3600, submit_h: 0,
       dataset_gb: 10}
    - {id: b1, home_site: B, job_type: toy, gpus: 1, work_steps: 7200, submit_h: 0}
    - {id: c1, home_site: C, job_type: toy, gpus: 1, work_steps: 7200, submit_h: 0}
"""

OUTSIDE_KWH = 0.333
OUTSIDE_KG = 0.333 * 566.3 / 1000  # 0.1885779
OUTSIDE_USD = 2.48 + 0.5  # bill + egress


@pytest.fixture(scope="module")
def result():
    return run_scenario(build_from_text(SCENARIO))


def test_isolated_totals_include_the_outside_option_by_hand(result):
    iso = result.summaries["isolated"]
    assert (iso.jobs_finished, iso.jobs_outside) == (2, 1)
    assert iso.outside_gpu_h == pytest.approx(1.0)
    assert iso.outside_energy_kwh == pytest.approx(OUTSIDE_KWH)
    assert iso.outside_carbon_kg == pytest.approx(OUTSIDE_KG)
    assert iso.outside_cost_usd == pytest.approx(OUTSIDE_USD)
    assert iso.energy_kwh == pytest.approx(0.3 + 0.3 + OUTSIDE_KWH)
    assert iso.carbon_kg == pytest.approx(0.03 + 0.06 + OUTSIDE_KG)
    assert iso.total_cost_usd == pytest.approx(
        0.015 + 0.015 + OUTSIDE_USD + 0.1 * (0.03 + 0.06 + OUTSIDE_KG))


def test_every_policy_covers_all_three_jobs(result):
    """The policies that never move jobs send a1 out; the others run it at B or C."""
    for name, summary in result.summaries.items():
        assert summary.jobs_finished + summary.jobs_outside == 3, name
        expected = 1 if POLICIES[name].home_only else 0  # isolated, temporal(-preemptive)
        assert summary.jobs_outside == expected, name
        if expected:
            assert summary.total_cost_usd > OUTSIDE_USD  # the cloud's bill is in the total


def test_jobs_csv_has_a_row_per_job_and_policy_with_status_and_reason(result):
    table = jobs_table(result)
    assert len(table) == 3 * len(result.summaries)
    for name in result.summaries:
        rows = table[table["policy"] == name].set_index("job_id")
        assert set(rows.index) == {"a1", "b1", "c1"}
        if POLICIES[name].home_only:  # isolated, temporal(-preemptive)
            assert rows.loc["a1", "status"] == "outside-option"
            assert rows.loc["a1", "reason"] == "no pool fits"
            assert rows.loc["a1", "outside_cost_usd"] == pytest.approx(2.48)
        else:
            assert rows.loc["a1", "status"] == "finished"
            assert rows.loc["a1", "site"] in ("B", "C")


def test_per_site_rows_sum_to_the_policy_totals(result):
    sites = site_table(result)
    for name, summary in result.summaries.items():
        rows = sites[sites["policy"] == name]
        for key in ("energy_kwh", "carbon_kg", "total_cost_usd"):
            assert rows[key].sum() == pytest.approx(getattr(summary, key)), (name, key)
        assert rows["jobs_hosted"].sum() == summary.jobs_finished
    iso = sites[sites["policy"] == "isolated"].set_index("site")
    assert iso.loc["A", "jobs_outside"] == 1 and iso.loc["A", "jobs_hosted"] == 0


def test_savings_compare_the_same_three_jobs_and_unserved_is_by_hand(result):
    """greedy-carbon against isolated. a1's reference (home has no pool it runs on): its own
    GPU type at home: 0.3 kWh at A's 400 g = 0.12 kg, 0.3 x (0.05 + 0.1 x 0.4) = 0.027 USD.
    unserved = outside - reference: 0.333 - 0.3 kWh, 0.1885779 - 0.12 kg, and
    (2.98 + 0.1 x 0.1885779) - 0.027 USD."""
    setup = result.run.setup
    savings = {s.metric: s for s in compute_savings(
        setup, result.results["isolated"], result.results["greedy-carbon"], 100.0)}
    assert savings["energy_kwh"].parts["unserved"] == pytest.approx(OUTSIDE_KWH - 0.3)
    assert savings["carbon_kg"].parts["unserved"] == pytest.approx(OUTSIDE_KG - 0.12)
    assert savings["total_cost_usd"].parts["unserved"] == pytest.approx(
        OUTSIDE_USD + 0.1 * OUTSIDE_KG - 0.027)
    for item in savings.values():
        assert item.baseline == pytest.approx(
            result.summaries["isolated"].as_dict()[item.metric])
        assert item.policy == pytest.approx(
            result.summaries["greedy-carbon"].as_dict()[item.metric])
        assert sum(item.parts.values()) == pytest.approx(item.saved, abs=1e-12)
        assert item.parts["other"] == pytest.approx(0.0, abs=1e-12)


def test_milp_savings_table_covers_the_same_jobs(result):
    """The run's own milp-vs-isolated table: both sides cover a1, b1 and c1."""
    for item in result.savings:
        assert item.baseline == pytest.approx(
            result.summaries["isolated"].as_dict()[item.metric])
        assert sum(item.parts.values()) == pytest.approx(item.saved, abs=1e-12)
    assert result.summaries["milp"].jobs_finished == 3
