"""Colour-blind-safe colours for categories: sites, zones, policies, schemes."""

from __future__ import annotations

from bokeh.palettes import TolRainbow

# Okabe and Ito's eight colours are the usual colour-blind-safe set. Past eight, Paul Tol's
# discrete rainbow, the scheme he gives for more categories than his colour-blind-safe
# qualitative sets hold (up to 23), keeps up to 20 sites apart; every panel and matrix row
# also names its site, so colour is never the only key.
MAX_CATEGORIES = 23
# Okabe-Ito, reordered so that the first few (most often used) contrast well on white: the
# yellow, faint as a line, comes late.
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#E69F00", "#56B4E9", "#CC79A7", "#000000",
             "#F0E442")


def colours(n: int) -> list[str]:
    """``n`` distinct colours (Okabe-Ito up to 8, Tol's discrete rainbow up to 23)."""
    if n <= 0:
        return []
    if n <= 8:
        return list(OKABE_ITO[:n])
    if n <= MAX_CATEGORIES:
        return list(TolRainbow[n])
    # Beyond 23 colour alone cannot keep categories apart; every panel is also labelled.
    base = list(TolRainbow[MAX_CATEGORIES])
    return [base[k % MAX_CATEGORIES] for k in range(n)]


def colour_map(names: list[str]) -> dict[str, str]:
    return dict(zip(names, colours(len(names)), strict=True))
