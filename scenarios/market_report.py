"""Presenting a market analysis: terminal tables, CSV/JSON files and plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from market.analysis import MarketPoint, SweepPoint
from market.games import Game, tolerance
from market.ledger import ledger_frame
from scenarios.build import ScenarioRun
from scenarios.outputs import json_safe
from sites.units import KG_PER_T

SEPARATOR = "+"


def coalition_key(coalition: tuple[str, ...]) -> str:
    """The ``carbonfed game`` file's key of a coalition: ``A+B``."""
    return SEPARATOR.join(coalition)


def scheme_rows(point: MarketPoint) -> dict[str, dict[str, Any]]:
    """Per scheme: shares, gains against standing alone, emissions and the diagnostics."""
    sites = point.outcome.sites
    alone = {s: point.values[(s,)].cost_usd for s in sites}
    out: dict[str, dict[str, Any]] = {}
    for name, result in point.schemes.items():
        if result.diagnostics is None:
            out[name] = {"not_applicable": result.not_applicable}
            continue
        d = result.diagnostics
        game = point.game
        tol = tolerance(game) if game is not None else 1e-9
        emissions = ({s: point.values[(s,)].carbon_kg for s in sites} if name == "isolated"
                     else dict(point.outcome.emissions_kg))
        gain = {s: alone[s] - result.shares_usd[s] for s in sites}
        blocking = list(d.max_excess_coalition) if d.max_excess > tol else None
        out[name] = {
            "shares_usd": result.shares_usd,
            "gain_usd": gain,
            "gain_fraction": {s: gain[s] / alone[s] if alone[s] else 0.0 for s in sites},
            "emissions_kg": emissions,
            "individually_rational": d.individually_rational,
            "individually_rational_by_site": {s: result.shares_usd[s] <= alone[s] + tol
                                              for s in sites},
            "in_core": d.in_core,
            "max_excess_usd": d.max_excess,
            "blocking_coalition": blocking,
            "blocking_saves_usd": d.max_excess if blocking else 0.0,
            "budget_balance_usd": d.efficiency_gap,
        }
    return out


def point_document(point: MarketPoint) -> dict[str, Any]:
    grand = point.grand
    sites = point.outcome.sites
    standalone = sum(point.values[(s,)].cost_usd for s in sites)
    return {
        "carbon_policy": {**point.policy.as_dict(),
                          "price_in_force_usd_per_t": point.carbon_price_usd_per_t,
                          "cap_dual_usd_per_t": point.cap_dual_usd_per_t,
                          "allowances_kg": point.allowances_kg,
                          # the cap in force (given, or standalone emissions x (1 - cut)) and
                          # whether it binds: false means met at price 0, i.e. no effect
                          "cap_in_force_t": (None if point.cap_kg is None
                                             else point.cap_kg / KG_PER_T),
                          "cap_binds": point.cap_binds},
        "coalitions": {coalition_key(c): {
            "cost_usd": v.cost_usd, "carbon_kg": v.carbon_kg, "energy_kwh": v.energy_kwh,
            "jobs_served": v.jobs_served, "jobs_unserved": v.jobs_unserved, "status": v.status}
            for c, v in point.values.items()},
        "standalone_cost_usd": standalone,
        "grand_cost_usd": grand.cost_usd,
        "savings_usd": standalone - grand.cost_usd,
        "federation": {"carbon_kg": grand.carbon_kg, "energy_kwh": grand.energy_kwh,
                       "cost_usd": grand.cost_usd,
                       "carbon_price_usd_per_t": point.carbon_price_usd_per_t},
        "shapley_sampled": None if point.shapley_estimate is None else {
            "mean_usd": dict(zip(sites, map(float, point.shapley_estimate.mean), strict=True)),
            "half_width_usd": dict(zip(sites, map(float, point.shapley_estimate.half_width),
                                       strict=True)),
            "confidence": point.shapley_estimate.confidence},
        "schemes": scheme_rows(point),
    }


def market_document(run: ScenarioRun, mode: str, points: list[MarketPoint],
                    curve: list[SweepPoint]) -> dict[str, Any]:
    first = point_document(points[0])
    return {
        "scenario": run.scenario.name,
        "value_mode": mode,
        "sites": list(points[0].outcome.sites),
        **first,
        "points": [first] + [point_document(p) for p in points[1:]],
        "sweep": [p.__dict__ for p in curve],
    }


def game_file(point: MarketPoint) -> dict[str, Any]:
    """The coalition values as a ``carbonfed game`` file (a cost game)."""
    assert point.game is not None
    return Game.to_mapping(point.game)


def print_market(run: ScenarioRun, mode: str, points: list[MarketPoint],
                 curve: list[SweepPoint], console: Console) -> None:
    sites = points[0].outcome.sites
    console.print(f"[bold]{run.scenario.name}[/bold]: {len(sites)} sites, "
                  f"{len(run.setup.jobs)} jobs, coalition values by '{mode}'")
    for point in points:
        _print_point(point, console)
    table = Table(title="Federation against the carbon price (marginal abatement curve)")
    for column in ("USD/t", "CO2 kg", "energy kWh", "cost USD"):
        table.add_column(column, justify="right")
    for p in curve:
        table.add_row(f"{p.carbon_price_usd_per_t:g}", f"{p.carbon_kg:,.2f}",
                      f"{p.energy_kwh:,.2f}", f"{p.cost_usd:,.2f}")
    console.print(table)


def _print_point(point: MarketPoint, console: Console) -> None:
    policy = point.policy
    price = point.carbon_price_usd_per_t
    how = "set" if policy.kind.value in ("tax", "none") else "implied by the cap"
    line = (f"carbon policy {policy.kind.value}: {price:,.2f} USD/t in force ({how})")
    if point.cap_kg is not None:
        line += f", cap {point.cap_kg / KG_PER_T:,.6g} t"
    if point.cap_dual_usd_per_t is not None:
        line += f", cap dual {point.cap_dual_usd_per_t:,.2f} USD/t"
    console.print(f"\n[bold]{line}[/bold]")
    if point.cap_binds is False and point.cap_kg is not None:
        console.print(f"[bold yellow]the cap does not bind[/bold yellow]: the federation emits "
                      f"{point.grand.carbon_kg / KG_PER_T:,.6g} t without a carbon price, "
                      f"within the cap of {point.cap_kg / KG_PER_T:,.6g} t; it changes "
                      "nothing (lower --cap-t or raise --cut to make it bite)")
    grand = point.grand
    console.print(f"federation: {grand.carbon_kg:,.2f} kg CO2, {grand.energy_kwh:,.2f} kWh, "
                  f"{grand.cost_usd:,.2f} USD")
    doc = point_document(point)
    values = Table(title="Coalition values c(S), USD (savings game s(S) = sum c({i}) - c(S))")
    values.add_column("coalition", overflow="fold")
    values.add_column("cost", justify="right")
    values.add_column("savings", justify="right")
    values.add_column("CO2 kg", justify="right")
    values.add_column("to outside", justify="right")
    shown = list(point.values.items())
    if len(shown) > 40:  # singletons and the grand coalition; the CSV has every one
        shown = [(c, v) for c, v in shown if len(c) in (1, len(point.outcome.sites))]
    for coalition, v in shown:
        alone = sum(point.values[(s,)].cost_usd for s in coalition)
        values.add_row(coalition_key(coalition), f"{v.cost_usd:,.2f}",
                       f"{alone - v.cost_usd:,.2f}", f"{v.carbon_kg:,.2f}",
                       f"{v.jobs_unserved:g}")
    console.print(values)
    if point.shapley_estimate is not None:
        _print_sampled(point, console)
        return
    rows = doc["schemes"]
    sites = point.outcome.sites
    shares = Table(title="What each site pays, USD (gain against standing alone; * not IR)")
    shares.add_column("scheme", overflow="fold")
    for s in sites:
        shares.add_column(s, justify="right")
    for name, row in rows.items():
        if "shares_usd" not in row:
            shares.add_row(name, *(["n/a"] * len(sites)))
            continue
        shares.add_row(name, *(
            f"{row['shares_usd'][s]:,.2f} ({row['gain_fraction'][s]:+.0%})"
            + ("" if row["individually_rational_by_site"][s] else "*") for s in sites))
    console.print(shares)
    diag = Table(title="Diagnostics per scheme")
    for column in ("scheme", "budget balance USD", "in core", "largest excess USD",
                   "coalition that would leave (saves USD)"):
        key = column.startswith(("scheme", "coal"))  # folded, never cut to "north+so…"
        diag.add_column(column, justify="left" if key else "right",
                        overflow="fold" if key else "ellipsis")
    for name, row in rows.items():
        if "shares_usd" not in row:
            diag.add_row(name, "", "", "", f"not applicable: {row['not_applicable']}")
            continue
        leave = ("-" if row["blocking_coalition"] is None else
                 f"{coalition_key(tuple(row['blocking_coalition']))} "
                 f"({row['blocking_saves_usd']:,.2f})")
        diag.add_row(name, f"{row['budget_balance_usd']:+,.2f}",
                     "yes" if row["in_core"] else "no", f"{row['max_excess_usd']:,.2f}", leave)
    console.print(diag)


def _print_sampled(point: MarketPoint, console: Console) -> None:
    estimate = point.shapley_estimate
    assert estimate is not None
    table = Table(title=f"Shapley value by permutation sampling ({estimate.samples_per_player} "
                  f"permutations, {estimate.confidence:.0%} interval), USD")
    for column in ("site", "pays", "+/-", "alone", "gain"):
        table.add_column(column, justify="left" if column == "site" else "right",
                         overflow="fold" if column == "site" else "ellipsis")
    for site, mean, half in zip(estimate.players, estimate.mean, estimate.half_width,
                                strict=True):
        alone = point.values[(site,)].cost_usd
        table.add_row(site, f"{mean:,.2f}", f"{half:,.2f}", f"{alone:,.2f}",
                      f"{alone - mean:,.2f}")
    console.print(table)
    console.print("the other schemes and the core need every coalition's value (--exact)",
                  style="dim")


def write_market_outputs(document: dict[str, Any], points: list[MarketPoint],
                         curve: list[SweepPoint], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    coalitions, shares, diagnostics, ledgers = [], [], [], []
    for k, (point, doc) in enumerate(zip(points, document["points"], strict=True)):
        key = {"point": k, "carbon_policy": point.policy.kind.value,
               "carbon_price_usd_per_t": point.carbon_price_usd_per_t}
        for coalition, v in point.values.items():
            coalitions.append({**key, "coalition": coalition_key(coalition),
                               "size": len(coalition), **{
                                   f: getattr(v, f) for f in ("cost_usd", "carbon_kg",
                                                              "energy_kwh", "jobs_served",
                                                              "jobs_unserved", "status")}})
        for name, row in doc["schemes"].items():
            if "shares_usd" not in row:
                continue
            for site in point.outcome.sites:
                shares.append({**key, "scheme": name, "site": site,
                               "share_usd": row["shares_usd"][site],
                               "gain_usd": row["gain_usd"][site],
                               "gain_fraction": row["gain_fraction"][site],
                               "emissions_kg": row["emissions_kg"][site],
                               "individually_rational":
                                   row["individually_rational_by_site"][site]})
            diagnostics.append({**key, "scheme": name, **{
                f: row[f] for f in ("individually_rational", "in_core", "max_excess_usd",
                                    "blocking_saves_usd", "budget_balance_usd")},
                "blocking_coalition": coalition_key(tuple(row["blocking_coalition"] or ()))})
        ledgers.append(ledger_frame(point.ledger).assign(**key))
    frames = {"coalitions.csv": pd.DataFrame(coalitions), "shares.csv": pd.DataFrame(shares),
              "diagnostics.csv": pd.DataFrame(diagnostics),
              "ledger.csv": pd.concat(ledgers, ignore_index=True)}
    written = []
    for name, frame in frames.items():
        frame.to_csv(out_dir / name, index=False)
        written.append(out_dir / name)
    (out_dir / "market.json").write_text(json.dumps(json_safe(document), indent=2))
    written.append(out_dir / "market.json")
    if points[0].game is not None:
        (out_dir / "game.json").write_text(json.dumps(game_file(points[0]), indent=2))
        written.append(out_dir / "game.json")
    written += _plots(document, curve, out_dir)
    return written


def _plots(document: dict[str, Any], curve: list[SweepPoint], out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sites = document["sites"]
    rows = {n: r for n, r in document["schemes"].items() if "gain_usd" in r and n != "isolated"}
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(sites) * max(1, len(rows)) / 3), 4))
    width = 0.8 / max(1, len(rows))
    colours = plt.get_cmap("tab10")
    for k, (name, row) in enumerate(rows.items()):
        xs = [i + (k - (len(rows) - 1) / 2) * width for i in range(len(sites))]
        ax.bar(xs, [row["gain_usd"][s] for s in sites], width, label=name, color=colours(k % 10))
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(range(len(sites)), sites, rotation=30)
    ax.set_ylabel("gain against standing alone (USD)")
    ax.set_title(f"{document['scenario']}: gain per site by scheme (below 0: the site would "
                 "rather stand alone)", fontsize=10)
    ax.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    gains = out_dir / "gains_by_scheme.png"
    fig.savefig(gains, dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([p.carbon_price_usd_per_t for p in curve], [p.carbon_kg for p in curve], "o-",
            color="#009E73")
    ax.set_xlabel("carbon price (USD/t)")
    ax.set_ylabel("federation emissions (kg CO2)")
    ax.set_title(f"{document['scenario']}: emissions against carbon price "
                 "(marginal abatement curve)", fontsize=10)
    fig.tight_layout()
    mac = out_dir / "abatement_curve.png"
    fig.savefig(mac, dpi=110)
    plt.close(fig)
    return [gains, mac]

