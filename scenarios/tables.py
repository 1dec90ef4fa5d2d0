"""A scenario's results as long-format tables (the CSV files and the per-site view)."""

from __future__ import annotations

import pandas as pd

from broker.costs import total_cost_usd
from broker.metering import PIECE_COLUMNS
from broker.savings import PARTS
from scenarios.runner import ScenarioResult

FINISHED, OUTSIDE = "finished", "outside-option"
METRIC_LABELS = {"energy_kwh": "energy kWh", "carbon_kg": "CO2 kg",
                 "total_cost_usd": "total cost USD"}


def jobs_table(result: ScenarioResult) -> pd.DataFrame:
    """One row per job and policy: where it ran, or why the outside option served it."""
    frames = []
    for name, r in result.results.items():
        ran = r.jobs.assign(policy=name, status=FINISHED, reason="", outside_cost_usd=0.0)
        outside = r.outside.assign(policy=name, status=OUTSIDE, site="outside",
                                   deadline_missed=r.outside["deadline_h"].notna())
        frames += [ran, outside]
    columns = ["policy", "job_id", "status", "reason", *[
        c for c in result.results[next(iter(result.results))].jobs.columns if c != "job_id"],
        "outside_cost_usd"]
    table = pd.concat([f for f in frames if len(f)], ignore_index=True) if any(
        len(f) for f in frames) else pd.DataFrame(columns=columns)
    return table.reindex(columns=columns)


def pieces_table(result: ScenarioResult) -> pd.DataFrame:
    """One row per piece of a job's run and policy (``broker.metering.Piece``): a job paused,
    moved or resized while it ran has several, their steps adding up to its work."""
    frames = [r.pieces.assign(policy=n) for n, r in result.results.items()]
    table = pd.concat([f for f in frames if len(f)], ignore_index=True) if any(
        len(f) for f in frames) else pd.DataFrame(columns=["policy", *PIECE_COLUMNS])
    return table.reindex(columns=["policy", *PIECE_COLUMNS])


def site_slots_table(result: ScenarioResult) -> pd.DataFrame:
    return pd.concat([r.site_slots.assign(policy=n) for n, r in result.results.items()],
                     ignore_index=True)


def summary_table(result: ScenarioResult) -> pd.DataFrame:
    return pd.DataFrame([s.as_dict() for s in result.summaries.values()])


def savings_table(result: ScenarioResult) -> pd.DataFrame:
    return pd.DataFrame([
        {"metric": x.metric, "isolated": x.baseline, "milp": x.policy, "saved": x.saved,
         "saved_fraction": x.saved_fraction, **x.parts}
        for x in result.savings
    ], columns=["metric", "isolated", "milp", "saved", "saved_fraction", *PARTS])


def site_table(result: ScenarioResult) -> pd.DataFrame:
    """One row per policy and site.

    ``jobs_hosted``: jobs the site ran (from any home); ``jobs_sent_away``: its own jobs run
    elsewhere; ``jobs_outside``: its own jobs the outside option served. Energy, CO2 and
    energy cost are metered where they are drawn (the host, idle GPUs included); egress and
    the outside option are paid by the job's home. Per policy the rows sum to its totals.
    """
    price = result.run.scenario.carbon_price_usd_per_t
    rows = []
    for name, r in result.results.items():
        slots = r.site_slots.groupby("site", sort=False)[
            ["energy_kwh", "carbon_kg", "energy_cost_usd"]].sum()
        for site in result.run.setup.federation.sites:
            hosted = r.jobs[r.jobs["site"] == site.id]
            home = r.jobs[r.jobs["home_site"] == site.id]
            outside = r.outside[r.outside["home_site"] == site.id]
            carbon = float(slots.loc[site.id, "carbon_kg"] + outside["carbon_kg"].sum())
            transfer = float(home["transfer_cost_usd"].sum())
            outside_usd = float((outside["outside_cost_usd"]
                                 + outside["transfer_cost_usd"]).sum())
            energy_cost = float(slots.loc[site.id, "energy_cost_usd"])
            rows.append({
                "policy": name, "site": site.id,
                "jobs_hosted": len(hosted),
                "jobs_sent_away": int((home["site"] != site.id).sum()),
                "jobs_outside": len(outside),
                "energy_kwh": float(slots.loc[site.id, "energy_kwh"]
                                    + outside["energy_kwh"].sum()),
                "carbon_kg": carbon,
                "energy_cost_usd": energy_cost,
                "transfer_cost_usd": transfer,
                "outside_cost_usd": outside_usd,
                "total_cost_usd": total_cost_usd(energy_cost, transfer + outside_usd, carbon,
                                                 price),
            })
    return pd.DataFrame(rows)

