"""The settlement ledger: who pays whom, one row per hosted job, under a scheme.

A row per job run away from home (payer: its home, payee: its host) with its GPU-hours, kWh,
kg and money: energy and carbon at cost, the egress its home paid to move it (to the network,
not to the host), and the scheme's price on top (the markup for ``cost-plus``, the capacity
rent for ``market``, none for the game rules). ``amount_usd`` is what changes hands.

Game-rule schemes (Shapley, nucleolus, ...) fix each site's total, not a price per job: their
ledger settles the jobs at cost and adds one ``settlement`` row per site with the
``federation`` clearing account, so that every site's balance matches its share. The
clearing account nets to zero because the shares sum to c(N).

A site's balance is what it receives minus what it pays; balances sum to zero, and a site's
share is its base (its own bills) minus its balance.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass

import pandas as pd

from market.schemes import SCHEMES, PaymentScheme, SchemeInputs, SchemeResult

CLEARING = "federation"


@dataclass(frozen=True)
class LedgerRow:
    scheme: str
    kind: str  # "job" or "settlement"
    round_h: float  # when the job started running (settlement rows: 0)
    payer: str
    payee: str
    job_id: str
    gpu_hours: float
    energy_kwh: float
    carbon_kg: float
    energy_usd: float
    carbon_usd: float
    transfer_usd: float
    price_usd: float
    amount_usd: float


def job_rows(scheme_name: str, inputs: SchemeInputs) -> list[LedgerRow]:
    """One row per job run away from home, paid as the scheme says (at cost for rules)."""
    scheme = SCHEMES[scheme_name]
    rows = []
    for job in inputs.outcome.hosted:
        if not job.remote:
            continue
        amount = (scheme.payment_usd(job, inputs) if isinstance(scheme, PaymentScheme)
                  else job.at_cost_usd)
        rows.append(LedgerRow(
            scheme_name, "job", job.run_from_h, job.home, job.host, job.job_id,
            job.gpu_hours, job.energy_kwh, job.carbon_kg, job.energy_cost_usd,
            job.carbon_cost_usd, job.transfer_cost_usd, amount - job.at_cost_usd, amount))
    return rows


def ledger_rows(inputs: SchemeInputs, result: SchemeResult) -> list[LedgerRow]:
    scheme = SCHEMES[result.scheme]
    rows = job_rows(result.scheme, inputs)
    if not isinstance(scheme, PaymentScheme):
        have = balances(rows)
        for site in inputs.outcome.sites:
            owed = inputs.outcome.base_usd[site] - result.shares_usd[site] - have.get(site, 0.0)
            payer, payee = (CLEARING, site) if owed >= 0 else (site, CLEARING)
            rows.append(LedgerRow(result.scheme, "settlement", 0.0, payer, payee, "", 0.0, 0.0,
                                  0.0, 0.0, 0.0, 0.0, abs(owed), abs(owed)))
    return rows


def balances(rows: list[LedgerRow]) -> dict[str, float]:
    """What each party received minus what it paid."""
    out: dict[str, float] = defaultdict(float)
    for row in rows:
        out[row.payee] += row.amount_usd
        out[row.payer] -= row.amount_usd
    return dict(out)


def ledger_frame(rows: list[LedgerRow]) -> pd.DataFrame:
    return pd.DataFrame([asdict(r) for r in rows],
                        columns=list(LedgerRow.__dataclass_fields__))
