"""Carbon policies and the carbon price each puts in force (DESIGN.md, "Market").

* ``none``           carbon is free: price 0;
* ``tax``            the scenario's ``carbon_price_usd_per_t``;
* ``cap``            a federation-wide limit on the emissions of serving the federation's jobs
                     (tonnes per run, the outside option's included): the implied price is
                     the lowest carbon price at which the grand coalition meets the cap,
                     found by bisection on its value function;
* ``cap-and-trade``  the same cap, given as allowances per site (default: each site's
                     standalone emissions without a carbon price, times ``1 - cut``; a given
                     cap is shared in that proportion) traded at the implied price: a site
                     pays the price for what it emits and is paid it for its allowances.

A price in force is what every coalition value is computed at, so a cap is met by the
grand coalition the way a tax at its implied price would meet it.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass

from sites.errors import InputError
from sites.units import KG_PER_T

SOURCE = "carbon policy"  # what errors about a policy's fields call it


class CarbonPolicyKind(enum.StrEnum):
    NONE = "none"
    TAX = "tax"
    CAP = "cap"
    CAP_AND_TRADE = "cap-and-trade"

    @property
    def capped(self) -> bool:
        return self in (CarbonPolicyKind.CAP, CarbonPolicyKind.CAP_AND_TRADE)


# The carbon policies by name (scenario files and the CLI name them from here).
CARBON_POLICY_KINDS: tuple[str, ...] = tuple(kind.value for kind in CarbonPolicyKind)


@dataclass(frozen=True)
class CarbonPolicy:
    kind: CarbonPolicyKind = CarbonPolicyKind.TAX
    price_usd_per_t: float = 0.0  # the tax
    cap_t: float | None = None  # cap: required; cap-and-trade: default from ``cut``
    cut: float = 0.1  # cap-and-trade: allowances = standalone emissions x (1 - cut)

    def __post_init__(self) -> None:
        # Errors name this class's fields; the CLI and the scenario loader say which flag or
        # file field set them (``sites.errors.named_as_given``).
        if self.kind is CarbonPolicyKind.CAP and self.cap_t is None:
            raise InputError(SOURCE, "cap_t", "a cap needs a limit (tonnes per run)")
        if self.cap_t is not None and not (math.isfinite(self.cap_t) and self.cap_t > 0):
            raise InputError(SOURCE, "cap_t", f"must be > 0 tonnes per run (got {self.cap_t:g})")
        if not 0 <= self.cut < 1:
            raise InputError(SOURCE, "cut", f"must be in [0, 1) (got {self.cut:g})")

    def as_dict(self) -> dict:
        return {"kind": self.kind.value, "price_usd_per_t": self.price_usd_per_t,
                "cap_t": self.cap_t, "cut": self.cut}


# Beyond this price every option's carbon dwarfs its energy cost: emissions there are the
# lowest the federation can reach with its pools and the outside option.
MAX_PRICE_USD_PER_T = 100_000.0
PRICE_TOLERANCE_USD_PER_T = 0.5


@dataclass(frozen=True)
class ImpliedPrice:
    price_usd_per_t: float
    carbon_kg: float  # the grand coalition's emissions at that price
    evaluations: int

    @property
    def binds(self) -> bool:
        """False when the federation meets the cap without any carbon price (price 0)."""
        return self.price_usd_per_t > 0


def implied_price(emissions_kg_at: Callable[[float], float], cap_kg: float,
                  tolerance_usd_per_t: float = PRICE_TOLERANCE_USD_PER_T) -> ImpliedPrice:
    """The lowest carbon price (within ``tolerance``) whose plan emits at most ``cap_kg``.

    Emissions fall as the price rises (the planner trades cost for carbon); a cap that even
    ``MAX_PRICE_USD_PER_T`` cannot meet is unreachable and raises ``InputError`` on ``cap_t``
    naming the lowest emissions found.
    """
    evaluations = 0

    def emissions(price: float) -> float:
        nonlocal evaluations
        evaluations += 1
        return emissions_kg_at(price)

    at_zero = emissions(0.0)
    if at_zero <= cap_kg:
        return ImpliedPrice(0.0, at_zero, evaluations)
    lo, hi = 0.0, 100.0
    at_hi = emissions(hi)
    while at_hi > cap_kg:
        if hi >= MAX_PRICE_USD_PER_T:
            raise InputError(SOURCE, "cap_t",
                             f"{cap_kg / KG_PER_T:g} t is unreachable: the lowest emissions the "
                             f"federation reaches (at "
                             f"{MAX_PRICE_USD_PER_T:,.0f} USD/t) are "
                             f"{at_hi / KG_PER_T:.6g} t")
        lo, hi = hi, min(hi * 4, MAX_PRICE_USD_PER_T)
        at_hi = emissions(hi)
    while hi - lo > tolerance_usd_per_t:
        mid = (lo + hi) / 2
        at_mid = emissions(mid)
        if at_mid <= cap_kg:
            hi, at_hi = mid, at_mid
        else:
            lo = mid
    return ImpliedPrice(hi, at_hi, evaluations)
