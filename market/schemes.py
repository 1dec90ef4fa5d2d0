"""Payment schemes: who pays what for the federation's result, and whether it holds together.

Every scheme turns the grand coalition's outcome (``market.outcome``) and the coalition cost
game into what each site pays (``shares_usd``, cost terms: less is better):

* ``isolated``      no federation: each site pays its standalone cost c({i}) (the reference);
* ``shapley``, ``nucleolus``, ``least-core``, ``proportional`` (to standalone cost),
  ``proportional-gpus`` (to GPUs contributed), ``equal``: the ``market.games`` rules on the
  cost game, i.e. on its savings game;
* ``cost-plus``     a hosted job's home pays its host the metered energy and carbon cost times
                    (1 + markup);
* ``market``        a hosted job's home pays its host energy and carbon plus the clearing
                    price of the GPU-slots it held (the capacity duals of the period plan's LP
                    relaxation, like locational marginal prices).

For the payment schemes a site pays its base (the bills of what it hosts, the egress and
outside option of its own jobs) plus what it pays hosts, minus what it is paid. Diagnostics
for every scheme come from ``market.games.diagnose``: budget balance (shares sum to c(N)),
individual rationality (no site pays more than alone), core membership and the coalition with
the largest excess, which would leave (and save that excess) when it is positive.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from market.games import (
    AllocationDiagnostics,
    Game,
    RuleNotApplicableError,
    RuleSettings,
    allocate,
    diagnose,
)
from market.outcome import GrandOutcome, HostedJob, capacity_rent_usd
from sites.errors import InputError

DEFAULT_MARKUP = 0.1  # cost-plus: the host earns 10% over its metered cost


def check_markup(markup: float) -> float:
    """The cost-plus markup, checked once for every path (CLI, ledgers, API).

    A negative markup would have hosts pay for the privilege of hosting (-5 pays a host -4x
    its cost), which no market agrees to: refused, naming the field ``markup``.
    """
    if not (math.isfinite(markup) and markup >= 0):
        raise InputError("cost-plus", "markup", f"must be a finite number >= 0, a fraction of "
                         f"the metered cost (got {markup:g})")
    return markup


@dataclass(frozen=True)
class SchemeInputs:
    game: Game | None  # cost game over the sites (None: payment schemes and ledgers only)
    outcome: GrandOutcome
    gpus: tuple[int, ...]  # GPUs each site contributes
    markup: float = DEFAULT_MARKUP
    prices_usd_per_gpu_slot: np.ndarray | None = None  # for ``market``
    price_slot_h: float = 1.0
    settings: RuleSettings = field(default_factory=RuleSettings)

    def __post_init__(self) -> None:
        check_markup(self.markup)


@dataclass(frozen=True)
class SchemeResult:
    scheme: str
    shares_usd: dict[str, float]
    diagnostics: AllocationDiagnostics | None
    note: str = ""
    not_applicable: str = ""


class Scheme(ABC):
    summary: str = ""

    @abstractmethod
    def shares(self, inputs: SchemeInputs) -> np.ndarray:
        """What each site pays, in ``inputs.game.players`` order."""


class PaymentScheme(Scheme):
    """A scheme defined by what a hosted job's home pays its host."""

    @abstractmethod
    def payment_usd(self, job: HostedJob, inputs: SchemeInputs) -> float:
        """What the home pays the host for ``job`` (energy and carbon included)."""

    def shares(self, inputs: SchemeInputs) -> np.ndarray:
        paid = dict(inputs.outcome.base_usd)
        for job in inputs.outcome.hosted:
            if job.remote:
                amount = self.payment_usd(job, inputs)
                paid[job.home] += amount
                paid[job.host] -= amount
        return np.array([paid[s] for s in inputs.outcome.sites])


class IsolatedScheme(Scheme):
    summary = "no federation: each site pays its standalone cost"

    def shares(self, inputs: SchemeInputs) -> np.ndarray:
        return needs_game(inputs).standalone_values.copy()


class RuleScheme(Scheme):
    """A ``market.games`` rule applied to the cost game."""

    def __init__(self, rule: str, weights_from_gpus: bool = False) -> None:
        self.rule = rule
        self.weights_from_gpus = weights_from_gpus

    def shares(self, inputs: SchemeInputs) -> np.ndarray:
        settings = inputs.settings
        if self.weights_from_gpus:
            settings = RuleSettings(tuple(map(float, inputs.gpus)), settings.solver,
                                    settings.lp_backend)
        return allocate(needs_game(inputs), self.rule, settings).shares


class CostPlusScheme(PaymentScheme):
    summary = "a hosted job pays its host metered energy and carbon x (1 + markup)"

    def payment_usd(self, job: HostedJob, inputs: SchemeInputs) -> float:
        return (1.0 + inputs.markup) * job.at_cost_usd


class MarketScheme(PaymentScheme):
    summary = "energy and carbon plus uniform clearing prices per pool and slot (LP duals)"

    def payment_usd(self, job: HostedJob, inputs: SchemeInputs) -> float:
        if inputs.prices_usd_per_gpu_slot is None:
            raise RuleNotApplicableError("no clearing prices (the period LP was not solved)")
        return job.at_cost_usd + capacity_rent_usd(job, inputs.prices_usd_per_gpu_slot,
                                                   inputs.price_slot_h)


PAYMENT_SCHEMES = ("cost-plus", "market")
SCHEMES: dict[str, Scheme] = {
    "isolated": IsolatedScheme(),
    "shapley": RuleScheme("shapley"),
    "nucleolus": RuleScheme("nucleolus"),
    "least-core": RuleScheme("least-core"),
    "proportional": RuleScheme("proportional"),
    "proportional-gpus": RuleScheme("proportional", weights_from_gpus=True),
    "equal": RuleScheme("equal"),
    "cost-plus": CostPlusScheme(),
    "market": MarketScheme(),
}


def needs_game(inputs: SchemeInputs) -> Game:
    if inputs.game is None:
        raise RuleNotApplicableError("needs the coalition values (carbonfed market)")
    return inputs.game


def apply_scheme(name: str, inputs: SchemeInputs) -> SchemeResult:
    try:
        shares = SCHEMES[name].shares(inputs)
        game = needs_game(inputs)
    except RuleNotApplicableError as error:
        return SchemeResult(name, {}, None, not_applicable=str(error))
    players = game.players
    return SchemeResult(name, dict(zip(players, map(float, shares), strict=True)),
                        diagnose(game, shares))
