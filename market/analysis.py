"""The analyst's question for one federation: who gains, who would leave, at what carbon cost.

``analyse`` values every coalition (or a sample, beyond ``exact_up_to`` sites) at the carbon
price in force, builds the cost game, applies every payment scheme and checks it, and writes
the settlement ledger; ``sweep`` traces the grand coalition's emissions, energy and cost
against the carbon price (the marginal abatement cost curve).

Coalition values go through ``evaluate`` (in-process by default), so an executor can spread
them over workers without this module knowing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from broker.period_plan import coalition_problem, with_carbon_price
from market.carbon_policy import CarbonPolicy, CarbonPolicyKind, implied_price
from market.games import Game, GameKind, RuleSettings, ShapleyEstimate, sampled_shapley
from market.ledger import LedgerRow, ledger_rows
from market.outcome import GrandOutcome
from market.schemes import (
    DEFAULT_MARKUP,
    SCHEMES,
    SchemeInputs,
    SchemeResult,
    apply_scheme,
    check_markup,
)
from market.valuation import CoalitionValue, PlanValuation, Valuation, at_carbon_price
from optimization import allocation_lp_duals
from sites.units import KG_PER_T, usd_per_t_to_usd_per_kg

Coalition = tuple[str, ...]
Evaluate = Callable[[Valuation, Sequence[Coalition]], list[CoalitionValue]]


def evaluate_in_process(valuation: Valuation,
                        coalitions: Sequence[Coalition]) -> list[CoalitionValue]:
    return [valuation.value(c) for c in coalitions]


@dataclass(frozen=True)
class MarketSettings:
    schemes: tuple[str, ...] = tuple(SCHEMES)
    markup: float = DEFAULT_MARKUP
    exact_up_to: int = 12  # sites; beyond, Shapley by permutation sampling
    exact: bool | None = None  # force exact (True) or sampled (False)
    samples: int = 200  # permutations when sampled
    seed: int = 0
    rules: RuleSettings = field(default_factory=RuleSettings)

    def __post_init__(self) -> None:
        check_markup(self.markup)  # before any coalition is valued, not after


@dataclass(frozen=True)
class MarketPoint:
    """One carbon policy on one federation: values, game, schemes, ledger."""

    policy: CarbonPolicy
    carbon_price_usd_per_t: float  # in force: set (tax) or implied (cap)
    cap_dual_usd_per_t: float | None  # plan mode with a cap: the cap constraint's LP dual
    values: dict[Coalition, CoalitionValue]
    game: Game | None  # None when sampled
    shapley_estimate: ShapleyEstimate | None  # when sampled
    schemes: dict[str, SchemeResult]
    ledger: list[LedgerRow]
    outcome: GrandOutcome
    allowances_kg: dict[str, float] | None  # cap-and-trade
    cap_kg: float | None = None  # cap and cap-and-trade: the cap in force (given or from cut)
    cap_binds: bool | None = None  # False: the federation meets the cap at price 0

    @property
    def grand(self) -> CoalitionValue:
        return self.values[self.outcome.sites]


@dataclass(frozen=True)
class SweepPoint:
    carbon_price_usd_per_t: float
    carbon_kg: float
    cost_usd: float
    energy_kwh: float


def all_coalitions(sites: Sequence[str]) -> list[Coalition]:
    """Every non-empty coalition, in bitmask order (the ``market.games`` table order)."""
    n = len(sites)
    return [tuple(s for i, s in enumerate(sites) if mask >> i & 1) for mask in range(1, 1 << n)]


def cost_game(sites: Sequence[str], values: dict[Coalition, CoalitionValue]) -> Game:
    table = np.zeros(1 << len(sites))
    for mask, coalition in enumerate(all_coalitions(sites), start=1):
        table[mask] = values[coalition].cost_usd
    return Game(tuple(sites), GameKind.COST, table)


def price_in_force(valuation: Valuation, policy: CarbonPolicy,
                   cap_kg: float | None) -> tuple[float, float | None, bool | None]:
    """(carbon price in force, cap dual in plan mode or None, whether the cap binds or None)."""
    if policy.kind is CarbonPolicyKind.NONE:
        return 0.0, None, None
    if policy.kind is CarbonPolicyKind.TAX:
        return policy.price_usd_per_t, None, None
    assert cap_kg is not None
    found = implied_price(
        lambda price: at_carbon_price(valuation, price).value(valuation.sites).carbon_kg, cap_kg)
    dual = cap_dual_usd_per_t(valuation, cap_kg) if isinstance(valuation,
                                                               PlanValuation) else None
    return found.price_usd_per_t, dual, found.binds


def cap_dual_usd_per_t(valuation: Valuation, cap_kg: float) -> float | None:
    """The dual of the cap row in the grand coalition's period LP without a carbon price."""
    pp = with_carbon_price(valuation.period_problem, 0.0)
    problem, _ = coalition_problem(pp, set(valuation.sites), carbon_cap_kg=cap_kg)
    duals = allocation_lp_duals(problem, valuation.plan_settings.solver)
    if duals.carbon_price_usd_per_kg is None or not duals.status.has_solution:
        return None
    return duals.carbon_price_usd_per_kg / usd_per_t_to_usd_per_kg(1.0)


def analyse(valuation: Valuation, policy: CarbonPolicy, settings: MarketSettings | None = None,
            evaluate: Evaluate = evaluate_in_process) -> MarketPoint:
    settings = settings or MarketSettings()
    sites = valuation.sites
    allowances = None
    cap_kg = policy.cap_t * KG_PER_T if policy.cap_t is not None else None
    if policy.kind is CarbonPolicyKind.CAP_AND_TRADE:
        free = at_carbon_price(valuation, 0.0)
        standalone = dict(zip(sites, (v.carbon_kg for v in evaluate(free, [(s,) for s in sites])),
                              strict=True))
        total = sum(standalone.values())
        cap_kg = cap_kg if cap_kg is not None else total * (1 - policy.cut)
        allowances = {s: cap_kg * standalone[s] / total for s in sites}
    price, dual, binds = price_in_force(valuation, policy, cap_kg)
    valuation = at_carbon_price(valuation, price)
    exact = settings.exact if settings.exact is not None else len(sites) <= settings.exact_up_to
    estimate = None
    if exact:
        coalitions = all_coalitions(sites)
        values = dict(zip(coalitions, evaluate(valuation, coalitions), strict=True))
        game: Game | None = cost_game(sites, values)
    else:
        values, estimate = _sampled(valuation, settings, evaluate)
        game = None
    outcome = valuation.grand_outcome()
    if allowances is not None:
        outcome, game = _with_allowances(outcome, game, allowances, price)
    schemes: dict[str, SchemeResult] = {}
    ledger: list[LedgerRow] = []
    if game is not None:
        inputs = SchemeInputs(
            game=game, outcome=outcome, gpus=tuple(s.total_gpus for s in
                                                   valuation.setup.federation.sites),
            markup=settings.markup,
            prices_usd_per_gpu_slot=(valuation.clearing_prices() if "market" in settings.schemes
                                     else None),
            price_slot_h=valuation.plan_settings.slot_h, settings=settings.rules)
        for name in settings.schemes:
            schemes[name] = apply_scheme(name, inputs)
            if name != "isolated" and schemes[name].diagnostics is not None:
                ledger += ledger_rows(inputs, schemes[name])
    return MarketPoint(policy, price, dual, values, game, estimate, schemes, ledger, outcome,
                       allowances, cap_kg if policy.kind.capped else None, binds)


def _with_allowances(outcome: GrandOutcome, game: Game | None, allowances: dict[str, float],
                     price: float) -> tuple[GrandOutcome, Game | None]:
    """Free allowances are worth the price to their holder: c(S) - price x a(S)."""
    value = {s: price * a / KG_PER_T for s, a in allowances.items()}
    base = {s: outcome.base_usd[s] - value[s] for s in outcome.sites}
    shifted = GrandOutcome(outcome.sites, outcome.hosted, base, outcome.emissions_kg,
                           outcome.carbon_price_usd_per_t)
    if game is None:
        return shifted, None
    return shifted, game.transformed(1.0, [-value[s] for s in game.players])


def _sampled(valuation: Valuation, settings: MarketSettings,
             evaluate: Evaluate) -> tuple[dict[Coalition, CoalitionValue], ShapleyEstimate]:
    """Permutation-sampled Shapley: the coalitions the permutations need, valued in one batch
    (through ``evaluate``), then the toolkit's estimator on the cached values."""
    sites = valuation.sites
    needed: set[frozenset[str]] = set()

    def record(members: frozenset[str]) -> float:
        needed.add(members)
        return 0.0

    sampled_shapley(sites, record, rng=np.random.default_rng(settings.seed),
                    samples=settings.samples)
    order = {s: i for i, s in enumerate(sites)}
    coalitions = sorted((tuple(sorted(c, key=order.__getitem__)) for c in needed if c),
                        key=lambda c: (len(c), [order[s] for s in c]))
    if sites not in coalitions:
        coalitions.append(sites)
    values = dict(zip(coalitions, evaluate(valuation, coalitions), strict=True))
    by_set = {frozenset(c): v.cost_usd for c, v in values.items()}
    estimate = sampled_shapley(sites, lambda members: by_set[members],
                               rng=np.random.default_rng(settings.seed), samples=settings.samples)
    return values, estimate


def sweep(valuation: Valuation, prices: Sequence[float],
          evaluate: Evaluate = evaluate_in_process) -> list[SweepPoint]:
    """The grand coalition at each carbon price: the marginal abatement cost curve."""
    points = []
    for price in prices:
        grand = evaluate(at_carbon_price(valuation, price), [valuation.sites])[0]
        points.append(SweepPoint(price, grand.carbon_kg, grand.cost_usd, grand.energy_kwh))
    return points

