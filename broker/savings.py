"""Savings of a policy against ``isolated``, broken down into where they come from.

For every job the policy ran, a chain of counterfactuals moves it one step at a time from
"what isolated would naturally do" to "what the policy did":

  ref   home site, the fastest GPU type at home, started the moment it was submitted
  1     the GPU type the policy chose, still at home (home PUE, home grid, at submission)
  2     ... at the chosen site (its PUE and grid), still at submission
  3     ... started when the policy started it (the metered actual)

affinity = ref - 1, spatial shift = 1 - 2, temporal shift = 2 - 3 and, for cost, transfer =
minus the egress paid. These sum to (sum of refs) - (policy total). The rest of the difference to
the isolated run, (isolated total) - (sum of refs), is "queueing and other": isolated's own
waiting for busy home GPUs (which shifts its runs in time) and jobs one run finished and the
other did not. Energy has no temporal part (a kWh is a kWh at any hour).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from broker.pricing import window_mean
from broker.simulation import SimulationResult, SimulationSetup

PARTS = ("affinity", "spatial_shift", "temporal_shift", "transfer", "queueing_and_other")


@dataclass(frozen=True)
class Savings:
    metric: str  # energy_kwh, carbon_kg, total_cost_usd
    baseline: float
    policy: float
    parts: dict[str, float]

    @property
    def saved(self) -> float:
        return self.baseline - self.policy

    @property
    def saved_fraction(self) -> float:
        return self.saved / self.baseline if self.baseline else 0.0


def _per_kwh_signals(
    setup: SimulationSetup, carbon_price_usd_per_t: float
) -> dict[str, np.ndarray]:
    """Signals that turn kWh into each metric: kg/kWh and USD/kWh (at the carbon price)."""
    carbon_kg_per_kwh = setup.carbon_g_per_kwh / 1000.0
    carbon_usd_per_kwh = carbon_price_usd_per_t * carbon_kg_per_kwh / 1000.0
    usd_per_kwh = setup.price_usd_per_mwh / 1000.0 + carbon_usd_per_kwh
    return {"carbon_kg": carbon_kg_per_kwh, "total_cost_usd": usd_per_kwh}


def compute_savings(
    setup: SimulationSetup,
    isolated: SimulationResult,
    policy: SimulationResult,
    carbon_price_usd_per_t: float,
) -> list[Savings]:
    fed = setup.federation
    jobs = policy.jobs
    if len(jobs) == 0:
        return []
    by_id = {j.id: j for j in setup.jobs}
    queue = [by_id[i] for i in jobs["job_id"]]
    rates = fed.steps_per_s(queue)
    home = np.array([fed.site_index[j.home_site] for j in queue])
    site = np.array([fed.site_index[s] for s in jobs["site"]])
    home_res = fed.resource_site[None, :] == home[:, None]
    best_home = np.where(home_res, rates, -1.0).argmax(axis=1)
    rows = np.arange(len(queue))
    # A job whose home has no pool it runs on has no "fastest type at home": its reference is
    # step 1 (the type the policy chose, at home), so it adds nothing to the affinity part.
    runs_home = home_res[rows, best_home] & (rates[rows, best_home] > 0)
    gpus = jobs["gpus"].to_numpy(float)
    work = jobs["work_steps"].to_numpy()
    runtime_act = (jobs["finish_h"] - jobs["run_start_h"]).to_numpy()
    ref_rate = np.where(runs_home, rates[rows, best_home], 1.0)
    runtime_ref = np.where(runs_home, work / (gpus * ref_rate * 3600.0), runtime_act)
    pue = np.array([s.pue for s in fed.sites])
    board_kw = np.array([fed.gpu_catalog[g].board_power_w / 1000.0 for g in jobs["gpu_type"]])
    ref_board_kw = np.where(runs_home, [fed.gpu_catalog[fed.resources[r][1]].board_power_w
                                        / 1000.0 for r in best_home], board_kw)
    kwh_ref = gpus * ref_board_kw * pue[home] * runtime_ref
    kwh_1 = gpus * board_kw * pue[home] * runtime_act
    kwh_act = jobs["energy_kwh"].to_numpy()
    submit = jobs["submit_h"].to_numpy()
    slot_h = setup.slot_h

    out = [_energy_savings(isolated, policy, kwh_ref, kwh_1, kwh_act)]
    actual = {"carbon_kg": jobs["carbon_kg"].to_numpy(),
              "total_cost_usd": (jobs["energy_cost_usd"]
                                 + carbon_price_usd_per_t * jobs["carbon_kg"] / 1000.0).to_numpy()}
    iso_jobs = isolated.jobs
    for metric, per_kwh in _per_kwh_signals(setup, carbon_price_usd_per_t).items():
        ref = kwh_ref * window_mean(per_kwh, home, submit, submit + runtime_ref, slot_h)
        step1 = kwh_1 * window_mean(per_kwh, home, submit, submit + runtime_act, slot_h)
        step2 = kwh_act * window_mean(per_kwh, site, submit, submit + runtime_act, slot_h)
        step3 = actual[metric]
        transfer = jobs["transfer_cost_usd"].to_numpy() if metric == "total_cost_usd" else 0 * step3
        iso_total = float(_metric_total(iso_jobs, metric, carbon_price_usd_per_t))
        pol_total = float(step3.sum() + np.sum(transfer))
        parts = {
            "affinity": float((ref - step1).sum()),
            "spatial_shift": float((step1 - step2).sum()),
            "temporal_shift": float((step2 - step3).sum()),
            "transfer": -float(np.sum(transfer)),
            "queueing_and_other": iso_total - float(ref.sum()),
        }
        out.append(Savings(metric, iso_total, pol_total, parts))
    return out


def _energy_savings(isolated: SimulationResult, policy: SimulationResult, kwh_ref: np.ndarray,
                    kwh_1: np.ndarray, kwh_act: np.ndarray) -> Savings:
    iso_total = float(isolated.jobs["energy_kwh"].sum()) if len(isolated.jobs) else 0.0
    parts = {
        "affinity": float((kwh_ref - kwh_1).sum()),
        "spatial_shift": float((kwh_1 - kwh_act).sum()),
        "temporal_shift": 0.0,
        "transfer": 0.0,
        "queueing_and_other": iso_total - float(kwh_ref.sum()),
    }
    return Savings("energy_kwh", iso_total, float(kwh_act.sum()), parts)


def _metric_total(jobs: pd.DataFrame, metric: str, carbon_price_usd_per_t: float) -> float:
    if len(jobs) == 0:
        return 0.0
    if metric == "carbon_kg":
        return float(jobs["carbon_kg"].sum())
    return float((jobs["energy_cost_usd"] + jobs["transfer_cost_usd"]
                  + carbon_price_usd_per_t * jobs["carbon_kg"] / 1000.0).sum())
