"""The ``carbonfed market`` report: gains per scheme, rationality and core diagnostics,
the abatement curve and the settlement balances.

Built from the same ``document`` dict that is written as market.json (and the ledger the
CSV holds), so the page cannot disagree with the files.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from bokeh.models import ColumnDataSource, FactorRange

from market.ledger import LedgerRow, balances
from scenarios.html_report.figures import heat_map, new_figure, rounded
from scenarios.html_report.page import Cell, Page
from scenarios.html_report.palette import colour_map

SEPARATOR = "+"  # the coalition key of market.json and ``carbonfed game`` files


def write_market_report(document: dict[str, Any], ledger: list[LedgerRow],
                        out_dir: Path) -> Path:
    return market_page(document, ledger).write(out_dir / "report.html")


def applicable(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: row for name, row in document["schemes"].items() if "shares_usd" in row}


def market_page(document: dict[str, Any], ledger: list[LedgerRow]) -> Page:
    page = Page(f"carbonfed market: {document['scenario']}")
    page.paragraph(summary_paragraph(document))
    points_section(page, document)
    gains_section(page, document)
    diagnostics_section(page, document)
    abatement_section(page, document)
    balances_section(page, document, ledger)
    return page


def summary_paragraph(document: dict[str, Any]) -> str:
    policy = document["carbon_policy"]
    sites = document["sites"]
    line = (f"{document['scenario']}: {len(sites)} sites ({', '.join(sites)}), coalition values "
            f"by '{document['value_mode']}'; carbon policy {policy['kind']} at "
            f"{policy['price_in_force_usd_per_t']:,.2f} USD/t in force")
    if policy.get("cap_in_force_t") is not None:
        line += f", cap {policy['cap_in_force_t']:,.6g} t"
        if policy.get("cap_binds") is False:
            line += " (it does not bind: the federation meets it without a carbon price)"
    fed = document["federation"]
    return (f"{line}. Standing alone the sites pay {document['standalone_cost_usd']:,.2f} USD; "
            f"federated {document['grand_cost_usd']:,.2f} USD, saving "
            f"{document['savings_usd']:,.2f} USD, with {fed['carbon_kg']:,.2f} kg CO2 and "
            f"{fed['energy_kwh']:,.2f} kWh.")


def points_section(page: Page, document: dict[str, Any]) -> None:
    """With several carbon policies (``--carbon-prices``), one line each; the rest of the
    page, like market.json's top level, is the first."""
    points = document["points"]
    if len(points) < 2:
        return
    page.table("points", "Carbon policies analysed (the sections below show the first)",
               ["carbon policy", "USD/t in force", "CO2 kg", "federated cost USD",
                "savings USD"],
               [[Cell(p["carbon_policy"]["kind"], numeric=False),
                 Cell(f"{p['carbon_policy']['price_in_force_usd_per_t']:,.2f}"),
                 Cell(f"{p['federation']['carbon_kg']:,.2f}"),
                 Cell(f"{p['grand_cost_usd']:,.2f}"), Cell(f"{p['savings_usd']:,.2f}")]
                for p in points])


def gains_section(page: Page, document: dict[str, Any]) -> None:
    page.heading("Gain per site under each scheme")
    sites = document["sites"]
    rows = applicable(document)
    shown = {n: r for n, r in rows.items() if n != "isolated"}  # isolated gains 0 by definition
    colours = colour_map(list(shown))
    factors = [(site, name) for site in sites for name in shown]
    source = ColumnDataSource({
        "x": factors, "gain": rounded([shown[n]["gain_usd"][s] for s, n in factors], 6),
        "share": rounded([shown[n]["shares_usd"][s] for s, n in factors], 6),
        "scheme": [n for _, n in factors], "site": [s for s, _ in factors],
        "colour": [colours[n] for _, n in factors]})
    fig = new_figure("Gain against standing alone, per site and scheme", "site / scheme",
                     "gain (USD)", width=max(560, 40 + 22 * len(factors)), height=360,
                     x_range=FactorRange(factors=factors),
                     tooltips=[("site", "@site"), ("scheme", "@scheme"),
                               ("gain", "@gain{0,0.00} USD"), ("pays", "@share{0,0.00} USD")])
    fig.vbar(x="x", top="gain", width=0.85, color="colour", source=source,
             legend_field="scheme")
    fig.xaxis.major_label_orientation = 1.2
    fig.xaxis.group_text_font_size = "11px"
    fig.xgrid.grid_line_color = None
    fig.add_layout(fig.legend[0], "right")
    page.figure("gains", fig,
                "Each site's gain (its standalone cost minus what it pays) under each scheme: a "
                "bar below zero is a site that would rather stand alone under that scheme.")
    page.table("shares", "What each site pays, USD (gain against standing alone; * not IR)",
               ["scheme", *sites],
               [[Cell(name, numeric=False),
                 *(Cell(f"{row['shares_usd'][s]:,.2f} ({row['gain_fraction'][s]:+.0%})"
                        + ("" if row["individually_rational_by_site"][s] else "*"),
                        attrs={"scheme": name, "site": s},
                        bad=not row["individually_rational_by_site"][s]) for s in sites)]
                for name, row in rows.items()])


def diagnostics_section(page: Page, document: dict[str, Any]) -> None:
    page.heading("Individual rationality and the core")
    table_rows = []
    for name, row in document["schemes"].items():
        if "shares_usd" not in row:
            table_rows.append([Cell(name, numeric=False), Cell(""), Cell(""), Cell(""),
                               Cell(""), Cell(f"not applicable: {row['not_applicable']}",
                                             numeric=False)])
            continue
        blocking = row["blocking_coalition"]
        leave = ("-" if blocking is None else
                 f"{SEPARATOR.join(blocking)} ({row['blocking_saves_usd']:,.2f})")
        not_ir = [s for s, ok in row["individually_rational_by_site"].items() if not ok]
        key = {"scheme": name}
        table_rows.append([
            Cell(name, numeric=False),
            Cell("yes" if row["individually_rational"] else f"no ({', '.join(not_ir)})",
                 numeric=False, attrs={**key, "field": "individually_rational"},
                 bad=not row["individually_rational"]),
            Cell(f"{row['budget_balance_usd']:+,.2f}",
                 attrs={**key, "field": "budget_balance_usd"}),
            Cell("yes" if row["in_core"] else "no", numeric=False,
                 attrs={**key, "field": "in_core"}, bad=not row["in_core"]),
            Cell(f"{row['max_excess_usd']:,.2f}", attrs={**key, "field": "max_excess_usd"}),
            Cell(leave, numeric=False, attrs={**key, "field": "blocking_coalition"},
                 bad=blocking is not None)])
    page.table("diagnostics", "Diagnostics per scheme (a positive largest excess names the "
               "coalition that would do better on its own)",
               ["scheme", "individually rational", "budget balance USD", "in core",
                "largest excess USD", "coalition that would leave (saves USD)"], table_rows)
    rows = applicable(document)
    names = list(rows)
    source = ColumnDataSource({
        "scheme": names, "excess": rounded([rows[n]["max_excess_usd"] for n in names], 6),
        "coalition": [SEPARATOR.join(rows[n]["blocking_coalition"] or []) or "none"
                      for n in names],
        "colour": ["#D55E00" if rows[n]["blocking_coalition"] else "#0072B2" for n in names]})
    fig = new_figure("Largest coalition excess per scheme", "scheme", "largest excess (USD)",
                     width=620, height=320, x_range=names,
                     tooltips=[("scheme", "@scheme"), ("largest excess", "@excess{0,0.00} USD"),
                               ("blocking coalition", "@coalition")])
    fig.vbar(x="scheme", top="excess", width=0.7, color="colour", source=source)
    fig.xaxis.major_label_orientation = 0.8
    fig.xgrid.grid_line_color = None
    page.figure("excess", fig,
                "How much the most aggrieved coalition would save by leaving: bars above zero "
                "(vermillion) are schemes outside the core, and hovering names the coalition; "
                "bars at or below zero are in the core, unless the scheme is not efficient "
                "(see budget balance), as the isolated baseline never is.")


def abatement_section(page: Page, document: dict[str, Any]) -> None:
    page.heading("Marginal abatement curve")
    sweep = document["sweep"]
    source = ColumnDataSource({
        "price": [p["carbon_price_usd_per_t"] for p in sweep],
        "kg": rounded([p["carbon_kg"] for p in sweep], 6),
        "cost": rounded([p["cost_usd"] for p in sweep], 6)})
    fig = new_figure("Federation emissions against the carbon price", "carbon price (USD/t)",
                     "emissions (kg CO2)", width=620, height=340,
                     tooltips=[("price", "@price{0,0} USD/t"), ("emissions", "@kg{0,0.00} kg"),
                               ("cost", "@cost{0,0.00} USD")])
    fig.line(x="price", y="kg", source=source, color="#009E73", line_width=2)
    fig.scatter(x="price", y="kg", source=source, color="#009E73", size=8)
    page.figure("abatement", fig,
                "Each point is the federation's plan at one carbon price: the steeper the drop "
                "between two prices, the more emissions that price step buys.")
    page.table("sweep", "Federation against the carbon price (marginal abatement curve)",
               ["USD/t", "CO2 kg", "energy kWh", "cost USD"],
               [[Cell(f"{p['carbon_price_usd_per_t']:g}",
                      attrs={"price": f"{p['carbon_price_usd_per_t']:g}",
                             "field": "carbon_price_usd_per_t"}),
                 *(Cell(f"{p[f]:,.2f}", attrs={"price": f"{p['carbon_price_usd_per_t']:g}",
                                               "field": f})
                   for f in ("carbon_kg", "energy_kwh", "cost_usd"))] for p in sweep])


def scheme_balances(ledger: list[LedgerRow]) -> dict[str, dict[str, float]]:
    """Per scheme, what each party received minus what it paid (``market.ledger.balances``)."""
    by_scheme: dict[str, list[LedgerRow]] = defaultdict(list)
    for entry in ledger:
        by_scheme[entry.scheme].append(entry)
    return {name: balances(entries) for name, entries in by_scheme.items()}


def balances_section(page: Page, document: dict[str, Any], ledger: list[LedgerRow]) -> None:
    page.heading("Settlement balances")
    table = scheme_balances(ledger)
    if not table:
        page.paragraph("No settlement: no job ran away from home and no scheme settles "
                       "shares.")
        return
    schemes = list(table)
    parties = list(document["sites"])
    parties += sorted({p for b in table.values() for p in b} - set(parties))
    values = {(party, name): table[name].get(party, 0.0) for name in schemes
              for party in parties}
    fig = heat_map("Balance per site and scheme (USD received minus paid)", "party", "scheme",
                   parties, schemes, values, "USD", fmt=_money, diverging=True, size=60)
    page.figure("balances", fig,
                "What each site receives (blue) or pays (red) once the ledger settles under each "
                "scheme; every row sums to zero, so the colours show who funds whom.")
    page.table("balances", "Settlement balance per scheme, USD (received minus paid)",
               ["scheme", *parties],
               [[Cell(name, numeric=False),
                 *(Cell(_money(table[name].get(p, 0.0)),
                        attrs={"scheme": name, "party": p}) for p in parties)]
                for name in schemes])


def _money(value: float) -> str:
    return f"{round(value, 2) + 0.0:+,.2f}"  # never "-0.00"
